package state

import (
	"encoding/binary"
	"time"
)

// ttlSweepPerFlush bounds how many entries one Flush examines for expiry;
// the sweep resumes where it stopped at the next Flush, so a large store is
// swept over several commits.
const ttlSweepPerFlush = 10_000

// expiring is the time-to-live layer. It stores with each value the stream
// time of its last write (8 bytes, big-endian Unix milliseconds, before the
// value). Reads hide an entry once stream time has moved ttl past its last
// write; Flush deletes such entries, so the deletes go to the changelog and
// every replica (and a restore) agrees. Stream time, not the wall clock,
// decides, as it does for windows: reprocessing gives the same result.
type expiring struct {
	inner  KeyValueBytesStore
	ttl    time.Duration
	clock  TimeSource
	cursor []byte // where the next sweep starts; nil: the beginning
	buf    []byte
}

const ttlHeader = 8

func (e *expiring) Name() string { return e.inner.Name() }

func (e *expiring) expired(stored []byte, now time.Time) bool {
	if len(stored) < ttlHeader {
		return true // not written by this layer: treat as gone
	}
	written := time.UnixMilli(int64(binary.BigEndian.Uint64(stored)))
	return now.Sub(written) >= e.ttl
}

func (e *expiring) Get(key []byte) ([]byte, bool, error) {
	v, found, err := e.inner.Get(key)
	if err != nil || !found {
		return nil, false, err
	}
	if e.expired(v, e.clock.StreamTime()) {
		return nil, false, nil
	}
	return v[ttlHeader:], true, nil
}

func (e *expiring) Put(key, value []byte) error {
	if value == nil {
		return e.inner.Put(key, nil)
	}
	e.buf = binary.BigEndian.AppendUint64(e.buf[:0], uint64(e.clock.StreamTime().UnixMilli()))
	e.buf = append(e.buf, value...)
	return e.inner.Put(key, e.buf)
}

func (e *expiring) Delete(key []byte) error { return e.inner.Put(key, nil) }

func (e *expiring) Range(from, to []byte) Iterator {
	return e.live(e.inner.Range(from, to))
}

func (e *expiring) ReverseRange(from, to []byte) Iterator {
	return e.live(e.inner.ReverseRange(from, to))
}

func (e *expiring) PrefixScan(prefix []byte) Iterator {
	return e.live(e.inner.PrefixScan(prefix))
}

func (e *expiring) ApproximateCount() (int64, error) { return e.inner.ApproximateCount() }

func (e *expiring) live(it Iterator) Iterator {
	return &liveIterator{Iterator: it, e: e, now: e.clock.StreamTime()}
}

// Flush sweeps part of the store for expired entries, deletes them, then
// flushes the layers below.
func (e *expiring) Flush() error {
	if err := e.sweep(); err != nil {
		return err
	}
	return e.inner.Flush()
}

func (e *expiring) sweep() error {
	now := e.clock.StreamTime()
	it := e.inner.Range(e.cursor, nil)
	var dead [][]byte
	n := 0
	done := true
	for it.Next() {
		if n == ttlSweepPerFlush {
			e.cursor = append(e.cursor[:0], it.Key()...)
			done = false
			break
		}
		n++
		if e.expired(it.Value(), now) {
			dead = append(dead, append([]byte{}, it.Key()...)) // the empty key is a key: not nil
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if done {
		e.cursor = nil
	}
	for _, k := range dead {
		if err := e.inner.Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

func (e *expiring) setFlushListener(fn func(key, newValue, oldValue []byte, ts time.Time) error) bool {
	fl, ok := e.inner.(flushListener)
	if !ok {
		return false
	}
	strip := func(v []byte) []byte {
		if len(v) < ttlHeader {
			return nil
		}
		return v[ttlHeader:]
	}
	return fl.setFlushListener(func(key, nv, ov []byte, ts time.Time) error {
		return fn(key, strip(nv), strip(ov), ts)
	})
}

func (e *expiring) Close() error { return e.inner.Close() }

// liveIterator skips expired entries and strips the time header.
type liveIterator struct {
	Iterator
	e   *expiring
	now time.Time
}

func (it *liveIterator) Next() bool {
	for it.Iterator.Next() {
		if !it.e.expired(it.Iterator.Value(), it.now) {
			return true
		}
	}
	return false
}

func (it *liveIterator) Value() []byte { return it.Iterator.Value()[ttlHeader:] }

func (e *expiring) DeleteRange(from, to []byte) error { return e.inner.DeleteRange(from, to) }
