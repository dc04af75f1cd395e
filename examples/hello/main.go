// Command hello builds a small topology, prints its description and runs
// sample orders through it in memory with the streamtest driver.
//
//	go run ./examples/hello
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

type order struct {
	ID       string  `json:"id"`
	Customer string  `json:"customer"`
	Country  string  `json:"country"`
	Total    float64 `json:"total"`
}

func main() {
	if err := run(); err != nil {
		slog.Error("hello failed", "err", err)
		os.Exit(1)
	}
}

func topology() (*processor.Topology, error) {
	b := dsl.NewBuilder()
	orders := b.Stream("orders", serde.String(), serde.JSON[order]())
	routes := orders.
		Filter(func(_ string, o order) bool { return o.Total > 0 }, dsl.Named("valid-orders")).
		Split(dsl.Named("by-size-")).
		Branch("big", func(_ string, o order) bool { return o.Total >= 100 }).
		DefaultBranch("small")
	routes["big"].
		SelectKey(func(_ string, o order) string { return o.Country }).
		Repartition(dsl.Named("big-by-country")).
		MapValues(func(o order) string { return fmt.Sprintf("%s spent %.2f", strings.ToUpper(o.Customer), o.Total) }).
		WithSerdes(serde.String(), serde.String()).
		To("big-orders-by-country")
	routes["small"].To("small-orders")
	return b.Build()
}

func run() error {
	topo, err := topology()
	if err != nil {
		return err
	}
	desc, err := topo.Describe()
	if err != nil {
		return err
	}
	fmt.Print(desc)

	d, err := streamtest.New(topo, streamtest.Partitions(4))
	if err != nil {
		return err
	}
	defer d.Close()
	in := d.InputTopic("orders", serde.String(), serde.JSON[order](), streamtest.AutoAdvance(time.Second))
	for _, o := range []order{
		{"o1", "ada", "fr", 250}, {"o2", "bob", "de", 12}, {"o3", "cy", "fr", 140},
		{"o4", "dee", "us", -1}, {"o5", "eve", "de", 990}, {"o6", "fay", "us", 75},
	} {
		if err := in.Pipe(o.ID, o); err != nil {
			return err
		}
	}
	big := d.OutputTopic("big-orders-by-country", serde.String(), serde.String())
	small := d.OutputTopic("small-orders", serde.String(), serde.JSON[order]())
	fmt.Println("big-orders-by-country:")
	recs, err := big.ReadRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		fmt.Printf("  partition %d  %s: %s\n", r.Origin.Partition, r.Key, r.Value)
	}
	fmt.Println("small-orders:")
	smalls, err := small.ReadAll()
	if err != nil {
		return err
	}
	for _, kv := range smalls {
		fmt.Printf("  %s: %s %.2f\n", kv.Key, kv.Value.Customer, kv.Value.Total)
	}
	return nil
}
