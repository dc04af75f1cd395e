package dsl_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

type order struct {
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// A value that does not decode fails its record with an error that names
// the topic, partition and offset, and the driver goes on with the next.
func TestDeserializationError(t *testing.T) {
	tests := []struct {
		name    string
		raw     processor.RawRecord
		wantKey bool
		wantAs  any // a pointer to an error type the cause must reach
	}{
		{"bad JSON value", processor.RawRecord{Key: mustSer(serde.Int64(), 3), Value: []byte(`{"customer":`)}, false, new(*json.SyntaxError)},
		{"wrong JSON type", processor.RawRecord{Key: mustSer(serde.Int64(), 3), Value: []byte(`{"total":"many"}`)}, false, new(*json.UnmarshalTypeError)},
		{"bad key", processor.RawRecord{Key: []byte("abc"), Value: []byte(`{}`)}, true, new(*serde.Error)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Stream("orders", serde.Int64(), serde.JSON[order](), dsl.Named("orders-source")).
				MapValues(func(o order) string { return o.Customer }).
				WithSerdes(serde.Int64(), serde.String()).
				To("customers")
			d := run(t, b, streamtest.Partitions(3))
			in := d.InputTopic("orders", serde.Int64(), serde.JSON[order]())
			out := d.OutputTopic("customers", serde.Int64(), serde.String())

			// Offsets 0 and 1 of partition 2 are good, 2 is bad.
			must(t, d.PipeRaw("orders", 2, processor.RawRecord{Key: mustSer(serde.Int64(), 1), Value: []byte(`{"customer":"ann"}`)}))
			must(t, d.PipeRaw("orders", 2, processor.RawRecord{Key: mustSer(serde.Int64(), 2), Value: []byte(`{"customer":"bob"}`)}))
			err := d.PipeRaw("orders", 2, tt.raw)
			if err == nil {
				t.Fatal("PipeRaw of a bad record succeeded")
			}
			var de *processor.DeserializationError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *processor.DeserializationError", err)
			}
			wantOrigin := processor.Origin{Topic: "orders", Partition: 2, Offset: 2}
			if de.Origin != wantOrigin || de.Node != "orders-source" || de.Key != tt.wantKey {
				t.Errorf("DeserializationError %+v: want node orders-source, origin %+v, key %v", de, wantOrigin, tt.wantKey)
			}
			var re *task.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *task.RecordError", err)
			}
			if re.Origin != wantOrigin || re.Task != (processor.TaskID{Partition: 2}) {
				t.Errorf("RecordError task %v origin %+v; want task 0_2, origin %+v", re.Task, re.Origin, wantOrigin)
			}
			if !errors.As(err, tt.wantAs) {
				t.Errorf("error %v does not reach a %T", err, tt.wantAs)
			}
			for _, w := range []string{`topic "orders"`, "partition 2", "offset 2", `"orders-source"`, "task 0_2"} {
				if !contains(err, w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}

			// The driver goes on: the next good record is processed, and
			// nothing came of the bad one.
			must(t, in.Pipe(3, order{Customer: "cy"}))
			want := []processor.KeyValue[int64, string]{{Key: 1, Value: "ann"}, {Key: 2, Value: "bob"}, {Key: 3, Value: "cy"}}
			if diff := cmp.Diff(want, readKVs(t, out)); diff != "" {
				t.Errorf("customers (-want +got):\n%s", diff)
			}
		})
	}
}

func mustSer[T any](s serde.Serde[T], v T) []byte {
	b, err := s.Serialize("", v)
	if err != nil {
		panic(err)
	}
	return b
}

// A panic in an operator's function is returned as an error, not a crash:
// a PanicError inside a RecordError naming the record's origin. The driver
// goes on with the next record.
func TestPanicInOperator(t *testing.T) {
	errBad := errors.New("bad value")
	tests := []struct {
		name  string
		op    func(s dsl.Stream[string, string]) dsl.Stream[string, string]
		value any // the panic value
	}{
		{"MapValues", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.MapValues(func(v string) string {
				if v == "boom" {
					panic("MapValues exploded")
				}
				return v
			})
		}, "MapValues exploded"},
		{"Filter with an error value", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.Filter(func(_, v string) bool {
				if v == "boom" {
					panic(errBad)
				}
				return true
			})
		}, errBad},
		{"FlatMapValues after a good record", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.FlatMapValues(func(v string) []string {
				if v == "boom" {
					var none []string
					return []string{none[1]} // index out of range
				}
				return []string{v}
			})
		}, nil},
		{"Peek", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.Peek(func(_, v string) {
				if v == "boom" {
					panic(fmt.Sprintf("peeked at %s", v))
				}
			})
		}, "peeked at boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.op(b.Stream("in", serde.String(), serde.String())).To("out")
			d := run(t, b)
			in := d.InputTopic("in", serde.String(), serde.String())
			out := d.OutputTopic("out", serde.String(), serde.String())
			must(t, in.Pipe("k", "fine"))

			err := in.Pipe("k", "boom")
			var pe *task.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Pipe = %v; want a *task.PanicError", err)
			}
			if tt.value != nil && pe.Value != tt.value {
				t.Errorf("panic value %#v, want %#v", pe.Value, tt.value)
			}
			if len(pe.Stack) == 0 {
				t.Error("PanicError has no stack")
			}
			var re *task.RecordError
			if !errors.As(err, &re) || re.Origin != (processor.Origin{Topic: "in", Offset: 1}) {
				t.Errorf("error %v: want a RecordError at topic in, offset 1", err)
			}
			if tt.value == errBad && !errors.Is(err, errBad) {
				t.Errorf("error %v does not wrap the panic's error", err)
			}
			if !contains(err, `topic "in" partition 0 offset 1`) || !contains(err, "panic") {
				t.Errorf("error %q does not say panic at topic in, partition 0, offset 1", err)
			}

			must(t, in.Pipe("k", "after"))
			want := []processor.KeyValue[string, string]{{Key: "k", Value: "fine"}, {Key: "k", Value: "after"}}
			if diff := cmp.Diff(want, readKVs(t, out)); diff != "" {
				t.Errorf("out (-want +got):\n%s", diff)
			}
		})
	}
}

// A processing error in Process comes back wrapped in a RecordError.
func TestProcessError(t *testing.T) {
	errNo := errors.New("no thanks")
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] {
			return &funcProc[string, string, string, string]{
				process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
					if r.Value == "no" {
						return errNo
					}
					return ctx.Forward(r)
				},
			}
		}).To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String())
	err := in.Pipe("k", "no")
	var re *task.RecordError
	if !errors.Is(err, errNo) || !errors.As(err, &re) || re.Origin != (processor.Origin{Topic: "in"}) {
		t.Fatalf("Pipe = %v; want a RecordError at in/0/0 wrapping errNo", err)
	}
	must(t, in.Pipe("k", "yes"))
	if diff := cmp.Diff([]processor.KeyValue[string, string]{{Key: "k", Value: "yes"}}, readKVs(t, d.OutputTopic("out", serde.String(), serde.String()))); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}

// Mistakes in declaring a topology are Build errors that say which operator
// and what is wrong; Build reports all of them.
func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s dsl.Stream[string, string])
		want  []string
	}{{
		name: "NumPartitions on Filter",
		setup: func(s dsl.Stream[string, string]) {
			s.Filter(func(string, string) bool { return true }, dsl.NumPartitions(2)).To("out")
		},
		want: []string{"dsl: Filter: option NumPartitions does not apply"},
	}, {
		name: "WithStores and NumPartitions on MapValues",
		setup: func(s dsl.Stream[string, string]) {
			s.MapValues(func(v string) string { return v }, dsl.WithStores("x"), dsl.NumPartitions(1)).To("out")
		},
		want: []string{"dsl: MapValues: option NumPartitions, WithStores does not apply"},
	}, {
		name:  "Named with an empty name",
		setup: func(s dsl.Stream[string, string]) { s.Peek(func(string, string) {}, dsl.Named("")).To("out") },
		want:  []string{"dsl: Peek: Named with an empty name"},
	}, {
		name:  "nil function",
		setup: func(s dsl.Stream[string, string]) { s.Filter(nil).To("out") },
		want:  []string{"dsl: Filter: nil function"},
	}, {
		name: "nil functions of every operator",
		setup: func(s dsl.Stream[string, string]) {
			s.FilterNot(nil)
			s.Map(func(string, string) (string, string) { return "", "" })
			s.MapValues((func(string) string)(nil))
			s.MapValuesWithKey((func(string, string) string)(nil))
			s.FlatMap((func(string, string) []dsl.KeyValue[string, string])(nil))
			s.FlatMapValues((func(string) []string)(nil))
			s.SelectKey((func(string, string) string)(nil))
			s.Peek(nil)
			s.Foreach(nil)
		},
		want: []string{"dsl: FilterNot: nil function", "dsl: MapValues: nil function", "dsl: MapValuesWithKey: nil function",
			"dsl: FlatMap: nil function", "dsl: FlatMapValues: nil function", "dsl: SelectKey: nil function",
			"dsl: Peek: nil function", "dsl: Foreach: nil function"},
	}, {
		name: "To after a type-changing MapValues",
		setup: func(s dsl.Stream[string, string]) {
			s.MapValues(func(v string) int64 { return int64(len(v)) }, dsl.Named("lengths")).To("out")
		},
		want: []string{"dsl: To: no value serde for lengths; set one with WithSerdes"},
	}, {
		name: "ToFunc after a type-changing Map",
		setup: func(s dsl.Stream[string, string]) {
			s.Map(func(k, v string) (int64, int64) { return 0, 0 }, dsl.Named("zeros")).
				ToFunc(func(processor.Record[int64, int64]) string { return "out" })
		},
		want: []string{"dsl: ToFunc: no key serde for zeros; set one with WithSerdes",
			"dsl: ToFunc: no value serde for zeros; set one with WithSerdes"},
	}, {
		name: "two nodes of one name",
		setup: func(s dsl.Stream[string, string]) {
			s.Peek(func(string, string) {}, dsl.Named("x")).Peek(func(string, string) {}, dsl.Named("x"))
		},
		want: []string{`"x"`, "duplicate node name"},
	}, {
		name: "sink to its own source topic",
		setup: func(s dsl.Stream[string, string]) {
			s.To("in")
		},
		want: []string{`topic "in"`, "sink writes to a source topic of its own sub-topology"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.setup(b.Stream("in", serde.String(), serde.String()))
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded with %v", topo)
			}
			for _, w := range tt.want {
				if !contains(err, w) {
					t.Errorf("Build error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// WithSerdes gives a sink the serdes a type change lost; an operator that
// keeps the type keeps them.
func TestWithSerdesFixesMissingSerdes(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		MapValues(func(v string) int64 { return int64(len(v)) }).
		WithSerdes(serde.String(), serde.Int64()).
		Filter(func(_ string, n int64) bool { return n > 1 }). // keeps the serdes
		MapValues(func(n int64) int64 { return n * 10 }).      // same type: keeps them
		To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String())
	must(t, in.Pipe("a", "x"))
	must(t, in.Pipe("b", "xyz"))
	if diff := cmp.Diff([]processor.KeyValue[string, int64]{{Key: "b", Value: 30}}, readKVs(t, d.OutputTopic("out", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}

// A value the sink's serde cannot encode fails the record with a
// SerializationError naming the sink and topic.
func TestSerializationError(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.Float64()).
		MapValues(func(f float64) map[string]float64 { return map[string]float64{"v": f} }).
		WithSerdes(serde.String(), serde.JSON[map[string]float64]()).
		To("out", dsl.Named("json-sink"))
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.Float64())
	err := in.Pipe("k", mathInf())
	var se *processor.SerializationError
	if !errors.As(err, &se) || se.Node != "json-sink" || se.Topic != "out" || se.Key {
		t.Fatalf("Pipe = %v; want a value SerializationError of json-sink for topic out", err)
	}
	var re *task.RecordError
	if !errors.As(err, &re) || re.Origin != (processor.Origin{Topic: "in"}) {
		t.Errorf("error %v: want a RecordError at in/0/0", err)
	}
	must(t, in.Pipe("k", 1.5))
	if got := readKVs(t, d.OutputTopic("out", serde.String(), serde.JSON[map[string]float64]())); len(got) != 1 || got[0].Value["v"] != 1.5 {
		t.Errorf("out = %v, want one record with v 1.5", got)
	}
}

// Records piped after a failing one in the same batch are not lost: the
// driver processes them at its next call.
func TestRecordsAfterAnErrorAreKept(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		MapValues(func(v string) string {
			if v == "boom" {
				panic(v)
			}
			return v
		}).
		To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String())
	out := d.OutputTopic("out", serde.String(), serde.String())
	err := in.PipeKeyValues(processor.Pair("k", "one"), processor.Pair("k", "boom"), processor.Pair("k", "two"))
	var re *task.RecordError
	if !errors.As(err, &re) || re.Origin.Offset != 1 {
		t.Fatalf("PipeKeyValues = %v; want a RecordError at offset 1", err)
	}
	must(t, in.Pipe("k", "three"))
	want := []processor.KeyValue[string, string]{{Key: "k", Value: "one"}, {Key: "k", Value: "two"}, {Key: "k", Value: "three"}}
	if diff := cmp.Diff(want, readKVs(t, out)); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}
