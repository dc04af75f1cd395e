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

// testIsolation writes the same keys to store-partitions whose names and
// partitions could collide in a careless key layout.
func testIsolation(t *testing.T, e state.Engine, opts Options) {
	sps := []state.StorePartition{
		{Store: "a", Partition: 1},
		{Store: "ab", Partition: 1},
		{Store: "a", Partition: 0},
		{Store: "a", Partition: 256},
		{Store: "a", Partition: -1},
		{Store: "a\x00\x00\x00\x01", Partition: 1},
		{Store: "", Partition: 1},
		{Store: "b", Partition: 1},
	}
	b := e.NewBatch()
	defer b.Close()
	want := map[state.StorePartition]string{}
	for i, sp := range sps {
		s := b.Store(sp)
		put(t, s, fmt.Sprintf("k=%d", i), fmt.Sprintf("\x00=%d", i), fmt.Sprintf("\xff=%d", i), fmt.Sprintf("\x00\x00\x00\x01=%d", i))
		want[sp] = fmt.Sprintf(`"\x00"=%d "\x00\x00\x00\x01"=%d k=%d "\xff"=%d`, i, i, i, i)
	}
	check := func(when string, s func(state.StorePartition) state.KeyValueBytesStore) {
		t.Helper()
		for sp, w := range want {
			if got := dump(t, s(sp).Range(nil, nil)); got != w {
				t.Errorf("%s: %v holds %s, want %s", when, sp, got, w)
			}
			if got := dump(t, s(sp).ReverseRange(nil, nil)); got != reverse(w) {
				t.Errorf("%s: %v reversed holds %s, want %s", when, sp, got, reverse(w))
			}
			if got := dump(t, s(sp).PrefixScan(nil)); got != w {
				t.Errorf("%s: %v prefix scan holds %s, want %s", when, sp, got, w)
			}
			if got := dump(t, s(sp).PrefixScan([]byte{0xff})); got != strings.Fields(w)[3] {
				t.Errorf("%s: %v prefix scan 0xff holds %s", when, sp, got)
			}
			n, err := s(sp).ApproximateCount()
			if err != nil || n < 0 || (opts.ExactCount && n != 4) {
				t.Errorf("%s: %v ApproximateCount = %d, %v; want 4", when, sp, n, err)
			}
		}
	}
	check("batch", b.Store)
	cps := map[state.StorePartition]int64{}
	for i, sp := range sps {
		cps[sp] = int64(100 + i)
	}
	commit(t, b, cps)
	check("committed", e.Reader)
	if err := e.Drop(sps[0]); err != nil {
		t.Fatal(err)
	}
	delete(want, sps[0])
	check("after dropping the first", e.Reader)
	for i, sp := range sps[1:] {
		if got := checkpoint(t, e, sp); got != fmt.Sprint(101+i) {
			t.Errorf("Checkpoint(%v) = %s, want %d", sp, got, 101+i)
		}
	}
}

func testSnapshots(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(spA)
	put(t, s, "a=1", "b=1", "c=1")
	commit(t, b, nil)
	put(t, s, "b=2", "d=2", "a")

	type open struct {
		name string
		it   state.Iterator
		want string
	}
	its := []open{
		{"batch Range", s.Range(nil, nil), "b=2 c=1 d=2"},
		{"batch ReverseRange", s.ReverseRange(nil, nil), "d=2 c=1 b=2"},
		{"batch PrefixScan", s.PrefixScan([]byte("c")), "c=1"},
		{"Reader Range", e.Reader(spA).Range(nil, nil), "a=1 b=1 c=1"},
		{"Reader ReverseRange", e.Reader(spA).ReverseRange(nil, nil), "c=1 b=1 a=1"},
	}
	// Advance some of them first: a snapshot must hold mid-iteration too.
	first := map[int]string{}
	for i := range its {
		if i%2 == 0 && its[i].it.Next() {
			first[i] = plain(its[i].it.Key()) + "=" + plain(its[i].it.Value())
		}
	}
	// Everything that can change the store-partition, while they are open.
	put(t, s, "c=3", "e=3", "b")
	commit(t, b, map[state.StorePartition]int64{spA: 1})
	put(t, s, "f=4")
	b.Abort()
	if err := e.Restore(spA, records("a=5", "c"), 2); err != nil {
		t.Fatal(err)
	}
	other := e.NewBatch()
	put(t, other.Store(spA), "g=6")
	commit(t, other, nil)
	other.Close()
	for i, o := range its {
		got := dump(t, o.it)
		if f, ok := first[i]; ok {
			got = strings.TrimSpace(f + " " + got)
		}
		if got != o.want {
			t.Errorf("%s saw %s, want its snapshot %s", o.name, got, o.want)
		}
	}
	if got := dump(t, s.Range(nil, nil)); got != "a=5 d=2 e=3 g=6" {
		t.Errorf("a new iterator sees %s, want a=5 d=2 e=3 g=6", got)
	}
}

func testBatchClose(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	s := b.Store(spA)
	put(t, s, "a=1", "b=1")
	live := s.Range(nil, nil)
	if !live.Next() {
		t.Fatalf("Next = false (%v)", live.Err())
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if live.Next() {
		t.Error("iterator of a closed batch: Next = true")
	}
	wantErr(t, "iterator of a closed batch", live.Close(), state.ErrClosed)
	wantErr(t, "Put", s.Put([]byte("a"), []byte("2")), state.ErrClosed)
	wantErr(t, "Delete", s.Delete([]byte("a")), state.ErrClosed)
	_, _, err := s.Get([]byte("a"))
	wantErr(t, "Get", err, state.ErrClosed)
	it := s.Range(nil, nil)
	if it.Next() {
		t.Error("Range of a closed batch: Next = true")
	}
	wantErr(t, "Range", it.Close(), state.ErrClosed)
	wantErr(t, "Commit", b.Commit(nil), state.ErrClosed)
	b.Abort() // harmless
	if n := b.Len(); n != 0 {
		t.Errorf("Len of a closed batch = %d", n)
	}
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "" {
		t.Errorf("a closed batch's writes reached the engine: %s", got)
	}
}

func testEngineClose(t *testing.T, e state.Engine, _ Options) {
	if err := e.Restore(spA, records("a=1"), 1); err != nil {
		t.Fatal(err)
	}
	b := e.NewBatch()
	if err := e.Close(); err == nil {
		t.Fatal("Close with an open batch succeeded, want an error")
	}
	// Refused: the engine still works.
	put(t, b.Store(spA), "b=2")
	commit(t, b, nil)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := e.Checkpoint(spA)
	wantErr(t, "Checkpoint", err, state.ErrClosed)
	wantErr(t, "Restore", e.Restore(spA, records("c=3"), 2), state.ErrClosed)
	wantErr(t, "Drop", e.Drop(spA), state.ErrClosed)
	r := e.Reader(spA)
	_, _, err = r.Get([]byte("a"))
	wantErr(t, "Reader Get", err, state.ErrClosed)
	it := r.Range(nil, nil)
	if it.Next() {
		t.Error("Reader Range after Close: Next = true")
	}
	wantErr(t, "Reader Range", it.Close(), state.ErrClosed)
	_, err = r.ApproximateCount()
	wantErr(t, "Reader ApproximateCount", err, state.ErrClosed)
	nb := e.NewBatch()
	wantErr(t, "Put in a batch made after Close", nb.Store(spA).Put([]byte("a"), []byte("1")), state.ErrClosed)
	wantErr(t, "Commit of a batch made after Close", nb.Commit(nil), state.ErrClosed)
	if err := nb.Close(); err != nil {
		t.Errorf("Close of a batch made after Close: %v", err)
	}
}

// testConcurrentBatches commits from several goroutines, each with its own
// batch and store-partition, while a reader scans; run it with -race.
func testConcurrentBatches(t *testing.T, e state.Engine, _ Options) {
	const workers, commits, perCommit = 4, 50, 20
	var wg sync.WaitGroup
	for w := range workers {
		sp := state.StorePartition{Store: "c", Partition: int32(w)}
		wg.Go(func() {
			b := e.NewBatch()
			defer b.Close()
			s := b.Store(sp)
			for c := range commits {
				for k := range perCommit {
					if err := s.Put(fmt.Appendf(nil, "k%03d", (c*perCommit+k)%100), fmt.Appendf(nil, "%d", c)); err != nil {
						t.Error(err)
						return
					}
				}
				if _, _, err := s.Get([]byte("k000")); err != nil {
					t.Error(err)
					return
				}
				if err := b.Commit(map[state.StorePartition]int64{sp: int64(c)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			for w := range workers {
				r := e.Reader(state.StorePartition{Store: "c", Partition: int32(w)})
				if _, err := drain(r.PrefixScan([]byte("k0"))); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := r.Get([]byte("k001")); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	wg.Wait()
	for w := range workers {
		sp := state.StorePartition{Store: "c", Partition: int32(w)}
		entries, err := drain(e.Reader(sp).Range(nil, nil))
		if err != nil || len(entries) != 100 {
			t.Errorf("%v: %d entries, %v; want 100", sp, len(entries), err)
		}
		if got := checkpoint(t, e, sp); got != fmt.Sprint(commits-1) {
			t.Errorf("Checkpoint(%v) = %s, want %d", sp, got, commits-1)
		}
	}
}

func testEmpty(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	if err := b.Store(spA).Put([]byte{}, []byte{}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, s state.KeyValueBytesStore) {
		t.Helper()
		v, found, err := s.Get([]byte{})
		if err != nil || !found || v == nil || len(v) != 0 {
			t.Errorf("%s: Get(empty) = %q, %v, %v; want an empty non-nil value", when, v, found, err)
		}
		if got := dump(t, s.Range(nil, nil)); got != `""=""` {
			t.Errorf("%s: Range = %s, want the empty key with an empty value", when, got)
		}
		if got := dump(t, s.ReverseRange([]byte{}, nil)); got != `""=""` {
			t.Errorf("%s: ReverseRange = %s, want the empty key with an empty value", when, got)
		}
	}
	check("batch", b.Store(spA))
	commit(t, b, nil)
	check("committed", e.Reader(spA))
	check("batch after Commit", b.Store(spA))
}
