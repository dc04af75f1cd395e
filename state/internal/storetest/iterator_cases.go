package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gregorstream/gregor/state"
)

func testIterator(t *testing.T, open Open) {
	t.Run("close", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		fill(t, s, "a", "b")
		it := s.Range(nil, nil)
		if !it.Next() {
			t.Fatalf("Next = false, want an entry (err %v)", it.Err())
		}
		if err := it.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if it.Next() {
			t.Fatal("Next after Close = true")
		}
		if err := it.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("Err after Close: %v", err)
		}
	})

	t.Run("exhausted", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		fill(t, s, "a")
		it := s.PrefixScan([]byte("a"))
		defer it.Close()
		for range 3 {
			it.Next()
		}
		if it.Next() || it.Err() != nil {
			t.Fatalf("Next past the end = true or Err = %v", it.Err())
		}
	})

	for _, reverse := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot reverse=%v", reverse), func(t *testing.T) {
			s := open(t)
			defer s.Close()
			fill(t, s, "a", "b", "c", "d")
			it := s.Range(nil, nil)
			want := []string{"a", "b", "c", "d"}
			if reverse {
				it = s.ReverseRange(nil, nil)
				slices.Reverse(want)
			}
			// Write before and during the iteration: none of it may show.
			fill(t, s, "0", "bb", "e")
			var got []string
			for it.Next() {
				got = append(got, string(it.Key()))
				if string(it.Value()) != "v"+string(it.Key()) {
					t.Fatalf("key %q: value %q", it.Key(), it.Value())
				}
				for _, k := range []string{"a", "b", "c", "d"} {
					if err := s.Put([]byte(k), []byte("changed")); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Delete([]byte("c")); err != nil {
					t.Fatal(err)
				}
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("iterator saw %q, want its snapshot %q", got, want)
			}
			// A new iterator sees the writes.
			entries, err := drain(s.Range(nil, nil))
			if err != nil || len(entries) != 6 {
				t.Fatalf("after the writes: %d entries, %v; want 6", len(entries), err)
			}
		})
	}

	t.Run("only the empty key", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		fill(t, s, "")
		for name, it := range map[string]state.Iterator{
			"Range":        s.Range(nil, nil),
			"ReverseRange": s.ReverseRange(nil, nil),
			"PrefixScan":   s.PrefixScan(nil),
		} {
			if got := keysOf(t, it); !slices.Equal(got, []string{""}) {
				t.Errorf("%s = %q, want the empty key", name, got)
			}
		}
	})

	t.Run("many keys", func(t *testing.T) {
		// More keys than any backend's batch: ranges start, end and turn
		// inside batches.
		s := open(t)
		defer s.Close()
		var all []string
		for i := range 1000 {
			all = append(all, fmt.Sprintf("k%04d", i))
		}
		fill(t, s, all...)
		cases := []struct{ from, to int }{{0, 1000}, {0, 16}, {0, 17}, {3, 200}, {15, 145}, {500, 501}, {999, 1000}}
		for _, c := range cases {
			from, to := []byte(all[c.from]), []byte("k9999")
			if c.to < len(all) {
				to = []byte(all[c.to])
			}
			want := all[c.from:c.to]
			if got := keysOf(t, s.Range(from, to)); !slices.Equal(got, want) {
				t.Errorf("Range(%s, %s): %d keys, want %d", from, to, len(got), len(want))
			}
			want = slices.Clone(want)
			slices.Reverse(want)
			if got := keysOf(t, s.ReverseRange(from, to)); !slices.Equal(got, want) {
				t.Errorf("ReverseRange(%s, %s): %d keys, want %d", from, to, len(got), len(want))
			}
		}
		if got := keysOf(t, s.PrefixScan([]byte("k05"))); !slices.Equal(got, all[500:600]) {
			t.Errorf("PrefixScan(k05): %d keys, want 100", len(got))
		}
	})
}

func testClosed(t *testing.T, open Open) {
	s := open(t)
	fill(t, s, "a", "b")
	live := s.Range(nil, nil)
	if !live.Next() {
		t.Fatalf("Next = false (err %v)", live.Err())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	if live.Next() {
		t.Error("Next on an iterator of a closed store = true")
	}
	if err := live.Close(); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Close of an iterator of a closed store = %v, want ErrClosed", err)
	}

	checks := map[string]error{}
	_, _, checks["Get"] = s.Get([]byte("a"))
	checks["Put"] = s.Put([]byte("a"), []byte("x"))
	checks["Put nil"] = s.Put([]byte("a"), nil)
	checks["Delete"] = s.Delete([]byte("a"))
	checks["Flush"] = s.Flush()
	_, checks["ApproximateCount"] = s.ApproximateCount()
	for name, it := range map[string]state.Iterator{
		"Range":        s.Range(nil, nil),
		"Range empty":  s.Range([]byte("b"), []byte("a")),
		"ReverseRange": s.ReverseRange(nil, nil),
		"PrefixScan":   s.PrefixScan([]byte("a")),
	} {
		if it.Next() {
			t.Errorf("%s after Close: Next = true", name)
		}
		checks[name] = it.Close()
	}
	for name, err := range checks {
		if !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close: error %v, want ErrClosed", name, err)
		}
	}
}
