package pebble

import (
	"errors"
	"io"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/spans"
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
	// pending holds the view's writes of the interval (see batch).
	pending pending
	touched bool     // the view is in its batch's touched list
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
		// The interval's writes, then the committed ones not yet in
		// pebble, then pebble.
		if !v.pending.empty() {
			if val, found, deleted := v.pending.get(key); found {
				return val, !deleted, nil
			}
		}
		if val, found, deleted := v.ov.get(key); found {
			return val, !deleted, nil
		}
		b.key = append(append(b.key[:0], v.prefix...), key...)
		// The batch is open, so the engine is.
		val, closer, err = v.engine.db.Get(b.key)
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
	b.n++
	v.touch()
	v.pending.log(key, value, del)
	return nil
}

// touch adds the view to its batch's list of views with pending writes.
func (v *view) touch() {
	if !v.touched {
		v.touched = true
		v.batch.touched = append(v.batch.touched, v)
	}
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

// iterate opens a merged iterator (merge.go) over [from, to): for a batch
// view, a snapshot of the pending writes over a snapshot of the overlay over
// a pebble iterator bounded to [prefix+from, prefix+to) (sp's range for nil
// bounds), and for a Reader the last two. Every layer is a snapshot as of
// the iterator's creation, and nothing moves: the overlay stays where it is.
func (v *view) iterate(op string, from, to []byte, reverse bool) state.Iterator {
	opts := &pebbledb.IterOptions{LowerBound: v.prefix, UpperBound: v.end}
	if from != nil {
		opts.LowerBound = append(v.prefix, from...)
	}
	if to != nil {
		opts.UpperBound = append(v.prefix, to...)
	}
	e := v.engine
	b := v.batch
	if b != nil {
		if b.closed {
			return state.ErrIterator(spErrorf(op, v.sp, state.ErrClosed))
		}
	} else {
		if err := e.rlock(op, v.sp); err != nil {
			return state.ErrIterator(err)
		}
		defer e.mu.RUnlock()
	}
	if spans.Empty(from, to) {
		return state.ErrIterator(nil)
	}
	m := &merged{sp: v.sp, reverse: reverse, cur: -1}
	var hide spans.Set
	if b != nil && !v.pending.empty() {
		m.layers = append(m.layers, &treeLayer{snap: v.pending.snapshot(), lo: from, hi: to, reverse: reverse})
		m.hide = append(m.hide, nil)
		hide = v.pending.ranges
	}
	snap, ranges, pi, err := v.ov.snapshot(func() (*pebbledb.Iterator, error) { return e.db.NewIter(opts) })
	if err != nil {
		return state.ErrIterator(spErrorf(op, v.sp, err))
	}
	if snap != nil {
		m.layers = append(m.layers, &treeLayer{snap: snap, lo: from, hi: to, reverse: reverse})
		m.hide = append(m.hide, hide)
		hide = hide.Union(ranges)
	}
	m.layers = append(m.layers, &dbLayer{pi: pi, prefix: v.prefix, reverse: reverse})
	m.hide = append(m.hide, hide)
	m.ok, m.at = make([]bool, len(m.layers)), make([]bool, len(m.layers))
	if b != nil {
		b.iters[m] = struct{}{}
		m.release = func() { delete(b.iters, m) }
	} else {
		e.iters.Add(1)
		m.release = func() { e.iters.Add(-1) }
	}
	return m
}

// ApproximateCount is exact: it counts the keys of sp's range (through the
// batch, for a batch view) with an iterator. It costs a scan of the
// store-partition, so call it rarely (metrics, tests) on large stores.
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

// DeleteRange deletes the keys of the view in [from, to): a range delete in
// the pending writes, which hides the range's keys of the overlay and the DB
// at once, then, once committed, in the overlay, and in pebble as a range
// tombstone (pebble.Batch.DeleteRange) when the overlay is flushed. Writes
// after it in the interval survive it.
func (v *view) DeleteRange(from, to []byte) error {
	b := v.batch
	switch {
	case b == nil:
		return spErrorf("delete range", v.sp, state.ErrReadOnly)
	case b.closed:
		return spErrorf("delete range", v.sp, state.ErrClosed)
	}
	b.n++
	if spans.Empty(from, to) {
		return nil
	}
	v.touch()
	v.pending.deleteRange(from, to)
	return nil
}
