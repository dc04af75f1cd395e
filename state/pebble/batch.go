package pebble

import (
	"fmt"

	"github.com/gregorstream/gregor/state"
)

// batch is the pebble state.Batch. It is used by one goroutine, with its
// views and iterators, so its fields need no lock.
//
// The writes of an interval wait in the pending writes of each view: the
// last write of each key, indexed by a Go map, which Get reads before the
// overlay and the DB, and the interval's range deletes. A Go map costs a
// write a fraction of what a sorted structure does, and most intervals of
// key-value stores see no iterator. An iterator merges the pending writes,
// the overlay and the DB (merge.go) without moving anything: the first one
// of an interval sorts the view's pending writes into a B-tree, kept up to
// date by the interval's later writes, and every iterator reads a clone of
// it, a snapshot that costs O(1).
//
// Commit merges the pending writes and the checkpoints into the overlays of
// their store-partitions (overlay.go), and flushes the batch's overlays to
// pebble once they hold more than its share of the overlay budget.
type batch struct {
	engine  *Engine
	closed  bool
	touched []*view // the views with pending writes
	n       int     // Put, Delete and DeleteRange calls since the last Commit or Abort
	views   map[state.StorePartition]*view
	iters   map[*merged]struct{}  // open iterators, closed by Close
	key     []byte                // scratch: a prefixed key, copied by pebble
	owned   map[*overlay]struct{} // the overlays the batch committed to since it last flushed them
}

func (b *batch) resetPending() {
	for _, v := range b.touched {
		v.pending.reset()
		v.touched = false
	}
	clear(b.touched)
	b.touched = b.touched[:0]
}

var _ state.Batch = (*batch)(nil)

func (b *batch) Store(sp state.StorePartition) state.KeyValueBytesStore {
	v := b.views[sp]
	if v == nil {
		v = newView(b.engine, b, sp)
		b.views[sp] = v
	}
	return v
}

// overlays returns the overlays the batch owns.
func (b *batch) overlays() []*overlay {
	ovs := make([]*overlay, 0, len(b.owned))
	for ov := range b.owned {
		ovs = append(ovs, ov)
	}
	return ovs
}

// overlayOf returns sp's overlay.
func (b *batch) overlayOf(sp state.StorePartition) *overlay {
	if v := b.views[sp]; v != nil {
		return v.ov
	}
	return b.engine.overlay(sp)
}

// commitToOverlays merges the pending writes and the checkpoints into the
// overlays, and flushes the batch's overlays if they hold more than its
// share of the overlay budget.
func (b *batch) commitToOverlays(checkpoints map[state.StorePartition]int64) error {
	for _, v := range b.touched {
		v.ov.mu.Lock()
		v.ov.merge(&v.pending)
		v.ov.mu.Unlock()
		b.owned[v.ov] = struct{}{}
	}
	for sp, next := range checkpoints {
		ov := b.overlayOf(sp)
		ov.mu.Lock()
		ov.cp, ov.hasCP = next, true
		ov.mu.Unlock()
		b.owned[ov] = struct{}{}
	}
	mem := 0
	for ov := range b.owned {
		mem += ov.mem()
	}
	e := b.engine
	if int64(mem) < e.overlayBudget/max(1, e.batches.Load()) {
		return nil
	}
	return b.flushOwned()
}

// flushOwned flushes the overlays the batch owns.
func (b *batch) flushOwned() error {
	if len(b.owned) == 0 {
		return nil
	}
	if err := b.engine.flush(b.overlays()...); err != nil {
		return err
	}
	clear(b.owned)
	return nil
}

// Len is the number of Put, Delete and DeleteRange calls since the last
// Commit or Abort.
func (b *batch) Len() int {
	if b.closed {
		return 0
	}
	return b.n
}

// Commit merges the pending writes and the checkpoints into the overlays,
// which reach pebble, each overlay's data and checkpoint in one pebble
// batch, without fsync (see the package documentation), when they outgrow
// the batch's share of the overlay budget. It then empties the batch;
// iterators already open keep their snapshot. On error the batch is emptied
// too: the checkpoints did not move, so restoring from the changelog makes
// up for the lost writes.
func (b *batch) Commit(checkpoints map[state.StorePartition]int64) error {
	if b.closed {
		return fmt.Errorf("pebble: commit batch: %w", state.ErrClosed)
	}
	e := b.engine
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed { // cannot happen: Close refuses while batches are open
		return fmt.Errorf("pebble: commit batch: %w", state.ErrClosed)
	}
	err := b.commitToOverlays(checkpoints)
	b.renew()
	if err != nil {
		return fmt.Errorf("pebble: commit batch: %w", err)
	}
	return nil
}

// renew empties the batch. Open iterators keep their snapshots.
func (b *batch) renew() {
	b.resetPending()
	b.n = 0
}

// Abort drops the pending writes; iterators already open keep their
// snapshot.
func (b *batch) Abort() {
	if !b.closed {
		b.renew()
	}
}

// Close drops the pending writes, closes the batch's open iterators, which
// then fail with state.ErrClosed, and flushes the batch's overlays to
// pebble. Close is idempotent.
func (b *batch) Close() error {
	if b.closed {
		return nil
	}
	for it := range b.iters {
		it.finish(spErrorf("iterate", it.sp, state.ErrClosed))
	}
	b.renew()
	b.closed = true
	e := b.engine
	e.mu.RLock()
	err := b.flushOwned()
	e.mu.RUnlock()
	e.batches.Add(-1)
	if err != nil {
		return fmt.Errorf("pebble: close batch: %w", err)
	}
	return nil
}
