package state

import (
	"bytes"
	"fmt"

	"github.com/google/btree"
)

// cacheChunk is how many dirty entries a cacheIterator copies at a time.
const cacheChunk = 32

// cachedKV is a dirty entry as an iterator's snapshot has it; a nil value
// is a delete.
type cachedKV struct {
	key   []byte // in the iterator's arena
	value []byte
}

// cacheIterator merges, in key order, the dirty entries of a range with an
// iterator of the layers below over the same range: where both hold a key,
// the dirty entry wins, and a dirty delete hides the key. Clean entries
// hold what is below, so the iterator below answers for them.
//
// Both sides are snapshots taken together, when the iterator is made. The
// cache side copies the first cacheChunk dirty entries of the range then;
// only a range holding more clones the index (O(1), copy-on-write) and
// reads the rest from the clone, a chunk at a time, with the values its
// snapshot saw (see setValue). A range with no dirty entry is the iterator
// below, unwrapped.
type cacheIterator struct {
	c        *caching
	inner    Iterator
	reverse  bool
	from, to []byte

	chunk []cachedKV // the next dirty entries, from pos
	pos   int
	arena []byte // the keys of chunk
	// snap is the index as the iterator was made, holding the entries
	// after chunk; nil when chunk holds the last of them. epoch numbers it.
	snap  *btree.BTreeG[*cacheEntry]
	epoch uint64
	// pivot is where the next chunk starts: after pivot.key once after is
	// set, else at the range's bound.
	pivot cacheEntry
	after bool
	full  bool // the chunk being filled has cacheChunk entries
	// versioned says the chunk being filled comes from snap, so its
	// values are the ones snap saw, not the entries' current ones.
	versioned bool
	fill      func(*cacheEntry) bool

	innerOK              bool // inner is at an entry not yet returned
	stepInner, stepCache bool // what Next must step past first
	key, value           []byte
	err                  error
	done, closed         bool
}

// iterator returns the merge of the dirty entries in [from, to) (Range's
// rules for nil bounds) with the iterator below makes.
func (c *caching) iterator(from, to []byte, reverse bool, below func() Iterator) Iterator {
	if c.index.Len() == 0 || (to != nil && (len(to) == 0 || (from != nil && bytes.Compare(from, to) >= 0))) {
		return below()
	}
	m := &cacheIterator{c: c, reverse: reverse, from: from, to: to}
	m.fill = m.collect
	m.refill(c.index, false)
	if len(m.chunk) == 0 {
		return below()
	}
	if m.full {
		m.snap = c.index.Clone()
		c.epoch++
		m.epoch = c.epoch
		c.open++
	}
	m.inner = below()
	m.stepInner = true
	return m
}

// refill replaces the chunk with the next dirty entries of the range in
// tree; versioned says to read the values the snapshot saw.
func (m *cacheIterator) refill(tree *btree.BTreeG[*cacheEntry], versioned bool) {
	m.chunk, m.arena, m.pos, m.full = m.chunk[:0], m.arena[:0], 0, false
	m.versioned = versioned
	switch {
	case m.after:
		if m.reverse {
			tree.DescendLessOrEqual(&m.pivot, m.fill)
		} else {
			tree.AscendGreaterOrEqual(&m.pivot, m.fill)
		}
	case m.reverse && m.to == nil:
		tree.Descend(m.fill)
	case m.reverse:
		m.pivot.key = string(m.to)
		tree.DescendLessOrEqual(&m.pivot, m.fill)
	case m.from == nil:
		tree.Ascend(m.fill)
	default:
		m.pivot.key = string(m.from)
		tree.AscendGreaterOrEqual(&m.pivot, m.fill)
	}
	if n := len(m.chunk); n > 0 {
		m.pivot.key, m.after = m.chunkKey(n-1), true
	}
}

// chunkKey returns the key of the chunk's entry i as a string.
func (m *cacheIterator) chunkKey(i int) string { return string(m.chunk[i].key) }

// collect is the tree walk of refill: it adds e to the chunk while e is in
// the range and the chunk has room.
func (m *cacheIterator) collect(e *cacheEntry) bool {
	if m.reverse {
		if (m.to != nil && e.key >= string(m.to)) || (m.after && e.key >= m.pivot.key) {
			return true // the exclusive bound, or the last chunk's end
		}
		if m.from != nil && e.key < string(m.from) {
			return false
		}
	} else {
		if m.after && e.key == m.pivot.key {
			return true
		}
		if m.to != nil && e.key >= string(m.to) {
			return false
		}
	}
	v := e.value
	if m.versioned {
		v = e.valueAt(m.epoch)
	}
	start := len(m.arena)
	m.arena = append(m.arena, e.key...)
	key := m.arena[start:len(m.arena):len(m.arena)]
	if key == nil {
		key = []byte{} // the empty key is a key, not nil
	}
	m.chunk = append(m.chunk, cachedKV{key: key, value: v})
	if len(m.chunk) == cacheChunk {
		m.full = true
		return false
	}
	return true
}

// cacheHead returns the next dirty entry, reading the next chunk from the
// snapshot when the chunk is done.
func (m *cacheIterator) cacheHead() (*cachedKV, bool) {
	if m.pos == len(m.chunk) && m.snap != nil {
		m.refill(m.snap, true)
		if !m.full {
			m.release()
		}
	}
	if m.pos < len(m.chunk) {
		return &m.chunk[m.pos], true
	}
	return nil, false
}

// release gives the snapshot back: writes need keep no values for it.
func (m *cacheIterator) release() {
	if m.snap != nil {
		m.snap = nil
		m.c.open--
	}
}

func (m *cacheIterator) nextInner() {
	m.innerOK = m.inner.Next()
	if !m.innerOK {
		m.err = m.inner.Err()
	}
}

// Next advances to the next key of either side, the smaller (the larger,
// in reverse); on a tie the dirty entry wins, and a dirty delete is
// skipped with the key below it.
func (m *cacheIterator) Next() bool {
	if m.done {
		return false
	}
	if m.c.entries == nil {
		m.err = fmt.Errorf("state: store %q: iterate: %w", m.c.Name(), ErrClosed)
		m.finish()
		return false
	}
	m.key, m.value = nil, nil
	if m.stepInner {
		m.stepInner = false
		m.nextInner()
	}
	if m.stepCache {
		m.stepCache = false
		m.pos++
	}
	for m.err == nil {
		head, cached := m.cacheHead()
		order := 0 // < 0: the cache's key comes first; > 0: the inner one
		switch {
		case !cached && !m.innerOK:
			m.finish()
			return false
		case !cached:
			order = 1
		case !m.innerOK:
			order = -1
		default:
			order = bytes.Compare(head.key, m.inner.Key())
			if m.reverse {
				order = -order
			}
		}
		if order > 0 {
			m.key, m.value, m.stepInner = m.inner.Key(), m.inner.Value(), true
			return true
		}
		if order == 0 {
			if m.nextInner(); m.err != nil { // the dirty entry replaces the key below
				break
			}
		}
		if head.value == nil {
			m.pos++ // a dirty delete
			continue
		}
		m.key, m.value, m.stepCache = head.key, head.value, true
		return true
	}
	m.finish()
	return false
}

// finish ends the iteration.
func (m *cacheIterator) finish() {
	m.done, m.key, m.value = true, nil, nil
	m.release()
}

func (m *cacheIterator) Key() []byte   { return m.key }
func (m *cacheIterator) Value() []byte { return m.value }
func (m *cacheIterator) Err() error    { return m.err }

func (m *cacheIterator) Close() error {
	if !m.closed {
		m.closed = true
		m.finish()
		if err := m.inner.Close(); err != nil && m.err == nil {
			m.err = err
		}
	}
	return m.err
}
