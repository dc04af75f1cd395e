package dsl

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/windows"
)

// ErrBufferFull is the error, wrapped, that stops a task when the buffer of
// a Suppress whose buffer fails when full (FailWhenFull, or MaxRecords and
// MaxBytes limits of UntilWindowCloses) is over its limit.
var ErrBufferFull = errors.New("suppression buffer full")

// Suppression says which updates of a table Suppress holds back, and for
// how long: UntilWindowCloses or UntilTimeLimit.
type Suppression struct {
	final bool          // UntilWindowCloses
	limit time.Duration // UntilTimeLimit
	buf   bufferConfig
	err   error
}

// UntilWindowCloses holds every update of a windowed table's window until
// the window closes, then emits the window's final result, once: stream
// time (the largest record timestamp the suppression has seen in its task)
// at or past the window's end plus its grace (plus the inactivity gap for
// session windows, as Kafka Streams). Deletes of windows are not emitted.
// Only a table made by a windowed aggregation takes it; Build fails
// otherwise.
func UntilWindowCloses(b StrictBuffer) Suppression {
	return Suppression{final: true, buf: b.cfg, err: b.cfg.err}
}

// UntilTimeLimit holds the updates of each key for d of stream time after
// the first one held, then emits the latest: a key's first held update
// starts its wait, later ones replace it without resetting the wait (Kafka
// Streams' rule). The buffer b bounds what is held; by default (MaxRecords
// and MaxBytes) a full buffer emits its oldest keys early.
func UntilTimeLimit(d time.Duration, b BufferConfig) Suppression {
	s := Suppression{limit: d}
	if b != nil {
		s.buf = b.config()
		s.err = s.buf.err
	}
	if d < 0 && s.err == nil {
		s.err = fmt.Errorf("UntilTimeLimit(%v): negative time limit", d)
	}
	return s
}

// BufferConfig bounds the buffer of a Suppress: a Buffer or a StrictBuffer.
// Only this package implements it.
type BufferConfig interface {
	config() bufferConfig
}

// Buffer bounds a suppression buffer by records and bytes and says what a
// full buffer does: by default it emits its oldest entries early until it
// fits (EmitEarlyWhenFull); FailWhenFull makes it fail the task.
type Buffer struct{ cfg bufferConfig }

// StrictBuffer is a buffer that never emits early: Unbounded, or a Buffer
// that fails when full. UntilWindowCloses takes only a StrictBuffer, so its
// results are always final.
type StrictBuffer struct{ cfg bufferConfig }

type bufferConfig struct {
	maxRecords int64 // 0: no limit
	maxBytes   int64 // 0: no limit
	fail       bool
	err        error
}

func (b Buffer) config() bufferConfig       { return b.cfg }
func (b StrictBuffer) config() bufferConfig { return b.cfg }

// Unbounded is a buffer with no limit: it holds what it must, in the
// task's store, however much that is.
func Unbounded() StrictBuffer { return StrictBuffer{} }

// MaxRecords is a buffer that holds at most n keys, emitting its oldest
// early when full. n must be positive.
func MaxRecords(n int64) Buffer { return Buffer{}.MaxRecords(n) }

// MaxBytes is a buffer that holds at most n bytes, emitting its oldest
// entries early when full. An entry's size is an estimate as Kafka Streams
// makes it: its key, its values (the one it replaced, the previous and the
// new one) and its record's context (8 bytes of buffer time, 8 of
// timestamp, 8 of offset, 4 of partition, the topic's name and the
// headers). n must be positive.
func MaxBytes(n int64) Buffer { return Buffer{}.MaxBytes(n) }

// MaxRecords limits b to n keys as well.
func (b Buffer) MaxRecords(n int64) Buffer {
	if n <= 0 && b.cfg.err == nil {
		b.cfg.err = fmt.Errorf("MaxRecords(%d): want at least 1", n)
	}
	b.cfg.maxRecords = n
	return b
}

// MaxBytes limits b to n bytes as well.
func (b Buffer) MaxBytes(n int64) Buffer {
	if n <= 0 && b.cfg.err == nil {
		b.cfg.err = fmt.Errorf("MaxBytes(%d): want at least 1", n)
	}
	b.cfg.maxBytes = n
	return b
}

// EmitEarlyWhenFull makes a full buffer emit its oldest entries (by buffer
// time) until it is within its limits again. It is the default.
func (b Buffer) EmitEarlyWhenFull() Buffer {
	b.cfg.fail = false
	return b
}

// FailWhenFull makes a full buffer fail the task, with an error wrapping
// ErrBufferFull that names the store and the limit (Kafka Streams'
// shutDownWhenFull): nothing is ever emitted early.
func (b Buffer) FailWhenFull() StrictBuffer {
	b.cfg.fail = true
	return StrictBuffer(b)
}

func (c bufferConfig) String() string {
	var parts []string
	if c.maxRecords > 0 {
		parts = append(parts, fmt.Sprintf("%d records", c.maxRecords))
	}
	if c.maxBytes > 0 {
		parts = append(parts, fmt.Sprintf("%d bytes", c.maxBytes))
	}
	if len(parts) == 0 {
		return "unbounded"
	}
	return strings.Join(parts, " and ")
}

// Suppress holds back updates of the table as s says and forwards what it
// releases: for each key, the latest update (its new value and the value
// that update replaced), with that update's timestamp, headers and origin.
//
// The held updates live in a changelogged key-value store, named by Named
// (generated otherwise, see RequireNames), written in the task's commit
// with the task's outputs, so that a crash neither loses nor repeats an
// emitted result. Options: Named.
func (t Table[K, V]) Suppress(s Suppression, opts ...Option) Table[K, V] {
	b := t.b
	o := b.options("Suppress", opts, optName)
	if o.name == "" && b.requireNames {
		b.fail("Suppress", fmt.Errorf("of %s: unnamed, and the builder requires names", t.node))
	}
	name, store := b.storeNames(o, "KTABLE-SUPPRESS")
	out := Table[K, V]{b: b, node: name, keys: t.keys, values: t.values, win: t.win}
	if s.err != nil {
		b.fail("Suppress", fmt.Errorf("%s: %w", name, s.err))
		return out
	}
	if t.keys == nil || t.values == nil {
		b.fail("Suppress", fmt.Errorf("%s: no key or value serde for the buffer; set them with WithSerdes", name))
		return out
	}
	p := suppressSpec[K, V]{store: store, node: name, keys: t.keys, values: t.values, cfg: s.buf}
	if s.final {
		if t.win == nil {
			b.fail("Suppress", fmt.Errorf("%s: UntilWindowCloses on %s, a table that is not windowed (only a windowed aggregation's table has windows to close)", name, t.node))
			return out
		}
		win, ok := t.win.window.(func(K) windows.Window)
		if !ok {
			b.fail("Suppress", fmt.Errorf("%s: UntilWindowCloses on %s: its keys (%T) are not the windowed keys its windows describe", name, t.node, *new(K)))
			return out
		}
		p.window, p.wait, p.dropTombstones = win, t.win.suppressAfter, true
	} else {
		p.wait = s.limit
	}
	b.topo.AddStore(state.KeyValue(store, serde.Bytes(), serde.Bytes(), state.WithCache(0)))
	b.topo.AddProcessor(name, func() processor.Processor[K, Change[V], K, Change[V]] {
		return &suppressProc[K, V]{spec: &p}
	}, t.node)
	b.topo.ConnectStore(store, name)
	return out
}

// suppressSpec is what every task's suppress processor of one node shares.
type suppressSpec[K, V any] struct {
	store, node string
	keys        serde.Serde[K]
	values      serde.Serde[V]
	cfg         bufferConfig
	// window returns a key's window (UntilWindowCloses); nil for a time
	// limit, whose buffer time is the record's timestamp.
	window func(K) windows.Window
	// wait is how long after its buffer time an entry is emitted.
	wait           time.Duration
	dropTombstones bool
}

// suppressProc is Kafka Streams' KTableSuppressProcessor over a buffer kept
// in a byte store (see suppressbuffer.go for its layout).
type suppressProc[K, V any] struct {
	spec *suppressSpec[K, V]
	ctx  processor.Context[K, Change[V]]
	next func(processor.Record[K, Change[V]]) error
	buf  *suppressBuffer
	// streamTime is the largest record timestamp seen, in milliseconds
	// (math.MinInt64 before the first), persisted in the buffer's store.
	streamTime int64
}

func (p *suppressProc[K, V]) Init(ctx processor.Context[K, Change[V]]) error {
	s, err := processor.StoreOf[*state.KeyValueStore[[]byte, []byte]](ctx, p.spec.store)
	if err != nil {
		return err
	}
	p.ctx, p.next = ctx, processor.Forwarder(ctx)
	p.buf = &suppressBuffer{store: s.Bytes(), name: p.spec.store, changelog: s.Topic()}
	if err := p.buf.load(); err != nil {
		return fmt.Errorf("dsl: suppress %q: %w", p.spec.node, err)
	}
	p.streamTime = p.buf.streamTime
	return nil
}

func (p *suppressProc[K, V]) Close() error { return nil }

func (p *suppressProc[K, V]) Process(r processor.Record[K, Change[V]]) error {
	if r.NullKey {
		p.ctx.RecordDropped("null key")
		return nil
	}
	if err := p.process(r); err != nil {
		return fmt.Errorf("dsl: suppress %q: %w", p.spec.node, err)
	}
	return nil
}

func (p *suppressProc[K, V]) process(r processor.Record[K, Change[V]]) error {
	ts := r.Timestamp.UnixMilli()
	if r.Timestamp.IsZero() {
		ts = math.MinInt64
	}
	if ts > p.streamTime {
		p.streamTime = ts
		if err := p.buf.putStreamTime(ts); err != nil {
			return err
		}
	}
	topic := p.buf.topic()
	key, err := p.spec.keys.Serialize(topic, r.Key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if key == nil {
		return fmt.Errorf("encode key: %w", state.ErrNullKey)
	}
	e := bufferEntry{ts: ts, noTS: r.Timestamp.IsZero(), headers: r.Headers, origin: r.Origin}
	if r.Value.HasNew {
		if e.newV, err = p.spec.values.Serialize(topic, r.Value.New); err != nil {
			return fmt.Errorf("encode value: %w", err)
		}
	}
	if r.Value.HasOld {
		if e.oldV, err = p.spec.values.Serialize(topic, r.Value.Old); err != nil {
			return fmt.Errorf("encode old value: %w", err)
		}
	}
	if p.spec.window != nil {
		e.time = p.spec.window(r.Key).End.UnixMilli()
	} else {
		e.time = ts
	}
	if err := p.buf.put(key, e); err != nil {
		return err
	}
	return p.enforce()
}

// enforce emits the entries whose time has come, then, if the buffer is
// over its limits, emits the oldest early or fails, as its policy says.
func (p *suppressProc[K, V]) enforce() error {
	wait := p.spec.wait.Milliseconds()
	due := func(time int64) bool {
		// time <= streamTime - wait, where streamTime - wait may overflow.
		if p.streamTime < math.MinInt64+wait {
			return false
		}
		return time <= p.streamTime-wait
	}
	if err := p.buf.evictWhile(due, p.emit); err != nil {
		return err
	}
	if !p.over() {
		return nil
	}
	if p.spec.cfg.fail {
		return fmt.Errorf("buffer store %q holds %d records and %d bytes, over its limit of %s: %w",
			p.spec.store, p.buf.count, p.buf.bytes, p.spec.cfg, ErrBufferFull)
	}
	return p.buf.evictWhile(func(int64) bool { return p.over() }, p.emit)
}

func (p *suppressProc[K, V]) over() bool {
	c := p.spec.cfg
	return (c.maxRecords > 0 && p.buf.count > c.maxRecords) || (c.maxBytes > 0 && p.buf.bytes > c.maxBytes)
}

// emit forwards an evicted entry with its record's timestamp, headers and
// origin; a final result's tombstone is dropped (a window deleted before it
// closed was never emitted, so there is nothing downstream to delete).
func (p *suppressProc[K, V]) emit(key []byte, e bufferEntry) error {
	if e.newV == nil && p.spec.dropTombstones {
		return nil
	}
	topic := p.buf.topic()
	k, err := p.spec.keys.Deserialize(topic, key)
	if err != nil {
		return fmt.Errorf("decode buffered key: %w", err)
	}
	var c Change[V]
	if e.newV != nil {
		if c.New, err = p.spec.values.Deserialize(topic, e.newV); err != nil {
			return fmt.Errorf("decode buffered value: %w", err)
		}
		c.HasNew = true
	}
	if e.oldV != nil {
		if c.Old, err = p.spec.values.Deserialize(topic, e.oldV); err != nil {
			return fmt.Errorf("decode buffered old value: %w", err)
		}
		c.HasOld = true
	}
	r := processor.Record[K, Change[V]]{Key: k, Value: c, Headers: e.headers, Origin: e.origin}
	if !e.noTS {
		r.Timestamp = time.UnixMilli(e.ts).UTC()
	}
	return p.next(r)
}
