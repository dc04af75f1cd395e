package pebble

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
)

// Benchmarks. Figures and the commands that produced them are in the
// package's report; run for instance
//
//	go test -run '^$' -bench 'Restore' -benchtime 2000000x ./state/pebble/
//	go test -run '^$' -bench 'BatchGet|CounterRMW' -benchtime 200000x ./state/pebble/

const (
	benchKeyLen   = 16
	benchValueLen = 100
	restoreChunk  = 10_000
)

var benchLogger = slog.New(slog.DiscardHandler)

// chunkRecords fills records with chunk number c of a changelog: 16-byte
// keys in random order (a hash of the record's number), 100-byte values.
// The buffers are reused from chunk to chunk.
func chunkRecords(records []state.RestoreRecord, c int) {
	for i := range records {
		n := uint64(c*len(records) + i)
		if records[i].Key == nil {
			records[i].Key = make([]byte, benchKeyLen)
			records[i].Value = make([]byte, benchValueLen)
			for j := range records[i].Value {
				records[i].Value[j] = byte(j * 7)
			}
		}
		binary.BigEndian.PutUint64(records[i].Key, n*0x9E3779B97F4A7C15)
		binary.BigEndian.PutUint64(records[i].Key[8:], n)
		binary.BigEndian.PutUint64(records[i].Value, n)
	}
}

func reportRate(b *testing.B, n int, unit string) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), unit)
}

// BenchmarkRestore restores b.N changelog records into one store-partition
// through Engine.Restore, in chunks of 10,000.
func BenchmarkRestore(b *testing.B) {
	e, err := Open(b.TempDir(), WithLogger(benchLogger))
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	sp := state.StorePartition{Store: "counts", Partition: 7}
	records := make([]state.RestoreRecord, restoreChunk)
	b.SetBytes(benchKeyLen + benchValueLen)
	b.ReportAllocs()
	b.ResetTimer()
	for c, done := 0, 0; done < b.N; c++ {
		n := min(restoreChunk, b.N-done)
		chunkRecords(records[:n], c)
		if err := e.Restore(sp, records[:n], int64(done+n)); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.StopTimer()
	reportRate(b, b.N, "records/s")
}

// BenchmarkRestoreRawPebble writes the same records as BenchmarkRestore with
// plain pebble batches of the same size, on a DB opened with the same
// options: the ceiling for Restore.
func BenchmarkRestoreRawPebble(b *testing.B) {
	db := openRawPebble(b)
	records := make([]state.RestoreRecord, restoreChunk)
	b.SetBytes(benchKeyLen + benchValueLen)
	b.ReportAllocs()
	b.ResetTimer()
	for c, done := 0, 0; done < b.N; c++ {
		n := min(restoreChunk, b.N-done)
		chunkRecords(records[:n], c)
		wb := db.NewBatch()
		for _, r := range records[:n] {
			if err := wb.Set(r.Key, r.Value, nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := wb.Commit(pebbledb.NoSync); err != nil {
			b.Fatal(err)
		}
		wb.Close()
		done += n
	}
	b.StopTimer()
	reportRate(b, b.N, "records/s")
}

// benchConfigs compares the options Open chooses with pebble's defaults.
var benchConfigs = []struct {
	name string
	opts []Option
}{
	{"tuned", nil},
	{"pebble-defaults", []Option{WithPebbleOptions(func(o *pebbledb.Options) {
		*o = pebbledb.Options{Logger: o.Logger, FormatMajorVersion: o.FormatMajorVersion}
	})}},
}

// loaded opens an engine with keys 16-byte keys and 100-byte values in
// one store-partition, committed, and returns it with the keys.
func loaded(b *testing.B, keys int, opts []Option) (*Engine, state.StorePartition, [][]byte) {
	e, err := Open(b.TempDir(), append([]Option{WithLogger(benchLogger)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	sp := state.StorePartition{Store: "counts", Partition: 0}
	records := make([]state.RestoreRecord, restoreChunk)
	all := make([][]byte, 0, keys)
	for c := 0; len(all) < keys; c++ {
		n := min(restoreChunk, keys-len(all))
		chunkRecords(records[:n], c)
		if err := e.Restore(sp, records[:n], 0); err != nil {
			b.Fatal(err)
		}
		for _, r := range records[:n] {
			all = append(all, append([]byte(nil), r.Key...))
		}
	}
	quiesce(b, e.db)
	return e, sp, all
}

// quiesce flushes the memtable and waits for compactions to end, so that a
// benchmark measures reads, not the load's compactions.
func quiesce(b *testing.B, db *pebbledb.DB) {
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	for idle := 0; idle < 3; {
		time.Sleep(50 * time.Millisecond)
		if db.Metrics().Compact.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
	}
}

// BenchmarkBatchGet reads random keys through a batch: present (hit) or
// absent (miss).
func BenchmarkBatchGet(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		for _, cfg := range benchConfigs {
			b.Run(fmt.Sprintf("keys=%d/%s/hit", keys, cfg.name), func(b *testing.B) { benchGet(b, keys, false, cfg.opts) })
			b.Run(fmt.Sprintf("keys=%d/%s/miss", keys, cfg.name), func(b *testing.B) { benchGet(b, keys, true, cfg.opts) })
		}
	}
}

// benchGet reads present keys, or absent ones (a bloom filter's case: the
// first record of a key, a join's lookup that misses) when miss is set.
func benchGet(b *testing.B, keys int, miss bool, opts []Option) {
	e, sp, all := loaded(b, keys, opts)
	batch := e.NewBatch()
	defer batch.Close()
	s := batch.Store(sp)
	r := rand.New(rand.NewPCG(1, 2))
	key := make([]byte, benchKeyLen)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		copy(key, all[r.IntN(len(all))])
		if miss {
			key[benchKeyLen-1] ^= 0x80 // a key between two present ones
		}
		if _, found, err := s.Get(key); found == miss || err != nil {
			b.Fatal("wrong answer", found, err)
		}
	}
	b.StopTimer()
	reportRate(b, b.N, "gets/s")
}

// BenchmarkCounterRMW increments counters under random keys (a Get and a
// Put through a batch), committing with a checkpoint every 10,000 ops.
func BenchmarkCounterRMW(b *testing.B) {
	for _, keys := range []int{100_000, 1_000_000} {
		for _, cfg := range benchConfigs {
			b.Run(fmt.Sprintf("keys=%d/%s", keys, cfg.name), func(b *testing.B) { benchRMW(b, keys, cfg.opts) })
		}
	}
}

func benchRMW(b *testing.B, keys int, opts []Option) {
	const commitEvery = 10_000
	e, sp, all := loaded(b, keys, opts)
	batch := e.NewBatch()
	defer batch.Close()
	s := batch.Store(sp)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := all[r.IntN(len(all))]
		v, found, err := s.Get(k)
		if !found || err != nil {
			b.Fatal("missing key", err)
		}
		binary.BigEndian.PutUint64(v, binary.BigEndian.Uint64(v)+1)
		if err := s.Put(k, v); err != nil {
			b.Fatal(err)
		}
		if (i+1)%commitEvery == 0 {
			if err := batch.Commit(map[state.StorePartition]int64{sp: int64(i)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := batch.Commit(map[state.StorePartition]int64{sp: int64(b.N)}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportRate(b, b.N, "ops/s")
}

// BenchmarkBatchCommit writes b.N values through a Batch, 10,000 per Commit,
// to 100,000 keys visited in a shuffled order (a counter's flush), and
// compares it with the same writes in plain pebble batches of the same
// size, applied in the order they come ("raw-pebble"). The Batch's commits
// go to its overlays, which overwrite a key in place and reach pebble
// sorted by key (here when the batch closes, inside the timer).
func BenchmarkBatchCommit(b *testing.B) {
	const keys, perCommit = 100_000, 10_000
	key := func(i int) []byte { return fmt.Appendf(nil, "user-%06d", i*7919%keys) }
	value := make([]byte, 16)
	b.Run("batch", func(b *testing.B) {
		e, err := Open(b.TempDir(), WithLogger(benchLogger))
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close()
		sp := state.StorePartition{Store: "clicks-per-user", Partition: 0}
		bt := e.NewBatch()
		s := bt.Store(sp)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			binary.BigEndian.PutUint64(value, uint64(i))
			if err := s.Put(key(i), value); err != nil {
				b.Fatal(err)
			}
			if i%perCommit == perCommit-1 || i == b.N-1 {
				if err := bt.Commit(map[state.StorePartition]int64{sp: int64(i)}); err != nil {
					b.Fatal(err)
				}
			}
		}
		// Closing the batch flushes its overlays: every commit is in
		// pebble within the time measured, as the raw batches are.
		if err := bt.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		reportRate(b, b.N, "records/s")
	})
	b.Run("raw-pebble", func(b *testing.B) {
		db := openRawPebble(b)
		prefix := dataPrefix(state.StorePartition{Store: "clicks-per-user", Partition: 0})
		wb := db.NewBatch()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			binary.BigEndian.PutUint64(value, uint64(i))
			if err := wb.Set(append(prefix, key(i)...), value, nil); err != nil {
				b.Fatal(err)
			}
			if i%perCommit == perCommit-1 || i == b.N-1 {
				if err := wb.Commit(pebbledb.NoSync); err != nil {
					b.Fatal(err)
				}
				wb.Close()
				wb = db.NewBatch()
			}
		}
		b.StopTimer()
		wb.Close()
		reportRate(b, b.N, "records/s")
	})
}

// openRawPebble opens a plain pebble DB in a temporary directory with the
// Options an Engine uses at the default budget, closed when b ends: the
// baseline of the benchmarks that compare the engine with raw pebble.
func openRawPebble(b *testing.B) *pebbledb.DB {
	b.Helper()
	c := config{memory: DefaultMemory, logger: benchLogger}
	opts, cache := c.options()
	db, err := pebbledb.Open(b.TempDir(), opts)
	cache.Unref()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}
