package dsl_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/internal/murmur2"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// counter counts records per key in a key-value store and forwards the
// running count.
type counter struct {
	store string
	ctx   processor.Context[string, int64]
	kv    *state.KeyValueStore[string, int64]
}

func (c *counter) Init(ctx processor.Context[string, int64]) error {
	kv, err := processor.StoreOf[*state.KeyValueStore[string, int64]](ctx, c.store)
	if err != nil {
		return err
	}
	c.ctx, c.kv = ctx, kv
	return nil
}

func (c *counter) Process(r processor.Record[string, string]) error {
	n, _, err := c.kv.Get(r.Key)
	if err != nil {
		return err
	}
	n++
	if err := c.kv.Put(r.Key, n); err != nil {
		return err
	}
	return c.ctx.Forward(r.WithValue(n))
}

func (c *counter) Close() error { return nil }

func counterOf(store string) processor.Supplier[string, string, string, int64] {
	return func() processor.Processor[string, string, string, int64] { return &counter{store: store} }
}

func countTopology(partitions int) (*dsl.Builder, []streamtest.Option) {
	b := dsl.NewBuilder()
	b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
	b.Stream("clicks", serde.String(), serde.String()).
		Process(counterOf("counts"), dsl.Named("count"), dsl.WithStores("counts")).
		WithSerdes(serde.String(), serde.Int64()).
		To("click-counts")
	return b, []streamtest.Option{streamtest.Partitions(partitions)}
}

// A processor with a store keeps state across records: the count per key
// goes up, and the store holds the last one.
func TestProcessWithStore(t *testing.T) {
	b, opts := countTopology(1)
	d := run(t, b, opts...)
	in := d.InputTopic("clicks", serde.String(), serde.String(), streamtestAutoAdvance())
	out := d.OutputTopic("click-counts", serde.String(), serde.Int64())
	for _, k := range []string{"ann", "bob", "ann", "ann", "cy", "bob"} {
		must(t, in.Pipe(k, "click"))
	}
	want := []processor.KeyValue[string, int64]{{Key: "ann", Value: 1}, {Key: "bob", Value: 1}, {Key: "ann", Value: 2}, {Key: "ann", Value: 3}, {Key: "cy", Value: 1}, {Key: "bob", Value: 2}}
	if diff := cmp.Diff(want, readKVs(t, out)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}

	s, err := d.Store("counts", 0)
	must(t, err)
	kv, ok := s.(*state.KeyValueStore[string, int64])
	if !ok {
		t.Fatalf("store counts is a %T", s)
	}
	for k, want := range map[string]int64{"ann": 3, "bob": 2, "cy": 1} {
		if got, found, err := kv.Get(k); err != nil || !found || got != want {
			t.Errorf("store counts[%q] = %d, %v, %v; want %d", k, got, found, err, want)
		}
	}
}

// A store may be added after the Process that uses it: the builder
// connects them at Build.
func TestProcessStoreAddedAfter(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("clicks", serde.String(), serde.String()).
		Process(counterOf("counts"), dsl.WithStores("counts")).
		WithSerdes(serde.String(), serde.Int64()).
		To("click-counts")
	b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
	d := run(t, b)
	in := d.InputTopic("clicks", serde.String(), serde.String())
	must(t, in.Pipe("k", "x"))
	must(t, in.Pipe("k", "x"))
	want := []processor.KeyValue[string, int64]{{Key: "k", Value: 1}, {Key: "k", Value: 2}}
	if diff := cmp.Diff(want, readKVs(t, d.OutputTopic("click-counts", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// Each task has its own instance of a store, holding the keys of its
// partition only.
func TestProcessStorePerTask(t *testing.T) {
	b, opts := countTopology(3)
	d := run(t, b, opts...)
	in := d.InputTopic("clicks", serde.String(), serde.String())
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, k := range keys {
		must(t, in.Pipe(k, "x"))
		must(t, in.Pipe(k, "y"))
	}
	want := keysByPartition(keys, 3)
	for p := range int32(3) {
		s, err := d.Store("counts", int(p))
		must(t, err)
		it := s.(*state.KeyValueStore[string, int64]).All()
		var got []string
		for it.Next() {
			got = append(got, it.Key())
			if it.Value() != 2 {
				t.Errorf("partition %d: count of %q is %d, want 2", p, it.Key(), it.Value())
			}
		}
		must(t, it.Close())
		slices.Sort(got)
		if diff := cmp.Diff(want[p], got); diff != "" {
			t.Errorf("keys in store of partition %d (-want +got):\n%s", p, diff)
		}
	}
}

// Two processors connected to one store share it (and so a sub-topology
// and a task).
func TestProcessSharedStore(t *testing.T) {
	b := dsl.NewBuilder()
	b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
	b.Stream("a", serde.String(), serde.String()).Process(counterOf("counts"), dsl.WithStores("counts")).
		WithSerdes(serde.String(), serde.Int64()).To("out")
	b.Stream("b", serde.String(), serde.String()).Process(counterOf("counts"), dsl.WithStores("counts")).
		WithSerdes(serde.String(), serde.Int64()).To("out")
	d := run(t, b)
	out := d.OutputTopic("out", serde.String(), serde.Int64())
	must(t, d.InputTopic("a", serde.String(), serde.String()).Pipe("k", "x"))
	must(t, d.InputTopic("b", serde.String(), serde.String()).Pipe("k", "x"))
	must(t, d.InputTopic("a", serde.String(), serde.String()).Pipe("k", "x"))
	if diff := cmp.Diff([]processor.KeyValue[string, int64]{{Key: "k", Value: 1}, {Key: "k", Value: 2}, {Key: "k", Value: 3}}, readKVs(t, out)); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}

// A processor asking for a store it is not connected to cannot start; the
// error names the node and the store.
func TestProcessStoreNotConnected(t *testing.T) {
	tests := []struct {
		name  string
		setup func(b *dsl.Builder, s dsl.Stream[string, string])
	}{{
		name: "store connected to another processor",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
			s.Process(counterOf("counts"), dsl.Named("owner"), dsl.WithStores("counts"))
			s.Process(counterOf("counts"), dsl.Named("thief"))
		},
	}, {
		name: "store never added",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			s.Process(counterOf("counts"), dsl.Named("thief"))
		},
	}, {
		name: "store added, connected to nothing",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
			s.Process(counterOf("counts"), dsl.Named("thief"))
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.setup(b, b.Stream("clicks", serde.String(), serde.String()))
			d, err := streamtest.New(build(t, b))
			if err == nil {
				d.Close()
				t.Fatal("streamtest.New succeeded; want the processor's Init to fail")
			}
			if !errors.Is(err, processor.ErrStoreNotAttached) {
				t.Errorf("error %v does not wrap processor.ErrStoreNotAttached", err)
			}
			for _, w := range []string{`init "thief"`, `store "counts"`, "not connected"} {
				if !contains(err, w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A store of another type than the processor asks for is reported with both types.
func TestProcessStoreWrongType(t *testing.T) {
	b := dsl.NewBuilder()
	b.AddStore(state.KeyValue("counts", serde.String(), serde.String()))
	b.Stream("clicks", serde.String(), serde.String()).Process(counterOf("counts"), dsl.WithStores("counts"))
	_, err := streamtest.New(build(t, b))
	if !errors.Is(err, state.ErrWrongStoreType) || !contains(err, `"counts"`) {
		t.Errorf("streamtest.New = %v; want an error naming store counts and wrapping state.ErrWrongStoreType", err)
	}
}

func TestProcessBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(b *dsl.Builder, s dsl.Stream[string, string])
		want  []string
	}{{
		name: "WithStores names an unknown store",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			s.Process(counterOf("counts"), dsl.Named("p"), dsl.WithStores("counts"))
		},
		want: []string{`dsl: Process: p: WithStores("counts"): no such store; add it with Builder.AddStore`},
	}, {
		name: "store added twice",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
			b.AddStore(state.KeyValue("counts", serde.String(), serde.Int64()))
			s.Process(counterOf("counts"), dsl.WithStores("counts"))
		},
		want: []string{`store "counts"`, "duplicate store name"},
	}, {
		name: "nil supplier",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			s.Process(processor.Supplier[string, string, string, int64](nil), dsl.Named("p"))
		},
		want: []string{"dsl: Process: nil function"},
	}, {
		name: "NumPartitions on Process",
		setup: func(b *dsl.Builder, s dsl.Stream[string, string]) {
			s.Process(probeOf(new([]seen[string, string])), dsl.NumPartitions(2))
		},
		want: []string{"dsl: Process: option NumPartitions does not apply"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.setup(b, b.Stream("clicks", serde.String(), serde.String()))
			_, err := b.Build()
			for _, w := range tt.want {
				if !contains(err, w) {
					t.Errorf("Build = %v; want an error containing %q", err, w)
				}
			}
		})
	}
}

// ForwardTo sends a record to one named child of a Process node only.
func TestProcessForwardTo(t *testing.T) {
	b := dsl.NewBuilder()
	routed := b.Stream("in", serde.String(), serde.Int64()).
		Process(func() processor.Processor[string, int64, string, int64] {
			return &funcProc[string, int64, string, int64]{
				process: func(ctx processor.Context[string, int64], r processor.Record[string, int64]) error {
					if r.Value%2 == 0 {
						return ctx.ForwardTo("evens", r)
					}
					return ctx.ForwardTo("odds", r)
				},
			}
		}, dsl.Named("router"))
	routed.To("even", dsl.Named("evens"))
	routed.To("odd", dsl.Named("odds"))
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.Int64())
	for i := range int64(5) {
		must(t, in.Pipe(fmt.Sprint(i), i))
	}
	if diff := cmp.Diff([]processor.KeyValue[string, int64]{{Key: "0", Value: 0}, {Key: "2", Value: 2}, {Key: "4", Value: 4}},
		readKVs(t, d.OutputTopic("even", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("even (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]processor.KeyValue[string, int64]{{Key: "1", Value: 1}, {Key: "3", Value: 3}},
		readKVs(t, d.OutputTopic("odd", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("odd (-want +got):\n%s", diff)
	}
}

// The context tells a processor its task, application, node and the
// metadata of the record it processes.
func TestProcessContext(t *testing.T) {
	type info struct {
		App, Node string
		Task      processor.TaskID
		Meta      processor.RecordMetadata
		HasMeta   bool
	}
	var got []info
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] {
			return &funcProc[string, string, string, string]{
				process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
					md, ok := ctx.RecordMetadata()
					got = append(got, info{ctx.ApplicationID(), ctx.NodeName(), ctx.TaskID(), md, ok})
					return nil
				},
			}
		}, dsl.Named("inspect"))
	d := run(t, b, streamtest.ApplicationID("ctx-app"), streamtest.Partitions(2))
	in := d.InputTopic("in", serde.String(), serde.String())
	must(t, in.Pipe("k1", "v"))
	must(t, in.Pipe("k1", "v"))
	p := murmur2.Partition([]byte("k1"), 2)
	want := []info{
		{"ctx-app", "inspect", processor.TaskID{Partition: p}, processor.RecordMetadata{Topic: "in", Partition: p}, true},
		{"ctx-app", "inspect", processor.TaskID{Partition: p}, processor.RecordMetadata{Topic: "in", Partition: p, Offset: 1}, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("context (-want +got):\n%s", diff)
	}
}

// lifecycle counts what happens to the processors of one Process node.
type lifecycle struct {
	made, inits, closes int
	tasks               []processor.TaskID
}

type lifecycleProc struct {
	l *lifecycle
	processor.Base[string, string]
}

func (p *lifecycleProc) Init(ctx processor.Context[string, string]) error {
	p.l.inits++
	p.l.tasks = append(p.l.tasks, ctx.TaskID())
	return p.Base.Init(ctx)
}

func (p *lifecycleProc) Process(r processor.Record[string, string]) error {
	return p.Context().Forward(r)
}

func (p *lifecycleProc) Close() error { p.l.closes++; return nil }

// The supplier makes one processor per task; each is initialized once
// before any record and closed once when the driver closes.
func TestProcessSupplierPerTask(t *testing.T) {
	var l lifecycle
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] {
			l.made++
			return &lifecycleProc{l: &l}
		})
	d, err := streamtest.New(build(t, b), streamtest.Partitions(3))
	must(t, err)
	if l.made != 3 || l.inits != 3 || l.closes != 0 {
		t.Errorf("after New: made %d, initialized %d, closed %d; want 3, 3, 0", l.made, l.inits, l.closes)
	}
	want := []processor.TaskID{{Partition: 0}, {Partition: 1}, {Partition: 2}}
	if diff := cmp.Diff(want, l.tasks); diff != "" {
		t.Errorf("tasks initialized (-want +got):\n%s", diff)
	}
	must(t, d.InputTopic("in", serde.String(), serde.String()).Pipe("k", "v"))
	must(t, d.Close())
	must(t, d.Close())
	if l.made != 3 || l.inits != 3 || l.closes != 3 {
		t.Errorf("after Close: made %d, initialized %d, closed %d; want 3, 3, 3", l.made, l.inits, l.closes)
	}
	if err := d.InputTopic("in", serde.String(), serde.String()).Pipe("k", "v"); !errors.Is(err, streamtest.ErrClosed) {
		t.Errorf("Pipe after Close = %v, want ErrClosed", err)
	}
}
