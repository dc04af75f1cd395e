package task_test

import (
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// collector is a task.Collector that records what the sinks send.
type collector struct {
	sends []sent
	err   error // returned by Send when set
}

type sent struct {
	topic     string
	partition int32
	rec       processor.RawRecord
}

func (c *collector) Send(topic string, partition int32, rec processor.RawRecord) error {
	if c.err != nil {
		return c.err
	}
	c.sends = append(c.sends, sent{topic, partition, rec})
	return nil
}

// values returns the values sent to topic, in order.
func (c *collector) values(topic string) []string {
	var out []string
	for _, s := range c.sends {
		if s.topic == topic {
			out = append(out, string(s.rec.Value))
		}
	}
	return out
}

// seen is what the probe processor observed of one record.
type seen struct {
	origin     processor.Origin
	ts         time.Time
	streamTime time.Time // ctx.CurrentStreamTime() during Process
	md         processor.RecordMetadata
	hasMD      bool
}

func (s seen) String() string {
	return fmt.Sprintf("%s/%d@%d(ts=%d)", s.origin.Topic, s.origin.Partition, s.origin.Offset, s.ts.UnixMilli())
}

// probe is a processor whose behaviour the test supplies; by default it
// records what it sees and forwards the record.
type probe struct {
	init    func(ctx processor.Context[string, string]) error
	process func(ctx processor.Context[string, string], r processor.Record[string, string]) error
	close   func() error
	seen    []seen
	ctx     processor.Context[string, string]
}

func (p *probe) Init(ctx processor.Context[string, string]) error {
	p.ctx = ctx
	if p.init != nil {
		return p.init(ctx)
	}
	return nil
}

func (p *probe) Process(r processor.Record[string, string]) error {
	md, ok := p.ctx.RecordMetadata()
	p.seen = append(p.seen, seen{origin: r.Origin, ts: r.Timestamp, streamTime: p.ctx.CurrentStreamTime(), md: md, hasMD: ok})
	if p.process != nil {
		return p.process(p.ctx, r)
	}
	return p.ctx.Forward(r)
}

func (p *probe) Close() error {
	if p.close != nil {
		return p.close()
	}
	return nil
}

// probeTopology is: sources "src" (topics "a" and "b") and "pat" (every
// topic matching "p-.*") -> processor "probe" -> sink "out" (topic "out").
// The supplier hands out p, so the test can read what it saw; it must be
// instantiated for one task only.
func probeTopology(p *probe) *processor.Topology {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "a", "b")
	topo.AddSourcePattern("pat", s, s, regexp.MustCompile(`p-.*`))
	topo.AddProcessor("probe", func() processor.Processor[string, string, string, string] { return p }, "src", "pat")
	topo.AddSink("out", "out", s, s, "probe")
	return topo
}

// clock is a controllable wall clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// newTask creates and inits a task of sub-topology 0, partition 0.
func newTask(t *testing.T, topo *processor.Topology, col *collector, clk *clock) *task.Task {
	t.Helper()
	cfg := task.Config{ApplicationID: "app", Topology: topo, ID: processor.TaskID{SubTopology: 0, Partition: 0}, Collector: col}
	if clk != nil {
		cfg.Clock = clk.Now
	}
	tk, err := task.New(cfg)
	if err != nil {
		t.Fatalf("task.New: %v", err)
	}
	if err := tk.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { tk.Close() })
	return tk
}

// rec is a record of tp at offset with a timestamp in milliseconds since the
// epoch; its value is "<topic>/<partition>@<offset>".
func rec(tp task.TopicPartition, offset, tsMillis int64) processor.RawRecord {
	v := fmt.Sprintf("%s/%d@%d", tp.Topic, tp.Partition, offset)
	return processor.RawRecord{Key: []byte("k"), Value: []byte(v), Timestamp: time.UnixMilli(tsMillis),
		Origin: processor.Origin{Topic: tp.Topic, Partition: tp.Partition, Offset: offset}}
}

func add(t *testing.T, tk *task.Task, tp task.TopicPartition, recs ...processor.RawRecord) {
	t.Helper()
	if err := tk.Add(tp, recs...); err != nil {
		t.Fatalf("Add(%v): %v", tp, err)
	}
}

func process(t *testing.T, tk *task.Task, max int) int {
	t.Helper()
	n, err := tk.Process(max)
	if err != nil {
		t.Fatalf("Process(%d): %v", max, err)
	}
	return n
}

// countingBuilder builds stores through inner and counts what the task does
// with them.
type countingBuilder struct {
	inner    state.Builder
	buildErr error

	mu     sync.Mutex
	builds []state.BuildContext
	stores []*countingStore
}

func (b *countingBuilder) Name() string { return b.inner.Name() }

func (b *countingBuilder) Build(ctx state.BuildContext) (state.Store, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buildErr != nil {
		return nil, b.buildErr
	}
	s, err := b.inner.Build(ctx)
	if err != nil {
		return nil, err
	}
	cs := &countingStore{Store: s}
	b.builds = append(b.builds, ctx)
	b.stores = append(b.stores, cs)
	return cs, nil
}

type countingStore struct {
	state.Store
	flushes, closes int
	closeErr        error
}

func (s *countingStore) Flush() error { s.flushes++; return s.Store.Flush() }
func (s *countingStore) Close() error {
	s.closes++
	return errors.Join(s.Store.Close(), s.closeErr)
}
