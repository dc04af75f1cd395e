package state

import (
	"bytes"
	"fmt"
	"time"

	"github.com/google/btree"
)

// DefaultCacheBytes is the record cache size of a store-partition unless
// WithCache says otherwise: about 110,000 entries of small keys and values.
const DefaultCacheBytes = 16 << 20

// cacheEntryOverhead approximates what an entry costs beyond its key and
// value bytes: the entry struct, its map slot and the string header.
const cacheEntryOverhead = 120

// caching is the record cache, as Kafka Streams has it: reads are served
// from memory, and writes wait in the cache, dirty, until the task commits
// (Flush) or the cache must evict them, so repeated updates of one key
// between commits reach the layers below, the changelog and downstream
// processors (through the flush listener) once.
//
// Reads have no side effects: range queries merge, in key order, the dirty
// entries (kept sorted in an index) with an iterator of the layers below,
// and never flush. See cacheIterator.
type caching struct {
	inner   KeyValueBytesStore
	max     int
	size    int
	entries map[string]*cacheEntry
	head    cacheEntry // sentinel of the LRU list: head.next is the most recent
	// dirty lists the dirty entries in the order they became dirty, the
	// order of a flush. It may also hold entries since cleaned (flushed by
	// an eviction, dropped by DeleteRange): a flush skips them.
	dirty []*cacheEntry
	// index holds the dirty entries sorted by key, for range queries.
	//
	// INVARIANT: index holds exactly the entries whose dirty is true, and
	// they are the entries of the map under their keys.
	index *btree.BTreeG[*cacheEntry]
	// epoch counts the snapshots of index that iterators took (Clone), and
	// open the iterators holding one. While one is open, a write keeps the
	// value it replaces for them (see setValue).
	epoch uint64
	open  int
	// recent is the entry last looked up or inserted, if still cached: a
	// read-modify-write looks its key up twice, and the second time skips
	// the map.
	recent   *cacheEntry
	listener func(key, newValue, oldValue []byte, ts time.Time) error
	clock    *storeClock
}

type cacheEntry struct {
	key   string
	value []byte // nil: the key is absent (deleted, or not found below)
	dirty bool
	// evicted is set when the entry leaves the cache.
	evicted bool
	ts      time.Time // the record time of the last write
	// written is the cache's epoch when value was set: the snapshots
	// numbered above it see value. older holds, newest first, the values
	// that open iterators' older snapshots may still need.
	written uint64
	older   *entryVersion
	// below is the value the layers below hold, when known (the entry was
	// read from them, or flushed): the old value a flush reports.
	below      []byte
	belowKnown bool
	prev, next *cacheEntry
}

// entryVersion is a value an entry had, kept for the iterators whose
// snapshot was taken before it was replaced.
type entryVersion struct {
	value   []byte
	written uint64
	next    *entryVersion
}

// valueAt returns the value e had when the snapshot numbered epoch was
// taken. REQUIRES: e was in that snapshot, and its iterator is open.
func (e *cacheEntry) valueAt(epoch uint64) []byte {
	if e.written < epoch {
		return e.value
	}
	for v := e.older; v != nil; v = v.next {
		if v.written < epoch {
			return v.value
		}
	}
	return e.value // unreachable while the invariant of setValue holds
}

// indexDegree is the degree of the dirty index's B-tree.
const indexDegree = 16

func byKey(a, b *cacheEntry) bool { return a.key < b.key }

func newCaching(inner KeyValueBytesStore, max int, clock *storeClock) *caching {
	c := &caching{inner: inner, max: max, entries: map[string]*cacheEntry{}, clock: clock,
		index: btree.NewG(indexDegree, byKey)}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

// setValue sets e's value. Values are never modified in place (Put copies
// what it is given), so a snapshot only needs the slice: when an iterator
// may have e in its snapshot (one is open, and a snapshot was taken since
// e's last write), the value replaced joins e.older.
func (c *caching) setValue(e *cacheEntry, v []byte) {
	switch {
	case c.open == 0:
		e.older = nil
	case e.written < c.epoch:
		e.older = &entryVersion{value: e.value, written: e.written, next: e.older}
	}
	e.value, e.written = v, c.epoch
}

// markDirty makes e dirty, unless it is.
func (c *caching) markDirty(e *cacheEntry) {
	if e.dirty {
		return
	}
	e.dirty = true
	c.dirty = append(c.dirty, e)
	c.index.ReplaceOrInsert(e)
}

// markClean makes e clean, unless it is: a flush wrote it down, or a range
// delete dropped it.
func (c *caching) markClean(e *cacheEntry) {
	if !e.dirty {
		return
	}
	e.dirty = false
	c.index.Delete(e)
}

func (c *caching) setFlushListener(fn func(key, newValue, oldValue []byte, ts time.Time) error) bool {
	c.listener = fn
	return true
}

func (c *caching) Name() string { return c.inner.Name() }

func (c *caching) touch(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &c.head, c.head.next
	c.head.next.prev = e
	c.head.next = e
}

// lookup returns key's entry.
func (c *caching) lookup(key []byte) (*cacheEntry, bool) {
	if r := c.recent; r != nil && r.key == string(key) {
		return r, true
	}
	e, ok := c.entries[string(key)]
	if ok {
		c.recent = e
	}
	return e, ok
}

func (c *caching) Get(key []byte) ([]byte, bool, error) {
	if c.entries == nil {
		return nil, false, fmt.Errorf("state: store %q: get: %w", c.Name(), ErrClosed)
	}
	if key == nil {
		return nil, false, fmt.Errorf("state: store %q: get: %w", c.Name(), ErrNullKey)
	}
	if e, ok := c.lookup(key); ok {
		c.touch(e)
		return e.value, e.value != nil, nil
	}
	v, found, err := c.inner.Get(key)
	if err != nil {
		return nil, false, err
	}
	if !found {
		v = nil
	}
	e, err := c.insert(key, v, false)
	if err != nil {
		return nil, false, err
	}
	if e != nil {
		e.below, e.belowKnown = v, true
	}
	return v, found, nil
}

func (c *caching) Put(key, value []byte) error {
	if c.entries == nil {
		return fmt.Errorf("state: store %q: put: %w", c.Name(), ErrClosed)
	}
	if key == nil {
		return fmt.Errorf("state: store %q: put: %w", c.Name(), ErrNullKey)
	}
	if value != nil {
		value = bytes.Clone(value)
	}
	_, err := c.insert(key, value, true)
	return err
}

func (c *caching) Delete(key []byte) error { return c.Put(key, nil) }

// insert sets key's entry and evicts what no longer fits. It returns the
// entry, or nil if it was evicted at once.
func (c *caching) insert(key, value []byte, dirty bool) (*cacheEntry, error) {
	e, ok := c.lookup(key)
	if !ok {
		e = &cacheEntry{key: string(key), written: c.epoch}
		c.recent = e
		e.prev, e.next = &c.head, c.head.next
		c.head.next.prev = e
		c.head.next = e
		c.entries[e.key] = e
		c.size += len(e.key) + cacheEntryOverhead
	} else {
		c.touch(e)
		c.size -= len(e.value)
	}
	c.setValue(e, value)
	c.size += len(value)
	if dirty {
		e.ts = c.clock.RecordTime()
		c.markDirty(e)
	}
	if err := c.evict(); err != nil {
		return nil, err
	}
	if e.evicted {
		return nil, nil
	}
	return e, nil
}

// evict drops least recently used entries, flushing dirty ones, until the
// cache fits.
//
// The entry leaves the cache before it is flushed: the flush listener may
// write to this store, and so insert and evict, while it runs.
func (c *caching) evict() error {
	for c.size > c.max && c.head.prev != &c.head {
		e := c.head.prev
		e.prev.next, e.next.prev = e.next, e.prev
		delete(c.entries, e.key)
		e.evicted = true
		if e == c.recent {
			c.recent = nil
		}
		c.size -= len(e.key) + len(e.value) + cacheEntryOverhead
		if e.dirty {
			if err := c.flushEntry(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *caching) flushEntry(e *cacheEntry) error {
	c.markClean(e)
	defer c.clock.pin(e.ts)()
	key := []byte(e.key)
	old := e.below
	if c.listener != nil && !e.belowKnown {
		v, found, err := c.inner.Get(key)
		if err != nil {
			return err
		}
		old = nil
		if found {
			old = v
		}
	}
	if old == nil && e.value == nil && (c.listener != nil || e.belowKnown) {
		// Absent below and deleted here (written and deleted within one
		// interval): nothing to write, nothing to tell.
		e.below, e.belowKnown = nil, true
		return nil
	}
	if err := c.inner.Put(key, e.value); err != nil {
		return err
	}
	e.below, e.belowKnown = e.value, true
	if c.listener != nil && (old != nil || e.value != nil) {
		return c.listener(key, e.value, old, e.ts)
	}
	return nil
}

// flushDirty writes every dirty entry down, in the order they became dirty.
//
// The flush listener may write to this store while it runs: the entries it
// makes dirty go to a new list, flushed next time, as Kafka Streams does.
func (c *caching) flushDirty() error {
	dirty := c.dirty
	c.dirty = nil
	for i, e := range dirty {
		if !e.dirty {
			continue
		}
		if err := c.flushEntry(e); err != nil {
			c.dirty = append(dirty[i:], c.dirty...)
			return err
		}
	}
	clear(dirty)
	c.dirty = append(dirty[:0], c.dirty...) // reuses the list's memory
	return nil
}

func (c *caching) Flush() error {
	if err := c.flushDirty(); err != nil {
		return err
	}
	return c.inner.Flush()
}

// Range merges the dirty entries in [from, to) with the layers below; it
// flushes nothing (see cacheIterator).
func (c *caching) Range(from, to []byte) Iterator {
	if c.entries == nil {
		return ErrIterator(fmt.Errorf("state: store %q: range: %w", c.Name(), ErrClosed))
	}
	return c.iterator(from, to, false, func() Iterator { return c.inner.Range(from, to) })
}

// ReverseRange is Range in descending order.
func (c *caching) ReverseRange(from, to []byte) Iterator {
	if c.entries == nil {
		return ErrIterator(fmt.Errorf("state: store %q: reverse range: %w", c.Name(), ErrClosed))
	}
	return c.iterator(from, to, true, func() Iterator { return c.inner.ReverseRange(from, to) })
}

// PrefixScan merges the dirty entries that start with prefix with the
// layers below, as Range does.
func (c *caching) PrefixScan(prefix []byte) Iterator {
	if c.entries == nil {
		return ErrIterator(fmt.Errorf("state: store %q: prefix scan: %w", c.Name(), ErrClosed))
	}
	from := prefix
	if from == nil {
		from = []byte{}
	}
	return c.iterator(from, PrefixEnd(prefix), false, func() Iterator { return c.inner.PrefixScan(prefix) })
}

// ApproximateCount estimates the number of keys without flushing: the
// count below, plus the dirty writes of keys not known to be below, minus
// the dirty deletes of keys known to be there. A dirty write of a key
// never read from below counts as a new key, a dirty delete of one as
// nothing. It is exact when every dirty key was read before it was
// written, as a read-modify-write does, and the count below is exact.
func (c *caching) ApproximateCount() (int64, error) {
	if c.entries == nil {
		return 0, fmt.Errorf("state: store %q: count: %w", c.Name(), ErrClosed)
	}
	n, err := c.inner.ApproximateCount()
	if err != nil {
		return 0, err
	}
	c.index.Ascend(func(e *cacheEntry) bool {
		switch {
		case e.value != nil && !(e.belowKnown && e.below != nil):
			n++
		case e.value == nil && e.belowKnown && e.below != nil:
			n--
		}
		return true
	})
	return max(n, 0), nil
}

func (c *caching) Close() error {
	c.entries, c.dirty, c.recent = nil, nil, nil
	c.index.Clear(false)
	c.head.prev, c.head.next = &c.head, &c.head
	return c.inner.Close()
}

// DeleteRange drops every entry in [from, to), dirty ones included, and
// deletes the range below. A range delete is local (see
// KeyValueBytesStore): the dirty entries it drops are not flushed, so
// neither the changelog nor the flush listener hears of them, as neither
// hears of the range delete.
func (c *caching) DeleteRange(from, to []byte) error {
	if c.entries == nil {
		return fmt.Errorf("state: store %q: delete range: %w", c.Name(), ErrClosed)
	}
	for k, e := range c.entries {
		if !InRange([]byte(k), from, to) {
			continue
		}
		e.prev.next, e.next.prev = e.next, e.prev
		delete(c.entries, k)
		c.markClean(e)
		e.evicted = true
		if e == c.recent {
			c.recent = nil
		}
		c.size -= len(e.key) + len(e.value) + cacheEntryOverhead
	}
	return c.inner.DeleteRange(from, to)
}
