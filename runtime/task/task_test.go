package task_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
)

var (
	a0 = task.TopicPartition{Topic: "a", Partition: 0}
	a1 = task.TopicPartition{Topic: "a", Partition: 1}
	b0 = task.TopicPartition{Topic: "b", Partition: 0}
)

func seenOrder(p *probe) []string {
	var out []string
	for _, s := range p.seen {
		out = append(out, s.String())
	}
	return out
}

func TestNewErrors(t *testing.T) {
	valid := probeTopology(&probe{})
	invalid := processor.NewTopology()
	for name, cfg := range map[string]task.Config{
		"nil topology":     {Collector: &collector{}},
		"nil collector":    {Topology: valid},
		"invalid topology": {Topology: invalid, Collector: &collector{}},
		"no sub-topology":  {Topology: valid, Collector: &collector{}, ID: processor.TaskID{SubTopology: 1}},
	} {
		if tk, err := task.New(cfg); err == nil {
			t.Errorf("%s: New() = %v, want an error", name, tk)
		}
	}
	if _, err := task.New(task.Config{Topology: invalid, Collector: &collector{}}); !errors.Is(err, processor.ErrEmptyTopology) {
		t.Errorf("New(invalid topology) = %v, want the validation error", err)
	}
}

// TestMergeOrder checks that the next record is the lowest timestamp among
// the heads of the input partitions, ties going to the partition added
// first, and that every record reaches the sink.
func TestMergeOrder(t *testing.T) {
	p := &probe{}
	col := &collector{}
	tk := newTask(t, probeTopology(p), col, nil)
	add(t, tk, a0, rec(a0, 0, 10), rec(a0, 1, 30), rec(a0, 2, 30))
	add(t, tk, b0, rec(b0, 0, 20), rec(b0, 1, 30), rec(b0, 2, 5))
	add(t, tk, a1, rec(a1, 0, 10))
	if got := tk.Buffered(); got != 7 {
		t.Fatalf("Buffered() = %d, want 7", got)
	}
	if n := process(t, tk, 100); n != 7 {
		t.Fatalf("Process(100) = %d, want 7", n)
	}
	want := []string{
		"a/0@0(ts=10)", // tie at 10 with a/1: a/0 was added first
		"a/1@0(ts=10)",
		"b/0@0(ts=20)",
		"a/0@1(ts=30)", // tie at 30 with b/0
		"a/0@2(ts=30)",
		"b/0@1(ts=30)",
		"b/0@2(ts=5)", // late: still after its partition's earlier records
	}
	if got := seenOrder(p); !slices.Equal(got, want) {
		t.Errorf("processing order:\n%v\nwant\n%v", got, want)
	}
	if got, want := col.values("out"), []string{"a/0@0", "a/1@0", "b/0@0", "a/0@1", "a/0@2", "b/0@1", "b/0@2"}; !slices.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	for _, s := range col.sends {
		if s.partition != -1 {
			t.Errorf("sink sent to partition %d, want -1 (chosen by the collector)", s.partition)
		}
	}
	if tk.Buffered() != 0 {
		t.Errorf("Buffered() = %d after processing everything", tk.Buffered())
	}
}

func TestMergeTieGoesToPartitionAddedFirst(t *testing.T) {
	p := &probe{}
	tk := newTask(t, probeTopology(p), &collector{}, nil)
	add(t, tk, b0, rec(b0, 0, 10)) // b/0 is known to the task before a/0
	add(t, tk, a0, rec(a0, 0, 10))
	add(t, tk, b0, rec(b0, 1, 10))
	process(t, tk, 10)
	if got, want := seenOrder(p), []string{"b/0@0(ts=10)", "b/0@1(ts=10)", "a/0@0(ts=10)"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

// TestMergeOnlyBufferedHeads documents that the merge only looks at what is
// buffered: an empty partition does not hold back the others.
func TestMergeOnlyBufferedHeads(t *testing.T) {
	p := &probe{}
	tk := newTask(t, probeTopology(p), &collector{}, nil)
	add(t, tk, a0, rec(a0, 0, 50))
	add(t, tk, b0)
	process(t, tk, 10)
	add(t, tk, b0, rec(b0, 0, 10))
	process(t, tk, 10)
	if got, want := seenOrder(p), []string{"a/0@0(ts=50)", "b/0@0(ts=10)"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
}

func TestStreamTime(t *testing.T) {
	p := &probe{}
	tk := newTask(t, probeTopology(p), &collector{}, nil)
	if !tk.StreamTime().IsZero() {
		t.Errorf("StreamTime() before any record = %v, want zero", tk.StreamTime())
	}
	add(t, tk, a0, rec(a0, 0, 100), rec(a0, 1, 300), rec(a0, 2, 200), rec(a0, 3, 400))
	var got []int64
	for range 4 {
		process(t, tk, 1)
		got = append(got, tk.StreamTime().UnixMilli())
	}
	if want := []int64{100, 300, 300, 400}; !slices.Equal(got, want) {
		t.Errorf("stream time after each record = %v, want %v (an out-of-order record does not move it back)", got, want)
	}
	// Inside Process the stream time already includes the record being processed.
	var during []int64
	for _, s := range p.seen {
		during = append(during, s.streamTime.UnixMilli())
	}
	if want := []int64{100, 300, 300, 400}; !slices.Equal(during, want) {
		t.Errorf("CurrentStreamTime() during Process = %v, want %v", during, want)
	}
}

func TestProcessBound(t *testing.T) {
	tk := newTask(t, probeTopology(&probe{}), &collector{}, nil)
	for i := range int64(5) {
		add(t, tk, a0, rec(a0, i, i))
	}
	for _, step := range []struct{ max, want, left int }{{2, 2, 3}, {0, 0, 3}, {-1, 0, 3}, {1, 1, 2}, {10, 2, 0}, {10, 0, 0}} {
		if n := process(t, tk, step.max); n != step.want || tk.Buffered() != step.left {
			t.Errorf("Process(%d) = %d with %d left, want %d with %d left", step.max, n, tk.Buffered(), step.want, step.left)
		}
	}
}

func TestOffsetsAndCommit(t *testing.T) {
	tk := newTask(t, probeTopology(&probe{}), &collector{}, nil)
	add(t, tk, a0, rec(a0, 100, 1), rec(a0, 101, 2), rec(a0, 102, 6))
	add(t, tk, b0, rec(b0, 7, 3), rec(b0, 8, 7))
	add(t, tk, a1, rec(a1, 0, 100))
	process(t, tk, 3) // a/0@100, a/0@101, b/0@7

	other := task.TopicPartition{Topic: "other", Partition: 9}
	offsets := map[task.TopicPartition]int64{other: 1}
	tk.Offsets(offsets)
	want := map[task.TopicPartition]int64{other: 1, a0: 102, b0: 8} // a/1 has nothing processed yet
	if !maps.Equal(offsets, want) {
		t.Errorf("Offsets() = %v, want %v", offsets, want)
	}

	process(t, tk, 10)
	committed := map[task.TopicPartition]int64{}
	if err := tk.Commit(committed); err != nil {
		t.Fatal(err)
	}
	if want := map[task.TopicPartition]int64{a0: 103, b0: 9, a1: 1}; !maps.Equal(committed, want) {
		t.Errorf("Commit() offsets = %v, want %v", committed, want)
	}
	if err := tk.Commit(nil); err != nil {
		t.Errorf("Commit(nil) = %v", err)
	}
}

func TestAdd(t *testing.T) {
	s := serde.String()
	topo := probeTopology(&probe{})
	topo.AddInternalTopic("rep", 0)
	topo.AddSource("from-rep", s, s, "rep")
	topo.AddProcessor("rep-probe", pass(), "from-rep")
	topo.AddStore(memory.NewBuilder("link"), "probe", "rep-probe") // same sub-topology

	tk := newTask(t, topo, &collector{}, nil)
	for _, tp := range []task.TopicPartition{a0, {Topic: "p-1", Partition: 0}, {Topic: "app-rep", Partition: 0}} {
		if err := tk.Add(tp, rec(tp, 0, 1)); err != nil {
			t.Errorf("Add(%v) = %v, want nil", tp, err)
		}
	}
	for _, topic := range []string{"c", "out", "rep", "p", "xp-1"} {
		tp := task.TopicPartition{Topic: topic}
		if err := tk.Add(tp, rec(tp, 0, 1)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", topic)) {
			t.Errorf("Add(%v) = %v, want an error naming the topic", tp, err)
		}
	}
	if tk.Buffered() != 3 {
		t.Errorf("Buffered() = %d, want 3 (rejected records are not queued)", tk.Buffered())
	}
}

// Add refuses records of another partition and offsets that do not
// increase, and queues nothing of a refused call.
func TestAddChecksOrigins(t *testing.T) {
	tk := newTask(t, probeTopology(&probe{}), &collector{}, nil)
	a1 := task.TopicPartition{Topic: a0.Topic, Partition: 1}
	if err := tk.Add(a0, rec(a0, 5, 1), rec(a0, 7, 2)); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		recs []processor.RawRecord
		want string
	}{
		{"another partition", []processor.RawRecord{rec(a0, 8, 3), rec(a1, 9, 3)}, "partition 1"},
		{"offset repeated", []processor.RawRecord{rec(a0, 7, 3)}, "offset 7 after 7"},
		{"offsets going back within a call", []processor.RawRecord{rec(a0, 9, 3), rec(a0, 8, 3)}, "offset 8 after 9"},
	}
	for _, tt := range bad {
		if err := tk.Add(a0, tt.recs...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Add = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	if tk.Buffered() != 2 {
		t.Errorf("Buffered() = %d, want 2: a refused call queues nothing", tk.Buffered())
	}
	if err := tk.Add(a0, rec(a0, 8, 3)); err != nil {
		t.Errorf("Add of the next offset after refusals = %v", err)
	}
}

func TestRecordMetadata(t *testing.T) {
	type obs struct {
		where string
		md    processor.RecordMetadata
		ok    bool
	}
	var got []obs
	clk := &clock{now: time.UnixMilli(0)}
	p := &probe{
		init: func(ctx processor.Context[string, string]) error {
			md, ok := ctx.RecordMetadata()
			got = append(got, obs{"init", md, ok})
			for _, typ := range []processor.PunctuationType{processor.StreamTime, processor.WallClockTime} {
				if _, err := ctx.Schedule(time.Second, typ, func(time.Time) error {
					md, ok := ctx.RecordMetadata()
					got = append(got, obs{typ.String(), md, ok})
					return nil
				}); err != nil {
					return err
				}
			}
			return nil
		},
	}
	tk := newTask(t, probeTopology(p), &collector{}, clk)
	add(t, tk, b0, rec(b0, 42, 5))
	process(t, tk, 1)
	if err := tk.Punctuate(time.UnixMilli(1000)); err != nil {
		t.Fatal(err)
	}
	if !p.seen[0].hasMD || p.seen[0].md != (processor.RecordMetadata{Topic: "b", Partition: 0, Offset: 42}) {
		t.Errorf("RecordMetadata() in Process = %v, %v; want b/0@42", p.seen[0].md, p.seen[0].hasMD)
	}
	want := []obs{{where: "init"}, {where: "stream-time"}, {where: "wall-clock"}}
	if !slices.Equal(got, want) {
		t.Errorf("RecordMetadata() outside Process = %+v, want none in each", got)
	}
}

// customError is a processing error with a field, to check errors.As.
type customError struct{ code int }

func (e *customError) Error() string { return fmt.Sprintf("custom %d", e.code) }

func TestProcessingError(t *testing.T) {
	p := &probe{process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		if string(r.Value) == "b/0@8" {
			return fmt.Errorf("wrapped: %w", &customError{code: 7})
		}
		return ctx.Forward(r)
	}}
	col := &collector{}
	tk := newTask(t, probeTopology(p), col, nil)
	add(t, tk, b0, rec(b0, 7, 1), rec(b0, 8, 2), rec(b0, 9, 3))

	n, err := tk.Process(10)
	if n != 2 {
		t.Errorf("Process() = %d, want 2 (the failing record counts)", n)
	}
	var re *task.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("Process() error = %#v, want a *task.RecordError", err)
	}
	if re.Origin != (processor.Origin{Topic: "b", Partition: 0, Offset: 8}) || re.Task != tk.ID() {
		t.Errorf("RecordError = %+v, want origin b/0@8 of task %v", re, tk.ID())
	}
	var ce *customError
	if !errors.As(err, &ce) || ce.code != 7 {
		t.Errorf("errors.As(err, *customError) = %v, want code 7", ce)
	}
	if !strings.Contains(err.Error(), `topic "b" partition 0 offset 8`) {
		t.Errorf("message %q does not locate the record", err)
	}
	// The failed record's offset is consumed; the next record is still queued.
	offsets := map[task.TopicPartition]int64{}
	tk.Offsets(offsets)
	if offsets[b0] != 9 || tk.Buffered() != 1 {
		t.Errorf("after the error: offset %d, %d buffered; want 9 and 1", offsets[b0], tk.Buffered())
	}
	if n := process(t, tk, 10); n != 1 || !slices.Equal(col.values("out"), []string{"b/0@7", "b/0@9"}) {
		t.Errorf("after the error: processed %d, sent %v", n, col.values("out"))
	}
}

func TestDeserializationAndSendErrors(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", serde.Int64(), s, "a")
	topo.AddSink("out", "out", serde.Int64(), s, "src")
	col := &collector{}
	tk := newTask(t, topo, col, nil)

	add(t, tk, a0, processor.RawRecord{Key: []byte{1}, Origin: processor.Origin{Topic: "a", Offset: 3}})
	_, err := tk.Process(1)
	var re *task.RecordError
	var de *processor.DeserializationError
	if !errors.As(err, &re) || !errors.As(err, &de) || re.Origin.Offset != 3 || !de.Key {
		t.Errorf("undecodable key: error = %v, want a RecordError wrapping a DeserializationError", err)
	}

	col.err = errors.New("broker down")
	add(t, tk, a0, processor.RawRecord{Key: make([]byte, 8), Origin: processor.Origin{Topic: "a", Offset: 4}})
	if _, err := tk.Process(1); !errors.Is(err, col.err) || !errors.As(err, &re) || re.Origin.Offset != 4 {
		t.Errorf("failed send: error = %v, want a RecordError wrapping the collector's error", err)
	}
}

func TestPanicInProcessor(t *testing.T) {
	errValue := errors.New("panic value")
	p := &probe{process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		switch string(r.Value) {
		case "a/0@1":
			panic("string panic")
		case "a/0@2":
			panic(errValue)
		}
		return ctx.Forward(r)
	}}
	col := &collector{}
	tk := newTask(t, probeTopology(p), col, nil)
	add(t, tk, a0, rec(a0, 0, 1), rec(a0, 1, 2), rec(a0, 2, 3), rec(a0, 3, 4))

	n, err := tk.Process(10)
	var re *task.RecordError
	var pe *task.PanicError
	if n != 2 || !errors.As(err, &re) || !errors.As(err, &pe) {
		t.Fatalf("Process() = %d, %#v; want 2 and a RecordError wrapping a PanicError", n, err)
	}
	if re.Origin.Offset != 1 || pe.Value != "string panic" || len(pe.Stack) == 0 {
		t.Errorf("RecordError at %v, PanicError value %v, stack %d bytes", re.Origin, pe.Value, len(pe.Stack))
	}
	if !strings.Contains(string(pe.Stack), "TestPanicInProcessor") {
		t.Errorf("the stack does not show where the panic happened:\n%s", pe.Stack)
	}
	if pe.Unwrap() != nil {
		t.Errorf("PanicError(string).Unwrap() = %v, want nil", pe.Unwrap())
	}

	// The task is still usable: the next records are processed, a panic
	// with an error value unwraps to it.
	n, err = tk.Process(10)
	if n != 1 || !errors.Is(err, errValue) || !errors.As(err, &re) || re.Origin.Offset != 2 {
		t.Fatalf("second Process() = %d, %v; want 1 and the error value of the panic", n, err)
	}
	if n := process(t, tk, 10); n != 1 {
		t.Errorf("third Process() = %d, want 1", n)
	}
	if got := col.values("out"); !slices.Equal(got, []string{"a/0@0", "a/0@3"}) {
		t.Errorf("sent %v", got)
	}
	if md, ok := p.ctx.RecordMetadata(); ok {
		t.Errorf("RecordMetadata() after processing = %v, want none", md)
	}
}

func TestPanicInInit(t *testing.T) {
	p := &probe{init: func(processor.Context[string, string]) error { panic("init panic") }}
	tk, err := task.New(task.Config{Topology: probeTopology(p), Collector: &collector{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Close()
	var pe *task.PanicError
	if err := tk.Init(); !errors.As(err, &pe) || pe.Value != "init panic" {
		t.Errorf("Init() = %v, want a PanicError", err)
	}
}

func TestCommitRequested(t *testing.T) {
	p := &probe{process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		if string(r.Value) == "a/0@1" {
			ctx.Commit()
		}
		return nil
	}}
	tk := newTask(t, probeTopology(p), &collector{}, nil)
	add(t, tk, a0, rec(a0, 0, 1), rec(a0, 1, 2), rec(a0, 2, 3))
	process(t, tk, 1)
	if tk.CommitRequested() {
		t.Error("CommitRequested() before any ctx.Commit()")
	}
	process(t, tk, 1)
	if !tk.CommitRequested() {
		t.Error("CommitRequested() = false after ctx.Commit()")
	}
	process(t, tk, 1)
	if !tk.CommitRequested() {
		t.Error("CommitRequested() = false before the commit happened")
	}
	if err := tk.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if tk.CommitRequested() {
		t.Error("CommitRequested() = true after Commit")
	}
}

// storeTopology is: src ("a") -> counter (store "counts") -> sink, and
// other-src ("z") -> other (store "other"), a second sub-topology.
func storeTopology(counts, other state.Builder) *processor.Topology {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "a")
	topo.AddProcessor("counter", func() processor.Processor[string, string, string, string] {
		return &probe{process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
			kv, err := processor.StoreOf[*state.KeyValueStore[string, string]](ctx, "counts")
			if err != nil {
				return err
			}
			old, _, err := kv.Get(r.Key)
			if err != nil {
				return err
			}
			if err := kv.Put(r.Key, old+r.Value); err != nil {
				return err
			}
			return ctx.Forward(r.WithValue(old + r.Value))
		}}
	}, "src")
	topo.AddSink("out", "out", s, s, "counter")
	topo.AddSource("other-src", s, s, "z")
	topo.AddProcessor("other", pass(), "other-src")
	topo.AddStore(counts, "counter")
	topo.AddStore(other, "other")
	return topo
}

func pass() processor.Supplier[string, string, string, string] {
	return func() processor.Processor[string, string, string, string] { return &probe{} }
}

func TestStoresPerTask(t *testing.T) {
	engine := memory.NewEngine()
	defer engine.Close()
	other := &countingBuilder{inner: memory.NewBuilder("other")}
	topo := storeTopology(state.KeyValue("counts", serde.String(), serde.String()), other)

	var tasks []*task.Task
	cols := []*collector{{}, {}}
	for part := range int32(2) {
		tk, err := task.New(task.Config{ApplicationID: "app", Topology: topo, ID: processor.TaskID{SubTopology: 0, Partition: part},
			Collector: cols[part], Engine: engine})
		if err != nil {
			t.Fatal(err)
		}
		if err := tk.Init(); err != nil {
			t.Fatal(err)
		}
		tasks = append(tasks, tk)
	}
	if len(other.builds) != 0 {
		t.Errorf("a store of another sub-topology was built %d times", len(other.builds))
	}
	for i, tk := range tasks {
		s, ok := tk.Store("counts")
		if _, isKV := s.(*state.KeyValueStore[string, string]); !ok || !isKV {
			t.Errorf("task %d Store(counts) = %T, %v; want its typed store", i, s, ok)
		}
		if got := tk.Stores(); len(got) != 1 || got["counts"] != s {
			t.Errorf("task %d Stores() = %v", i, got)
		}
		want := map[task.TopicPartition]state.StorePartition{
			{Topic: "app-counts-changelog", Partition: int32(i)}: {Store: "counts", Partition: int32(i)}}
		if got := tk.Changelogs(); !maps.Equal(got, want) {
			t.Errorf("task %d Changelogs() = %v, want %v", i, got, want)
		}
	}
	if _, ok := tasks[0].Store("other"); ok {
		t.Error("task of sub-topology 0 has the store of sub-topology 1")
	}

	// Each task's processor writes to its own instance.
	tp0, tp1 := task.TopicPartition{Topic: "a", Partition: 0}, task.TopicPartition{Topic: "a", Partition: 1}
	add(t, tasks[0], tp0, rec(tp0, 0, 1), rec(tp0, 1, 2))
	add(t, tasks[1], tp1, rec(tp1, 0, 1))
	process(t, tasks[0], 10)
	process(t, tasks[1], 10)
	if got, want := cols[0].values("out"), []string{"a/0@0", "a/0@0a/0@1"}; !slices.Equal(got, want) {
		t.Errorf("task 0 sent %v, want %v", got, want)
	}
	if got, want := cols[1].values("out"), []string{"a/1@0"}; !slices.Equal(got, want) {
		t.Errorf("task 1 sent %v, want %v (not task 0's state)", got, want)
	}
	if got := cols[0].values("app-counts-changelog"); len(got) != 0 {
		t.Errorf("the record cache passed writes to the changelog before the commit: %v", got)
	}

	// A commit flushes the cache to the changelog (one write per key) and
	// applies the batch with the changelog offset as the checkpoint.
	sp0 := state.StorePartition{Store: "counts", Partition: 0}
	if err := tasks[0].PrepareCommit(nil); err != nil {
		t.Fatal(err)
	}
	if got, want := cols[0].values("app-counts-changelog"), []string{"a/0@0a/0@1"}; !slices.Equal(got, want) {
		t.Errorf("changelog after PrepareCommit = %v, want %v", got, want)
	}
	if _, found, _ := engine.Reader(sp0).Get([]byte("k")); found {
		t.Error("PrepareCommit applied the batch: state ahead of Kafka")
	}
	ends := map[task.TopicPartition]int64{{Topic: "app-counts-changelog", Partition: 0}: 7}
	if err := tasks[0].CompleteCommit(ends); err != nil {
		t.Fatal(err)
	}
	if v, found, _ := engine.Reader(sp0).Get([]byte("k")); !found || string(v) != "a/0@0a/0@1" {
		t.Errorf("committed k = %q, %v", v, found)
	}
	if off, ok, err := engine.Checkpoint(sp0); off != 7 || !ok || err != nil {
		t.Errorf("Checkpoint = %d, %v, %v; want 7", off, ok, err)
	}
	// Task 1 never committed: closing it drops its writes.
	for _, tk := range tasks {
		if err := tk.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if err := tk.Close(); err != nil {
			t.Errorf("second Close() = %v", err)
		}
	}
	if _, found, _ := engine.Reader(state.StorePartition{Store: "counts", Partition: 1}).Get([]byte("k")); found {
		t.Error("an uncommitted write of task 1 reached the engine")
	}
}

func TestStoreFlushError(t *testing.T) {
	b := &countingBuilder{inner: memory.NewBuilder("counts")}
	topo := storeTopology(b, memory.NewBuilder("other"))
	tk := newTask(t, topo, &collector{}, nil)
	if err := b.stores[0].Store.Close(); err != nil { // a closed memory store fails Flush
		t.Fatal(err)
	}
	if err := tk.Commit(nil); !errors.Is(err, state.ErrClosed) || !strings.Contains(err.Error(), `"counts"`) {
		t.Errorf("Commit() = %v, want the flush error naming the store", err)
	}
}

func TestStoreBuildError(t *testing.T) {
	good := &countingBuilder{inner: memory.NewBuilder("good")}
	bad := &countingBuilder{inner: memory.NewBuilder("bad"), buildErr: errors.New("disk full")}
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "a")
	topo.AddProcessor("p", pass(), "src")
	topo.AddStore(good, "p")
	topo.AddStore(bad, "p")
	_, err := task.New(task.Config{Topology: topo, Collector: &collector{}})
	if !errors.Is(err, bad.buildErr) || !strings.Contains(err.Error(), `"bad"`) {
		t.Errorf("New() = %v, want the build error naming the store", err)
	}
	if len(good.stores) != 1 || good.stores[0].closes != 1 {
		t.Errorf("the store built before the failure was not closed: %+v", good.stores)
	}
}

func TestCloseClosesProcessorsAndStores(t *testing.T) {
	closeErr := errors.New("processor close failed")
	b := &countingBuilder{inner: memory.NewBuilder("st")}
	s := serde.String()
	closed := 0
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "a")
	topo.AddProcessor("p", func() processor.Processor[string, string, string, string] {
		return &probe{close: func() error { closed++; return closeErr }}
	}, "src")
	topo.AddStore(b, "p")
	tk := newTask(t, topo, &collector{}, nil)
	b.stores[0].closeErr = errors.New("store close failed")
	err := tk.Close()
	if !errors.Is(err, closeErr) || !errors.Is(err, b.stores[0].closeErr) {
		t.Errorf("Close() = %v, want both the processor's and the store's error", err)
	}
	if closed != 1 || b.stores[0].closes != 1 {
		t.Errorf("processor closed %d times, store %d times; want 1 each", closed, b.stores[0].closes)
	}
}

// TestTasksShareAValidatedTopology runs tasks of one validated topology on
// several goroutines at once, as a worker does; run with -race.
func TestTasksShareAValidatedTopology(t *testing.T) {
	topo := storeTopology(state.KeyValue("counts", serde.String(), serde.String()), memory.NewBuilder("other"))
	if err := topo.Validate(); err != nil {
		t.Fatal(err)
	}
	const tasks = 8
	errs := make(chan error, tasks)
	for part := range int32(tasks) {
		go func() {
			errs <- func() error {
				col := &collector{}
				tk, err := task.New(task.Config{ApplicationID: "app", Topology: topo, ID: processor.TaskID{Partition: part},
					Collector: col})
				if err != nil {
					return err
				}
				defer tk.Close()
				if err := tk.Init(); err != nil {
					return err
				}
				tp := task.TopicPartition{Topic: "a", Partition: part}
				for i := range int64(100) {
					if err := tk.Add(tp, rec(tp, i, i)); err != nil {
						return err
					}
				}
				for tk.Buffered() > 0 {
					if _, err := tk.Process(7); err != nil {
						return err
					}
				}
				if len(col.sends) != 100 {
					return fmt.Errorf("task %d sent %d records, want 100", part, len(col.sends))
				}
				return tk.Commit(nil)
			}()
		}()
	}
	for range tasks {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestTasksShareAnUnvalidatedTopology creates tasks on several goroutines
// from a topology nobody validated: New validates it, and must not race.
func TestTasksShareAnUnvalidatedTopology(t *testing.T) {
	topo := storeTopology(state.KeyValue("counts", serde.String(), serde.String()), memory.NewBuilder("other"))
	const tasks = 8
	errs := make(chan error, tasks)
	for part := range int32(tasks) {
		go func() {
			tk, err := task.New(task.Config{Topology: topo, ID: processor.TaskID{Partition: part},
				Collector: &collector{}})
			if err == nil {
				err = errors.Join(tk.Init(), tk.Close())
			}
			errs <- err
		}()
	}
	for range tasks {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
