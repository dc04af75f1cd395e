package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gregorstream/gregor/state"
)

var (
	spA = state.StorePartition{Store: "s", Partition: 0}
	spB = state.StorePartition{Store: "s", Partition: 1}
	spC = state.StorePartition{Store: "t", Partition: 0}
)

type engineCase struct {
	name string
	run  func(t *testing.T, e state.Engine, opts Options)
}

var engineCases = []engineCase{
	{"read your writes", testReadYourWrites},
	{"tombstones", testTombstones},
	{"commit checkpoints", testCommitCheckpoints},
	{"commit atomic for readers", testCommitAtomic},
	{"abort", testAbort},
	{"restore", testRestore},
	{"drop", testDrop},
	{"reader is read-only", testReaderReadOnly},
	{"store-partitions isolated", testIsolation},
	{"iterator snapshots", testSnapshots},
	{"batch close", testBatchClose},
	{"engine close", testEngineClose},
	{"concurrent batches", testConcurrentBatches},
	{"empty key and value", testEmpty},
	{"delete range bounds", testDeleteRangeBounds},
	{"delete range order", testDeleteRangeOrder},
	{"delete range snapshots", testDeleteRangeSnapshots},
	{"delete range read-only", testDeleteRangeReadOnly},
}

func testReadYourWrites(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	s, r := b.Store(spA), e.Reader(spA)
	if s.Name() != "s" || r.Name() != "s" {
		t.Errorf("Name = %q, %q; want the store's name", s.Name(), r.Name())
	}
	put(t, s, "k1=v1", "k2=v2", "k3=v3")
	if n := b.Len(); n != 3 {
		t.Errorf("Len = %d after 3 writes, want 3", n)
	}
	if got := get(s, "k1"); got != "v1" {
		t.Errorf("batch Get(k1) = %s, want v1", got)
	}
	if got := dump(t, s.Range(nil, nil)); got != "k1=v1 k2=v2 k3=v3" {
		t.Errorf("batch Range = %s", got)
	}
	if got := get(r, "k1"); got != "absent" {
		t.Errorf("Reader Get(k1) before Commit = %s, want absent", got)
	}
	if got := dump(t, r.Range(nil, nil)); got != "" {
		t.Errorf("Reader Range before Commit = %s, want nothing", got)
	}
	commit(t, b, nil)
	if n := b.Len(); n != 0 {
		t.Errorf("Len = %d after Commit, want 0", n)
	}
	if got := get(r, "k1"); got != "v1" {
		t.Errorf("Reader Get(k1) after Commit = %s, want v1", got)
	}
	if got := dump(t, s.ReverseRange(nil, nil)); got != "k3=v3 k2=v2 k1=v1" {
		t.Errorf("batch ReverseRange after Commit = %s", got)
	}
	if got := checkpoint(t, e, spA); got != "none" {
		t.Errorf("Checkpoint after a Commit without checkpoints = %s, want none", got)
	}
	// Another batch sees the committed state too.
	b2 := e.NewBatch()
	defer b2.Close()
	if got := get(b2.Store(spA), "k2"); got != "v2" {
		t.Errorf("new batch Get(k2) = %s, want v2", got)
	}
}

func testTombstones(t *testing.T, e state.Engine, opts Options) {
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(spA)
	put(t, s, "a=1", "b=1", "ba=1", "c=1", "d=1", "e=1")
	commit(t, b, nil)
	// Delete committed keys three ways, overwrite one, add keys between
	// them, and delete a key that only the batch holds.
	if err := s.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	put(t, s, "d", "ba", "e=2", "ab=2", "bb=2", "x=2", "x", "absent")
	if err := s.Delete([]byte("nothing")); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "1", "b": "absent", "ba": "absent", "d": "absent", "e": "2", "ab": "2", "x": "absent", "absent": "absent"} {
		if got := get(s, k); got != want {
			t.Errorf("Get(%s) = %s, want %s", k, got, want)
		}
	}
	all := "a=1 ab=2 bb=2 c=1 e=2"
	tests := []struct {
		name     string
		from, to string // "-" is nil
		want     string
	}{
		{"all", "-", "-", all},
		{"from a deleted key", "b", "-", "bb=2 c=1 e=2"},
		{"to a deleted key", "-", "d", "a=1 ab=2 bb=2 c=1"},
		{"only tombstones", "b", "bb", ""},
		{"around tombstones", "ab", "e", "ab=2 bb=2 c=1"},
		{"to a deleted batch key", "c", "x", "c=1 e=2"},
	}
	bound := func(s string) []byte {
		if s == "-" {
			return nil
		}
		return []byte(s)
	}
	for _, tt := range tests {
		if got := dump(t, s.Range(bound(tt.from), bound(tt.to))); got != tt.want {
			t.Errorf("%s: Range(%s, %s) = %s, want %s", tt.name, tt.from, tt.to, got, tt.want)
		}
		if got, want := dump(t, s.ReverseRange(bound(tt.from), bound(tt.to))), reverse(tt.want); got != want {
			t.Errorf("%s: ReverseRange(%s, %s) = %s, want %s", tt.name, tt.from, tt.to, got, want)
		}
	}
	for prefix, want := range map[string]string{"": all, "a": "a=1 ab=2", "b": "bb=2", "d": "", "x": ""} {
		if got := dump(t, s.PrefixScan([]byte(prefix))); got != want {
			t.Errorf("PrefixScan(%q) = %s, want %s", prefix, got, want)
		}
	}
	if n, err := s.ApproximateCount(); err != nil || n < 0 || (opts.ExactCount && n != 5) {
		t.Errorf("ApproximateCount = %d, %v; want 5", n, err)
	}
	commit(t, b, nil)
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != all {
		t.Errorf("committed = %s, want %s", got, all)
	}
	if got := dump(t, e.Reader(spA).ReverseRange(nil, nil)); got != reverse(all) {
		t.Errorf("committed reverse = %s, want %s", got, reverse(all))
	}
	if n, err := e.Reader(spA).ApproximateCount(); err != nil || n < 0 || (opts.ExactCount && n != 5) {
		t.Errorf("Reader ApproximateCount = %d, %v; want 5", n, err)
	}
}

func reverse(rendered string) string {
	f := strings.Fields(rendered)
	for i, j := 0, len(f)-1; i < j; i, j = i+1, j-1 {
		f[i], f[j] = f[j], f[i]
	}
	return strings.Join(f, " ")
}

func testCommitCheckpoints(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	put(t, b.Store(spA), "a=1")
	put(t, b.Store(spB), "b=1")
	commit(t, b, map[state.StorePartition]int64{spA: 10, spB: 20})
	put(t, b.Store(spB), "b=2")
	commit(t, b, map[state.StorePartition]int64{spA: 11})
	commit(t, b, map[state.StorePartition]int64{spC: 0})
	for sp, want := range map[state.StorePartition]string{spA: "11", spB: "20", spC: "0", {Store: "s", Partition: 2}: "none"} {
		if got := checkpoint(t, e, sp); got != want {
			t.Errorf("Checkpoint(%v) = %s, want %s", sp, got, want)
		}
	}
	if got := get(e.Reader(spB), "b"); got != "2" {
		t.Errorf("Get(b) = %s, want 2", got)
	}
}

// testCommitAtomic commits ten keys with the same value over and over while
// readers check that they never see two values at once.
func testCommitAtomic(t *testing.T, e state.Engine, _ Options) {
	const keys, commits = 10, 200
	b := e.NewBatch()
	defer b.Close()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			r := e.Reader(spA)
			for {
				select {
				case <-done:
					return
				default:
				}
				entries, err := drain(r.Range(nil, nil))
				if err != nil {
					t.Error(err)
					return
				}
				if len(entries) != 0 && len(entries) != keys {
					t.Errorf("reader saw %d keys, want 0 or %d", len(entries), keys)
					return
				}
				for _, en := range entries[min(1, len(entries)):] {
					if string(en.value) != string(entries[0].value) {
						t.Errorf("reader saw a partial commit: %s", render(entries))
						return
					}
				}
			}
		})
	}
	s := b.Store(spA)
	for i := range commits {
		for k := range keys {
			put(t, s, fmt.Sprintf("k%d=%d", k, i))
		}
		commit(t, b, map[state.StorePartition]int64{spA: int64(i)})
	}
	close(done)
	wg.Wait()
	if got := checkpoint(t, e, spA); got != fmt.Sprint(commits-1) {
		t.Errorf("Checkpoint = %s, want %d", got, commits-1)
	}
}

func testAbort(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(spA)
	put(t, s, "a=1", "b=1")
	commit(t, b, map[state.StorePartition]int64{spA: 5})
	put(t, s, "a=2", "b", "c=2")
	put(t, b.Store(spB), "z=2")
	b.Abort()
	if n := b.Len(); n != 0 {
		t.Errorf("Len after Abort = %d", n)
	}
	if got := dump(t, s.Range(nil, nil)); got != "a=1 b=1" {
		t.Errorf("batch view after Abort = %s, want the committed a=1 b=1", got)
	}
	if got := dump(t, b.Store(spB).Range(nil, nil)); got != "" {
		t.Errorf("other store-partition after Abort = %s, want nothing", got)
	}
	// The batch stays usable, and the aborted writes never reach the engine.
	put(t, s, "d=3")
	commit(t, b, nil)
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "a=1 b=1 d=3" {
		t.Errorf("committed after Abort and Commit = %s", got)
	}
	if got := checkpoint(t, e, spA); got != "5" {
		t.Errorf("Checkpoint = %s, want 5", got)
	}
}

func records(kvs ...string) []state.RestoreRecord {
	var out []state.RestoreRecord
	for _, p := range kvs {
		k, v, ok := strings.Cut(p, "=")
		r := state.RestoreRecord{Key: []byte(k)}
		if ok {
			r.Value = []byte(v)
		}
		out = append(out, r)
	}
	return out
}

func testRestore(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	put(t, b.Store(spA), "a=1", "b=1", "c=1")
	commit(t, b, map[state.StorePartition]int64{spA: 3})
	// Tombstones for present and absent keys, a key written twice.
	if err := e.Restore(spA, records("b", "d=4", "a=4", "e", "d=5", "empty="), 42); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	r := e.Reader(spA)
	if got, want := dump(t, r.Range(nil, nil)), `a=4 c=1 d=5 empty=""`; got != want {
		t.Errorf("after Restore: %s, want %s", got, want)
	}
	if got := checkpoint(t, e, spA); got != "42" {
		t.Errorf("Checkpoint = %s, want 42", got)
	}
	if got := get(b.Store(spA), "d"); got != "5" {
		t.Errorf("batch Get(d) after Restore = %s, want 5", got)
	}
	// An empty chunk moves the checkpoint alone; other partitions are
	// untouched.
	if err := e.Restore(spA, nil, 50); err != nil {
		t.Fatalf("Restore(nil): %v", err)
	}
	if got := checkpoint(t, e, spA); got != "50" {
		t.Errorf("Checkpoint after an empty Restore = %s, want 50", got)
	}
	if err := e.Restore(spB, records("x=1"), 7); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, e.Reader(spB).Range(nil, nil)); got != "x=1" {
		t.Errorf("spB = %s", got)
	}
	if got := checkpoint(t, e, spA); got != "50" {
		t.Errorf("Checkpoint(spA) = %s after restoring spB, want 50", got)
	}
	// A null key fails the chunk: none of it, nor its checkpoint, applies.
	err := e.Restore(spB, []state.RestoreRecord{{Key: []byte("y"), Value: []byte("1")}, {Value: []byte("v")}}, 8)
	wantErr(t, "Restore with a nil key", err, state.ErrNullKey)
	if got := get(e.Reader(spB), "y"); got != "absent" {
		t.Errorf("Get(y) after a failed Restore = %s, want absent", got)
	}
	if got := checkpoint(t, e, spB); got != "7" {
		t.Errorf("Checkpoint after a failed Restore = %s, want 7", got)
	}
}

func testDrop(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	ab := state.StorePartition{Store: "sb", Partition: 0} // "s" is a prefix of its name
	for _, sp := range []state.StorePartition{spA, spB, ab} {
		put(t, b.Store(sp), "k="+sp.Store+fmt.Sprint(sp.Partition))
	}
	commit(t, b, map[state.StorePartition]int64{spA: 1, spB: 2, ab: 3})
	live := e.Reader(spA).Range(nil, nil)
	if err := e.Drop(spA); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "" {
		t.Errorf("dropped store-partition holds %s", got)
	}
	if got := get(b.Store(spA), "k"); got != "absent" {
		t.Errorf("batch Get in a dropped store-partition = %s", got)
	}
	if got := checkpoint(t, e, spA); got != "none" {
		t.Errorf("Checkpoint after Drop = %s, want none", got)
	}
	if got := dump(t, live); got != "k=s0" {
		t.Errorf("iterator opened before Drop saw %s, want its snapshot k=s0", got)
	}
	for sp, want := range map[state.StorePartition]string{spB: "k=s1", ab: "k=sb0"} {
		if got := dump(t, e.Reader(sp).Range(nil, nil)); got != want {
			t.Errorf("Drop(%v) changed %v: %s, want %s", spA, sp, got, want)
		}
	}
	if got := checkpoint(t, e, ab); got != "3" {
		t.Errorf("Checkpoint(%v) = %s, want 3", ab, got)
	}
	// Dropping again, or dropping what never was, is fine; the
	// store-partition can be written anew.
	if err := e.Drop(spA); err != nil {
		t.Fatalf("second Drop: %v", err)
	}
	if err := e.Drop(state.StorePartition{Store: "never"}); err != nil {
		t.Fatalf("Drop of an unknown store-partition: %v", err)
	}
	put(t, b.Store(spA), "new=1")
	commit(t, b, nil)
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "new=1" {
		t.Errorf("after Drop and a new Commit: %s, want new=1", got)
	}
}

func testReaderReadOnly(t *testing.T, e state.Engine, _ Options) {
	if err := e.Restore(spA, records("a=1"), 1); err != nil {
		t.Fatal(err)
	}
	r := e.Reader(spA)
	wantErr(t, "Reader Put", r.Put([]byte("a"), []byte("2")), state.ErrReadOnly)
	wantErr(t, "Reader Put nil", r.Put([]byte("a"), nil), state.ErrReadOnly)
	wantErr(t, "Reader Delete", r.Delete([]byte("a")), state.ErrReadOnly)
	_, _, err := r.Get(nil)
	wantErr(t, "Reader Get(nil)", err, state.ErrNullKey)
	if err := r.Flush(); err != nil {
		t.Errorf("Reader Flush: %v", err)
	}
	if got := get(r, "a"); got != "1" {
		t.Errorf("Get(a) after failed writes = %s, want 1", got)
	}
}
