package state

import (
	"bytes"
	"fmt"
	"time"
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
// Range queries first flush the dirty entries and then read below.
type caching struct {
	inner   KeyValueBytesStore
	max     int
	size    int
	entries map[string]*cacheEntry
	head    cacheEntry // sentinel of the LRU list: head.next is the most recent
	dirty   []*cacheEntry
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
	// below is the value the layers below hold, when known (the entry was
	// read from them, or flushed): the old value a flush reports.
	below      []byte
	belowKnown bool
	prev, next *cacheEntry
}

func newCaching(inner KeyValueBytesStore, max int, clock *storeClock) *caching {
	c := &caching{inner: inner, max: max, entries: map[string]*cacheEntry{}, clock: clock}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
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
		e = &cacheEntry{key: string(key)}
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
	e.value = value
	c.size += len(value)
	if dirty {
		e.ts = c.clock.RecordTime()
	}
	if dirty && !e.dirty {
		e.dirty = true
		c.dirty = append(c.dirty, e)
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
	e.dirty = false
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

func (c *caching) Range(from, to []byte) Iterator {
	if err := c.flushDirty(); err != nil {
		return ErrIterator(err)
	}
	return c.inner.Range(from, to)
}

func (c *caching) ReverseRange(from, to []byte) Iterator {
	if err := c.flushDirty(); err != nil {
		return ErrIterator(err)
	}
	return c.inner.ReverseRange(from, to)
}

func (c *caching) PrefixScan(prefix []byte) Iterator {
	if err := c.flushDirty(); err != nil {
		return ErrIterator(err)
	}
	return c.inner.PrefixScan(prefix)
}

func (c *caching) ApproximateCount() (int64, error) {
	if err := c.flushDirty(); err != nil {
		return 0, err
	}
	return c.inner.ApproximateCount()
}

func (c *caching) Close() error {
	c.entries, c.dirty, c.recent = nil, nil, nil
	c.head.prev, c.head.next = &c.head, &c.head
	return c.inner.Close()
}

// DeleteRange passes the dirty entries in [from, to) down first (a range
// delete is a write, and the updates it supersedes were made: the flush
// listener forwards them, as Kafka Streams' cache does before a segment
// drops them), then drops every entry in the range and deletes it below.
func (c *caching) DeleteRange(from, to []byte) error {
	if c.entries == nil {
		return fmt.Errorf("state: store %q: delete range: %w", c.Name(), ErrClosed)
	}
	var in []*cacheEntry
	for _, e := range c.dirty {
		if e.dirty && InRange([]byte(e.key), from, to) {
			in = append(in, e)
		}
	}
	for _, e := range in {
		if e.dirty {
			if err := c.flushEntry(e); err != nil {
				return err
			}
		}
	}
	for k, e := range c.entries {
		if !InRange([]byte(k), from, to) {
			continue
		}
		e.prev.next, e.next.prev = e.next, e.prev
		delete(c.entries, k)
		e.evicted = true
		if e == c.recent {
			c.recent = nil
		}
		c.size -= len(e.key) + len(e.value) + cacheEntryOverhead
	}
	return c.inner.DeleteRange(from, to)
}
