package processor_test

import (
	"fmt"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
)

// funcProc is a Processor made of functions; nil functions do nothing (a nil
// process forwards the record unchanged when the types allow it).
type funcProc[KIn, VIn, KOut, VOut any] struct {
	init    func(ctx processor.Context[KOut, VOut]) error
	process func(ctx processor.Context[KOut, VOut], rec processor.Record[KIn, VIn]) error
	close   func() error
	ctx     processor.Context[KOut, VOut]
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Init(ctx processor.Context[KOut, VOut]) error {
	p.ctx = ctx
	if p.init != nil {
		return p.init(ctx)
	}
	return nil
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Process(rec processor.Record[KIn, VIn]) error {
	if p.process != nil {
		return p.process(p.ctx, rec)
	}
	return nil
}

func (p *funcProc[KIn, VIn, KOut, VOut]) Close() error {
	if p.close != nil {
		return p.close()
	}
	return nil
}

// supplierOf returns a supplier of processors that each get a copy of proto.
func supplierOf[KIn, VIn, KOut, VOut any](proto funcProc[KIn, VIn, KOut, VOut]) processor.Supplier[KIn, VIn, KOut, VOut] {
	return func() processor.Processor[KIn, VIn, KOut, VOut] {
		p := proto
		return &p
	}
}

// pass is a supplier of processors that forward every record unchanged.
func pass[K, V any]() processor.Supplier[K, V, K, V] {
	return supplierOf(funcProc[K, V, K, V]{
		process: func(ctx processor.Context[K, V], rec processor.Record[K, V]) error { return ctx.Forward(rec) },
	})
}

// sent is one record a fakeEnv was asked to write.
type sent struct {
	topic     string
	partition int32
	rec       processor.RawRecord
}

// schedule is one Schedule call a fakeEnv received.
type schedule struct {
	node     string
	interval time.Duration
	typ      processor.PunctuationType
	fn       processor.Punctuator
}

func (*schedule) Cancel() {}

// fakeEnv is a hand-written processor.Env: the tests set what it reports and
// read what the nodes did to it.
type fakeEnv struct {
	appID      string
	id         processor.TaskID
	streamTime time.Time
	systemTime time.Time
	meta       processor.RecordMetadata
	hasMeta    bool
	stores     map[string]state.Store
	commits    int
	sends      []sent
	schedules  []*schedule
	sendErr    error
}

var _ processor.Env = (*fakeEnv)(nil)

func newFakeEnv() *fakeEnv {
	return &fakeEnv{appID: "app", id: processor.TaskID{SubTopology: 0, Partition: 3}, stores: map[string]state.Store{}}
}

func (e *fakeEnv) ApplicationID() string             { return e.appID }
func (e *fakeEnv) TaskID() processor.TaskID          { return e.id }
func (e *fakeEnv) StreamTime() time.Time             { return e.streamTime }
func (e *fakeEnv) SystemTime() time.Time             { return e.systemTime }
func (e *fakeEnv) RequestCommit()                    { e.commits++ }
func (e *fakeEnv) RecordDropped(node, reason string) {}
func (e *fakeEnv) RecordLate(node string)            {}
func (e *fakeEnv) SetRecordTime(ts time.Time) {
	if ts.After(e.streamTime) {
		e.streamTime = ts
	}
}
func (e *fakeEnv) Store(name string) (state.Store, bool) {
	s, ok := e.stores[name]
	return s, ok
}

func (e *fakeEnv) RecordMetadata() (processor.RecordMetadata, bool) { return e.meta, e.hasMeta }

func (e *fakeEnv) Schedule(node string, interval time.Duration, typ processor.PunctuationType, fn processor.Punctuator) (processor.Cancellable, error) {
	s := &schedule{node: node, interval: interval, typ: typ, fn: fn}
	e.schedules = append(e.schedules, s)
	return s, nil
}

func (e *fakeEnv) Send(topic string, partition int32, rec processor.RawRecord) error {
	if e.sendErr != nil {
		return e.sendErr
	}
	e.sends = append(e.sends, sent{topic: topic, partition: partition, rec: rec})
	return nil
}

// raw builds a raw record read from topic at offset.
func raw(topic string, offset int64, key, value string) processor.RawRecord {
	return processor.RawRecord{Key: []byte(key), Value: []byte(value),
		Timestamp: time.UnixMilli(1000 + offset), Origin: processor.Origin{Topic: topic, Partition: 3, Offset: offset}}
}

// log collects what processors saw, in order.
type log []string

func (l *log) add(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }
