package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gregorstream/gregor/state"
)

// Engine cases on store-partition isolation, snapshots, closing and
// concurrency; see engineCases.

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
