package state

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/windows"
)

// WithRetention sets how long a window or session store keeps an entry:
// for stream time, past the entry's time (a window's start, a session's
// end). It may not be shorter than a window store's window size. The
// default is the window size (window stores) or nothing (session stores,
// which must be given one): the DSL sets window size plus grace.
func WithRetention(d time.Duration) Option {
	return optionFunc(func(o *options) { o.retention = d })
}

// WithSegmentInterval sets the time span of one segment of a window or
// session store: expired data goes one whole segment at a time. The default
// is half the retention, and at least a minute, as in Kafka Streams. A
// store keeps the interval its data was first written with.
func WithSegmentInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.segmentInterval = d })
}

// ChangelogRetentionExtra is what a window or session store's changelog
// keeps beyond the store's retention (retention.ms of the topic), as Kafka
// Streams' windowstore.changelog.additional.retention.ms: a day, so that
// clock skew between the brokers and the records does not delete the
// changelog's data before the store drops it.
const ChangelogRetentionExtra = 24 * time.Hour

// segmentOptions returns the retention and segment interval of a windowed
// store, validated.
func (o options) segmentOptions(what, name string, minRetention time.Duration) (retention, interval time.Duration, err error) {
	retention = o.retention
	if retention == 0 {
		retention = minRetention
	}
	switch {
	case retention <= 0:
		return 0, 0, fmt.Errorf("state: build %s store %q: no retention (WithRetention): %w", what, name, ErrInvalidBuilder)
	case retention < minRetention:
		return 0, 0, fmt.Errorf("state: build %s store %q: retention %v is shorter than the window size %v: %w", what, name, retention, minRetention, ErrInvalidBuilder)
	case retention%time.Millisecond != 0 || o.segmentInterval%time.Millisecond != 0:
		return 0, 0, fmt.Errorf("state: build %s store %q: retention and segment interval must be whole milliseconds: %w", what, name, ErrInvalidBuilder)
	case o.segmentInterval < 0:
		return 0, 0, fmt.Errorf("state: build %s store %q: negative segment interval: %w", what, name, ErrInvalidBuilder)
	case o.ttl != 0:
		return 0, 0, fmt.Errorf("state: build %s store %q: WithTTL is for key-value stores; retention expires windows: %w", what, name, ErrInvalidBuilder)
	}
	interval = o.segmentInterval
	if interval == 0 {
		interval = max(retention/2, minSegmentInterval)
	}
	return retention, interval, nil
}

// windowedChangelogConfig is the changelog configuration of window and
// session stores: compacted, and deleted past retention.
func windowedChangelogConfig(retention time.Duration) map[string]string {
	return map[string]string{
		"cleanup.policy": "compact,delete",
		"retention.ms":   strconv.FormatInt((retention + ChangelogRetentionExtra).Milliseconds(), 10),
	}
}

// bytesFor builds the byte store of a task's store: the batch's view, under
// changelogging and the record cache as opts ask.
func bytesFor(name string, ctx BuildContext, o options) (KeyValueBytesStore, error) {
	if ctx.Batch == nil {
		return nil, fmt.Errorf("state: build store %q for task %q: no batch in the build context: %w", name, ctx.TaskID, ErrInvalidBuilder)
	}
	var bytes KeyValueBytesStore = &view{inner: ctx.Batch.Store(StorePartition{Store: name, Partition: ctx.Partition}), name: name}
	clock := &storeClock{src: ctx.Time}
	if clock.src == nil {
		clock.src = zeroTime{}
	}
	if !o.noLogging && ctx.Changelog != nil {
		bytes = &changelogging{KeyValueBytesStore: bytes, w: ctx.Changelog, clock: clock}
	}
	if o.cache > 0 {
		bytes = newCaching(bytes, o.cache, clock)
	}
	return bytes, nil
}

// WindowBuilder builds a *WindowStore[K, V] per task. It is immutable once
// made.
type WindowBuilder[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	size   time.Duration
	opts   options
}

var _ Builder = (*WindowBuilder[string, string])(nil)

// Window returns a builder of window stores called name, for windows of
// the given size: the store keeps, per key and window start, one value.
// Options: WithRetention (at least size; the default), WithSegmentInterval,
// WithCache, WithoutLogging. Mistakes are reported by Build.
func Window[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], size time.Duration, opts ...Option) *WindowBuilder[K, V] {
	b := &WindowBuilder[K, V]{name: name, keys: keys, values: values, size: size, opts: options{cache: DefaultCacheBytes}}
	for _, o := range opts {
		if o != nil {
			o.apply(&b.opts)
		}
	}
	return b
}

// TimestampedWindow returns a builder of window stores whose values carry
// the timestamp of the record that last updated them.
func TimestampedWindow[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], size time.Duration, opts ...Option) *WindowBuilder[K, ValueAndTimestamp[V]] {
	var vs serde.Serde[ValueAndTimestamp[V]]
	if values != nil {
		vs = TimestampedSerde(values)
	}
	return Window(name, keys, vs, size, opts...)
}

// Name returns the store's name.
func (b *WindowBuilder[K, V]) Name() string { return b.name }

// Logged reports whether the store has a changelog.
func (b *WindowBuilder[K, V]) Logged() bool { return !b.opts.noLogging }

// Retention returns how long the store keeps a window, past its start.
func (b *WindowBuilder[K, V]) Retention() time.Duration {
	r, _, err := b.opts.segmentOptions("window", b.name, b.size)
	if err != nil {
		return b.size
	}
	return r
}

// ChangelogConfig returns the configuration of the store's changelog
// topic: cleanup.policy compact,delete, and retention.ms the store's
// retention plus ChangelogRetentionExtra.
func (b *WindowBuilder[K, V]) ChangelogConfig() map[string]string {
	return windowedChangelogConfig(b.Retention())
}

// Build returns the task's store, a *WindowStore[K, V], as a Store.
func (b *WindowBuilder[K, V]) Build(ctx BuildContext) (Store, error) {
	s, err := b.BuildWindow(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// BuildWindow is Build with the store's concrete type. The layers, from the
// top: the typed window store (segments, expiry), the record cache,
// changelogging and the task's batch.
func (b *WindowBuilder[K, V]) BuildWindow(ctx BuildContext) (*WindowStore[K, V], error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	bytes, err := bytesFor(b.name, ctx, b.opts)
	if err != nil {
		return nil, err
	}
	return b.Open(bytes, ChangelogTopic(ctx.ApplicationID, b.name))
}

func (b *WindowBuilder[K, V]) check() error {
	switch {
	case b.name == "":
		return fmt.Errorf("state: build window store: empty name: %w", ErrInvalidBuilder)
	case b.keys == nil || b.values == nil:
		return fmt.Errorf("state: build window store %q: nil key or value serde: %w", b.name, ErrInvalidBuilder)
	case b.size <= 0 || b.size%time.Millisecond != 0:
		return fmt.Errorf("state: build window store %q: window size %v is not a positive number of milliseconds: %w", b.name, b.size, ErrInvalidBuilder)
	}
	_, _, err := b.opts.segmentOptions("window", b.name, b.size)
	return err
}

// Open returns a window store over bytes laid out as the builder's stores
// are: a read-only view of committed state (Engine.Reader) for interactive
// queries, or a byte store of one's own. topic is told to the serdes.
func (b *WindowBuilder[K, V]) Open(bytes KeyValueBytesStore, topic string) (*WindowStore[K, V], error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if bytes == nil {
		return nil, fmt.Errorf("state: open window store %q: nil byte store: %w", b.name, ErrInvalidBuilder)
	}
	retention, interval, _ := b.opts.segmentOptions("window", b.name, b.size)
	return &WindowStore[K, V]{seg: newSegmented(b.name, bytes, retention, interval, timeBytes), topic: topic,
		keys: b.keys, values: b.values, keyApp: serde.AppenderOf(b.keys), valueApp: serde.AppenderOf(b.values),
		size: b.size.Milliseconds()}, nil
}

// WindowStore is a typed window store: per key, one value for each window
// start. Windows have the store's size; their starts are what callers put.
// Entries older than the retention, counted back from the largest window
// start ever put (the store's observed stream time), are invisible at once
// and their segments are dropped with range deletes.
//
// Threading: the task that owns it writes; reads from anywhere when over a
// read-only view.
type WindowStore[K, V any] struct {
	seg      *segmented
	topic    string
	keys     serde.Serde[K]
	values   serde.Serde[V]
	keyApp   serde.Appender[K]
	valueApp serde.Appender[V]
	size     int64 // ms
	kbuf     []byte
}

// Name returns the store's name.
func (s *WindowStore[K, V]) Name() string { return s.seg.name }

// Bytes returns the byte store underneath.
func (s *WindowStore[K, V]) Bytes() KeyValueBytesStore { return s.seg.bytes }

// Size returns the size of the store's windows.
func (s *WindowStore[K, V]) Size() time.Duration { return time.Duration(s.size) * time.Millisecond }

// Retention returns how long, in stream time past its start, the store
// keeps a window.
func (s *WindowStore[K, V]) Retention() time.Duration {
	return time.Duration(s.seg.retention) * time.Millisecond
}

// Flush persists the observed stream time and flushes the layers below.
func (s *WindowStore[K, V]) Flush() error { return s.seg.flush() }

// Close closes the byte store.
func (s *WindowStore[K, V]) Close() error { return s.seg.bytes.Close() }

// ObservedStreamTime returns the largest window start put so far (also
// before a restart: it is persisted at each Flush); ok is false before any.
func (s *WindowStore[K, V]) ObservedStreamTime() (t time.Time, ok bool, err error) {
	if err := s.seg.load(); err != nil {
		return time.Time{}, false, err
	}
	if s.seg.observed == noTime {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(s.seg.observed).UTC(), true, nil
}

// Mark returns the time a processor recorded under name with SetMark, kept
// in the store and its changelog: emit-final's progress, for instance.
func (s *WindowStore[K, V]) Mark(name string) (time.Time, bool, error) {
	ms, ok, err := s.seg.mark(name)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	return time.UnixMilli(ms).UTC(), true, nil
}

// SetMark records t under name (see Mark). It is written to the store
// and its changelog at the next Flush.
func (s *WindowStore[K, V]) SetMark(name string, t time.Time) error {
	if err := s.seg.setMark(name, t.UnixMilli()); err != nil {
		return s.seg.errorf("set mark "+name, err)
	}
	return nil
}

func (s *WindowStore[K, V]) encodeKey(op string, k K) ([]byte, error) {
	if s.kbuf == nil {
		s.kbuf = make([]byte, 0, 64) // not nil: an empty key is a key
	}
	b, err := s.keyApp.AppendSerialize(s.kbuf[:0], s.topic, k)
	if err != nil {
		return nil, s.seg.errorf(op, fmt.Errorf("encode key: %w", err))
	}
	if b == nil {
		return nil, s.seg.errorf(op, ErrNullKey)
	}
	if cap(b) <= maxKeptBuffer {
		s.kbuf = b
	}
	return b, nil
}

// Put stores value for key's window starting at start. A window already
// past retention is not stored (Kafka Streams drops it too): aggregations
// drop late records before they get here.
func (s *WindowStore[K, V]) Put(key K, value V, start time.Time) error {
	if err := s.seg.load(); err != nil {
		return err
	}
	ms := start.UnixMilli()
	if err := s.seg.observe(ms); err != nil {
		return err
	}
	if s.seg.expired(ms) {
		return nil
	}
	kb, err := s.encodeKey("put", key)
	if err != nil {
		return err
	}
	v, err := s.valueApp.AppendSerialize(make([]byte, 0, 16), s.topic, value)
	if err != nil {
		return s.seg.errorf("put", fmt.Errorf("encode value: %w", err))
	}
	if v == nil {
		return s.Delete(key, start)
	}
	return s.seg.bytes.Put(s.seg.entryKey(ms, kb, ms), v)
}

// Delete removes key's window starting at start.
func (s *WindowStore[K, V]) Delete(key K, start time.Time) error {
	if err := s.seg.load(); err != nil {
		return err
	}
	kb, err := s.encodeKey("delete", key)
	if err != nil {
		return err
	}
	ms := start.UnixMilli()
	return s.seg.bytes.Delete(s.seg.entryKey(ms, kb, ms))
}

// Get returns the value of key's window starting at start.
func (s *WindowStore[K, V]) Get(key K, start time.Time) (value V, found bool, err error) {
	if err := s.seg.load(); err != nil {
		return value, false, err
	}
	ms := start.UnixMilli()
	if s.seg.expired(ms) {
		return value, false, nil
	}
	kb, err := s.encodeKey("get", key)
	if err != nil {
		return value, false, err
	}
	b, ok, err := s.seg.bytes.Get(s.seg.entryKey(ms, kb, ms))
	if err != nil || !ok {
		return value, false, err
	}
	v, err := s.values.Deserialize(s.topic, b)
	if err != nil {
		return value, false, s.seg.errorf("get", fmt.Errorf("decode value: %w", err))
	}
	return v, true, nil
}

// Fetch iterates key's windows whose start lies in [from, to] (both
// inclusive, as Kafka Streams' fetch), in ascending start order.
func (s *WindowStore[K, V]) Fetch(key K, from, to time.Time) *WindowIterator[K, V] {
	return s.fetchKey(key, from, to, false)
}

// BackwardFetch is Fetch in descending start order.
func (s *WindowStore[K, V]) BackwardFetch(key K, from, to time.Time) *WindowIterator[K, V] {
	return s.fetchKey(key, from, to, true)
}

func (s *WindowStore[K, V]) fetchKey(key K, from, to time.Time, reverse bool) *WindowIterator[K, V] {
	if err := s.seg.load(); err != nil {
		return s.failed(err)
	}
	kb, err := s.encodeKey("fetch", key)
	if err != nil {
		return s.failed(err)
	}
	kb = append([]byte(nil), kb...)
	f, t := max(from.UnixMilli(), s.seg.liveFrom()), to.UnixMilli()
	scans := s.seg.segmentScans(f, t, reverse, func(seg []byte) ([]byte, []byte) { return keyBounds(seg, kb, f, t) })
	return s.iterator(scans, reverse, nil)
}

// FetchRange iterates the windows of the keys from keyFrom to keyTo (both
// inclusive, in the byte order of their encodings) whose start lies in
// [from, to]: per segment, by key, then start.
func (s *WindowStore[K, V]) FetchRange(keyFrom, keyTo K, from, to time.Time) *WindowIterator[K, V] {
	if err := s.seg.load(); err != nil {
		return s.failed(err)
	}
	lo, err := s.encodeKey("fetch range", keyFrom)
	if err != nil {
		return s.failed(err)
	}
	lo = append([]byte(nil), lo...)
	hi, err := s.encodeKey("fetch range", keyTo)
	if err != nil {
		return s.failed(err)
	}
	hi = append([]byte(nil), hi...)
	f, t := max(from.UnixMilli(), s.seg.liveFrom()), to.UnixMilli()
	scans := s.seg.segmentScans(f, t, false, func(seg []byte) ([]byte, []byte) {
		a := appendEscaped(append([]byte(nil), seg...), lo)
		return a, PrefixEnd(appendEscaped(append([]byte(nil), seg...), hi))
	})
	return s.iterator(scans, false, s.startIn(f, t))
}

// FetchAll iterates every key's windows whose start lies in [from, to]:
// per segment, by key, then start.
func (s *WindowStore[K, V]) FetchAll(from, to time.Time) *WindowIterator[K, V] {
	return s.fetchAll(from.UnixMilli(), to.UnixMilli(), false)
}

// BackwardFetchAll is FetchAll in reverse order.
func (s *WindowStore[K, V]) BackwardFetchAll(from, to time.Time) *WindowIterator[K, V] {
	return s.fetchAll(from.UnixMilli(), to.UnixMilli(), true)
}

// All iterates every window the store retains.
func (s *WindowStore[K, V]) All() *WindowIterator[K, V] {
	return s.fetchAll(math.MinInt64, math.MaxInt64, false)
}

func (s *WindowStore[K, V]) fetchAll(from, to int64, reverse bool) *WindowIterator[K, V] {
	if err := s.seg.load(); err != nil {
		return s.failed(err)
	}
	f := max(from, s.seg.liveFrom())
	scans := s.seg.segmentScans(f, to, reverse, func(seg []byte) ([]byte, []byte) {
		return seg, PrefixEnd(seg)
	})
	return s.iterator(scans, reverse, s.startIn(f, to))
}

// startIn returns a filter of entry keys by window start.
func (s *WindowStore[K, V]) startIn(from, to int64) func(k []byte) bool {
	return func(k []byte) bool {
		if len(k) < timeBytes {
			return false
		}
		t := readTime(k[len(k)-timeBytes:])
		return t >= from && t <= to
	}
}

func (s *WindowStore[K, V]) iterator(scans []scan, reverse bool, accept func([]byte) bool) *WindowIterator[K, V] {
	return &WindowIterator[K, V]{it: &segmentIterator{store: s.seg.bytes, scans: scans, reverse: reverse, accept: accept}, s: s}
}

func (s *WindowStore[K, V]) failed(err error) *WindowIterator[K, V] {
	return &WindowIterator[K, V]{it: ErrIterator(err), s: s}
}

// decode decodes an entry's key.
func (s *WindowStore[K, V]) decodeKey(k []byte) (windows.Windowed[K], error) {
	var w windows.Windowed[K]
	kb, times, err := splitKey(k, timeBytes)
	if err != nil {
		return w, err
	}
	key, err := s.keys.Deserialize(s.topic, kb)
	if err != nil {
		return w, fmt.Errorf("decode key: %w", err)
	}
	start := readTime(times)
	w.Key = key
	w.Window = windows.Window{Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(satAdd(start, s.size)).UTC()}
	return w, nil
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// SetFlushListener asks to be told of the writes the record cache passes
// down (at commit or eviction), as KeyValueStore.SetFlushListener does,
// with windowed keys. It returns false when the store has no cache.
func (s *WindowStore[K, V]) SetFlushListener(fn func(key windows.Windowed[K], newValue, oldValue V, newNull, oldNull bool, ts time.Time) error) bool {
	fl, ok := s.seg.bytes.(flushListener)
	if !ok {
		return false
	}
	return fl.setFlushListener(func(kb, nb, ob []byte, ts time.Time) error {
		if isMeta(kb) {
			return nil
		}
		k, err := s.decodeKey(kb)
		if err != nil {
			return s.seg.errorf("flush", err)
		}
		var nv, ov V
		if nb != nil {
			if nv, err = s.values.Deserialize(s.topic, nb); err != nil {
				return s.seg.errorf("flush", fmt.Errorf("decode value: %w", err))
			}
		}
		if ob != nil {
			if ov, err = s.values.Deserialize(s.topic, ob); err != nil {
				return s.seg.errorf("flush", fmt.Errorf("decode old value: %w", err))
			}
		}
		return fn(k, nv, ov, nb == nil, ob == nil, ts)
	})
}

// WindowIterator walks windows of a WindowStore. Keys and values may be
// kept after Next. A decoding error ends the iteration, reported by Err and
// Close.
type WindowIterator[K, V any] struct {
	it    Iterator
	s     *WindowStore[K, V]
	key   windows.Windowed[K]
	value V
	err   error
}

// Next advances to the next window and decodes it.
func (it *WindowIterator[K, V]) Next() bool {
	var zv V
	it.key, it.value = windows.Windowed[K]{}, zv
	if it.err != nil || !it.it.Next() {
		return false
	}
	k, v := it.it.Key(), it.it.Value()
	key, err := it.s.decodeKey(k)
	if err != nil {
		it.err = it.s.seg.errorf("iterate", err)
		return false
	}
	value, err := it.s.values.Deserialize(it.s.topic, append([]byte(nil), v...))
	if err != nil {
		it.err = it.s.seg.errorf("iterate", fmt.Errorf("decode value of %v: %w", key.Window, err))
		return false
	}
	it.key, it.value = key, value
	return true
}

// Key returns the current window's key and window.
func (it *WindowIterator[K, V]) Key() windows.Windowed[K] { return it.key }

// Start returns the current window's start.
func (it *WindowIterator[K, V]) Start() time.Time { return it.key.Window.Start }

// Value returns the current window's value.
func (it *WindowIterator[K, V]) Value() V { return it.value }

// Err returns the error that ended the iteration, or nil.
func (it *WindowIterator[K, V]) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.it.Err()
}

// Close releases the iterator and returns Err().
func (it *WindowIterator[K, V]) Close() error {
	err := it.it.Close()
	if it.err != nil {
		return it.err
	}
	return err
}
