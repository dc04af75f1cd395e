package memory

import (
	"fmt"
	"slices"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/spans"
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
	// ranges holds the range deletes of each store-partition. Every
	// overlay entry is newer than its store-partition's ranges: a range
	// delete removes the overlay's entries it holds (see DeleteRange).
	// Sets are immutable, so an iterator keeps the one it started with.
	ranges map[state.StorePartition]spans.Set
	views  map[state.StorePartition]*batchView
	writes int
	closed bool
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
		s := e.storeLocked(sp)
		for _, r := range b.ranges[sp] {
			s.DeleteRange(r.From, r.To)
		}
		s.apply(o)
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
	b.writes = 0
	if len(b.overlays) == 0 && b.overlays != nil {
		return
	}
	b.overlays = map[state.StorePartition]*Store{} // open iterators keep the old overlays
	b.ranges = map[state.StorePartition]spans.Set{}
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
	b.overlays, b.ranges = nil, nil
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
	if v.batch.ranges[v.sp].Covers(key) {
		return nil, false, nil
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
	return v.iterate("range", from, to, false)
}

func (v *batchView) ReverseRange(from, to []byte) state.Iterator {
	return v.iterate("reverse range", from, to, true)
}

func (v *batchView) PrefixScan(prefix []byte) state.Iterator {
	var from []byte
	if len(prefix) > 0 {
		from = prefix
	}
	return v.iterate("prefix scan", from, state.PrefixEnd(prefix), false)
}

// iterate merges an iterator over the overlay with one over the committed
// state in [from, to), less the batch's range deletes: the committed one
// chains iterators over the gaps that the range deletes leave, so deleted
// keys cost nothing. Both are snapshots: the overlay's (and its range
// deletes) taken here, the committed one under the engine's lock.
func (v *batchView) iterate(op string, from, to []byte, reverse bool) state.Iterator {
	b := v.batch
	if b.closed {
		return state.ErrIterator(spErrorf(op, v.sp, state.ErrClosed))
	}
	open := func(s *Store, from, to []byte) state.Iterator {
		if reverse {
			return s.ReverseRange(from, to)
		}
		return s.Range(from, to)
	}
	over := state.ErrIterator(nil) // no entries
	if o := b.overlays[v.sp]; o != nil {
		over = open(o, from, to)
	}
	var base state.Iterator
	if ranges := b.ranges[v.sp]; len(ranges) > 0 {
		gaps := ranges.Gaps(from, to)
		if reverse {
			slices.Reverse(gaps)
		}
		base = b.engine.committedIter(op, v.sp, func(s *Store) state.Iterator {
			its := make([]state.Iterator, len(gaps))
			for i, g := range gaps {
				its[i] = open(s, g.From, g.To)
			}
			return &chainIter{its: its}
		})
	} else {
		base = b.engine.committedIter(op, v.sp, func(s *Store) state.Iterator { return open(s, from, to) })
	}
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
	if len(b.ranges[v.sp]) > 0 {
		it := v.iterate("count", nil, nil, false)
		var n int64
		for it.Next() {
			n++
		}
		return n, it.Close()
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

// DeleteRange removes the overlay's keys in [from, to) and records the
// range delete, which hides the committed keys in the range from the
// batch's reads and removes them from the committed state at Commit: no
// per-key tombstone.
func (v *batchView) DeleteRange(from, to []byte) error {
	b := v.batch
	if b.closed {
		return spErrorf("delete range", v.sp, state.ErrClosed)
	}
	b.writes++
	if spans.Empty(from, to) {
		return nil
	}
	if err := b.overlay(v.sp).DeleteRange(from, to); err != nil {
		return err
	}
	b.ranges[v.sp] = b.ranges[v.sp].Add(from, to)
	return nil
}

// chainIter iterates its iterators one after the other.
type chainIter struct {
	its []state.Iterator
	err error
}

func (c *chainIter) Next() bool {
	for len(c.its) > 0 {
		if c.its[0].Next() {
			return true
		}
		if err := c.its[0].Close(); err != nil {
			c.err = err
			c.Close()
			return false
		}
		c.its = c.its[1:]
	}
	return false
}

func (c *chainIter) Key() []byte {
	if len(c.its) == 0 {
		return nil
	}
	return c.its[0].Key()
}

func (c *chainIter) Value() []byte {
	if len(c.its) == 0 {
		return nil
	}
	return c.its[0].Value()
}

func (c *chainIter) Err() error { return c.err }

func (c *chainIter) Close() error {
	for _, it := range c.its {
		it.Close()
	}
	c.its = nil
	return c.err
}
