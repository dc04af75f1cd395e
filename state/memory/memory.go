// Package memory is the in-memory state backend: a state.KeyValueBytesStore
// over a copy-on-write B-tree (github.com/google/btree).
//
// It keeps nothing on disk, so a task that moves or restarts restores the
// whole store from its changelog. Use it in tests and for small stores.
package memory

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/btree"

	"github.com/gregorstream/gregor/state"
)

// degree is the B-tree's minimum degree: nodes hold 15 to 31 entries.
const degree = 16

// entry is one key-value pair. Both slices belong to the store and are
// never modified once inserted: a Put inserts a new entry.
type entry struct {
	key, value []byte
}

func less(a, b entry) bool { return bytes.Compare(a.key, b.key) < 0 }

// Store is an in-memory state.KeyValueBytesStore. It is safe for concurrent
// use; writes take an exclusive lock, Get and ApproximateCount a shared one.
//
// Iterators run over a clone of the tree, taken under the lock when the
// iterator is created. Cloning is O(1); the store's next writes then copy the
// few nodes they touch, so an open iterator never sees them.
type Store struct {
	name   string
	closed atomic.Bool // set by Close; iterators check it

	mu sync.RWMutex
	// INVARIANT: tree is nil if and only if closed is set.
	tree *btree.BTreeG[entry] // REQUIRES: mu held (write lock for writes and Clone)
}

var _ state.KeyValueBytesStore = (*Store)(nil)

// New returns an empty, open store called name.
func New(name string) *Store {
	return &Store{name: name, tree: btree.NewG(degree, less)}
}

// Name returns the store's name.
func (s *Store) Name() string { return s.name }

func (s *Store) errorf(op string, err error) error {
	return fmt.Errorf("memory: %s in store %q: %w", op, s.name, err)
}

// Get returns the value stored under key. The value is shared with the store
// and must not be modified; it stays valid after later writes.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	if key == nil {
		return nil, false, s.errorf("get", state.ErrNullKey)
	}
	s.mu.RLock()
	if s.tree == nil {
		s.mu.RUnlock()
		return nil, false, s.errorf("get", state.ErrClosed)
	}
	e, found := s.tree.Get(entry{key: key})
	s.mu.RUnlock()
	return e.value, found, nil
}

// Put stores a copy of key and value; a nil value deletes key.
func (s *Store) Put(key, value []byte) error {
	if key == nil {
		return s.errorf("put", state.ErrNullKey)
	}
	if value == nil {
		return s.remove("put", key)
	}
	// One allocation for both; capped slices, so neither can grow into the other.
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	e := entry{key: buf[:n:n], value: buf[n:]}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return s.errorf("put", state.ErrClosed)
	}
	s.tree.ReplaceOrInsert(e)
	return nil
}

// Delete removes key.
func (s *Store) Delete(key []byte) error {
	if key == nil {
		return s.errorf("delete", state.ErrNullKey)
	}
	return s.remove("delete", key)
}

func (s *Store) remove(op string, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return s.errorf(op, state.ErrClosed)
	}
	s.tree.Delete(entry{key: key})
	return nil
}

// Range iterates the keys in [from, to) in ascending order.
func (s *Store) Range(from, to []byte) state.Iterator {
	return s.iterate("range", from, to, false)
}

// ReverseRange iterates the keys in [from, to) in descending order.
func (s *Store) ReverseRange(from, to []byte) state.Iterator {
	return s.iterate("reverse range", from, to, true)
}

// PrefixScan iterates the keys that start with prefix in ascending order.
func (s *Store) PrefixScan(prefix []byte) state.Iterator {
	var from []byte
	if len(prefix) > 0 {
		from = prefix
	}
	return s.iterate("prefix scan", from, state.PrefixEnd(prefix), false)
}

// ApproximateCount returns the exact number of keys.
func (s *Store) ApproximateCount() (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.tree == nil {
		return 0, s.errorf("count", state.ErrClosed)
	}
	return int64(s.tree.Len()), nil
}

// Flush does nothing: there is nothing to make durable.
func (s *Store) Flush() error {
	if s.closed.Load() {
		return s.errorf("flush", state.ErrClosed)
	}
	return nil
}

// Close drops the store's contents. It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree = nil
	s.closed.Store(true)
	return nil
}

func (s *Store) iterate(op string, from, to []byte, reverse bool) state.Iterator {
	if (to != nil && len(to) == 0) || (from != nil && to != nil && bytes.Compare(from, to) >= 0) {
		// Empty range: no need to clone. Still report a closed store.
		if s.closed.Load() {
			return state.ErrIterator(s.errorf(op, state.ErrClosed))
		}
		return &iterator{store: s, done: true}
	}
	it := &iterator{store: s, reverse: reverse, lo: bytes.Clone(from), hi: bytes.Clone(to)}
	s.mu.Lock()
	if s.tree == nil {
		s.mu.Unlock()
		return state.ErrIterator(s.errorf(op, state.ErrClosed))
	}
	// Clone must not run concurrently with other uses of the tree: hence
	// the write lock, held only for this O(1) call.
	it.snap = s.tree.Clone()
	s.mu.Unlock()
	return it
}

// DeleteRange removes the keys in [from, to).
func (s *Store) DeleteRange(from, to []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tree == nil {
		return s.errorf("delete range", state.ErrClosed)
	}
	var keys []entry
	visit := func(e entry) bool {
		if to != nil && bytes.Compare(e.key, to) >= 0 {
			return false
		}
		keys = append(keys, e)
		return true
	}
	if from == nil {
		s.tree.Ascend(visit)
	} else {
		s.tree.AscendGreaterOrEqual(entry{key: from}, visit)
	}
	for _, e := range keys {
		s.tree.Delete(e)
	}
	return nil
}
