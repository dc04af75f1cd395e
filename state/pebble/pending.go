package pebble

import (
	"slices"
	"strings"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/google/btree"

	"github.com/gregorstream/gregor/state/internal/spans"
)

// pending holds writes of a view in an interval (or of an overlay, see
// overlay.go): each write's key (without the view's prefix) and a span of
// values, with a map from each key to its last write, and the range
// deletes (ranges).
//
// An overlay's writes are indexed as they come (set): one per key. A view's
// are logged (log) and indexed only when a read needs the index or the log
// grows long: with a record cache above the store, each key is written once
// per interval and rarely read back from here, so most intervals never pay
// for the map. A logged write that a later one of its key supersedes is
// marked dead when the index catches up.
//
// A range delete kills the live writes it holds and joins ranges.
// INVARIANT: every live write is newer than the ranges, so a read asks the
// writes first, then the ranges, then the older layers; and writing ranges
// before the writes (write) applies them in their order.
//
// tree, once an iterator needed it (snapshot), holds the live writes sorted
// by key, as items that own their bytes, and follows every later write until
// reset: an iterator reads a clone of it.
type pending struct {
	index   map[string]int
	writes  []pendingWrite
	values  []byte
	keys    int // bytes of the keys, for mem
	indexed int // writes[:indexed] are in index
	dead    int // writes marked dead
	ranges  spans.Set
	tree    *btree.BTreeG[item] // nil until snapshot
	treeMem int
}

type pendingWrite struct {
	key    string
	off, n int
	del    bool
	dead   bool // superseded by a later write of key, or range-deleted
}

// entryOverhead estimates the memory of one entry of a pending besides its
// key and value bytes: the map slot and the pendingWrite.
const entryOverhead = 80

// maxUnindexed is the number of logged writes past which the index catches
// up (if they are also more than the indexed ones), dropping superseded
// writes: a store without a record cache that updates a few keys many times
// must not grow its log without bound.
const maxUnindexed = 1 << 16

// empty reports whether p holds no write and no range delete.
func (p *pending) empty() bool { return len(p.writes) == 0 && len(p.ranges) == 0 }

// set records an indexed write of key, which a new entry shares (an
// overlay's writes).
func (p *pending) set(key string, value []byte, del bool) {
	if p.tree != nil {
		p.insert(key, value, del)
	}
	if i, ok := p.index[key]; ok {
		p.overwrite(i, value, del)
		return
	}
	p.add(key, value, del)
}

// insert adds a write to the tree.
func (p *pending) insert(key string, value []byte, del bool) {
	it := newItem(key, value, del)
	if old, ok := p.tree.ReplaceOrInsert(it); ok {
		p.treeMem -= len(old.key) + len(old.value)
	} else {
		p.treeMem += itemOverhead
	}
	p.treeMem += len(it.key) + len(it.value)
}

// add appends an indexed write. REQUIRES: the index caught up.
func (p *pending) add(key string, value []byte, del bool) {
	p.index[key] = len(p.writes)
	p.append(key, value, del)
	p.indexed = len(p.writes)
}

func (p *pending) append(key string, value []byte, del bool) {
	p.writes = append(p.writes, pendingWrite{key: key, off: len(p.values), n: len(value), del: del})
	p.values = append(p.values, value...)
	p.keys += len(key)
}

// log appends a write without indexing it.
func (p *pending) log(key, value []byte, del bool) {
	k := string(key)
	p.append(k, value, del)
	if p.tree != nil {
		p.insert(k, value, del)
	}
	if un := len(p.writes) - p.indexed; un > maxUnindexed && un > p.indexed {
		p.compact()
	}
}

// deleteRange records a range delete of [from, to), which kills the live
// writes it holds. REQUIRES: the range is not empty.
func (p *pending) deleteRange(from, to []byte) {
	p.catchUp()
	for i := range p.writes {
		w := &p.writes[i]
		if !w.dead && (from == nil || w.key >= string(from)) && (to == nil || w.key < string(to)) {
			w.dead = true
			p.dead++
			delete(p.index, w.key)
		}
	}
	if p.tree != nil {
		var doomed []item
		visit := func(it item) bool {
			if to != nil && string(it.key) >= string(to) {
				return false
			}
			doomed = append(doomed, it)
			return true
		}
		if from == nil {
			p.tree.Ascend(visit)
		} else {
			p.tree.AscendGreaterOrEqual(item{key: from}, visit)
		}
		for _, it := range doomed {
			p.tree.Delete(it)
			p.treeMem -= itemOverhead + len(it.key) + len(it.value)
		}
	}
	p.ranges = p.ranges.Add(from, to)
}

// snapshot returns a clone of the tree, sorting the live writes into it if
// there is none yet.
func (p *pending) snapshot() *btree.BTreeG[item] {
	if p.tree == nil {
		p.catchUp()
		p.tree = btree.NewG(16, itemLess)
		for _, w := range p.writes {
			if !w.dead {
				p.insert(w.key, p.values[w.off:w.off+w.n], w.del)
			}
		}
	}
	return p.tree.Clone()
}

// catchUp indexes the logged writes, marking the writes they supersede.
func (p *pending) catchUp() {
	for i := p.indexed; i < len(p.writes); i++ {
		k := p.writes[i].key
		if j, ok := p.index[k]; ok {
			p.writes[j].dead = true
			p.dead++
		}
		p.index[k] = i
	}
	p.indexed = len(p.writes)
}

// compact catches the index up and drops the dead writes (their values stay
// in values until reset).
func (p *pending) compact() {
	p.catchUp()
	if p.dead == 0 {
		return
	}
	live := p.writes[:0]
	for _, w := range p.writes {
		if !w.dead {
			live = append(live, w)
		}
	}
	clear(p.writes[len(live):])
	p.writes = live
	p.dead = 0
	p.reindex()
}

// overwrite replaces the value of write i, in place when the new value has
// the old one's length (a counter, a timestamped number), so that a key
// updated many times does not grow the values. The tree's items own their
// bytes, so snapshots do not see it.
func (p *pending) overwrite(i int, value []byte, del bool) {
	w := &p.writes[i]
	if !del && !w.del && w.n == len(value) {
		copy(p.values[w.off:w.off+w.n], value)
		return
	}
	w.off, w.n, w.del = len(p.values), len(value), del
	p.values = append(p.values, value...)
}

// mem estimates the memory the writes hold.
func (p *pending) mem() int {
	return len(p.values) + p.keys + len(p.writes)*entryOverhead + p.treeMem + p.ranges.Mem()
}

// get returns a copy of key's pending value; found reports whether
// key has a pending write or range delete, deleted whether as a delete.
func (p *pending) get(key []byte) (value []byte, found, deleted bool) {
	p.catchUp()
	return p.lookup(key)
}

// lookup is get without catching up: it only reads p, so concurrent
// lookups are safe. REQUIRES: every write indexed.
func (p *pending) lookup(key []byte) (value []byte, found, deleted bool) {
	i, ok := p.index[string(key)]
	if !ok {
		if p.ranges.Covers(key) {
			return nil, true, true
		}
		return nil, false, false
	}
	w := p.writes[i]
	if w.del {
		return nil, true, true
	}
	value = make([]byte, w.n)
	copy(value, p.values[w.off:])
	return value, true, false
}

// sort orders the live writes by key, dropping the dead ones. The index no
// longer holds after it (see reindex).
func (p *pending) sort() {
	p.compact()
	slices.SortFunc(p.writes, func(x, y pendingWrite) int { return strings.Compare(x.key, y.key) })
}

// write adds the range deletes, then the writes, sorted and prefixed, to
// wb. key is scratch space starting with the prefix, end the end of the
// prefix's range.
func (p *pending) write(wb *pebbledb.Batch, key, end []byte) error {
	n := len(key)
	for _, r := range p.ranges {
		from := append(key[:n:n], r.From...)
		to := end
		if r.To != nil {
			to = append(key[:n:n], r.To...)
		}
		if err := wb.DeleteRange(from, to, nil); err != nil {
			return err
		}
	}
	p.sort()
	for _, w := range p.writes {
		key = append(key[:n], w.key...)
		var err error
		if w.del {
			err = wb.Delete(key, nil)
		} else {
			err = wb.Set(key, p.values[w.off:w.off+w.n], nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// reindex rebuilds the index of writes without dead ones, after sort or
// compact.
func (p *pending) reindex() {
	for i, w := range p.writes {
		p.index[w.key] = i
	}
	p.indexed = len(p.writes)
}

// maxRetainedValues bounds the value buffer kept from one interval to the next.
const maxRetainedValues = 16 << 20

func (p *pending) reset() {
	clear(p.index)
	clear(p.writes)
	p.writes = p.writes[:0]
	if cap(p.values) > maxRetainedValues {
		p.values = nil
	}
	p.values = p.values[:0]
	p.keys = 0
	p.indexed = 0
	p.dead = 0
	p.ranges = nil
	p.tree, p.treeMem = nil, 0 // open iterators keep their clones
}

// size is an upper bound of the bytes the writes take in a pebble batch
// under a prefix of plen bytes.
func (p *pending) size(plen int) int {
	n := len(p.values)
	for _, w := range p.writes {
		n += recordOverhead + plen + len(w.key)
	}
	for _, r := range p.ranges {
		n += recordOverhead + 2*plen + len(r.From) + max(len(r.To), 1)
	}
	return n
}
