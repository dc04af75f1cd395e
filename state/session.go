package state

import (
	"fmt"
	"math"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/windows"
)

// sessionTimes is the bytes of a session entry's times: end, then start.
const sessionTimes = 2 * timeBytes

// SessionBuilder builds a *SessionStore[K, V] per task. It is immutable
// once made.
type SessionBuilder[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	opts   options
}

var _ Builder = (*SessionBuilder[string, string])(nil)

// Session returns a builder of session stores called name: per key, one
// value for each session (a window whose bounds are both inclusive).
// Options: WithRetention (required: how long past its end a session is
// kept; the DSL sets inactivity gap plus grace), WithSegmentInterval,
// WithCache, WithoutLogging. Mistakes are reported by Build.
func Session[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) *SessionBuilder[K, V] {
	b := &SessionBuilder[K, V]{name: name, keys: keys, values: values, opts: options{cache: DefaultCacheBytes}}
	for _, o := range opts {
		if o != nil {
			o.apply(&b.opts)
		}
	}
	return b
}

// Name returns the store's name.
func (b *SessionBuilder[K, V]) Name() string { return b.name }

// Logged reports whether the store has a changelog.
func (b *SessionBuilder[K, V]) Logged() bool { return !b.opts.noLogging }

// Retention returns how long past its end the store keeps a session.
func (b *SessionBuilder[K, V]) Retention() time.Duration { return b.opts.retention }

// ChangelogConfig returns the configuration of the store's changelog
// topic: cleanup.policy compact,delete, and retention.ms the store's
// retention plus ChangelogRetentionExtra.
func (b *SessionBuilder[K, V]) ChangelogConfig() map[string]string {
	return windowedChangelogConfig(b.opts.retention)
}

// Build returns the task's store, a *SessionStore[K, V], as a Store.
func (b *SessionBuilder[K, V]) Build(ctx BuildContext) (Store, error) {
	s, err := b.BuildSession(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// BuildSession is Build with the store's concrete type.
func (b *SessionBuilder[K, V]) BuildSession(ctx BuildContext) (*SessionStore[K, V], error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	bytes, err := bytesFor(b.name, ctx, b.opts)
	if err != nil {
		return nil, err
	}
	return b.Open(bytes, ChangelogTopic(ctx.ApplicationID, b.name))
}

func (b *SessionBuilder[K, V]) check() error {
	switch {
	case b.name == "":
		return fmt.Errorf("state: build session store: empty name: %w", ErrInvalidBuilder)
	case b.keys == nil || b.values == nil:
		return fmt.Errorf("state: build session store %q: nil key or value serde: %w", b.name, ErrInvalidBuilder)
	}
	_, _, err := b.opts.segmentOptions("session", b.name, 0)
	return err
}

// Open returns a session store over bytes laid out as the builder's stores
// are (an Engine.Reader view, for interactive queries). topic is told to
// the serdes.
func (b *SessionBuilder[K, V]) Open(bytes KeyValueBytesStore, topic string) (*SessionStore[K, V], error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if bytes == nil {
		return nil, fmt.Errorf("state: open session store %q: nil byte store: %w", b.name, ErrInvalidBuilder)
	}
	retention, interval, _ := b.opts.segmentOptions("session", b.name, 0)
	return &SessionStore[K, V]{seg: newSegmented(b.name, bytes, retention, interval, sessionTimes), topic: topic,
		keys: b.keys, values: b.values, keyApp: serde.AppenderOf(b.keys), valueApp: serde.AppenderOf(b.values)}, nil
}

// SessionStore is a typed session store: per key, one value for each
// session, a window whose start and end are both inclusive. Entries live in
// the segment of their end; sessions that ended more than the retention
// before the largest end ever put (the store's observed stream time) are
// invisible at once, and their segments are dropped with range deletes.
type SessionStore[K, V any] struct {
	seg      *segmented
	topic    string
	keys     serde.Serde[K]
	values   serde.Serde[V]
	keyApp   serde.Appender[K]
	valueApp serde.Appender[V]
	kbuf     []byte
}

// Name returns the store's name.
func (s *SessionStore[K, V]) Name() string { return s.seg.name }

// Bytes returns the byte store underneath.
func (s *SessionStore[K, V]) Bytes() KeyValueBytesStore { return s.seg.bytes }

// Flush persists the observed stream time and flushes the layers below.
func (s *SessionStore[K, V]) Flush() error { return s.seg.flush() }

// Close closes the byte store.
func (s *SessionStore[K, V]) Close() error { return s.seg.bytes.Close() }

// ObservedStreamTime returns the largest session end put so far.
func (s *SessionStore[K, V]) ObservedStreamTime() (t time.Time, ok bool, err error) {
	if err := s.seg.load(); err != nil {
		return time.Time{}, false, err
	}
	if s.seg.observed == noTime {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(s.seg.observed).UTC(), true, nil
}

// Mark returns the time a processor recorded under name with SetMark.
func (s *SessionStore[K, V]) Mark(name string) (time.Time, bool, error) {
	ms, ok, err := s.seg.mark(name)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	return time.UnixMilli(ms).UTC(), true, nil
}

// SetMark records t under name, written to the store and its changelog at
// the next Flush.
func (s *SessionStore[K, V]) SetMark(name string, t time.Time) error {
	if err := s.seg.setMark(name, t.UnixMilli()); err != nil {
		return s.seg.errorf("set mark "+name, err)
	}
	return nil
}

func (s *SessionStore[K, V]) encodeKey(op string, k K) ([]byte, error) {
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

func (s *SessionStore[K, V]) entryKey(op string, key windows.Windowed[K]) ([]byte, int64, error) {
	kb, err := s.encodeKey(op, key.Key)
	if err != nil {
		return nil, 0, err
	}
	end := key.Window.End.UnixMilli()
	return s.seg.entryKey(end, kb, end, key.Window.Start.UnixMilli()), end, nil
}

// Put stores the value of a session. A session already past retention is
// not stored.
func (s *SessionStore[K, V]) Put(key windows.Windowed[K], value V) error {
	if err := s.seg.load(); err != nil {
		return err
	}
	if err := s.seg.observe(key.Window.End.UnixMilli()); err != nil {
		return err
	}
	if s.seg.expired(key.Window.End.UnixMilli()) {
		return nil
	}
	v, err := s.valueApp.AppendSerialize(make([]byte, 0, 16), s.topic, value)
	if err != nil {
		return s.seg.errorf("put", fmt.Errorf("encode value: %w", err))
	}
	if v == nil {
		return s.Remove(key)
	}
	k, _, err := s.entryKey("put", key)
	if err != nil {
		return err
	}
	return s.seg.bytes.Put(k, v)
}

// Remove deletes a session.
func (s *SessionStore[K, V]) Remove(key windows.Windowed[K]) error {
	if err := s.seg.load(); err != nil {
		return err
	}
	k, _, err := s.entryKey("remove", key)
	if err != nil {
		return err
	}
	return s.seg.bytes.Delete(k)
}

// FetchSession returns the value of key's session from start to end.
func (s *SessionStore[K, V]) FetchSession(key K, start, end time.Time) (value V, found bool, err error) {
	if err := s.seg.load(); err != nil {
		return value, false, err
	}
	if s.seg.expired(end.UnixMilli()) {
		return value, false, nil
	}
	k, _, err := s.entryKey("fetch session", windows.Windowed[K]{Key: key, Window: windows.Window{Start: start, End: end}})
	if err != nil {
		return value, false, err
	}
	b, ok, err := s.seg.bytes.Get(k)
	if err != nil || !ok {
		return value, false, err
	}
	v, err := s.values.Deserialize(s.topic, b)
	if err != nil {
		return value, false, s.seg.errorf("fetch session", fmt.Errorf("decode value: %w", err))
	}
	return v, true, nil
}

// FindSessions iterates key's sessions that end at or after earliestEnd
// and start at or before latestStart: the sessions a record at t may merge
// with, for earliestEnd t - gap and latestStart t + gap. They come in
// ascending order of end, then start.
func (s *SessionStore[K, V]) FindSessions(key K, earliestEnd, latestStart time.Time) *SessionIterator[K, V] {
	return s.find(key, earliestEnd.UnixMilli(), latestStart.UnixMilli(), false)
}

// BackwardFindSessions is FindSessions in descending order.
func (s *SessionStore[K, V]) BackwardFindSessions(key K, earliestEnd, latestStart time.Time) *SessionIterator[K, V] {
	return s.find(key, earliestEnd.UnixMilli(), latestStart.UnixMilli(), true)
}

// Fetch iterates every session of key the store retains.
func (s *SessionStore[K, V]) Fetch(key K) *SessionIterator[K, V] {
	return s.find(key, math.MinInt64, math.MaxInt64, false)
}

func (s *SessionStore[K, V]) find(key K, earliestEnd, latestStart int64, reverse bool) *SessionIterator[K, V] {
	if err := s.seg.load(); err != nil {
		return s.failed(err)
	}
	kb, err := s.encodeKey("find sessions", key)
	if err != nil {
		return s.failed(err)
	}
	kb = append([]byte(nil), kb...)
	f := max(earliestEnd, s.seg.liveFrom())
	scans := s.seg.segmentScans(f, math.MaxInt64, reverse, func(seg []byte) ([]byte, []byte) {
		return keyBounds(seg, kb, f, math.MaxInt64)
	})
	return s.iterator(scans, reverse, func(k []byte) bool {
		return len(k) >= sessionTimes && readTime(k[len(k)-timeBytes:]) <= latestStart
	})
}

// SessionsEndingBetween iterates every key's sessions whose end lies in
// [from, to]: per segment, by key, then end and start. Emit-final reads the
// sessions that closed with it.
func (s *SessionStore[K, V]) SessionsEndingBetween(from, to time.Time) *SessionIterator[K, V] {
	return s.endingBetween(from.UnixMilli(), to.UnixMilli())
}

func (s *SessionStore[K, V]) endingBetween(from, to int64) *SessionIterator[K, V] {
	if err := s.seg.load(); err != nil {
		return s.failed(err)
	}
	f, t := max(from, s.seg.liveFrom()), to
	scans := s.seg.segmentScans(f, t, false, func(seg []byte) ([]byte, []byte) { return seg, PrefixEnd(seg) })
	return s.iterator(scans, false, func(k []byte) bool {
		if len(k) < sessionTimes {
			return false
		}
		end := readTime(k[len(k)-sessionTimes:])
		return end >= f && end <= t
	})
}

// All iterates every session the store retains.
func (s *SessionStore[K, V]) All() *SessionIterator[K, V] {
	return s.endingBetween(math.MinInt64, math.MaxInt64)
}

func (s *SessionStore[K, V]) iterator(scans []scan, reverse bool, accept func([]byte) bool) *SessionIterator[K, V] {
	return &SessionIterator[K, V]{it: &segmentIterator{store: s.seg.bytes, scans: scans, reverse: reverse, accept: accept}, s: s}
}

func (s *SessionStore[K, V]) failed(err error) *SessionIterator[K, V] {
	return &SessionIterator[K, V]{it: ErrIterator(err), s: s}
}

func (s *SessionStore[K, V]) decodeKey(k []byte) (windows.Windowed[K], error) {
	var w windows.Windowed[K]
	kb, times, err := splitKey(k, sessionTimes)
	if err != nil {
		return w, err
	}
	key, err := s.keys.Deserialize(s.topic, kb)
	if err != nil {
		return w, fmt.Errorf("decode key: %w", err)
	}
	w.Key = key
	w.Window = windows.Window{Start: time.UnixMilli(readTime(times[timeBytes:])).UTC(), End: time.UnixMilli(readTime(times[:timeBytes])).UTC()}
	return w, nil
}

// SetFlushListener asks to be told of the writes the record cache passes
// down (at commit or eviction), with session keys. It returns false when
// the store has no cache.
func (s *SessionStore[K, V]) SetFlushListener(fn func(key windows.Windowed[K], newValue, oldValue V, newNull, oldNull bool, ts time.Time) error) bool {
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

// SessionIterator walks sessions of a SessionStore. Keys and values may be
// kept after Next.
type SessionIterator[K, V any] struct {
	it    Iterator
	s     *SessionStore[K, V]
	key   windows.Windowed[K]
	value V
	err   error
}

// Next advances to the next session and decodes it.
func (it *SessionIterator[K, V]) Next() bool {
	var zv V
	it.key, it.value = windows.Windowed[K]{}, zv
	if it.err != nil || !it.it.Next() {
		return false
	}
	key, err := it.s.decodeKey(it.it.Key())
	if err != nil {
		it.err = it.s.seg.errorf("iterate", err)
		return false
	}
	value, err := it.s.values.Deserialize(it.s.topic, append([]byte(nil), it.it.Value()...))
	if err != nil {
		it.err = it.s.seg.errorf("iterate", fmt.Errorf("decode value of session %v: %w", key.Window, err))
		return false
	}
	it.key, it.value = key, value
	return true
}

// Key returns the current session's key and window.
func (it *SessionIterator[K, V]) Key() windows.Windowed[K] { return it.key }

// Value returns the current session's value.
func (it *SessionIterator[K, V]) Value() V { return it.value }

// Err returns the error that ended the iteration, or nil.
func (it *SessionIterator[K, V]) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.it.Err()
}

// Close releases the iterator and returns Err().
func (it *SessionIterator[K, V]) Close() error {
	err := it.it.Close()
	if it.err != nil {
		return it.err
	}
	return err
}
