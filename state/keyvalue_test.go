package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
)

// testCtx returns a build context over a new, empty engine.
func testCtx() state.BuildContext {
	return state.BuildContext{ApplicationID: "app", TaskID: "0_1", Partition: 1, Batch: memory.NewEngine().NewBatch()}
}

func build[K, V any](t *testing.T, keys serde.Serde[K], values serde.Serde[V]) *state.KeyValueStore[K, V] {
	t.Helper()
	s, err := state.KeyValue("s", keys, values).BuildKeyValue(testCtx())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

type entry[K, V any] struct {
	Key   K
	Value V
}

func collect[K, V any](t *testing.T, it *state.KeyValueIterator[K, V]) []entry[K, V] {
	t.Helper()
	var out []entry[K, V]
	for it.Next() {
		out = append(out, entry[K, V]{it.Key(), it.Value()})
	}
	if err := it.Close(); err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return out
}

func TestKeyValueRoundTrip(t *testing.T) {
	type point struct{ X, Y int }
	s := build(t, serde.String(), serde.JSON[*point]())

	if _, found, err := s.Get("a"); found || err != nil {
		t.Fatalf("Get of an absent key = %v, %v", found, err)
	}
	for _, k := range []string{"b", "a", "", "c"} {
		if err := s.Put(k, &point{len(k), 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put("a", &point{7, 7}); err != nil {
		t.Fatal(err)
	}
	v, found, err := s.Get("a")
	if err != nil || !found || *v != (point{7, 7}) {
		t.Fatalf("Get(a) = %v, %v, %v", v, found, err)
	}
	if err := s.Delete("c"); err != nil {
		t.Fatal(err)
	}
	// A nil pointer is JSON null: a tombstone.
	if err := s.Put("b", nil); err != nil {
		t.Fatal(err)
	}
	got := collect(t, s.All())
	want := []entry[string, *point]{{"", &point{0, 1}}, {"a", &point{7, 7}}}
	if !slices.EqualFunc(got, want, func(a, b entry[string, *point]) bool { return a.Key == b.Key && *a.Value == *b.Value }) {
		t.Fatalf("All = %v, want %v", got, want)
	}
	if n, err := s.ApproximateCount(); n != 2 || err != nil {
		t.Fatalf("ApproximateCount = %d, %v", n, err)
	}
	if s.Name() != "s" || s.Topic() != "app-s-changelog" || s.Bytes().Name() != "s" {
		t.Fatalf("Name, Topic, Bytes().Name = %q, %q, %q", s.Name(), s.Topic(), s.Bytes().Name())
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestKeyValueRanges(t *testing.T) {
	s := build(t, serde.Int64(), serde.String())
	for _, k := range []int64{-2, -1, 0, 1, 2, 3, 1 << 40} {
		if err := s.Put(k, fmt.Sprint(k)); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(it *state.KeyValueIterator[int64, string]) []int64 {
		var out []int64
		for _, e := range collect(t, it) {
			if e.Value != fmt.Sprint(e.Key) {
				t.Fatalf("key %d has value %q", e.Key, e.Value)
			}
			out = append(out, e.Key)
		}
		return out
	}
	tests := []struct {
		name string
		it   *state.KeyValueIterator[int64, string]
		want []int64
	}{
		// Big-endian two's complement: negatives sort after positives.
		{"all", s.All(), []int64{0, 1, 2, 3, 1 << 40, -2, -1}},
		{"reverse all", s.ReverseAll(), []int64{-1, -2, 1 << 40, 3, 2, 1, 0}},
		{"range, to exclusive", s.Range(1, 3), []int64{1, 2}},
		{"reverse range", s.ReverseRange(1, 3), []int64{2, 1}},
		{"range across the sign", s.Range(2, -2), []int64{2, 3, 1 << 40}},
		{"range from > to", s.Range(3, 1), nil},
		{"prefix", s.PrefixScan([]byte{0, 0, 0, 0, 0, 0, 0}), []int64{0, 1, 2, 3}},
		{"prefix of negatives", s.PrefixScan([]byte{0xFF}), []int64{-2, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keys(tt.it); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeyValueIteratorValuesOutliveNext(t *testing.T) {
	s := build(t, serde.Bytes(), serde.Bytes())
	for _, k := range []string{"a", "b", "c"} {
		if err := s.Put([]byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	got := collect(t, s.All())
	for i, k := range []string{"a", "b", "c"} {
		if string(got[i].Key) != k || string(got[i].Value) != "v"+k {
			t.Fatalf("entry %d = %q=%q after the iteration moved on", i, got[i].Key, got[i].Value)
		}
	}
	// Empty but non-nil values survive as such.
	if err := s.Put([]byte("e"), []byte{}); err != nil {
		t.Fatal(err)
	}
	if v, found, err := s.Get([]byte("e")); !found || err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get(e) = %#v, %v, %v; want an empty non-nil value", v, found, err)
	}
}

func TestKeyValueErrors(t *testing.T) {
	s := build(t, serde.Bytes(), serde.Int64())
	// Bytes encodes a nil slice as nil: a null key.
	if _, _, err := s.Get(nil); !errors.Is(err, state.ErrNullKey) {
		t.Errorf("Get(nil) error = %v, want ErrNullKey", err)
	}
	if err := s.Put(nil, 1); !errors.Is(err, state.ErrNullKey) {
		t.Errorf("Put(nil) error = %v, want ErrNullKey", err)
	}
	if err := s.Delete(nil); !errors.Is(err, state.ErrNullKey) {
		t.Errorf("Delete(nil) error = %v, want ErrNullKey", err)
	}
	it := s.Range(nil, []byte("z"))
	if it.Next() || !errors.Is(it.Err(), state.ErrNullKey) || !errors.Is(it.Close(), state.ErrNullKey) {
		t.Errorf("Range(nil, z): error %v, want ErrNullKey", it.Err())
	}

	// A value of the wrong width fails to decode, in Get and in iterators.
	if err := s.Bytes().Put([]byte("bad"), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	var serr *serde.Error
	_, _, err := s.Get([]byte("bad"))
	if !errors.As(err, &serr) || !errors.Is(err, serde.ErrInvalidLength) {
		t.Errorf("Get of a bad value: error %v, want a *serde.Error", err)
	}
	it = s.All()
	if it.Next() || !errors.Is(it.Close(), serde.ErrInvalidLength) {
		t.Errorf("All over a bad value: Err %v, want ErrInvalidLength", it.Err())
	}
	for _, err := range []error{err, it.Err()} {
		if err != nil && !bytes.HasPrefix([]byte(err.Error()), []byte("state: ")) {
			t.Errorf("error %q does not start with \"state: \"", err)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put([]byte("k"), 1); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Put after Close: error %v, want ErrClosed", err)
	}

	var zero state.KeyValueStore[string, string]
	if _, _, err := zero.Get("k"); err == nil {
		t.Error("Get on a zero KeyValueStore: no error")
	}
	if zero.All().Next() || zero.All().Err() == nil {
		t.Error("All on a zero KeyValueStore: no error")
	}
	if _, err := state.NewKeyValueStore[string, string](nil, "t", serde.String(), serde.String()); !errors.Is(err, state.ErrInvalidBuilder) {
		t.Errorf("NewKeyValueStore(nil): error %v, want ErrInvalidBuilder", err)
	}
}
