package pebble

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/google/btree"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/spans"
)

// overlay holds the committed writes and checkpoint of one store-partition
// that have not reached pebble yet: the write-back half of the engine.
//
// A batch's Commit merges its interval's pending writes into the overlays
// of their store-partitions and records the checkpoints there, and writes
// to pebble only once the batch's overlays hold more than its share of the
// engine's overlay budget (WithMemory). A key updated in many intervals then
// costs one pebble write per flush instead of one per commit: the memtable
// insert of a commit is most of a read-modify-write's cost (a skiplist
// insert with a cache miss per level), and a Go map overwrites in place.
//
// Reads see the overlay between the batch's pending writes and the DB;
// Checkpoint reads its checkpoint first. Iterators merge a snapshot of it
// with the DB (snapshot, merge.go) and leave it in place; a restore, whose
// records must win over it, and Close flush it first, and Drop empties it.
// A range delete committed to it hides the DB's keys in the range until a
// flush writes it to pebble as a range tombstone. A flush writes an overlay's data and
// checkpoint in one pebble batch, so the DB is always at some commit of each
// store-partition, as before: a crash loses the overlay as it loses
// pebble's unsynced WAL tail, and restoring from the checkpoint on disk
// catches up from the changelog.
//
// An overlay is written by the batch of the task that owns the
// store-partition and read by it and by Reader views of any goroutine,
// hence its lock.
type overlay struct {
	sp     state.StorePartition
	prefix []byte // dataPrefix(sp), capacity capped

	mu    sync.RWMutex
	data  pending // REQUIRES: mu
	cp    int64   // REQUIRES: mu
	hasCP bool    // REQUIRES: mu; cp is newer than the DB's checkpoint
}

// overlay returns sp's overlay, creating it. Overlays are never removed:
// there is one per store-partition the process ever held, and an empty one
// is a few words.
func (e *Engine) overlay(sp state.StorePartition) *overlay {
	e.ovMu.Lock()
	defer e.ovMu.Unlock()
	ov := e.overlays[sp]
	if ov == nil {
		p := dataPrefix(sp)
		ov = &overlay{sp: sp, prefix: p[:len(p):len(p)], data: pending{index: map[string]int{}}}
		e.overlays[sp] = ov
	}
	return ov
}

// snapshot returns a clone of the overlay's sorted writes and its range
// deletes, or a nil tree when the overlay has neither, and opens the DB
// iterator under the overlay's lock, so that no flush comes between the two
// snapshots.
func (ov *overlay) snapshot(open func() (*pebbledb.Iterator, error)) (*btree.BTreeG[item], spans.Set, *pebbledb.Iterator, error) {
	ov.mu.Lock()
	defer ov.mu.Unlock()
	pi, err := open()
	if err != nil || ov.data.empty() {
		return nil, nil, pi, err
	}
	return ov.data.snapshot(), ov.data.ranges, pi, nil
}

// get returns a copy of key's value in the overlay; found reports whether
// the overlay has key, deleted whether as a delete.
func (ov *overlay) get(key []byte) (value []byte, found, deleted bool) {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	if ov.data.empty() {
		return nil, false, false
	}
	return ov.data.lookup(key) // an overlay's writes are all indexed
}

// checkpoint returns the overlay's checkpoint, if it has one the DB lacks.
func (ov *overlay) checkpoint() (int64, bool) {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	return ov.cp, ov.hasCP
}

// merge adds src's range deletes, then its writes, the later ones, to the
// overlay. REQUIRES: ov.mu.
func (ov *overlay) merge(src *pending) {
	for _, r := range src.ranges {
		ov.data.deleteRange(r.From, r.To)
	}
	for _, w := range src.writes {
		if !w.dead {
			ov.data.set(w.key, src.values[w.off:w.off+w.n], w.del)
		}
	}
}

// empty reports whether the overlay holds nothing. REQUIRES: ov.mu.
func (ov *overlay) empty() bool { return ov.data.empty() && !ov.hasCP }

// mem estimates the memory the overlay holds.
func (ov *overlay) mem() int {
	ov.mu.RLock()
	defer ov.mu.RUnlock()
	return ov.data.mem()
}

// reset empties the overlay. REQUIRES: ov.mu.
func (ov *overlay) reset() {
	ov.data.reset()
	ov.cp, ov.hasCP = 0, false
}

// flush writes the overlays' data, in key order, and checkpoints to pebble
// in one batch, then empties them. REQUIRES: e.mu held (for reading), or a
// batch open (Close refuses to close the DB under one); no overlay lock
// held. Overlays are locked in prefix order, the only order in
// which more than one is ever held.
func (e *Engine) flush(ovs ...*overlay) error {
	if len(ovs) > 1 {
		slices.SortFunc(ovs, func(x, y *overlay) int { return bytes.Compare(x.prefix, y.prefix) })
	}
	for _, ov := range ovs {
		ov.mu.Lock()
		defer ov.mu.Unlock()
	}
	size := batchHeader
	for _, ov := range ovs {
		size += ov.data.size(len(ov.prefix)) + recordOverhead + len(ov.prefix) + 8
	}
	if allEmpty(ovs) {
		return nil
	}
	wb := e.db.NewBatchWithSize(size)
	defer wb.Close()
	// Writing sorts each overlay's writes, which voids its index: on
	// failure, the overlays keep their data (still committed state, to be
	// flushed later) with their index rebuilt.
	ok := false
	defer func() {
		if !ok {
			for _, ov := range ovs {
				ov.data.reindex()
			}
		}
	}()
	var key []byte
	for _, ov := range ovs {
		if ov.empty() {
			continue
		}
		key = append(key[:0], ov.prefix...)
		if err := ov.data.write(wb, key, state.PrefixEnd(ov.prefix)); err != nil {
			return spErrorf("flush", ov.sp, err)
		}
		if ov.hasCP {
			var off [8]byte
			binary.BigEndian.PutUint64(off[:], uint64(ov.cp))
			if err := wb.Set(checkpointKey(ov.sp), off[:], nil); err != nil {
				return spErrorf("flush", ov.sp, err)
			}
		}
	}
	if err := wb.Commit(pebbledb.NoSync); err != nil {
		return spErrorf("flush", ovs[0].sp, err)
	}
	ok = true
	e.flushes.Add(1)
	for _, ov := range ovs {
		ov.reset()
	}
	return nil
}

// allEmpty reports whether no overlay holds anything. REQUIRES: their locks.
func allEmpty(ovs []*overlay) bool {
	for _, ov := range ovs {
		if !ov.empty() {
			return false
		}
	}
	return true
}

// flushAll flushes every overlay. REQUIRES: e.mu held.
func (e *Engine) flushAll() error {
	e.ovMu.Lock()
	ovs := make([]*overlay, 0, len(e.overlays))
	for _, ov := range e.overlays {
		ovs = append(ovs, ov)
	}
	e.ovMu.Unlock()
	return e.flush(ovs...)
}
