package memory

import (
	"fmt"

	"github.com/gregorstream/gregor/state"
)

// A batch keeps its pending writes to each store-partition in an overlay: a
// Store whose values carry a one-byte tag, so that a delete is an entry (a
// tombstone) that hides the committed key.
const (
	tagTombstone byte = 0 // the key is deleted; nothing follows the tag
	tagPut       byte = 1 // the value follows the tag
)

// set stores key with a tagged value. Like Put, it copies both.
func (s *Store) set(key []byte, tag byte, value []byte) error {
	buf := make([]byte, len(key)+1+len(value))
	n := copy(buf, key)
	buf[n] = tag
	copy(buf[n+1:], value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return s.errorf("put", state.ErrClosed)
	}
	s.tree.ReplaceOrInsert(entry{key: buf[:n:n], value: buf[n:]})
	return nil
}

// batch is the memory state.Batch: one overlay per store-partition written
// to. It is used by one goroutine, so its fields need no lock.
type batch struct {
	engine *Engine
	// INVARIANT: overlays is nil if and only if closed is set.
	overlays map[state.StorePartition]*Store
	views    map[state.StorePartition]*batchView
	writes   int
	closed   bool
}

var _ state.Batch = (*batch)(nil)

func (b *batch) Store(sp state.StorePartition) state.KeyValueBytesStore {
	v := b.views[sp]
	if v == nil {
		v = &batchView{batch: b, sp: sp}
		b.views[sp] = v
	}
	return v
}

func (b *batch) Len() int { return b.writes }

// Commit applies every overlay and the checkpoints under the engine's lock,
// then empties the batch. Iterators already open keep their snapshot.
func (b *batch) Commit(checkpoints map[state.StorePartition]int64) error {
	if b.closed {
		return fmt.Errorf("memory: commit batch: %w", state.ErrClosed)
	}
	e := b.engine
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("memory: commit batch: %w", state.ErrClosed)
	}
	for sp, o := range b.overlays {
		e.storeLocked(sp).apply(o)
	}
	for sp, off := range checkpoints {
		e.checkpoints[sp] = off
	}
	b.reset()
	return nil
}

// reset empties the batch. The old overlays are left to the iterators that
// still read them, and to the garbage collector.
func (b *batch) reset() {
	if len(b.overlays) == 0 && b.overlays != nil {
		b.writes = 0
		return
	}
	b.overlays = map[state.StorePartition]*Store{} // open iterators keep the old overlays
	b.writes = 0
}

func (b *batch) Abort() {
	if !b.closed {
		b.reset()
	}
}

// Close drops the pending writes; the batch's open iterators then fail with
// state.ErrClosed. Close is idempotent.
func (b *batch) Close() error {
	if b.closed {
		return nil
	}
	for _, o := range b.overlays {
		o.Close()
	}
	b.overlays = nil
	b.writes = 0
	b.closed = true
	b.engine.mu.Lock()
	b.engine.batches--
	b.engine.mu.Unlock()
	return nil
}

// overlay returns sp's overlay, creating it for a write.
func (b *batch) overlay(sp state.StorePartition) *Store {
	o := b.overlays[sp]
	if o == nil {
		o = New(sp.Store)
		b.overlays[sp] = o
	}
	return o
}

// batchView is one store-partition seen through a batch: the overlay over
// the committed state.
type batchView struct {
	batch *batch
	sp    state.StorePartition
}

var _ state.KeyValueBytesStore = (*batchView)(nil)

func (v *batchView) Name() string { return v.sp.Store }

func (v *batchView) Get(key []byte) ([]byte, bool, error) {
	if key == nil {
		return nil, false, spErrorf("get", v.sp, state.ErrNullKey)
	}
	if v.batch.closed {
		return nil, false, spErrorf("get", v.sp, state.ErrClosed)
	}
	if o := v.batch.overlays[v.sp]; o != nil {
		tagged, found, err := o.Get(key)
		if err != nil {
			return nil, false, err
		}
		if found {
			if tagged[0] == tagTombstone {
				return nil, false, nil
			}
			return tagged[1:], true, nil
		}
	}
	return v.batch.engine.committedGet("get", v.sp, key)
}

func (v *batchView) Put(key, value []byte) error {
	if value == nil {
		return v.write("put", key, tagTombstone, nil)
	}
	return v.write("put", key, tagPut, value)
}

func (v *batchView) Delete(key []byte) error {
	return v.write("delete", key, tagTombstone, nil)
}

func (v *batchView) write(op string, key []byte, tag byte, value []byte) error {
	if key == nil {
		return spErrorf(op, v.sp, state.ErrNullKey)
	}
	if v.batch.closed {
		return spErrorf(op, v.sp, state.ErrClosed)
	}
	if err := v.batch.overlay(v.sp).set(key, tag, value); err != nil {
		return err
	}
	v.batch.writes++
	return nil
}

func (v *batchView) Range(from, to []byte) state.Iterator {
	return v.iterate("range", false, func(s *Store) state.Iterator { return s.Range(from, to) })
}

func (v *batchView) ReverseRange(from, to []byte) state.Iterator {
	return v.iterate("reverse range", true, func(s *Store) state.Iterator { return s.ReverseRange(from, to) })
}

func (v *batchView) PrefixScan(prefix []byte) state.Iterator {
	return v.iterate("prefix scan", false, func(s *Store) state.Iterator { return s.PrefixScan(prefix) })
}

// iterate merges an iterator over the overlay with one over the committed
// state, both opened by open with the same bounds. Both are snapshots: the
// overlay's is taken here, the committed one under the engine's lock.
func (v *batchView) iterate(op string, reverse bool, open func(*Store) state.Iterator) state.Iterator {
	b := v.batch
	if b.closed {
		return state.ErrIterator(spErrorf(op, v.sp, state.ErrClosed))
	}
	over := state.ErrIterator(nil) // no entries
	if o := b.overlays[v.sp]; o != nil {
		over = open(o)
	}
	base := b.engine.committedIter(op, v.sp, open)
	return &mergeIter{
		over: over, base: base, reverse: reverse,
		closedErr: func() error {
			if b.closed {
				return spErrorf("iterate", v.sp, state.ErrClosed)
			}
			return nil
		},
	}
}

// ApproximateCount is exact: the committed count, corrected by looking up
// each overlay entry in the committed state.
func (v *batchView) ApproximateCount() (int64, error) {
	b := v.batch
	if b.closed {
		return 0, spErrorf("count", v.sp, state.ErrClosed)
	}
	e := b.engine
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return 0, spErrorf("count", v.sp, state.ErrClosed)
	}
	committed := e.stores[v.sp]
	var n int64
	if committed != nil {
		committed.mu.RLock()
		defer committed.mu.RUnlock()
		n = int64(committed.tree.Len())
	}
	o := b.overlays[v.sp]
	if o == nil {
		return n, nil
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	o.tree.Ascend(func(en entry) bool {
		present := committed != nil && committed.tree.Has(entry{key: en.key})
		switch {
		case en.value[0] == tagPut && !present:
			n++
		case en.value[0] == tagTombstone && present:
			n--
		}
		return true
	})
	return n, nil
}

// Flush does nothing: the batch owns the writes. It reports a closed batch.
func (v *batchView) Flush() error {
	if v.batch.closed {
		return spErrorf("flush", v.sp, state.ErrClosed)
	}
	return nil
}

// Close does nothing: the batch owns the writes.
func (v *batchView) Close() error { return nil }

// DeleteRange writes a tombstone for every key the batch's view has in
// [from, to).
func (v *batchView) DeleteRange(from, to []byte) error {
	if v.batch.closed {
		return spErrorf("delete range", v.sp, state.ErrClosed)
	}
	return state.DeleteEach(v, from, to)
}
