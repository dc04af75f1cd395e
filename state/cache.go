package state

import (
	"bytes"
	"fmt"
)

// DefaultCacheBytes is the record cache size of a store-partition unless
// WithCache says otherwise.
const DefaultCacheBytes = 10 << 20

// cacheEntryOverhead approximates what an entry costs beyond its key and
// value bytes (map slot, list links, headers).
const cacheEntryOverhead = 96

// caching is the record cache, as Kafka Streams has it: reads are served
// from memory, and writes wait in the cache, dirty, until the task commits
// (Flush) or the cache must evict them, so repeated updates of one key
// between commits reach the layers below, the changelog and downstream
// processors (through the flush listener) once.
//
// Range queries first flush the dirty entries and then read below.
type caching struct {
	inner    KeyValueBytesStore
	max      int
	size     int
	entries  map[string]*cacheEntry
	head     cacheEntry // sentinel of the LRU list: head.next is the most recent
	dirty    []*cacheEntry
	listener func(key, newValue, oldValue []byte) error
}

type cacheEntry struct {
	key        string
	value      []byte // nil: the key is absent (deleted, or not found below)
	dirty      bool
	prev, next *cacheEntry
}

func newCaching(inner KeyValueBytesStore, max int) *caching {
	c := &caching{inner: inner, max: max, entries: map[string]*cacheEntry{}}
	c.head.prev, c.head.next = &c.head, &c.head
	return c
}

func (c *caching) setFlushListener(fn func(key, newValue, oldValue []byte) error) bool {
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

func (c *caching) Get(key []byte) ([]byte, bool, error) {
	if c.entries == nil {
		return nil, false, fmt.Errorf("state: store %q: get: %w", c.Name(), ErrClosed)
	}
	if key == nil {
		return nil, false, fmt.Errorf("state: store %q: get: %w", c.Name(), ErrNullKey)
	}
	if e, ok := c.entries[string(key)]; ok {
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
	if err := c.insert(key, v, false); err != nil {
		return nil, false, err
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
	return c.insert(key, value, true)
}

func (c *caching) Delete(key []byte) error { return c.Put(key, nil) }

func (c *caching) insert(key, value []byte, dirty bool) error {
	e, ok := c.entries[string(key)]
	if !ok {
		e = &cacheEntry{key: string(key)}
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
	if dirty && !e.dirty {
		e.dirty = true
		c.dirty = append(c.dirty, e)
	}
	return c.evict()
}

// evict drops least recently used entries, flushing dirty ones, until the
// cache fits.
func (c *caching) evict() error {
	for c.size > c.max && c.head.prev != &c.head {
		e := c.head.prev
		if e.dirty {
			if err := c.flushEntry(e); err != nil {
				return err
			}
		}
		e.prev.next, e.next.prev = e.next, e.prev
		delete(c.entries, e.key)
		c.size -= len(e.key) + len(e.value) + cacheEntryOverhead
	}
	return nil
}

func (c *caching) flushEntry(e *cacheEntry) error {
	e.dirty = false
	key := []byte(e.key)
	var old []byte
	if c.listener != nil {
		v, found, err := c.inner.Get(key)
		if err != nil {
			return err
		}
		if found {
			old = v
		}
	}
	if err := c.inner.Put(key, e.value); err != nil {
		return err
	}
	if c.listener != nil && (old != nil || e.value != nil) {
		return c.listener(key, e.value, old)
	}
	return nil
}

// flushDirty writes every dirty entry down, in the order they became dirty.
func (c *caching) flushDirty() error {
	for i, e := range c.dirty {
		if !e.dirty {
			continue
		}
		if err := c.flushEntry(e); err != nil {
			c.dirty = c.dirty[i:]
			return err
		}
	}
	clear(c.dirty)
	c.dirty = c.dirty[:0]
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
	c.entries, c.dirty = nil, nil
	c.head.prev, c.head.next = &c.head, &c.head
	return c.inner.Close()
}
