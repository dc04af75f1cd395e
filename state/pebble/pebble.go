// Package pebble is the on-disk state.Engine: one pebble DB
// (github.com/cockroachdb/pebble/v2) per state directory, shared by every
// task and store of the process. Each store-partition is a key prefix of its
// own (see keys.go), so the memory of the whole process is bounded by one
// budget (WithMemory) whatever the number of partitions, and dropping a
// task's state is a range delete.
//
// A Batch's reads see its pending writes: they wait in a Go map per
// store-partition, and iterators merge them with the committed writes not
// yet in pebble (the overlays) and the DB, moving nothing. Commit merges
// them into the overlays, which reach pebble sorted by key, each with its
// checkpoint in one plain pebble batch, so data and checkpoints reach the
// DB in one atomic write. A range delete reaches pebble as a range
// tombstone, whose bytes compactions reclaim. Commits, restores and
// drops do not fsync (pebble.NoSync): the changelog topic is the durable
// copy of the state. Without a sync, pebble keeps the tail of its WAL in
// the process's memory until a 32 KiB block fills or a write syncs, so a
// crash, of the process (even SIGKILL) as of the machine, loses the last
// commits. It loses them whole, with their checkpoints, since each batch is
// one WAL record: the state on disk is always some commit's, and restoring
// from its checkpoint catches up (state.TestCrashConsistency,
// state.TestCrashKilledProcess).
//
// The directory is locked (pebble's LOCK file): a second Open of it, by this
// process or another, fails until Close.
package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
)

// Engine is a state.Engine over one pebble DB. It is safe for concurrent
// use, as state.Engine requires.
type Engine struct {
	db  *pebbledb.DB
	dir string

	// mu is held for reading by every operation that reaches the DB
	// outside an open batch or iterator, and for writing by Close.
	mu     sync.RWMutex
	closed bool // REQUIRES: mu held

	// Open batches and Reader iterators: Close refuses while any is open,
	// since pebble must not be closed under them.
	batches atomic.Int64
	iters   atomic.Int64

	// The overlays of the store-partitions (see overlay.go), and the
	// memory they may hold together.
	ovMu          sync.Mutex
	overlays      map[state.StorePartition]*overlay // REQUIRES: ovMu
	overlayBudget int64
	flushes       atomic.Int64 // flushes that wrote overlays to pebble
}

var _ state.Engine = (*Engine)(nil)

// Open opens (creating it if needed) the state directory dir. The pebble
// options are tuned for a stream processor's state and sized by one memory
// budget; see WithMemory and the comments on the options in options.go.
func Open(dir string, opts ...Option) (*Engine, error) {
	c := config{memory: DefaultMemory, logger: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	po, cache := c.options()
	db, err := pebbledb.Open(dir, po)
	cache.Unref() // the DB holds its own reference
	if err != nil {
		if isLocked(err) {
			return nil, fmt.Errorf("pebble: open state directory %s: %w (by another Engine, in this process or another): %w", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("pebble: open state directory %s: %w", dir, err)
	}
	if err := checkLayout(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("pebble: open state directory %s: %w", dir, err)
	}
	return &Engine{
		db:            db,
		dir:           dir,
		overlays:      map[state.StorePartition]*overlay{},
		overlayBudget: c.memory / overlayShare,
	}, nil
}

// ErrLocked is the cause when Open finds the state directory locked by
// another Engine, of this process or of another one.
var ErrLocked = errors.New("state directory locked")

// isLocked reports whether err is pebble's failure to lock its LOCK file:
// fcntl's EAGAIN/EACCES from another process, or pebble's own message when
// this process holds the lock.
func isLocked(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// checkLayout records the key layout's version in a new DB and checks it in
// an existing one.
func checkLayout(db *pebbledb.DB) error {
	v, closer, err := db.Get(layoutKey)
	if errors.Is(err, pebbledb.ErrNotFound) {
		it, err := db.NewIter(nil)
		if err != nil {
			return err
		}
		empty := !it.First()
		if err := it.Close(); err != nil {
			return err
		}
		if !empty {
			return errors.New("not a gregor state directory: no layout version")
		}
		return db.Set(layoutKey, []byte(layoutVersion), pebbledb.Sync)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if string(v) != layoutVersion {
		return fmt.Errorf("key layout version %q, this version of gregor reads %q", v, layoutVersion)
	}
	return nil
}

// Dir returns the state directory.
func (e *Engine) Dir() string { return e.dir }

func spErrorf(op string, sp state.StorePartition, err error) error {
	return fmt.Errorf("pebble: %s in store %q partition %d: %w", op, sp.Store, sp.Partition, err)
}

// rlock locks e for an operation; it fails if e is closed.
func (e *Engine) rlock(op string, sp state.StorePartition) error {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return spErrorf(op, sp, state.ErrClosed)
	}
	return nil
}

// NewBatch returns an empty batch. After Close,
// it returns a batch whose every operation fails with state.ErrClosed.
func (e *Engine) NewBatch() state.Batch {
	b := &batch{
		engine: e,
		views:  map[state.StorePartition]*view{},
		iters:  map[*merged]struct{}{},
		owned:  map[*overlay]struct{}{},
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		b.closed = true
		return b
	}
	e.batches.Add(1)
	return b
}

// batchHeader and recordOverhead size a pebble batch: a 12-byte header,
// then per record a kind byte and two uvarint lengths.
const (
	batchHeader    = 12
	recordOverhead = 1 + 2*binary.MaxVarintLen32
)

// Restore applies records and the checkpoint next in one plain pebble batch.
func (e *Engine) Restore(sp state.StorePartition, records []state.RestoreRecord, next int64) error {
	prefix := dataPrefix(sp)
	size := batchHeader + recordOverhead + len(prefix) + 8
	for _, r := range records {
		if r.Key == nil {
			return spErrorf("restore", sp, state.ErrNullKey)
		}
		size += recordOverhead + len(prefix) + len(r.Key) + len(r.Value)
	}
	if err := e.rlock("restore", sp); err != nil {
		return err
	}
	defer e.mu.RUnlock()
	// The records are newer than the overlay's writes: they must not be
	// shadowed by them.
	if err := e.flush(e.overlay(sp)); err != nil {
		return err
	}
	wb := e.db.NewBatchWithSize(size)
	defer wb.Close()
	n := len(prefix)
	key := prefix
	for _, r := range records {
		// Set and Delete copy: one key buffer serves every record.
		key = append(key[:n], r.Key...)
		var err error
		if r.Value == nil {
			err = wb.Delete(key, nil)
		} else {
			err = wb.Set(key, r.Value, nil)
		}
		if err != nil {
			return spErrorf("restore", sp, err)
		}
	}
	var off [8]byte
	binary.BigEndian.PutUint64(off[:], uint64(next))
	if err := wb.Set(checkpointKey(sp), off[:], nil); err != nil {
		return spErrorf("restore", sp, err)
	}
	if err := wb.Commit(pebbledb.NoSync); err != nil {
		return spErrorf("restore", sp, err)
	}
	return nil
}

// Checkpoint returns the offset last recorded for sp.
func (e *Engine) Checkpoint(sp state.StorePartition) (int64, bool, error) {
	if err := e.rlock("checkpoint", sp); err != nil {
		return 0, false, err
	}
	defer e.mu.RUnlock()
	if cp, ok := e.overlay(sp).checkpoint(); ok {
		return cp, true, nil
	}
	v, closer, err := e.db.Get(checkpointKey(sp))
	if errors.Is(err, pebbledb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, spErrorf("checkpoint", sp, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, spErrorf("checkpoint", sp, fmt.Errorf("corrupt checkpoint of %d bytes", len(v)))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

// Reader returns a read-only view of sp's committed state, safe for
// concurrent use. Its writes fail with state.ErrReadOnly; its Flush and
// Close do nothing. Its iterators are snapshots of the overlay and of
// pebble, which must be closed before the Engine.
func (e *Engine) Reader(sp state.StorePartition) state.KeyValueBytesStore {
	return newView(e, nil, sp)
}

// Drop deletes sp's data (a range deletion) and checkpoint in one batch.
// The space is reclaimed by later compactions.
func (e *Engine) Drop(sp state.StorePartition) error {
	if err := e.rlock("drop", sp); err != nil {
		return err
	}
	defer e.mu.RUnlock()
	ov := e.overlay(sp)
	ov.mu.Lock()
	defer ov.mu.Unlock()
	ov.reset()
	prefix := dataPrefix(sp)
	wb := e.db.NewBatch()
	defer wb.Close()
	if err := wb.DeleteRange(prefix, state.PrefixEnd(prefix), nil); err != nil {
		return spErrorf("drop", sp, err)
	}
	if err := wb.Delete(checkpointKey(sp), nil); err != nil {
		return spErrorf("drop", sp, err)
	}
	if err := wb.Commit(pebbledb.NoSync); err != nil {
		return spErrorf("drop", sp, err)
	}
	return nil
}

// Close closes the DB, unlocking the directory. It fails, leaving the engine
// open, while batches or Reader iterators are open. Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	if b, it := e.batches.Load(), e.iters.Load(); b > 0 || it > 0 {
		return fmt.Errorf("pebble: close %s: %d batches and %d reader iterators still open", e.dir, b, it)
	}
	if err := e.flushAll(); err != nil {
		return fmt.Errorf("pebble: close %s: %w", e.dir, err)
	}
	e.closed = true
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("pebble: close %s: %w", e.dir, err)
	}
	return nil
}
