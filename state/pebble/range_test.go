package pebble_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/pebble"
)

// TestEngineConformanceFlushing runs the engine conformance suite with an
// overlay budget of zero, so every commit reaches pebble: reads then merge
// the pending writes with pebble alone, and range deletes reach pebble as
// range tombstones.
func TestEngineConformanceFlushing(t *testing.T) {
	storetest.EngineConformance(t, func(t *testing.T) state.Engine {
		e := open(t)
		pebble.SetOverlayBudget(e, 0)
		return e
	}, storetest.Options{ExactCount: true})
}

// TestBatchModel runs random writes, range deletes, commits, aborts and
// iterators against a model, with overlay budgets that keep every commit in
// the overlays, flush every commit to pebble, or flush some, so that keys
// and range deletes are spread over the three layers.
func TestBatchModel(t *testing.T) {
	e := open(t)
	n := 0
	rapid.Check(t, func(t *rapid.T) {
		n++
		pebble.SetOverlayBudget(e, rapid.SampledFrom([]int64{0, 300, 1 << 30}).Draw(t, "overlay budget"))
		storetest.CheckBatch(t, e, state.StorePartition{Store: fmt.Sprintf("model-%d", n), Partition: 1})
	})
}

// TestScanLeavesOverlay checks that iterators have no side effect: a scan
// of a batch view or of a Reader over committed writes still in the overlay
// neither flushes the overlay to pebble nor moves the pending writes, and
// still sees everything.
func TestScanLeavesOverlay(t *testing.T) {
	e := open(t)
	sp := state.StorePartition{Store: "windows", Partition: 0}
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(sp)
	for i := range 100 {
		must(t, s.Put(fmt.Appendf(nil, "k%03d", i), []byte("v")))
	}
	must(t, b.Commit(map[state.StorePartition]int64{sp: 1}))
	mem, flushes := pebble.OverlayMem(e), pebble.Flushes(e)
	if mem == 0 {
		t.Fatal("the commit reached pebble: no overlay holds it")
	}
	count := func(it state.Iterator) int {
		t.Helper()
		n := 0
		for it.Next() {
			n++
		}
		must(t, it.Close())
		return n
	}
	for interval := range 3 {
		must(t, s.Put([]byte("k100"), []byte("pending")))
		for _, c := range []struct {
			name string
			it   state.Iterator
			want int
		}{
			{"batch Range", s.Range(nil, nil), 101},
			{"batch ReverseRange", s.ReverseRange([]byte("k050"), nil), 51},
			{"batch PrefixScan", s.PrefixScan([]byte("k09")), 10},
			{"Reader Range", e.Reader(sp).Range(nil, nil), 100 + min(interval, 1)},
		} {
			if got := count(c.it); got != c.want {
				t.Errorf("interval %d: %s: %d keys, want %d", interval, c.name, got, c.want)
			}
		}
		if got := pebble.Flushes(e); got != flushes {
			t.Fatalf("interval %d: scans flushed the overlays %d times", interval, got-flushes)
		}
		if v, found, err := s.Get([]byte("k100")); err != nil || !found || string(v) != "pending" {
			t.Fatalf("interval %d: Get(k100) = %q, %v, %v after scans", interval, v, found, err)
		}
		must(t, b.Commit(nil))
	}
	if got := pebble.OverlayMem(e); got < mem {
		t.Errorf("overlay memory %d after the scans, was %d: something moved it", got, mem)
	}
}

// TestDeleteRangeReclaims checks that a committed range delete reaches
// pebble as a range tombstone that compactions honour: the bytes of 10,000
// keys with 1 KiB values leave the DB once the range is compacted.
func TestDeleteRangeReclaims(t *testing.T) {
	e := open(t)
	pebble.SetOverlayBudget(e, 0) // every commit reaches pebble
	sp := state.StorePartition{Store: "segments", Partition: 2}
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(sp)
	rnd := rand.NewChaCha8([32]byte{}) // random values: incompressible
	value := make([]byte, 1024)
	for i := range 10_000 {
		rnd.Read(value)
		must(t, s.Put(fmt.Appendf(nil, "seg-%05d", i), value))
		if i%1000 == 999 {
			must(t, b.Commit(nil))
		}
	}
	must(t, b.Commit(nil))
	db := pebble.DB(e)
	must(t, db.Flush())
	lo, hi := pebble.DataRange(sp)
	before, err := db.EstimateDiskUsage(lo, hi)
	must(t, err)
	if before < 5<<20 {
		t.Fatalf("estimated disk usage %d bytes before the delete, want about 10 MiB", before)
	}
	must(t, s.DeleteRange([]byte("seg-"), []byte("seg.")))
	if v, found, err := s.Get([]byte("seg-00042")); err != nil || found {
		t.Fatalf("Get after DeleteRange = %q, %v, %v; want absent", v, found, err)
	}
	must(t, b.Commit(nil))
	must(t, db.Compact(context.Background(), lo, hi, true))
	after, err := db.EstimateDiskUsage(lo, hi)
	must(t, err)
	if after > before/100 {
		t.Errorf("estimated disk usage %d bytes after DeleteRange and compaction, was %d", after, before)
	}
	if n, err := e.Reader(sp).ApproximateCount(); err != nil || n != 0 {
		t.Errorf("Reader count after DeleteRange = %d, %v; want 0", n, err)
	}
}
