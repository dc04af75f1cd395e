package pebble

import (
	"encoding/binary"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
)

// indexed is a pebble indexed batch with the count of the iterators open on
// it. An iterator reads the batch's memory, so a batch with open iterators
// is never reset: Commit and Abort retire it instead, and its last iterator
// closes it.
type indexed struct {
	b       *pebbledb.Batch
	iters   int
	retired bool
}

func (ib *indexed) unref() {
	ib.iters--
	if ib.retired && ib.iters == 0 {
		ib.b.Close()
	}
}

// batch is the pebble state.Batch. It is used by one goroutine, with its
// views and iterators, so its fields need no lock.
type batch struct {
	engine *Engine
	// INVARIANT: cur is nil if and only if closed is set.
	cur    *indexed
	closed bool
	views  map[state.StorePartition]*view
	iters  map[*iterator]struct{} // open iterators, closed by Close
	key    []byte                 // scratch: a prefixed key, copied by pebble
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

// Len is the number of Put and Delete calls since the last Commit or Abort.
func (b *batch) Len() int {
	if b.closed {
		return 0
	}
	return int(b.cur.b.Count())
}

// Commit adds the checkpoints to the pending writes and applies them all in
// one pebble commit, without fsync (see the package documentation). It then
// empties the batch; iterators already open keep their snapshot. On error the
// batch is emptied too: the checkpoints did not move, so restoring from the
// changelog makes up for the lost writes.
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
	ib := b.cur
	target := ib.b
	if ib.iters > 0 {
		// Open iterators read ib.b: commit a copy, since a large batch
		// gives its memory to the DB.
		target = e.db.NewBatchWithSize(len(ib.b.Repr()) + len(checkpoints)*64)
		defer target.Close()
		if err := target.Apply(ib.b, nil); err != nil {
			b.renew(false)
			return fmt.Errorf("pebble: commit batch: %w", err)
		}
	}
	err := b.setCheckpoints(target, checkpoints)
	if err == nil {
		err = target.Commit(pebbledb.NoSync)
	}
	b.renew(err == nil)
	if err != nil {
		return fmt.Errorf("pebble: commit batch: %w", err)
	}
	return nil
}

func (b *batch) setCheckpoints(wb *pebbledb.Batch, checkpoints map[state.StorePartition]int64) error {
	var off [8]byte
	for sp, next := range checkpoints {
		b.key = appendStorePartition(b.key[:0], tagCheckpoint, sp)
		binary.BigEndian.PutUint64(off[:], uint64(next))
		if err := wb.Set(b.key, off[:], nil); err != nil {
			return err
		}
	}
	return nil
}

// renew empties the batch: it resets the pebble batch when it can (reuse
// is cheaper) and replaces it when iterators still read it or when a commit
// failed (pebble does not reuse a batch in an unknown state).
func (b *batch) renew(reusable bool) {
	ib := b.cur
	switch {
	case ib.iters > 0:
		ib.retired = true
	case reusable:
		ib.b.Reset()
		return
	}
	b.cur = &indexed{b: b.engine.db.NewIndexedBatch()}
}

// Abort drops the pending writes; iterators already open keep their
// snapshot.
func (b *batch) Abort() {
	if !b.closed {
		b.renew(true)
	}
}

// Close drops the pending writes and closes the batch's open iterators,
// which then fail with state.ErrClosed. Close is idempotent.
func (b *batch) Close() error {
	if b.closed {
		return nil
	}
	for it := range b.iters {
		it.finish(spErrorf("iterate", it.sp, state.ErrClosed))
	}
	err := b.cur.b.Close()
	b.cur = nil
	b.closed = true
	b.engine.batches.Add(-1)
	if err != nil {
		return fmt.Errorf("pebble: close batch: %w", err)
	}
	return nil
}
