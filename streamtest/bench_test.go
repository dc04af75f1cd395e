package streamtest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// The stateless benchmarks: the same decode, two functions and encode, once
// through a topology in the driver and once in a plain loop, so their ratio
// is the cost of the engine.

type click struct {
	User    string `json:"user"`
	Page    string `json:"page"`
	Millis  int64  `json:"millis"`
	Country string `json:"country"`
}

type view struct {
	User string `json:"user"`
	Page string `json:"page"`
	Slow bool   `json:"slow"`
}

func keepClick(_ string, c click) bool { return c.Country != "xx" }

func toView(c click) view {
	return view{User: c.User, Page: strings.TrimPrefix(c.Page, "/"), Slow: c.Millis > 500}
}

// benchInputs returns n encoded clicks, one in ten filtered out.
func benchInputs(b *testing.B, n int) []processor.RawRecord {
	b.Helper()
	js := serde.JSON[click]()
	recs := make([]processor.RawRecord, n)
	ts := streamtest.DefaultStartTime
	for i := range recs {
		c := click{User: fmt.Sprintf("user-%d", i%97), Page: fmt.Sprintf("/page/%d", i%13), Millis: int64(i % 1000), Country: "fr"}
		if i%10 == 0 {
			c.Country = "xx"
		}
		v, err := js.Serialize("clicks", c)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = processor.RawRecord{Key: []byte(c.User), Value: v, Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}
	}
	return recs
}

// kept is how many of n records cycling through inputs the filter keeps.
func kept(n, inputs int) int {
	k := 0
	for i := range n {
		if i%inputs%10 != 0 {
			k++
		}
	}
	return k
}

func BenchmarkStatelessPipeline(b *testing.B) {
	inputs := benchInputs(b, 1024)
	bld := dsl.NewBuilder()
	bld.Stream("clicks", serde.String(), serde.JSON[click]()).
		Filter(keepClick).
		MapValues(toView).
		WithSerdes(serde.String(), serde.JSON[view]()).
		To("views")
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	d, err := streamtest.New(topo)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	out := d.OutputTopic("views", serde.String(), serde.JSON[view]())
	written := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := inputs[i%len(inputs)]
		rec.Timestamp = rec.Timestamp.Add(time.Duration(i/len(inputs)) * time.Second)
		if err := d.PipeRaw("clicks", -1, rec); err != nil {
			b.Fatal(err)
		}
		if _, ok := out.ReadRaw(); ok {
			written++
		}
	}
	b.StopTimer()
	if want := kept(b.N, len(inputs)); written != want {
		b.Fatalf("wrote %d records, want %d", written, want)
	}
}

func BenchmarkStatelessPipelineBaseline(b *testing.B) {
	inputs := benchInputs(b, 1024)
	keys, in, outv := serde.String(), serde.JSON[click](), serde.JSON[view]()
	written := 0
	var sink processor.RawRecord
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := inputs[i%len(inputs)]
		k, err := keys.Deserialize("clicks", rec.Key)
		if err != nil {
			b.Fatal(err)
		}
		c, err := in.Deserialize("clicks", rec.Value)
		if err != nil {
			b.Fatal(err)
		}
		if !keepClick(k, c) {
			continue
		}
		v := toView(c)
		kb, err := keys.Serialize("views", k)
		if err != nil {
			b.Fatal(err)
		}
		vb, err := outv.Serialize("views", v)
		if err != nil {
			b.Fatal(err)
		}
		sink = processor.RawRecord{Key: kb, Value: vb, Timestamp: rec.Timestamp}
		written++
	}
	b.StopTimer()
	if want := kept(b.N, len(inputs)); written != want || (want > 0 && sink.Value == nil) {
		b.Fatalf("wrote %d records, want %d", written, want)
	}
}
