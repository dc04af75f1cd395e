package memory

import (
	"bytes"

	"github.com/google/btree"

	"github.com/gregorstream/gregor/state"
)

// Batch sizes: google/btree only iterates with callbacks, so the iterator
// pulls entries from its snapshot in batches, resuming after the last key it
// loaded. The first batch is small because many ranges (a window fetch, a
// point-ish prefix) yield a handful of entries.
const (
	firstBatch = 16
	nextBatch  = 128
)

// iterator is a state.Iterator over a snapshot (a clone) of a Store's tree.
type iterator struct {
	store   *Store
	snap    *btree.BTreeG[entry] // nil once the range is fully loaded or closed
	lo, hi  []byte               // [lo, hi); nil is unbounded
	reverse bool

	batch  []entry
	pos    int    // index of the current entry in batch
	resume []byte // key of the last entry loaded; nil before the first load
	done   bool   // snap holds nothing more in range beyond batch

	cur    entry
	err    error
	closed bool
}

var _ state.Iterator = (*iterator)(nil)

func (it *iterator) Next() bool {
	if it.closed || it.err != nil {
		return false
	}
	if it.store.closed.Load() {
		it.fail(it.store.errorf("iterate", state.ErrClosed))
		return false
	}
	if it.pos+1 < len(it.batch) {
		it.pos++
		it.cur = it.batch[it.pos]
		return true
	}
	if !it.done {
		it.load()
	}
	if len(it.batch) == 0 || it.pos+1 >= len(it.batch) {
		it.cur = entry{}
		it.batch = nil
		return false
	}
	it.pos++
	it.cur = it.batch[it.pos]
	return true
}

// load replaces batch with the next entries in range after resume.
func (it *iterator) load() {
	limit := nextBatch
	if it.resume == nil {
		limit = firstBatch
	}
	it.batch = it.batch[:0]
	it.pos = -1

	// The pivot is where the tree walk starts; skip means that an entry
	// equal to it was already returned (resume) or is out of range (hi,
	// exclusive, in reverse).
	var pivot []byte
	skip := false
	switch {
	case it.resume != nil:
		pivot, skip = it.resume, true
	case it.reverse:
		pivot, skip = it.hi, it.hi != nil
	default:
		pivot = it.lo
	}

	full := false
	first := true
	visit := func(e entry) bool {
		if first {
			first = false
			if skip && bytes.Equal(e.key, pivot) {
				return true
			}
		}
		if it.reverse {
			if it.lo != nil && bytes.Compare(e.key, it.lo) < 0 {
				return false
			}
		} else if it.hi != nil && bytes.Compare(e.key, it.hi) >= 0 {
			return false
		}
		it.batch = append(it.batch, e)
		if len(it.batch) == limit {
			full = true
			return false
		}
		return true
	}
	switch {
	case pivot == nil && it.reverse:
		it.snap.Descend(visit)
	case pivot == nil:
		it.snap.Ascend(visit)
	case it.reverse:
		it.snap.DescendLessOrEqual(entry{key: pivot}, visit)
	default:
		it.snap.AscendGreaterOrEqual(entry{key: pivot}, visit)
	}

	if len(it.batch) > 0 {
		// Stored keys are never modified, so no copy is needed.
		it.resume = it.batch[len(it.batch)-1].key
	}
	if !full {
		it.done = true
		it.snap = nil // release the snapshot early
	}
}

func (it *iterator) fail(err error) {
	it.err = err
	it.release()
}

func (it *iterator) release() {
	it.snap = nil
	it.batch = nil
	it.cur = entry{}
}

func (it *iterator) Key() []byte   { return it.cur.key }
func (it *iterator) Value() []byte { return it.cur.value }
func (it *iterator) Err() error    { return it.err }

func (it *iterator) Close() error {
	it.closed = true
	it.release()
	return it.err
}
