package storetest

import (
	"bytes"
	"fmt"
	"maps"
	"testing"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
)

// deleteRange calls s.DeleteRange, failing t on error.
func deleteRange(t *testing.T, s state.KeyValueBytesStore, from, to []byte) {
	t.Helper()
	if err := s.DeleteRange(from, to); err != nil {
		t.Fatalf("DeleteRange(%q, %q): %v", from, to, err)
	}
}

// testDeleteRangeBounds checks nil and empty bounds, in every layer: keys
// committed in an earlier interval and keys pending in this one.
func testDeleteRangeBounds(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(spA)
	put(t, s, "a=1", "b=1", "c=1", "d=1")
	commit(t, b, nil)
	put(t, s, "bb=2", "e=2")

	// Empty ranges delete nothing.
	deleteRange(t, s, []byte("c"), []byte("c"))
	deleteRange(t, s, []byte("d"), []byte("a"))
	deleteRange(t, s, nil, []byte{})
	all := "a=1 b=1 bb=2 c=1 d=1 e=2"
	if got := dump(t, s.Range(nil, nil)); got != all {
		t.Fatalf("after empty range deletes: %s, want %s", got, all)
	}

	deleteRange(t, s, nil, []byte("b"))           // a
	deleteRange(t, s, []byte("d"), nil)           // d, e
	deleteRange(t, s, []byte("bb"), []byte("bc")) // bb only
	want := "b=1 c=1"
	for k, v := range map[string]string{"a": "absent", "b": "1", "bb": "absent", "c": "1", "d": "absent", "e": "absent"} {
		if got := get(s, k); got != v {
			t.Errorf("Get(%s) = %s, want %s", k, got, v)
		}
	}
	if got := dump(t, s.Range(nil, nil)); got != want {
		t.Errorf("Range = %s, want %s", got, want)
	}
	if got := dump(t, s.ReverseRange(nil, nil)); got != reverse(want) {
		t.Errorf("ReverseRange = %s, want %s", got, reverse(want))
	}
	if got := dump(t, s.PrefixScan([]byte("b"))); got != "b=1" {
		t.Errorf("PrefixScan(b) = %s, want b=1", got)
	}
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "a=1 b=1 c=1 d=1" {
		t.Errorf("Reader before Commit = %s", got)
	}
	commit(t, b, nil)
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != want {
		t.Errorf("Reader after Commit = %s, want %s", got, want)
	}

	// Everything, with nil bounds.
	deleteRange(t, s, nil, nil)
	if got := dump(t, s.Range(nil, nil)); got != "" {
		t.Errorf("after DeleteRange(nil, nil): %s, want nothing", got)
	}
	commit(t, b, nil)
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "" {
		t.Errorf("Reader after DeleteRange(nil, nil) and Commit: %s, want nothing", got)
	}
}

// testDeleteRangeOrder checks that writes after a range delete survive it,
// and that the ones before it do not, through commit and abort.
func testDeleteRangeOrder(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	s, other := b.Store(spA), b.Store(spB)
	put(t, s, "a=1", "b=1", "c=1", "d=1")
	put(t, other, "b=9")
	commit(t, b, nil)

	put(t, s, "b=2", "bb=2")
	deleteRange(t, s, []byte("b"), []byte("d"))
	put(t, s, "bb=3", "c")
	put(t, s, "c=3")
	put(t, s, "bc=3")
	if err := s.Delete([]byte("bc")); err != nil {
		t.Fatal(err)
	}
	want := "a=1 bb=3 c=3 d=1"
	check := func(when string, s state.KeyValueBytesStore) {
		t.Helper()
		if got := dump(t, s.Range(nil, nil)); got != want {
			t.Errorf("%s: Range = %s, want %s", when, got, want)
		}
		if got := dump(t, s.ReverseRange([]byte("a"), []byte("d"))); got != reverse("a=1 bb=3 c=3") {
			t.Errorf("%s: ReverseRange(a, d) = %s", when, got)
		}
		for k, v := range map[string]string{"b": "absent", "bb": "3", "bc": "absent", "c": "3"} {
			if got := get(s, k); got != v {
				t.Errorf("%s: Get(%s) = %s, want %s", when, k, got, v)
			}
		}
	}
	check("pending", s)
	if got := get(other, "b"); got != "9" {
		t.Errorf("another store-partition: Get(b) = %s, want 9", got)
	}
	commit(t, b, nil)
	check("committed, batch", s)
	check("committed, Reader", e.Reader(spA))
	if got := dump(t, e.Reader(spB).Range(nil, nil)); got != "b=9" {
		t.Errorf("another store-partition after Commit: %s, want b=9", got)
	}

	// An aborted range delete deletes nothing.
	deleteRange(t, s, nil, nil)
	put(t, s, "z=1")
	b.Abort()
	check("after Abort, batch", s)
	check("after Abort, Reader", e.Reader(spA))

	// A range delete of a later interval hides the committed writes.
	deleteRange(t, s, []byte("bb"), []byte("c\x00"))
	want = "a=1 d=1"
	if got := dump(t, s.Range(nil, nil)); got != want {
		t.Errorf("later interval: Range = %s, want %s", got, want)
	}
	b2 := e.NewBatch()
	defer b2.Close()
	commit(t, b, nil)
	if got := dump(t, b2.Store(spA).Range(nil, nil)); got != want {
		t.Errorf("another batch after Commit: Range = %s, want %s", got, want)
	}
}

// testDeleteRangeSnapshots checks that iterators opened before a range
// delete do not see it, before and after it commits.
func testDeleteRangeSnapshots(t *testing.T, e state.Engine, _ Options) {
	b := e.NewBatch()
	defer b.Close()
	s := b.Store(spA)
	put(t, s, "a=1", "b=1", "c=1")
	commit(t, b, nil)
	put(t, s, "d=2")
	before := s.Range(nil, nil)
	reverseBefore := s.ReverseRange(nil, nil)
	reader := e.Reader(spA).Range(nil, nil)
	deleteRange(t, s, []byte("b"), nil)
	if got := dump(t, s.Range(nil, nil)); got != "a=1" {
		t.Errorf("after DeleteRange: %s, want a=1", got)
	}
	if !before.Next() || string(before.Key()) != "a" {
		t.Fatalf("iterator opened before DeleteRange: first key %q, %v", before.Key(), before.Err())
	}
	commit(t, b, nil)
	if got := dump(t, before); got != "b=1 c=1 d=2" {
		t.Errorf("iterator opened before DeleteRange, after Commit: rest = %s, want b=1 c=1 d=2", got)
	}
	if got := dump(t, reverseBefore); got != "d=2 c=1 b=1 a=1" {
		t.Errorf("reverse iterator opened before DeleteRange: %s", got)
	}
	if got := dump(t, reader); got != "a=1 b=1 c=1" {
		t.Errorf("Reader iterator opened before DeleteRange: %s", got)
	}
	if got := dump(t, e.Reader(spA).Range(nil, nil)); got != "a=1" {
		t.Errorf("Reader after Commit: %s, want a=1", got)
	}
}

// testDeleteRangeReadOnly checks that a Reader refuses range deletes.
func testDeleteRangeReadOnly(t *testing.T, e state.Engine, _ Options) {
	wantErr(t, "Reader DeleteRange", e.Reader(spA).DeleteRange(nil, nil), state.ErrReadOnly)
	b := e.NewBatch()
	s := b.Store(spA)
	b.Close()
	wantErr(t, "DeleteRange on a closed batch", s.DeleteRange(nil, nil), state.ErrClosed)
}

// CheckBatch runs random Put, Delete, DeleteRange, Commit, Abort, reads and
// iterators on sp through a batch of e, and fails t when they disagree with
// a model of the committed state and of the pending interval. sp must be
// empty. Beyond answers, it checks that iterators keep their snapshot across
// writes, range deletes, commits and aborts, and that a Reader sees the
// committed model.
func CheckBatch(t *rapid.T, e state.Engine, sp state.StorePartition) {
	b := e.NewBatch()
	defer b.Close()
	s, r := b.Store(sp), e.Reader(sp)
	committed, pending := model{}, model{}

	type open struct {
		it   state.Iterator
		want []kv
		got  []kv
	}
	var iters []*open
	scan := func(t *rapid.T, name string, it state.Iterator, want []kv) {
		got, err := drain(it)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", name, format(got), format(want))
		}
	}
	t.Repeat(map[string]func(*rapid.T){
		"put": func(t *rapid.T) {
			k, v := Key().Draw(t, "key"), Value().Draw(t, "value")
			if err := s.Put(k, v); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if v == nil {
				delete(pending, string(k))
			} else {
				pending[string(k)] = v
			}
		},
		"delete": func(t *rapid.T) {
			k := Key().Draw(t, "key")
			if err := s.Delete(k); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			delete(pending, string(k))
		},
		"delete range": func(t *rapid.T) {
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			if err := s.DeleteRange(from, to); err != nil {
				t.Fatalf("DeleteRange(%x, %x): %v", from, to, err)
			}
			maps.DeleteFunc(pending, func(k string, _ []byte) bool { return state.InRange([]byte(k), from, to) })
		},
		"commit": func(t *rapid.T) {
			if err := b.Commit(nil); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			committed = pending.clone()
		},
		"abort": func(t *rapid.T) {
			b.Abort()
			pending = committed.clone()
		},
		"get": func(t *rapid.T) {
			k := Key().Draw(t, "key")
			got, found, err := s.Get(k)
			want, ok := pending[string(k)]
			if err != nil || found != ok || !bytes.Equal(got, want) {
				t.Fatalf("Get(%x) = %x, %v, %v; want %x, %v", k, got, found, err, want, ok)
			}
			got, found, err = r.Get(k)
			want, ok = committed[string(k)]
			if err != nil || found != ok || !bytes.Equal(got, want) {
				t.Fatalf("Reader Get(%x) = %x, %v, %v; want %x, %v", k, got, found, err, want, ok)
			}
		},
		"range": func(t *rapid.T) {
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			scan(t, fmt.Sprintf("Range(%x, %x)", from, to), s.Range(from, to), pending.scan(from, to, false))
			scan(t, fmt.Sprintf("ReverseRange(%x, %x)", from, to), s.ReverseRange(from, to), pending.scan(from, to, true))
		},
		"prefix scan": func(t *rapid.T) {
			p := Key().Draw(t, "prefix")
			scan(t, fmt.Sprintf("PrefixScan(%x)", p), s.PrefixScan(p), pending.prefix(p))
		},
		"reader range": func(t *rapid.T) {
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			scan(t, fmt.Sprintf("Reader ReverseRange(%x, %x)", from, to), r.ReverseRange(from, to), committed.scan(from, to, true))
		},
		"open iterator": func(t *rapid.T) {
			if len(iters) >= 3 {
				return
			}
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			o := &open{}
			switch rapid.IntRange(0, 2).Draw(t, "kind") {
			case 0:
				o.it, o.want = s.Range(from, to), pending.scan(from, to, false)
			case 1:
				o.it, o.want = s.ReverseRange(from, to), pending.scan(from, to, true)
			default:
				o.it, o.want = r.Range(from, to), committed.scan(from, to, false)
			}
			iters = append(iters, o)
		},
		"step iterators": func(t *rapid.T) {
			for _, o := range iters {
				if o.it.Next() {
					o.got = append(o.got, kv{bytes.Clone(o.it.Key()), bytes.Clone(o.it.Value())})
				}
			}
		},
		"finish iterators": func(t *rapid.T) {
			for _, o := range iters {
				rest, err := drain(o.it)
				if err != nil {
					t.Fatalf("iterator: %v", err)
				}
				if got := append(o.got, rest...); !equal(got, o.want) {
					t.Fatalf("iterator did not keep its snapshot:\n got %s\nwant %s", format(got), format(o.want))
				}
			}
			iters = nil
		},
		"": func(t *rapid.T) {
			scan(t, "Range(nil, nil)", s.Range(nil, nil), pending.scan(nil, nil, false))
		},
	})
	for _, o := range iters {
		o.it.Close()
	}
}
