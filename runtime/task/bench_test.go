package task_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/serde"
)

// upper forwards each record with its value upper-cased: the MapValues of
// the runtime's stateless benchmark, written against the Processor API.
type upper struct {
	ctx processor.Context[[]byte, string]
}

func (u *upper) Init(ctx processor.Context[[]byte, string]) error { u.ctx = ctx; return nil }
func (u *upper) Close() error                                     { return nil }
func (u *upper) Process(r processor.Record[[]byte, string]) error {
	return u.ctx.Forward(r.WithValue(strings.ToUpper(r.Value)))
}

// discard is a collector that drops what it is sent.
type discard struct{ n int }

func (d *discard) Send(string, int32, processor.RawRecord) error { d.n++; return nil }

// BenchmarkProcessStateless measures the task's own cost per record, with
// no broker: Add a poll's worth of records, then Process them through
// source (bytes key, string value) -> MapValues(strings.ToUpper) -> sink,
// to a collector that drops them. One record per iteration.
//
//	go test ./runtime/task -run '^$' -bench ProcessStateless -benchtime 2000000x
func BenchmarkProcessStateless(b *testing.B) {
	topo := processor.NewTopology()
	topo.AddSource("in", serde.Bytes(), serde.String(), "in")
	topo.AddProcessor("upper", func() processor.Processor[[]byte, string, []byte, string] { return &upper{} }, "in")
	topo.AddSink("out", "out", serde.Bytes(), serde.String(), "upper")
	out := &discard{}
	tk, err := task.New(task.Config{ApplicationID: "bench", Topology: topo, Collector: out})
	if err != nil {
		b.Fatal(err)
	}
	if err := tk.Init(); err != nil {
		b.Fatal(err)
	}
	defer tk.Close()
	const poll = 10_000
	tp := task.TopicPartition{Topic: "in", Partition: 0}
	recs := make([]processor.RawRecord, poll)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range recs {
		recs[i] = processor.RawRecord{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "w%d w%d w%d", i%1000, i%7, i%13),
			Timestamp: t0, Origin: processor.Origin{Topic: "in", Partition: 0}}
	}
	off := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(poll, b.N-done)
		for i := range n {
			recs[i].Origin.Offset = off
			off++
		}
		if err := tk.Add(tp, recs[:n]...); err != nil {
			b.Fatal(err)
		}
		if _, err := tk.Process(n); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.StopTimer()
	if out.n != b.N {
		b.Fatalf("%d records out for %d in", out.n, b.N)
	}
}
