package pebble

import (
	"bytes"
	"errors"
	"io"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
)

// view is one store-partition of the engine: through a batch (reads see
// the batch over the DB, writes go to the batch) or, when batch is nil, a
// read-only Reader of the DB. Keys are translated by prepending the
// store-partition's prefix, and iterators are bounded to its range.
type view struct {
	engine *Engine
	batch  *batch // nil for a Reader
	sp     state.StorePartition
	prefix []byte // dataPrefix(sp), capacity capped: appending copies
	end    []byte // state.PrefixEnd(prefix): the end of sp's range
	// pending holds the view's writes of the interval while the batch has
	// no indexed batch (see batch).
	pending pending
	ov      *overlay // sp's committed writes not yet in pebble
}

var _ state.KeyValueBytesStore = (*view)(nil)

func newView(e *Engine, b *batch, sp state.StorePartition) *view {
	p := dataPrefix(sp)
	return &view{
		engine:  e,
		batch:   b,
		sp:      sp,
		prefix:  p[:len(p):len(p)],
		end:     state.PrefixEnd(p),
		pending: pending{index: map[string]int{}},
		ov:      e.overlay(sp),
	}
}

func (v *view) Name() string { return v.sp.Store }

// emptyValue is returned for an empty value, which pebble may return as nil.
var emptyValue = []byte{}

// Get returns a copy of the value: pebble's is valid only until its closer
// is closed.
func (v *view) Get(key []byte) ([]byte, bool, error) {
	if key == nil {
		return nil, false, spErrorf("get", v.sp, state.ErrNullKey)
	}
	var (
		val    []byte
		closer io.Closer
		err    error
	)
	if b := v.batch; b != nil {
		if b.closed {
			return nil, false, spErrorf("get", v.sp, state.ErrClosed)
		}
		if b.err != nil {
			return nil, false, spErrorf("get", v.sp, b.err)
		}
		if b.cur == nil {
			// The interval's writes, then the committed ones not yet in
			// pebble. With an indexed batch, the overlay is empty.
			if len(v.pending.writes) > 0 {
				if val, found, deleted := v.pending.get(key); found {
					return val, !deleted, nil
				}
			}
			if val, found, deleted := v.ov.get(key); found {
				return val, !deleted, nil
			}
		}
		b.key = append(append(b.key[:0], v.prefix...), key...)
		switch {
		case b.cur != nil && !b.cur.b.Empty():
			val, closer, err = b.cur.b.Get(b.key)
		default:
			// The batch is open, so the engine is.
			val, closer, err = v.engine.db.Get(b.key)
		}
	} else {
		if err := v.engine.rlock("get", v.sp); err != nil {
			return nil, false, err
		}
		defer v.engine.mu.RUnlock()
		if val, found, deleted := v.ov.get(key); found {
			return val, !deleted, nil
		}
		val, closer, err = v.engine.db.Get(append(v.prefix, key...))
	}
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, spErrorf("get", v.sp, err)
	}
	out := make([]byte, len(val))
	copy(out, val)
	closer.Close()
	return out, true, nil
}

func (v *view) Put(key, value []byte) error {
	if value == nil {
		return v.write("put", key, nil, true)
	}
	return v.write("put", key, value, false)
}

func (v *view) Delete(key []byte) error { return v.write("delete", key, nil, true) }

func (v *view) write(op string, key, value []byte, del bool) error {
	b := v.batch
	switch {
	case b == nil:
		return spErrorf(op, v.sp, state.ErrReadOnly)
	case key == nil:
		return spErrorf(op, v.sp, state.ErrNullKey)
	case b.closed:
		return spErrorf(op, v.sp, state.ErrClosed)
	}
	// pebble copies key and value into the batch: one scratch key serves
	// every write.
	b.n++
	if b.cur == nil {
		if len(v.pending.writes) == 0 {
			b.touched = append(b.touched, v)
		}
		v.pending.log(key, value, del)
		return nil
	}
	b.key = append(append(b.key[:0], v.prefix...), key...)
	var err error
	if del {
		err = b.cur.b.Delete(b.key, nil)
	} else {
		err = b.cur.b.Set(b.key, value, nil)
	}
	if err != nil {
		return spErrorf(op, v.sp, err)
	}
	return nil
}

func (v *view) Range(from, to []byte) state.Iterator {
	return v.iterate("range", from, to, false)
}

func (v *view) ReverseRange(from, to []byte) state.Iterator {
	return v.iterate("reverse range", from, to, true)
}

func (v *view) PrefixScan(prefix []byte) state.Iterator {
	var from []byte
	if len(prefix) > 0 {
		from = prefix
	}
	// A nil end (prefix empty or all 0xFF) runs to the end of sp's range.
	return v.iterate("prefix scan", from, state.PrefixEnd(prefix), false)
}

// iterate opens a pebble iterator bounded to [prefix+from, prefix+to), or
// to sp's range for nil bounds. A pebble iterator is a snapshot of the DB
// (and of a batch's writes) as of its creation.
func (v *view) iterate(op string, from, to []byte, reverse bool) state.Iterator {
	emptyRange := (to != nil && len(to) == 0) || (from != nil && to != nil && bytes.Compare(from, to) >= 0)
	opts := &pebbledb.IterOptions{LowerBound: v.prefix, UpperBound: v.end}
	if from != nil {
		opts.LowerBound = append(v.prefix, from...)
	}
	if to != nil {
		opts.UpperBound = append(v.prefix, to...)
	}
	it := &iterator{sp: v.sp, plen: len(v.prefix), reverse: reverse}
	if b := v.batch; b != nil {
		if b.closed {
			return state.ErrIterator(spErrorf(op, v.sp, state.ErrClosed))
		}
		if b.err != nil {
			return state.ErrIterator(spErrorf(op, v.sp, b.err))
		}
		if emptyRange {
			return state.ErrIterator(nil)
		}
		ib, err := b.indexedBatch()
		if err != nil {
			return state.ErrIterator(spErrorf(op, v.sp, err))
		}
		pi, err := ib.b.NewIter(opts)
		if err != nil {
			return state.ErrIterator(spErrorf(op, v.sp, err))
		}
		ib.iters++
		b.iters[it] = struct{}{}
		it.pi, it.release = pi, func() {
			delete(b.iters, it)
			ib.unref()
		}
		return it
	}
	e := v.engine
	if err := e.rlock(op, v.sp); err != nil {
		return state.ErrIterator(err)
	}
	defer e.mu.RUnlock()
	if emptyRange {
		return state.ErrIterator(nil)
	}
	// pebble merges what it has: the committed writes it lacks go first.
	if err := e.flush(v.ov); err != nil {
		return state.ErrIterator(err)
	}
	pi, err := e.db.NewIter(opts)
	if err != nil {
		return state.ErrIterator(spErrorf(op, v.sp, err))
	}
	e.iters.Add(1)
	it.pi, it.release = pi, func() { e.iters.Add(-1) }
	return it
}

// ApproximateCount is exact: it counts the keys of sp's range (through the
// batch, for a batch view) with an iterator, reading keys only. It costs a
// scan of the store-partition, so call it rarely (metrics, tests) on large
// stores.
func (v *view) ApproximateCount() (int64, error) {
	it := v.iterate("count", nil, nil, false)
	var n int64
	for it.Next() {
		n++
	}
	return n, it.Close()
}

// Flush does nothing: a batch view's writes belong to the batch, and a
// Reader has none. It reports a closed batch or engine.
func (v *view) Flush() error {
	if v.batch != nil {
		if v.batch.closed {
			return spErrorf("flush", v.sp, state.ErrClosed)
		}
		return nil
	}
	if err := v.engine.rlock("flush", v.sp); err != nil {
		return err
	}
	v.engine.mu.RUnlock()
	return nil
}

// Close does nothing: the batch, or the engine, owns the state.
func (v *view) Close() error { return nil }

// iterator wraps a pebble iterator, stripping the store-partition prefix
// from its keys.
type iterator struct {
	pi      *pebbledb.Iterator // nil once finished
	release func()             // called once, when pi is closed
	sp      state.StorePartition
	plen    int
	reverse bool
	started bool
	err     error
}

var _ state.Iterator = (*iterator)(nil)

func (it *iterator) Next() bool {
	if it.pi == nil {
		return false
	}
	var ok bool
	switch {
	case !it.started:
		it.started = true
		if it.reverse {
			ok = it.pi.Last()
		} else {
			ok = it.pi.First()
		}
	case it.reverse:
		ok = it.pi.Prev()
	default:
		ok = it.pi.Next()
	}
	if !ok {
		// Release the pebble iterator (and its snapshot) at the end.
		it.finish(nil)
	}
	return ok
}

// finish closes the pebble iterator, recording cause, or the pebble
// iterator's error, as the iteration's error.
func (it *iterator) finish(cause error) {
	if err := it.pi.Close(); err != nil && cause == nil {
		cause = spErrorf("iterate", it.sp, err)
	}
	if it.err == nil {
		it.err = cause
	}
	it.pi = nil
	it.release()
}

func (it *iterator) Key() []byte {
	if it.pi == nil {
		return nil
	}
	return it.pi.Key()[it.plen:]
}

func (it *iterator) Value() []byte {
	if it.pi == nil {
		return nil
	}
	val, err := it.pi.ValueAndErr()
	if err != nil {
		it.finish(spErrorf("iterate", it.sp, err))
		return nil
	}
	if val == nil {
		return emptyValue
	}
	return val
}

func (it *iterator) Err() error { return it.err }

func (it *iterator) Close() error {
	if it.pi != nil {
		it.finish(nil)
	}
	return it.err
}

// DeleteRange deletes the keys of the view in [from, to).
func (v *view) DeleteRange(from, to []byte) error {
	if v.batch == nil {
		return spErrorf("delete range", v.sp, state.ErrReadOnly)
	}
	if v.batch.closed {
		return spErrorf("delete range", v.sp, state.ErrClosed)
	}
	return state.DeleteEach(v, from, to)
}
