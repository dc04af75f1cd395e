package pebble

import (
	"bytes"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/google/btree"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/spans"
)

// item is one write of a sorted layer (a pending's tree): a value, or a
// delete. Its bytes are its own and never modified, so a clone of the tree
// that holds it is a snapshot.
type item struct {
	key, value []byte
	del        bool
}

func itemLess(a, b item) bool { return bytes.Compare(a.key, b.key) < 0 }

// newItem copies key and value into one allocation.
func newItem(key string, value []byte, del bool) item {
	if del {
		return item{key: []byte(key), del: true}
	}
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	return item{key: buf[:n:n], value: buf[n:]}
}

// itemOverhead estimates the memory of a tree's item besides its bytes.
const itemOverhead = 64

// layer is one input of a merged iterator, walking its keys in the
// iterator's direction. seek moves forward to the first key >= key, or in
// reverse to the last key < key.
type layer interface {
	first() bool
	next() bool
	seek(key []byte) bool
	key() []byte
	value() []byte
	deleted() bool
	err() error
	close() error
}

// treeBatch is the number of items a treeLayer loads at a time: google/btree
// only iterates with callbacks.
const treeBatch = 64

// treeLayer walks a snapshot (a clone) of a pending's tree in [lo, hi).
type treeLayer struct {
	snap    *btree.BTreeG[item]
	lo, hi  []byte
	reverse bool

	buf  []item
	pos  int
	done bool // nothing in range past buf
}

// load fills buf from pivot: forward, the items >= pivot (> pivot if
// skipEqual); in reverse, the items <= pivot (< pivot if skipEqual). A nil
// pivot starts at the range's edge.
func (l *treeLayer) load(pivot []byte, skipEqual bool) bool {
	l.buf, l.pos = l.buf[:0], 0
	first := true
	visit := func(it item) bool {
		if first {
			first = false
			if skipEqual && bytes.Equal(it.key, pivot) {
				return true
			}
		}
		if l.reverse {
			if l.lo != nil && bytes.Compare(it.key, l.lo) < 0 {
				return false
			}
		} else if l.hi != nil && bytes.Compare(it.key, l.hi) >= 0 {
			return false
		}
		l.buf = append(l.buf, it)
		return len(l.buf) < treeBatch
	}
	switch {
	case pivot == nil && l.reverse:
		l.snap.Descend(visit)
	case pivot == nil:
		l.snap.Ascend(visit)
	case l.reverse:
		l.snap.DescendLessOrEqual(item{key: pivot}, visit)
	default:
		l.snap.AscendGreaterOrEqual(item{key: pivot}, visit)
	}
	l.done = len(l.buf) < treeBatch
	return len(l.buf) > 0
}

func (l *treeLayer) first() bool {
	if l.reverse {
		return l.load(l.hi, l.hi != nil)
	}
	return l.load(l.lo, false)
}

func (l *treeLayer) next() bool {
	if l.pos+1 < len(l.buf) {
		l.pos++
		return true
	}
	if l.done || len(l.buf) == 0 {
		l.buf = l.buf[:0]
		return false
	}
	return l.load(l.buf[len(l.buf)-1].key, true)
}

func (l *treeLayer) seek(key []byte) bool {
	if l.reverse {
		if l.hi != nil && bytes.Compare(key, l.hi) > 0 {
			key = l.hi
		}
		return l.load(key, true)
	}
	if l.lo != nil && bytes.Compare(key, l.lo) < 0 {
		key = l.lo
	}
	return l.load(key, false)
}

func (l *treeLayer) key() []byte   { return l.buf[l.pos].key }
func (l *treeLayer) value() []byte { return l.buf[l.pos].value }
func (l *treeLayer) deleted() bool { return l.buf[l.pos].del }
func (l *treeLayer) err() error    { return nil }
func (l *treeLayer) close() error  { l.snap, l.buf = nil, nil; return nil }

// dbLayer walks a pebble iterator, whose keys carry the store-partition's
// prefix.
type dbLayer struct {
	pi      *pebbledb.Iterator
	prefix  []byte
	reverse bool
	scratch []byte
	verr    error // a failed read of a value
}

func (l *dbLayer) first() bool {
	if l.reverse {
		return l.pi.Last()
	}
	return l.pi.First()
}

func (l *dbLayer) next() bool {
	if l.reverse {
		return l.pi.Prev()
	}
	return l.pi.Next()
}

func (l *dbLayer) seek(key []byte) bool {
	l.scratch = append(append(l.scratch[:0], l.prefix...), key...)
	if l.reverse {
		return l.pi.SeekLT(l.scratch)
	}
	return l.pi.SeekGE(l.scratch)
}

func (l *dbLayer) key() []byte { return l.pi.Key()[len(l.prefix):] }

func (l *dbLayer) value() []byte {
	v, err := l.pi.ValueAndErr()
	if err != nil {
		l.verr = err
		return nil
	}
	if v == nil {
		return emptyValue
	}
	return v
}

func (l *dbLayer) deleted() bool { return false }
func (l *dbLayer) err() error {
	if l.verr != nil {
		return l.verr
	}
	return l.pi.Error()
}
func (l *dbLayer) close() error { return l.pi.Close() }

// merged is the state.Iterator of a view: it merges, in key order, layers
// ordered from the newest (a batch's pending writes) to the oldest (the
// DB). On equal keys the newest layer wins; a delete hides the key; a layer
// skips the keys that the range tombstones of the newer layers (hide) hold.
//
// INVARIANT: ok[i] reports whether layers[i] is positioned on a key not
// hidden by hide[i]; at[i] whether that key is the one returned last, so
// that Next moves it first.
type merged struct {
	layers  []layer
	hide    []spans.Set
	ok, at  []bool
	reverse bool
	started bool

	cur     int // the layer of the current entry, -1 for none
	release func()
	sp      state.StorePartition
	err     error
	done    bool
}

var _ state.Iterator = (*merged)(nil)

// settle skips the keys of layer i that hide[i] holds, from its current
// position, given that moved reports whether it has one.
func (m *merged) settle(i int, moved bool) bool {
	l, h := m.layers[i], m.hide[i]
	for moved && len(h) > 0 {
		sp, covered := h.Find(l.key())
		if !covered {
			break
		}
		switch {
		case m.reverse && len(sp.From) == 0:
			return false
		case m.reverse:
			moved = l.seek(sp.From)
		case sp.To == nil:
			return false
		default:
			moved = l.seek(sp.To)
		}
	}
	return moved
}

func (m *merged) Next() bool {
	if m.done {
		return false
	}
	if !m.started {
		m.started = true
		for i, l := range m.layers {
			m.ok[i] = m.settle(i, l.first())
		}
	}
	for {
		for i, l := range m.layers {
			if m.at[i] {
				m.at[i] = false
				m.ok[i] = m.settle(i, l.next())
			}
		}
		for _, l := range m.layers {
			if err := l.err(); err != nil {
				m.finish(spErrorf("iterate", m.sp, err))
				return false
			}
		}
		best := -1
		for i, l := range m.layers {
			if !m.ok[i] {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			c := bytes.Compare(l.key(), m.layers[best].key())
			if m.reverse {
				c = -c
			}
			if c < 0 {
				best = i
			}
		}
		if best < 0 {
			m.finish(nil)
			return false
		}
		k := m.layers[best].key()
		for i, l := range m.layers {
			if m.ok[i] && (i == best || bytes.Equal(l.key(), k)) {
				m.at[i] = true
			}
		}
		if m.layers[best].deleted() {
			continue
		}
		m.cur = best
		return true
	}
}

// finish closes the layers, recording cause (or a layer's error) as the
// iteration's error.
func (m *merged) finish(cause error) {
	if m.done {
		return
	}
	m.done, m.cur = true, -1
	for _, l := range m.layers {
		if err := l.close(); err != nil && cause == nil {
			cause = spErrorf("iterate", m.sp, err)
		}
	}
	if m.err == nil {
		m.err = cause
	}
	m.release()
}

func (m *merged) Key() []byte {
	if m.done || m.cur < 0 {
		return nil
	}
	return m.layers[m.cur].key()
}

func (m *merged) Value() []byte {
	if m.done || m.cur < 0 {
		return nil
	}
	l := m.layers[m.cur]
	v := l.value()
	if err := l.err(); err != nil {
		m.finish(spErrorf("iterate", m.sp, err))
		return nil
	}
	return v
}

func (m *merged) Err() error { return m.err }

func (m *merged) Close() error {
	m.finish(nil)
	return m.err
}
