package memory

import (
	"fmt"
	"sync"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/spans"
)

// Engine is the in-memory state.Engine: the committed state is one B-tree
// store per store-partition and the checkpoints are a map, all under one
// lock. It keeps nothing on disk: a process that restarts restores every
// store-partition from its changelog. Use it in tests and for small state.
//
// Commit, Restore and Drop take the engine's lock exclusively, so a reader
// (Reader views, and the committed half of batch views) sees each of them
// entirely or not at all.
type Engine struct {
	mu sync.RWMutex
	// INVARIANT: stores and checkpoints are nil if and only if closed.
	closed      bool                            // REQUIRES: mu held
	stores      map[state.StorePartition]*Store // REQUIRES: mu held
	checkpoints map[state.StorePartition]int64  // REQUIRES: mu held
	batches     int                             // open batches; REQUIRES: mu held
}

var _ state.Engine = (*Engine)(nil)

// NewEngine returns an empty, open in-memory engine.
func NewEngine() state.Engine {
	return &Engine{
		stores:      map[state.StorePartition]*Store{},
		checkpoints: map[state.StorePartition]int64{},
	}
}

func spErrorf(op string, sp state.StorePartition, err error) error {
	return fmt.Errorf("memory: %s in store %q partition %d: %w", op, sp.Store, sp.Partition, err)
}

// NewBatch returns an empty batch. After Close, it returns a batch whose
// every operation fails with state.ErrClosed.
func (e *Engine) NewBatch() state.Batch {
	b := &batch{engine: e, overlays: map[state.StorePartition]*Store{}, ranges: map[state.StorePartition]spans.Set{}, views: map[state.StorePartition]*batchView{}}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		b.closed = true
		return b
	}
	e.batches++
	return b
}

// Restore applies records to sp's committed state and records next as its
// checkpoint, atomically.
func (e *Engine) Restore(sp state.StorePartition, records []state.RestoreRecord, next int64) error {
	for _, r := range records {
		if r.Key == nil {
			return spErrorf("restore", sp, state.ErrNullKey)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return spErrorf("restore", sp, state.ErrClosed)
	}
	s := e.storeLocked(sp)
	s.mu.Lock()
	for _, r := range records {
		if r.Value == nil {
			s.tree.Delete(entry{key: r.Key})
			continue
		}
		buf := make([]byte, len(r.Key)+len(r.Value))
		n := copy(buf, r.Key)
		copy(buf[n:], r.Value)
		s.tree.ReplaceOrInsert(entry{key: buf[:n:n], value: buf[n:]})
	}
	s.mu.Unlock()
	e.checkpoints[sp] = next
	return nil
}

// storeLocked returns sp's committed store, creating it when absent.
// REQUIRES: e.mu held for writing, e not closed.
func (e *Engine) storeLocked(sp state.StorePartition) *Store {
	s := e.stores[sp]
	if s == nil {
		s = New(sp.Store)
		e.stores[sp] = s
	}
	return s
}

// Checkpoint returns the offset last recorded for sp.
func (e *Engine) Checkpoint(sp state.StorePartition) (int64, bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return 0, false, spErrorf("checkpoint", sp, state.ErrClosed)
	}
	off, ok := e.checkpoints[sp]
	return off, ok, nil
}

// Reader returns a read-only view of sp's committed state. Its writes fail
// with state.ErrReadOnly; its Flush and Close do nothing. Iterators opened on
// it keep their snapshot across later commits and drops.
func (e *Engine) Reader(sp state.StorePartition) state.KeyValueBytesStore {
	return &reader{engine: e, sp: sp}
}

// Drop deletes sp's data and checkpoint. Open iterators keep their snapshot.
func (e *Engine) Drop(sp state.StorePartition) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return spErrorf("drop", sp, state.ErrClosed)
	}
	delete(e.stores, sp)
	delete(e.checkpoints, sp)
	return nil
}

// Close releases the engine. It fails, leaving the engine open, while
// batches are open. Iterators still open fail with state.ErrClosed. Close is
// idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	if e.batches > 0 {
		return fmt.Errorf("memory: close engine: %d batches still open", e.batches)
	}
	for _, s := range e.stores {
		s.Close()
	}
	e.closed = true
	e.stores, e.checkpoints = nil, nil
	return nil
}

// committedGet reads key from sp's committed state.
func (e *Engine) committedGet(op string, sp state.StorePartition, key []byte) ([]byte, bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, false, spErrorf(op, sp, state.ErrClosed)
	}
	s := e.stores[sp]
	if s == nil {
		return nil, false, nil
	}
	return s.Get(key)
}

// committedIter opens an iterator over sp's committed state: a snapshot,
// taken under the engine's lock so that it holds whole commits.
func (e *Engine) committedIter(op string, sp state.StorePartition, open func(*Store) state.Iterator) state.Iterator {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return state.ErrIterator(spErrorf(op, sp, state.ErrClosed))
	}
	s := e.stores[sp]
	if s == nil {
		return state.ErrIterator(nil) // no entries
	}
	return open(s)
}

// committedCount counts sp's committed keys, exactly.
func (e *Engine) committedCount(sp state.StorePartition) (int64, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return 0, spErrorf("count", sp, state.ErrClosed)
	}
	s := e.stores[sp]
	if s == nil {
		return 0, nil
	}
	return s.ApproximateCount()
}

// reader is the read-only view of one store-partition's committed state.
type reader struct {
	engine *Engine
	sp     state.StorePartition
}

var _ state.KeyValueBytesStore = (*reader)(nil)

func (r *reader) Name() string { return r.sp.Store }

func (r *reader) Get(key []byte) ([]byte, bool, error) {
	if key == nil {
		return nil, false, spErrorf("get", r.sp, state.ErrNullKey)
	}
	return r.engine.committedGet("get", r.sp, key)
}

func (r *reader) Put(key, value []byte) error { return spErrorf("put", r.sp, state.ErrReadOnly) }
func (r *reader) Delete(key []byte) error     { return spErrorf("delete", r.sp, state.ErrReadOnly) }

func (r *reader) Range(from, to []byte) state.Iterator {
	return r.engine.committedIter("range", r.sp, func(s *Store) state.Iterator { return s.Range(from, to) })
}

func (r *reader) ReverseRange(from, to []byte) state.Iterator {
	return r.engine.committedIter("reverse range", r.sp, func(s *Store) state.Iterator { return s.ReverseRange(from, to) })
}

func (r *reader) PrefixScan(prefix []byte) state.Iterator {
	return r.engine.committedIter("prefix scan", r.sp, func(s *Store) state.Iterator { return s.PrefixScan(prefix) })
}

// ApproximateCount is exact.
func (r *reader) ApproximateCount() (int64, error) { return r.engine.committedCount(r.sp) }

// Flush does nothing, but reports a closed engine.
func (r *reader) Flush() error {
	_, _, err := r.engine.Checkpoint(r.sp)
	return err
}

// Close does nothing: the view owns nothing.
func (r *reader) Close() error { return nil }

// apply writes overlay, a batch's tagged store (see overlay.go), into s.
// Overlay entries are immutable, so the committed tree shares them.
// REQUIRES: the engine's lock held for writing.
func (s *Store) apply(overlay *Store) {
	overlay.mu.RLock()
	defer overlay.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	overlay.tree.Ascend(func(o entry) bool {
		if o.value[0] == tagTombstone {
			s.tree.Delete(entry{key: o.key})
		} else {
			s.tree.ReplaceOrInsert(entry{key: o.key, value: o.value[1:]})
		}
		return true
	})
}

func (r *reader) DeleteRange(from, to []byte) error {
	return spErrorf("delete range", r.sp, state.ErrReadOnly)
}
