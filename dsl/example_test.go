package dsl_test

import (
	"fmt"
	"strings"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// Word count: the README's table example, run in memory.
func Example_wordCount() {
	b := dsl.NewBuilder(dsl.RequireNames())
	b.Stream("lines", serde.String(), serde.String()).
		FlatMapValues(strings.Fields).
		GroupBy(func(_, word string) string { return word }, serde.String(), dsl.Named("words")).
		Count(dsl.Named("word-counts")).
		ToStream().
		To("word-counts")
	topo, err := b.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := streamtest.New(topo)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	lines := d.InputTopic("lines", serde.String(), serde.String())
	counts := d.OutputTopic("word-counts", serde.String(), serde.Int64())
	_ = lines.Pipe("l1", "to be or not to be")
	kvs, _ := counts.ReadAll()
	fmt.Println(kvs)
	// Output:
	// [{to 2} {be 2} {or 1} {not 1}]
}
