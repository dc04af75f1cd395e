package pebble

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// DefaultMemory is the memory budget of an Engine when no WithMemory option
// is given: 256 MiB.
const DefaultMemory = 256 << 20

// minMemory is the smallest budget WithMemory accepts; smaller ones are
// raised to it.
const minMemory = 16 << 20

// Option configures Open.
type Option func(*config)

type config struct {
	memory int64
	logger *slog.Logger
	tune   []func(*pebbledb.Options)
}

// WithMemory sets the memory budget of the whole DB, whatever the number of
// tasks and stores: the block cache, the memtables and the overlays of
// committed writes not yet in pebble are carved out of it (see the carving
// below; an overlay's memory is an estimate of its Go map's). The default value is DefaultMemory (256 MiB); values below
// 16 MiB are raised to 16 MiB. Index and filter blocks live in the block
// cache, so the budget bounds them too; pebble's other overheads (open file
// handles, iterators, batches being built) come on top.
func WithMemory(bytes int64) Option {
	return func(c *config) { c.memory = max(bytes, minMemory) }
}

// WithLogger routes pebble's messages to l: its informational messages at
// debug level, write stalls as warnings, background errors as errors. The
// default value is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithPebbleOptions lets f adjust the pebble options after Open has set
// them, for experiments and benchmarks; the memory budget no longer holds
// if f changes the Cache or the memtables. The key layout needs the default
// Comparer (bytewise order).
func WithPebbleOptions(f func(*pebbledb.Options)) Option {
	return func(c *config) { c.tune = append(c.tune, f) }
}

// Carving of the memory budget B: memtables of B/8 each, of which at most
// MemTableStopWritesThreshold = 2 exist at once (one being written, one
// being flushed), so at most B/4; the overlays of committed writes not yet
// in pebble (overlay.go) B/8; the block cache gets the remaining 5B/8. At
// the default budget: 32 MiB memtables, 32 MiB of overlays and a 160 MiB
// block cache.
const (
	memTableShare   = 8 // MemTableSize = B / memTableShare
	memTablesAtOnce = 2 // MemTableStopWritesThreshold
	overlayShare    = 8 // overlay budget = B / overlayShare
)

// options returns the pebble options for c and the block cache they use;
// the caller unrefs the cache once the DB is open (or failed to open).
//
// The access pattern is a stream processor's: point reads and
// read-modify-writes of keys in random order, short range scans (windows,
// prefixes), writes batched per commit interval, and bulk restores. Hence:
//   - a bloom filter (10 bits per key, ~1% false positives) on every level:
//     a point read of an absent or cold key then costs one sstable read
//     instead of one per level. Filters are on whole keys, so they serve
//     Get, not scans.
//   - one block cache for the whole DB, as large as the budget allows.
//   - large memtables (B/8, 32 MiB by default) instead of pebble's 4 MiB:
//     fewer, larger L0 files and fewer flushes under read-modify-write.
//   - L0 compactions start at 2 sublevels (default 4) to keep the read
//     amplification of point reads low; writes stop only at 24 (default
//     12), so that a bulk restore is throttled by compactions rather than
//     stalled.
//   - up to half the CPUs (at least 1, at most 4) for compactions; pebble's
//     default is 1.
//   - the newest on-disk format.
func (c *config) options() (*pebbledb.Options, *pebbledb.Cache) {
	memTable := c.memory / memTableShare
	cache := pebbledb.NewCache(c.memory - memTablesAtOnce*memTable - c.memory/overlayShare)
	compactions := min(max(runtime.GOMAXPROCS(0)/2, 1), 4)
	log := c.logger.With("component", "pebble")
	o := &pebbledb.Options{
		Cache:                       cache,
		MemTableSize:                uint64(memTable),
		MemTableStopWritesThreshold: memTablesAtOnce,
		L0CompactionThreshold:       2,
		L0StopWritesThreshold:       24,
		CompactionConcurrencyRange:  func() (int, int) { return 1, compactions },
		FormatMajorVersion:          pebbledb.FormatNewest,
		Logger:                      logger{log},
		EventListener: &pebbledb.EventListener{
			BackgroundError: func(err error) { log.Error("pebble: background error", "err", err) },
			WriteStallBegin: func(i pebbledb.WriteStallBeginInfo) { log.Warn("pebble: write stall", "reason", i.Reason) },
			WriteStallEnd:   func() { log.Info("pebble: write stall ended") },
		},
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].FilterType = pebbledb.TableFilter
	}
	for _, f := range c.tune {
		f(o)
	}
	return o, cache
}

// logger routes pebble's Logger to slog.
type logger struct{ l *slog.Logger }

func (l logger) Infof(format string, args ...any) {
	if l.l.Enabled(context.Background(), slog.LevelDebug) {
		l.l.Debug(fmt.Sprintf(format, args...))
	}
}

func (l logger) Errorf(format string, args ...any) { l.l.Error(fmt.Sprintf(format, args...)) }

// Fatalf reports an error pebble cannot recover from (corruption, a failed
// commit pipeline). pebble expects it not to return: it panics.
func (l logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.l.Error(msg)
	panic("pebble: fatal: " + msg)
}
