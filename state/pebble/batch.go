package pebble

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

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
//
// The writes of an interval wait in one of two places. Until an iterator is
// opened, in the pending writes of each view: the last write of each key,
// indexed by a Go map, which Get reads before the DB. The first iterator of an interval needs pebble to
// merge the writes with the DB, so it moves them into an indexed batch (cur),
// which takes every later write of the interval. Most intervals of key-value
// stores see no iterator, and a Go map costs a write a fraction of what the
// indexed batch's skiplist does. Commit writes the interval in key order in
// a plain batch either way (see sorted).
type batch struct {
	engine  *Engine
	closed  bool
	touched []*view  // the views with pending writes
	cur     *indexed // nil unless an iterator was opened in this interval
	n       int      // Put and Delete calls since the last Commit or Abort
	views   map[state.StorePartition]*view
	iters   map[*iterator]struct{} // open iterators, closed by Close
	key     []byte                 // scratch: a prefixed key, copied by pebble
	writes  []write                // scratch of sorted
}

// pending holds the last write of each key of a view in an interval: a map
// from the key (without the view's prefix) to its write, whose value is a
// span of values.
type pending struct {
	index  map[string]int
	writes []pendingWrite
	values []byte
}

type pendingWrite struct {
	key    string
	off, n int
	del    bool
}

func (p *pending) set(key, value []byte, del bool) {
	w := pendingWrite{off: len(p.values), n: len(value), del: del}
	p.values = append(p.values, value...)
	if i, ok := p.index[string(key)]; ok {
		w.key = p.writes[i].key
		p.writes[i] = w
		return
	}
	w.key = string(key)
	p.index[w.key] = len(p.writes)
	p.writes = append(p.writes, w)
}

// get returns a copy of key's pending value; found reports whether key has
// a pending write, deleted whether that write is a delete.
func (p *pending) get(key []byte) (value []byte, found, deleted bool) {
	i, ok := p.index[string(key)]
	if !ok {
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

// sort orders the writes by key. The index no longer holds after it.
func (p *pending) sort() {
	slices.SortFunc(p.writes, func(x, y pendingWrite) int { return strings.Compare(x.key, y.key) })
}

// write adds the writes, sorted and prefixed, to wb. key is scratch space
// starting with the prefix.
func (p *pending) write(wb *pebbledb.Batch, key []byte) error {
	p.sort()
	n := len(key)
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
}

// size is an upper bound of the bytes the writes take in a pebble batch
// under a prefix of plen bytes.
func (p *pending) size(plen int) int {
	n := len(p.values)
	for _, w := range p.writes {
		n += recordOverhead + plen + len(w.key)
	}
	return n
}

// writePending adds the views' pending writes to wb, in key order.
func (b *batch) writePending(wb *pebbledb.Batch) error {
	slices.SortFunc(b.touched, func(x, y *view) int { return bytes.Compare(x.prefix, y.prefix) })
	for _, v := range b.touched {
		b.key = append(b.key[:0], v.prefix...)
		if err := v.pending.write(wb, b.key); err != nil {
			return err
		}
	}
	return nil
}

func (b *batch) pendingSize() int {
	n := batchHeader
	for _, v := range b.touched {
		n += v.pending.size(len(v.prefix))
	}
	return n
}

func (b *batch) resetPending() {
	for _, v := range b.touched {
		v.pending.reset()
	}
	clear(b.touched)
	b.touched = b.touched[:0]
}

// indexedBatch returns the interval's indexed batch, moving the pending
// writes into it if there is none yet.
func (b *batch) indexedBatch() (*indexed, error) {
	if b.cur != nil {
		return b.cur, nil
	}
	ib := &indexed{b: b.engine.db.NewIndexedBatch()}
	if err := b.writePending(ib.b); err != nil {
		ib.b.Close()
		return nil, err
	}
	b.resetPending()
	b.cur = ib
	return ib, nil
}

// write is one Set or Delete of a batch's representation, at position i.
type write struct {
	key, value []byte
	i          int
	del        bool
}

// sorted returns a plain batch with the last write of each key of src, in
// key order, and room for extra checkpoints.
//
// The memtable is a skiplist: inserting a commit's writes in random order
// costs a search from the top of the list and a cache miss per level for
// each, while in key order each insert starts from the previous one's
// position. Sorting here, rather than asking callers to write in key order,
// keeps that true whatever the order of the flush (a record cache flushes in
// the order keys were first dirtied), and drops the writes a later one
// overwrote. Measured with 10,000 writes over 100,000 keys per commit:
// about twice the commit throughput.
func (b *batch) sorted(src *pebbledb.Batch, extra int) (*pebbledb.Batch, error) {
	ws := b.writes[:0]
	r := src.Reader()
	for i := 0; ; i++ {
		kind, key, value, ok, err := r.Next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		switch kind {
		case pebbledb.InternalKeyKindSet:
			ws = append(ws, write{key: key, value: value, i: i})
		case pebbledb.InternalKeyKindDelete:
			ws = append(ws, write{key: key, i: i, del: true})
		default:
			return nil, fmt.Errorf("unexpected %s in a batch", kind)
		}
	}
	slices.SortFunc(ws, func(x, y write) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	out := b.engine.db.NewBatchWithSize(len(src.Repr()) + extra*64)
	for j, w := range ws {
		if j+1 < len(ws) && bytes.Equal(w.key, ws[j+1].key) {
			continue // overwritten
		}
		var err error
		if w.del {
			err = out.Delete(w.key, nil)
		} else {
			err = out.Set(w.key, w.value, nil)
		}
		if err != nil {
			out.Close()
			return nil, err
		}
	}
	clear(ws) // drop references to src's memory
	b.writes = ws[:0]
	return out, nil
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
	return b.n
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
	var (
		target *pebbledb.Batch
		err    error
	)
	if b.cur != nil {
		target, err = b.sorted(b.cur.b, len(checkpoints))
	} else {
		target = e.db.NewBatchWithSize(b.pendingSize() + len(checkpoints)*64)
		if err = b.writePending(target); err != nil {
			target.Close()
		}
	}
	if err == nil {
		defer target.Close()
		err = b.setCheckpoints(target, checkpoints)
	}
	if err == nil {
		err = target.Commit(pebbledb.NoSync)
	}
	b.renew()
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

// renew empties the batch. An indexed batch that iterators still read is
// retired, to be closed by its last iterator.
func (b *batch) renew() {
	b.resetPending()
	b.n = 0
	if ib := b.cur; ib != nil {
		b.cur = nil
		if ib.iters > 0 {
			ib.retired = true
		} else {
			ib.b.Close()
		}
	}
}

// Abort drops the pending writes; iterators already open keep their
// snapshot.
func (b *batch) Abort() {
	if !b.closed {
		b.renew()
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
	b.renew()
	b.closed = true
	b.engine.batches.Add(-1)
	return nil
}
