package dsl_test

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// statelessInputs are piped, in this order, to topic "in" (one partition,
// so record i has offset i). The last timestamp is behind stream time:
// operators keep a record's timestamp whatever it is.
var statelessInputs = []processor.Record[string, string]{
	{Key: "a", Value: "apple", Timestamp: at(0), Headers: processor.Headers{{Key: "trace", Value: []byte("t-a")}}},
	{Key: "b", Value: "banana split", Timestamp: at(time.Millisecond)},
	{Key: "c", Value: "cherry", Timestamp: at(5 * time.Millisecond),
		Headers: processor.Headers{{Key: "trace", Value: []byte("t-c")}, {Key: "lang", Value: []byte("en")}}},
	{Key: "d", Value: "", Timestamp: at(3 * time.Millisecond)},
}

// derived is an expected output record: a key and value derived from input
// record from, whose timestamp, headers and origin it carries.
type derived struct {
	from       int
	key, value string
}

func TestStatelessOperators(t *testing.T) {
	kv := processor.Pair[string, string]
	all := []processor.KeyValue[string, string]{kv("a", "apple"), kv("b", "banana split"), kv("c", "cherry"), kv("d", "")}
	identity := []derived{{0, "a", "apple"}, {1, "b", "banana split"}, {2, "c", "cherry"}, {3, "d", ""}}

	tests := []struct {
		name string
		// op applies the operator to the source stream. saw records what a
		// Peek or Foreach sees. ok false: the operator ends the stream.
		op func(s dsl.Stream[string, string], saw func(k, v string)) (out dsl.Stream[string, string], ok bool)
		// want is what reaches topic "out", in order.
		want []derived
		// wantSaw is what saw was called with; nil when the operator calls none.
		wantSaw []processor.KeyValue[string, string]
		// origin is the Origin records have after the operator; by default
		// the input record's (topic "in", partition 0, offset from).
		origin func(from int) processor.Origin
		// headers is what the operator does to headers; by default nothing.
		headers func(from processor.Headers) processor.Headers
		// sub is the sub-topology whose task sees the records after the operator.
		sub int
	}{{
		name: "Filter keeps matching records",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.Filter(func(k, _ string) bool { return k != "b" }), true
		},
		want: []derived{{0, "a", "apple"}, {2, "c", "cherry"}, {3, "d", ""}},
	}, {
		name: "FilterNot drops matching records",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.FilterNot(func(_, v string) bool { return v == "" }), true
		},
		want: []derived{{0, "a", "apple"}, {1, "b", "banana split"}, {2, "c", "cherry"}},
	}, {
		name: "Map replaces key and value",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.Map(func(k, v string) (string, string) { return strings.ToUpper(v), k }), true
		},
		want: []derived{{0, "APPLE", "a"}, {1, "BANANA SPLIT", "b"}, {2, "CHERRY", "c"}, {3, "", "d"}},
	}, {
		name: "MapValues replaces the value, keeps the key",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.MapValues(strings.ToUpper), true
		},
		want: []derived{{0, "a", "APPLE"}, {1, "b", "BANANA SPLIT"}, {2, "c", "CHERRY"}, {3, "d", ""}},
	}, {
		name: "MapValuesWithKey sees the key",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.MapValuesWithKey(func(k, v string) string { return k + "=" + v }), true
		},
		want: []derived{{0, "a", "a=apple"}, {1, "b", "b=banana split"}, {2, "c", "c=cherry"}, {3, "d", "d="}},
	}, {
		name: "FlatMap makes zero, one or many records per input",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.FlatMap(func(k, v string) []dsl.KeyValue[string, string] {
				var out []dsl.KeyValue[string, string]
				for _, w := range strings.Fields(v) {
					out = append(out, dsl.Pair(w, k))
				}
				return out
			}), true
		},
		want: []derived{{0, "apple", "a"}, {1, "banana", "b"}, {1, "split", "b"}, {2, "cherry", "c"}},
	}, {
		name: "FlatMapValues makes zero, one or many records per input, same key",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.FlatMapValues(strings.Fields), true
		},
		want: []derived{{0, "a", "apple"}, {1, "b", "banana"}, {1, "b", "split"}, {2, "c", "cherry"}},
	}, {
		name: "Peek sees every record and passes it on",
		op: func(s dsl.Stream[string, string], saw func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.Peek(saw), true
		},
		want:    identity,
		wantSaw: all,
	}, {
		name: "Foreach sees every record and ends the stream",
		op: func(s dsl.Stream[string, string], saw func(k, v string)) (dsl.Stream[string, string], bool) {
			s.Foreach(saw)
			return s, false
		},
		wantSaw: all,
	}, {
		name: "SelectKey replaces the key, keeps the value",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.SelectKey(func(k, v string) string { return k + strconv.Itoa(len(v)) }), true
		},
		want: []derived{{0, "a5", "apple"}, {1, "b12", "banana split"}, {2, "c6", "cherry"}, {3, "d0", ""}},
	}, {
		name: "Merge passes the records of both streams",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			ac := func(k, _ string) bool { return k == "a" || k == "c" }
			return s.Filter(ac).Merge(s.FilterNot(ac)), true
		},
		want: identity,
	}, {
		name: "Process forwards what the processor makes",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.Process(func() processor.Processor[string, string, string, string] {
				return &funcProc[string, string, string, string]{
					process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
						if r.Value == "" {
							return nil
						}
						r = r.WithValue(strings.ToUpper(r.Value))
						r.Headers = r.Headers.With("node", []byte(ctx.NodeName()))
						return ctx.Forward(r)
					},
				}
			}, dsl.Named("upper")), true
		},
		want: []derived{{0, "a", "APPLE"}, {1, "b", "BANANA SPLIT"}, {2, "c", "CHERRY"}},
		headers: func(h processor.Headers) processor.Headers {
			return h.With("node", []byte("upper"))
		},
	}, {
		name: "Repartition passes records through its topic",
		op: func(s dsl.Stream[string, string], _ func(k, v string)) (dsl.Stream[string, string], bool) {
			return s.Repartition(dsl.Named("rp")), true
		},
		want: identity,
		origin: func(from int) processor.Origin {
			return processor.Origin{Topic: "streamtest-rp-repartition", Offset: int64(from)}
		},
		sub: 1,
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var saw []processor.KeyValue[string, string]
			var probed []seen[string, string]
			b := dsl.NewBuilder()
			out, ok := tt.op(b.Stream("in", serde.String(), serde.String()), func(k, v string) {
				saw = append(saw, processor.Pair(k, v))
			})
			if ok {
				out.Process(probeOf(&probed)).To("out")
			}
			d := run(t, b)
			outTopic := d.OutputTopic("out", serde.String(), serde.String())
			must(t, d.InputTopic("in", serde.String(), serde.String()).PipeRecords(statelessInputs...))

			origin, headers := tt.origin, tt.headers
			if origin == nil {
				origin = func(from int) processor.Origin { return processor.Origin{Topic: "in", Offset: int64(from)} }
			}
			if headers == nil {
				headers = func(h processor.Headers) processor.Headers { return h }
			}
			var wantProbed []seen[string, string]
			var wantOut []processor.Record[string, string]
			for i, w := range tt.want {
				in := statelessInputs[w.from]
				r := processor.Record[string, string]{Key: w.key, Value: w.value, Timestamp: in.Timestamp,
					Headers: headers(in.Headers), Origin: origin(w.from)}
				wantProbed = append(wantProbed, seen[string, string]{Task: processor.TaskID{SubTopology: tt.sub}, Meta: r.Origin, HasMD: true, Record: r})
				// On the output topic the record's origin is where it was written.
				r.Origin = processor.Origin{Topic: "out", Offset: int64(i)}
				wantOut = append(wantOut, r)
			}

			if diff := cmp.Diff(wantProbed, probed); diff != "" {
				t.Errorf("records after the operator (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantOut, readAll(t, outTopic)); diff != "" {
				t.Errorf("topic out (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSaw, saw); diff != "" {
				t.Errorf("function saw (-want +got):\n%s", diff)
			}
		})
	}
}

// Type-changing operators change the record types along the chain; the
// sink encodes with the serdes given by WithSerdes.
func TestTypeChangingOperators(t *testing.T) {
	b := dsl.NewBuilder()
	words := b.Stream("words", serde.String(), serde.String())
	words.MapValues(func(v string) int64 { return int64(len(v)) }).
		WithSerdes(serde.String(), serde.Int64()).
		To("lengths")
	words.Map(func(k, v string) (int64, string) { return int64(len(k)), v }).
		WithSerdes(serde.Int64(), serde.String()).
		To("by-key-length")
	words.FlatMapValues(func(v string) []int32 {
		out := make([]int32, 0, len(v))
		for _, r := range v {
			out = append(out, r)
		}
		return out
	}).WithSerdes(serde.String(), serde.Int32()).To("runes")
	words.SelectKey(func(_, v string) float64 { return float64(len(v)) / 2 }).
		WithSerdes(serde.Float64(), serde.String()).
		To("half-lengths")
	d := run(t, b)
	lengths := d.OutputTopic("lengths", serde.String(), serde.Int64())
	byKeyLen := d.OutputTopic("by-key-length", serde.Int64(), serde.String())
	runes := d.OutputTopic("runes", serde.String(), serde.Int32())
	halves := d.OutputTopic("half-lengths", serde.Float64(), serde.String())

	in := d.InputTopic("words", serde.String(), serde.String())
	must(t, in.PipeAt("k", "hey", at(0)))
	must(t, in.PipeAt("key", "yo", at(time.Second)))

	if diff := cmp.Diff([]processor.KeyValue[string, int64]{{Key: "k", Value: 3}, {Key: "key", Value: 2}}, readKVs(t, lengths)); diff != "" {
		t.Errorf("lengths (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]processor.KeyValue[int64, string]{{Key: 1, Value: "hey"}, {Key: 3, Value: "yo"}}, readKVs(t, byKeyLen)); diff != "" {
		t.Errorf("by-key-length (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]processor.KeyValue[string, int32]{{Key: "k", Value: 'h'}, {Key: "k", Value: 'e'}, {Key: "k", Value: 'y'}, {Key: "key", Value: 'y'}, {Key: "key", Value: 'o'}},
		readKVs(t, runes)); diff != "" {
		t.Errorf("runes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]processor.KeyValue[float64, string]{{Key: 1.5, Value: "hey"}, {Key: 1, Value: "yo"}}, readKVs(t, halves)); diff != "" {
		t.Errorf("half-lengths (-want +got):\n%s", diff)
	}
}

// ToFunc writes each record to the topic its function names, with the
// record's key, value, timestamp and headers.
func TestToFunc(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("events", serde.String(), serde.Int64()).
		ToFunc(func(r processor.Record[string, int64]) string {
			if r.Value%2 == 0 {
				return "even"
			}
			return "odd-" + r.Key
		})
	d := run(t, b)
	even := d.OutputTopic("even", serde.String(), serde.Int64())
	oddA := d.OutputTopic("odd-a", serde.String(), serde.Int64())
	oddB := d.OutputTopic("odd-b", serde.String(), serde.Int64())

	h := processor.Headers{{Key: "h", Value: []byte("1")}}
	in := d.InputTopic("events", serde.String(), serde.Int64())
	must(t, in.PipeRecords(
		processor.Record[string, int64]{Key: "a", Value: 1, Timestamp: at(0), Headers: h},
		processor.Record[string, int64]{Key: "a", Value: 2, Timestamp: at(time.Second)},
		processor.Record[string, int64]{Key: "b", Value: 3, Timestamp: at(2 * time.Second)},
		processor.Record[string, int64]{Key: "b", Value: 4, Timestamp: at(3 * time.Second), Headers: h},
		processor.Record[string, int64]{Key: "a", Value: 5, Timestamp: at(4 * time.Second)},
	))

	rec := func(topic string, off int64, k string, v int64, ts time.Time, h processor.Headers) processor.Record[string, int64] {
		return processor.Record[string, int64]{Key: k, Value: v, Timestamp: ts, Headers: h, Origin: processor.Origin{Topic: topic, Offset: off}}
	}
	for _, c := range []struct {
		topic string
		got   []processor.Record[string, int64]
		want  []processor.Record[string, int64]
	}{
		{"even", readAll(t, even), []processor.Record[string, int64]{
			rec("even", 0, "a", 2, at(time.Second), nil),
			rec("even", 1, "b", 4, at(3*time.Second), h),
		}},
		{"odd-a", readAll(t, oddA), []processor.Record[string, int64]{
			rec("odd-a", 0, "a", 1, at(0), h),
			rec("odd-a", 1, "a", 5, at(4*time.Second), nil),
		}},
		{"odd-b", readAll(t, oddB), []processor.Record[string, int64]{
			rec("odd-b", 0, "b", 3, at(2*time.Second), nil),
		}},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("topic %s (-want +got):\n%s", c.topic, diff)
		}
	}
}

// A ToFunc whose function returns no topic fails the record with a
// SerializationError wrapping processor.ErrNoTopic.
func TestToFuncEmptyTopic(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		ToFunc(func(r processor.Record[string, string]) string { return r.Value }, dsl.Named("route"))
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String())

	err := in.Pipe("k", "")
	var se *processor.SerializationError
	if !errors.As(err, &se) || se.Node != "route" || !errors.Is(err, processor.ErrNoTopic) {
		t.Fatalf("Pipe with no topic = %v; want a SerializationError of node route wrapping ErrNoTopic", err)
	}
	must(t, in.Pipe("k", "there"))
	if got := readKVs(t, d.OutputTopic("there", serde.String(), serde.String())); len(got) != 1 {
		t.Errorf("topic there: got %v, want one record", got)
	}
}

// A null key or value (nil bytes on the topic) survives the operators that
// keep it and is cleared by those that replace it, so a tombstone stays a
// tombstone through a Filter but a MapValues makes a value of it.
func TestNullKeysAndValues(t *testing.T) {
	type flags struct{ nullKey, nullValue bool }
	tests := []struct {
		name string
		op   func(s dsl.Stream[string, string]) dsl.Stream[string, string]
		want []flags // for a null-key record, then a null-value record
	}{
		{"Filter keeps both", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.Filter(func(string, string) bool { return true })
		}, []flags{{true, false}, {false, true}}},
		{"Peek keeps both", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.Peek(func(string, string) {})
		}, []flags{{true, false}, {false, true}}},
		{"Merge keeps both", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			yes := func(string, string) bool { return true }
			return s.Filter(yes).Merge(s.FilterNot(yes))
		}, []flags{{true, false}, {false, true}}},
		{"Repartition keeps both", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.Repartition(dsl.Named("rp"))
		}, []flags{{true, false}, {false, true}}},
		{"MapValues makes a value", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.MapValues(func(v string) string { return "v:" + v })
		}, []flags{{true, false}, {false, false}}},
		{"FlatMapValues makes values", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.FlatMapValues(func(v string) []string { return []string{v} })
		}, []flags{{true, false}, {false, false}}},
		{"SelectKey makes a key", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.SelectKey(func(k, _ string) string { return "k:" + k })
		}, []flags{{false, false}, {false, true}}},
		{"Map makes both", func(s dsl.Stream[string, string]) dsl.Stream[string, string] {
			return s.Map(func(k, v string) (string, string) { return k, v })
		}, []flags{{false, false}, {false, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.op(b.Stream("in", serde.String(), serde.String())).To("out")
			d := run(t, b)
			out := d.OutputTopic("out", serde.String(), serde.String())
			must(t, d.PipeRaw("in", 0, processor.RawRecord{Key: nil, Value: []byte("v"), Timestamp: at(0)}))
			must(t, d.PipeRaw("in", 0, processor.RawRecord{Key: []byte("k"), Value: nil, Timestamp: at(0)}))
			var got []flags
			for !out.IsEmpty() {
				raw, _ := out.ReadRaw()
				got = append(got, flags{raw.Key == nil, raw.Value == nil})
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(flags{})); diff != "" {
				t.Errorf("null key, null value on topic out (-want +got):\n%s", diff)
			}
		})
	}
}

// Streams reads several topics as one stream, merged by timestamp within
// a task; StreamPattern reads every topic whose whole name matches.
func TestStreamsAndStreamPattern(t *testing.T) {
	t.Run("Streams", func(t *testing.T) {
		b := dsl.NewBuilder()
		b.Streams([]string{"a", "b"}, serde.String(), serde.String()).To("out")
		d := run(t, b)
		must(t, d.Batch(func() {
			must(t, d.InputTopic("a", serde.String(), serde.String()).PipeAt("a", "a2", at(2*time.Second)))
			must(t, d.InputTopic("b", serde.String(), serde.String()).PipeAt("b", "b1", at(time.Second)))
		}))
		var got []string
		for _, r := range readAll(t, d.OutputTopic("out", serde.String(), serde.String())) {
			got = append(got, r.Value+"@"+r.Origin.Topic)
		}
		if diff := cmp.Diff([]string{"b1@out", "a2@out"}, got); diff != "" {
			t.Errorf("values in timestamp order (-want +got):\n%s", diff)
		}
	})
	t.Run("StreamPattern", func(t *testing.T) {
		var probed []seen[string, string]
		b := dsl.NewBuilder()
		b.StreamPattern(regexp.MustCompile(`logs-[a-z]+`), serde.String(), serde.String()).Process(probeOf(&probed))
		d := run(t, b)
		for _, tp := range []string{"logs-web", "logs-db", "logs-2", "xlogs-web", "logs-web-old"} {
			must(t, d.InputTopic(tp, serde.String(), serde.String()).Pipe("k", tp))
		}
		var got []string
		for _, p := range probed {
			if p.Record.Origin.Topic != p.Record.Value {
				t.Errorf("record %q has origin %+v", p.Record.Value, p.Record.Origin)
			}
			got = append(got, p.Record.Value)
		}
		if diff := cmp.Diff([]string{"logs-web", "logs-db"}, got); diff != "" {
			t.Errorf("topics read (-want +got):\n%s", diff)
		}
	})
}

// A topic written by To and read by another Stream of the same builder
// links two sub-topologies; records go through it like through Kafka.
func TestToTopicReadByAnotherStream(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).MapValues(strings.ToUpper).To("mid")
	b.Stream("mid", serde.String(), serde.String()).MapValuesWithKey(func(k, v string) string { return k + v }).To("out")
	d := run(t, b, streamtest.Partitions(2))
	if got := len(d.Tasks()); got != 4 {
		t.Errorf("%d tasks, want 4: two sub-topologies of two partitions", got)
	}
	in := d.InputTopic("in", serde.String(), serde.String())
	must(t, in.PipeAt("a", "x", at(0)))
	must(t, in.PipeAt("b", "y", at(time.Second)))
	var got []processor.KeyValue[string, string]
	for _, r := range readAll(t, d.OutputTopic("out", serde.String(), serde.String())) {
		got = append(got, processor.Pair(r.Key, r.Value+"@"+r.Timestamp.Sub(t0).String()))
	}
	want := []processor.KeyValue[string, string]{{Key: "a", Value: "aX@0s"}, {Key: "b", Value: "bY@1s"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}

// A pattern that matches a topic another sub-topology reads is refused,
// as Kafka Streams refuses it, instead of feeding the topic to both.
func TestPatternOverlapsAnotherSource(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("orders-eu", serde.String(), serde.String()).To("a")
	b.StreamPattern(regexp.MustCompile(`orders-.*`), serde.String(), serde.String()).To("b")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.InputTopic("orders-eu", serde.String(), serde.String()).Pipe("k", "v")
	if err == nil || !strings.Contains(err.Error(), `"orders-eu" is read by sub-topologies [0 1]`) {
		t.Errorf("Pipe = %v, want the overlap refused", err)
	}
	if err := d.InputTopic("orders-us", serde.String(), serde.String()).Pipe("k", "v"); err != nil {
		t.Errorf("a topic only the pattern matches: %v", err)
	}
}
