package pebble_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/pebble"
)

// TestWriteBack checks the overlays of committed writes (overlay.go): what
// a commit wrote is read by the batch, by Readers (Get and scans) and by
// Checkpoint before it reaches pebble; a restore's records win over it; a
// drop forgets it; the budget flushes it; Close persists it.
func TestWriteBack(t *testing.T) {
	dir := t.TempDir()
	e, err := pebble.Open(dir, quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	sp := state.StorePartition{Store: "counts", Partition: 1}
	other := state.StorePartition{Store: "counts", Partition: 2}
	b := e.NewBatch()
	s := b.Store(sp)
	must(t, s.Put([]byte("a"), []byte("1")))
	must(t, s.Put([]byte("b"), []byte("1")))
	must(t, s.Put([]byte("a"), []byte("2"))) // superseded within the interval
	must(t, b.Store(other).Put([]byte("x"), []byte("9")))
	must(t, b.Commit(map[state.StorePartition]int64{sp: 10, other: 3}))
	if pebble.OverlayMem(e) == 0 {
		t.Fatal("the commit reached pebble: no overlay holds it")
	}

	get := func(s state.KeyValueBytesStore, key string) string {
		t.Helper()
		v, found, err := s.Get([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return "absent"
		}
		return string(v)
	}
	r := e.Reader(sp)
	for _, c := range []struct{ key, want string }{{"a", "2"}, {"b", "1"}, {"c", "absent"}} {
		if got := get(s, c.key); got != c.want {
			t.Errorf("batch Get(%s) = %s, want %s", c.key, got, c.want)
		}
		if got := get(r, c.key); got != c.want {
			t.Errorf("Reader Get(%s) = %s, want %s", c.key, got, c.want)
		}
	}
	if cp, ok, err := e.Checkpoint(sp); err != nil || !ok || cp != 10 {
		t.Errorf("Checkpoint = %d, %v, %v; want 10", cp, ok, err)
	}

	// A delete in a later interval shadows the committed write.
	must(t, s.Delete([]byte("b")))
	if got := get(s, "b"); got != "absent" {
		t.Errorf("batch Get(b) after Delete = %s", got)
	}
	if got := get(r, "b"); got != "1" {
		t.Errorf("Reader Get(b) before the delete commits = %s, want 1", got)
	}
	must(t, b.Commit(map[state.StorePartition]int64{sp: 11}))
	if got := get(r, "b"); got != "absent" {
		t.Errorf("Reader Get(b) after the delete commits = %s", got)
	}

	// A scan merges through pebble: it sees the committed state.
	if got := contents(t, r); got != "a=2 " {
		t.Errorf("Reader scan = %q, want a=2", got)
	}
	// A restore's records are newer than the committed writes.
	must(t, b.Store(sp).Put([]byte("a"), []byte("3")))
	must(t, b.Commit(map[state.StorePartition]int64{sp: 12}))
	must(t, e.Restore(sp, []state.RestoreRecord{{Key: []byte("a"), Value: []byte("4")}}, 13))
	if got := get(r, "a"); got != "4" {
		t.Errorf("Reader Get(a) after a restore = %s, want 4", got)
	}
	// A drop forgets the store-partition, committed writes included.
	must(t, b.Store(other).Put([]byte("y"), []byte("8")))
	must(t, b.Commit(nil))
	must(t, e.Drop(other))
	if got := get(e.Reader(other), "y"); got != "absent" {
		t.Errorf("Get(y) after Drop = %s", got)
	}
	if _, ok, _ := e.Checkpoint(other); ok {
		t.Error("a checkpoint after Drop")
	}

	// Close persists what the overlays hold.
	must(t, b.Store(sp).Put([]byte("z"), []byte("5")))
	must(t, b.Commit(map[state.StorePartition]int64{sp: 14}))
	must(t, b.Close())
	must(t, e.Close())
	e, err = pebble.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := contents(t, e.Reader(sp)); got != "a=4 z=5 " {
		t.Errorf("after reopening: %q, want a=4 z=5", got)
	}
	if cp, ok, err := e.Checkpoint(sp); err != nil || !ok || cp != 14 {
		t.Errorf("Checkpoint after reopening = %d, %v, %v; want 14", cp, ok, err)
	}
}

// TestWriteBackBudget checks that a batch whose overlays pass the budget
// flushes them at commit, so they hold no more than the budget between
// commits.
func TestWriteBackBudget(t *testing.T) {
	e := open(t)
	const budget = 64 << 10
	pebble.SetOverlayBudget(e, budget)
	b := e.NewBatch()
	defer b.Close()
	sp := state.StorePartition{Store: "s", Partition: 0}
	flushed := 0
	for i := range 100 {
		for j := range 100 {
			must(t, b.Store(sp).Put(fmt.Appendf(nil, "key-%d-%d", i, j), bytes.Repeat([]byte{'v'}, 50)))
		}
		must(t, b.Commit(map[state.StorePartition]int64{sp: int64(i)}))
		after := pebble.OverlayMem(e)
		if after == 0 {
			flushed++
		}
		if after >= budget {
			t.Fatalf("commit %d: overlays hold %d bytes, budget %d", i, after, budget)
		}
	}
	if flushed == 0 {
		t.Fatal("no commit flushed")
	}
	if n, err := e.Reader(sp).ApproximateCount(); err != nil || n != 100*100 {
		t.Fatalf("count = %d, %v; want 10000", n, err)
	}
}

// TestWriteBackConcurrentReaders reads committed state through Readers while
// the owner's batch commits, for the race detector; a Reader sees every
// key's value grow.
func TestWriteBackConcurrentReaders(t *testing.T) {
	e := open(t)
	sp := state.StorePartition{Store: "s", Partition: 0}
	b := e.NewBatch()
	defer b.Close()
	const commits = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			r := e.Reader(sp)
			last := -1
			for i := range commits * 5 {
				v, found, err := r.Get([]byte("k"))
				if err != nil {
					errs <- err
					return
				}
				n := -1
				if found {
					fmt.Sscan(string(v), &n)
				}
				if n < last {
					errs <- fmt.Errorf("read %d after %d", n, last)
					return
				}
				last = n
				if i%50 == 0 {
					contents(t, r) // a scan snapshots the overlay under the owner
				}
			}
		})
	}
	for i := range commits {
		must(t, b.Store(sp).Put([]byte("k"), fmt.Append(nil, i)))
		must(t, b.Commit(map[state.StorePartition]int64{sp: int64(i)}))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// contents renders every entry of s.
func contents(t testing.TB, s state.KeyValueBytesStore) string {
	it := s.Range(nil, nil)
	var out bytes.Buffer
	for it.Next() {
		fmt.Fprintf(&out, "%s=%s ", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Error(err)
	}
	return out.String()
}
