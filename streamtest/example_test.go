package streamtest_test

import (
	"fmt"
	"strings"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

type Order struct {
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// A topology that keeps big orders and writes their customers upper-cased,
// tested in memory.
func Example() {
	b := dsl.NewBuilder()
	b.Stream("orders", serde.String(), serde.JSON[Order]()).
		Filter(func(_ string, o Order) bool { return o.Total >= 100 }).
		MapValues(func(o Order) string { return strings.ToUpper(o.Customer) }).
		WithSerdes(serde.String(), serde.String()).
		To("big-spenders")
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
	orders := d.InputTopic("orders", serde.String(), serde.JSON[Order]())
	out := d.OutputTopic("big-spenders", serde.String(), serde.String())

	_ = orders.Pipe("o-1", Order{Customer: "ada", Total: 250})
	_ = orders.Pipe("o-2", Order{Customer: "bob", Total: 20})
	_ = orders.Pipe("o-3", Order{Customer: "cy", Total: 100})

	kvs, _ := out.ReadAll()
	for _, kv := range kvs {
		fmt.Println(kv.Key, kv.Value)
	}
	// Output:
	// o-1 ADA
	// o-3 CY
}
