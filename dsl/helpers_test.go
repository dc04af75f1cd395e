package dsl_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/streamtest"
)

// t0 is a timestamp aligned to every interval the tests punctuate on
// (1e12 ms since the epoch), so expected punctuation times read plainly.
var t0 = time.UnixMilli(1_000_000_000_000).UTC()

func at(d time.Duration) time.Time { return t0.Add(d) }

// build builds b, failing the test on an error.
func build(t *testing.T, b *dsl.Builder) *processor.Topology {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return topo
}

// run starts a driver over the topology of b and closes it when the test ends.
func run(t *testing.T, b *dsl.Builder, opts ...streamtest.Option) *streamtest.Driver {
	t.Helper()
	d, err := streamtest.New(build(t, b), opts...)
	if err != nil {
		t.Fatalf("streamtest.New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readAll reads every unread record of out, failing the test on an error.
func readAll[K, V any](t *testing.T, out *streamtest.OutputTopic[K, V]) []processor.Record[K, V] {
	t.Helper()
	recs, err := out.ReadRecords()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return recs
}

// seen is what a probe saw of one record inside a task.
type seen[K, V any] struct {
	Task   processor.TaskID
	Meta   processor.RecordMetadata
	HasMD  bool
	Record processor.Record[K, V]
}

// probe is a processor that records every record it sees, with the task and
// record metadata its context reports, and forwards it unchanged.
type probe[K, V any] struct {
	processor.Base[K, V]
	log *[]seen[K, V]
}

func (p *probe[K, V]) Process(r processor.Record[K, V]) error {
	md, ok := p.Context().RecordMetadata()
	*p.log = append(*p.log, seen[K, V]{Task: p.Context().TaskID(), Meta: md, HasMD: ok, Record: r})
	return p.Context().Forward(r)
}

// probeOf returns a supplier of probes that append to log. Every task's
// instance shares log: tasks run on the test's goroutine.
func probeOf[K, V any](log *[]seen[K, V]) processor.Supplier[K, V, K, V] {
	return func() processor.Processor[K, V, K, V] { return &probe[K, V]{log: log} }
}

// funcProc is a processor made of functions, for one-off behaviour.
type funcProc[KIn, VIn, KOut, VOut any] struct {
	init    func(ctx processor.Context[KOut, VOut]) error
	process func(ctx processor.Context[KOut, VOut], r processor.Record[KIn, VIn]) error
	ctx     processor.Context[KOut, VOut]
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Init(ctx processor.Context[KOut, VOut]) error {
	p.ctx = ctx
	if p.init != nil {
		return p.init(ctx)
	}
	return nil
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Process(r processor.Record[KIn, VIn]) error {
	return p.process(p.ctx, r)
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Close() error { return nil }

// readKVs reads the key and value of every unread record of out.
func readKVs[K, V any](t *testing.T, out *streamtest.OutputTopic[K, V]) []processor.KeyValue[K, V] {
	t.Helper()
	kvs, err := out.ReadAll()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return kvs
}

// streamtestAutoAdvance gives piped records timestamps a second apart.
func streamtestAutoAdvance() streamtest.InputOption { return streamtest.AutoAdvance(time.Second) }

// contains reports whether err's message contains s.
func contains(err error, s string) bool { return err != nil && strings.Contains(err.Error(), s) }

func mathInf() float64 { return math.Inf(1) }
