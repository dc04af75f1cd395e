package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gregorstream/gregor/state"
)

// Open returns a new, open, empty store for one test case. The case closes
// it (closing twice must be harmless).
type Open func(t *testing.T) state.KeyValueBytesStore

// Conformance runs the table-driven contract cases against the stores that
// open returns.
func Conformance(t *testing.T, open Open, opts Options) {
	t.Run("point", func(t *testing.T) { testPoint(t, open) })
	t.Run("range", func(t *testing.T) { testRange(t, open) })
	t.Run("prefix", func(t *testing.T) { testPrefix(t, open) })
	t.Run("count", func(t *testing.T) { testCount(t, open, opts) })
	t.Run("iterator", func(t *testing.T) { testIterator(t, open) })
	t.Run("closed", func(t *testing.T) { testClosed(t, open) })
}

// op is one step of a point case: a put (value may be nil), a delete or a
// get with its expected answer.
type op struct {
	do         string // "put", "delete" or "get"
	key, value []byte // for get, value is the expected value
	found      bool   // for get
}

func testPoint(t *testing.T, open Open) {
	k, v := []byte("k"), []byte("v")
	tests := []struct {
		name string
		ops  []op
	}{
		{"absent", []op{{do: "get", key: k}}},
		{"put get", []op{{do: "put", key: k, value: v}, {do: "get", key: k, value: v, found: true}}},
		{"overwrite", []op{
			{do: "put", key: k, value: v},
			{do: "put", key: k, value: []byte("w")},
			{do: "get", key: k, value: []byte("w"), found: true},
		}},
		{"delete", []op{{do: "put", key: k, value: v}, {do: "delete", key: k}, {do: "get", key: k}}},
		{"delete absent", []op{{do: "delete", key: k}, {do: "get", key: k}}},
		{"nil value deletes", []op{{do: "put", key: k, value: v}, {do: "put", key: k}, {do: "get", key: k}}},
		{"empty value", []op{{do: "put", key: k, value: []byte{}}, {do: "get", key: k, value: []byte{}, found: true}}},
		{"empty key", []op{{do: "put", key: []byte{}, value: v}, {do: "get", key: []byte{}, value: v, found: true}}},
		{"0xFF keys", []op{
			{do: "put", key: []byte{0xFF}, value: []byte{1}},
			{do: "put", key: []byte{0xFF, 0xFF}, value: []byte{2}},
			{do: "get", key: []byte{0xFF}, value: []byte{1}, found: true},
			{do: "get", key: []byte{0xFF, 0xFF}, value: []byte{2}, found: true},
			{do: "get", key: []byte{0xFF, 0xFF, 0xFF}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			for i, o := range tt.ops {
				switch o.do {
				case "put":
					if err := s.Put(bytes.Clone(o.key), bytes.Clone(o.value)); err != nil {
						t.Fatalf("op %d: Put: %v", i, err)
					}
				case "delete":
					if err := s.Delete(o.key); err != nil {
						t.Fatalf("op %d: Delete: %v", i, err)
					}
				case "get":
					got, found, err := s.Get(o.key)
					if err != nil || found != o.found || !bytes.Equal(got, o.value) || (found && got == nil) {
						t.Fatalf("op %d: Get(%q) = %q, %v, %v; want %q, %v", i, o.key, got, found, err, o.value, o.found)
					}
				}
			}
		})
	}

	t.Run("null key", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if _, _, err := s.Get(nil); !errors.Is(err, state.ErrNullKey) {
			t.Errorf("Get(nil) error = %v, want ErrNullKey", err)
		}
		if err := s.Put(nil, v); !errors.Is(err, state.ErrNullKey) {
			t.Errorf("Put(nil) error = %v, want ErrNullKey", err)
		}
		if err := s.Delete(nil); !errors.Is(err, state.ErrNullKey) {
			t.Errorf("Delete(nil) error = %v, want ErrNullKey", err)
		}
	})

	t.Run("buffers reused after put", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		key, val := []byte("key"), []byte("val")
		if err := s.Put(key, val); err != nil {
			t.Fatal(err)
		}
		copy(key, "xxx")
		copy(val, "yyy")
		got, found, err := s.Get([]byte("key"))
		if err != nil || !found || string(got) != "val" {
			t.Fatalf("Get after reusing Put's buffers = %q, %v, %v; want \"val\"", got, found, err)
		}
		if err := s.Put([]byte("key"), []byte("new")); err != nil {
			t.Fatal(err)
		}
		if string(got) != "val" {
			t.Fatalf("value from Get changed to %q after an overwrite", got)
		}
	})
}

// fill puts every key with the value "v"+key.
func fill(t *testing.T, s state.KeyValueBytesStore, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Put([]byte(k), []byte("v"+k)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
}

// keysOf drains it and returns its keys, checking each value is "v"+key.
func keysOf(t *testing.T, it state.Iterator) []string {
	t.Helper()
	entries, err := drain(it)
	if err != nil {
		t.Fatalf("iterate: %v", err)
	}
	keys := []string{}
	for _, e := range entries {
		if string(e.value) != "v"+string(e.key) {
			t.Fatalf("key %q has value %q, want %q", e.key, e.value, "v"+string(e.key))
		}
		keys = append(keys, string(e.key))
	}
	return keys
}

func bs(s string) []byte { return []byte(s) }

func testRange(t *testing.T, open Open) {
	data := []string{"", "a", "aa", "ab", "b", "ba", "c", "\xff", "\xff\xff"}
	tests := []struct {
		name     string
		from, to []byte
		want     []string // ascending; reverse is checked too
	}{
		{"all", nil, nil, data},
		{"from", bs("b"), nil, []string{"b", "ba", "c", "\xff", "\xff\xff"}},
		{"to exclusive", nil, bs("b"), []string{"", "a", "aa", "ab"}},
		{"both", bs("aa"), bs("ba"), []string{"aa", "ab", "b"}},
		{"between keys", bs("a\x00"), bs("ab\x00"), []string{"aa", "ab"}},
		{"empty from is the start", []byte{}, bs("a"), []string{""}},
		{"empty to is empty", nil, []byte{}, []string{}},
		{"from equals to", bs("b"), bs("b"), []string{}},
		{"from after to", bs("c"), bs("a"), []string{}},
		{"0xFF bounds", bs("\xff"), nil, []string{"\xff", "\xff\xff"}},
		{"to 0xFF", bs("c"), bs("\xff"), []string{"c"}},
		{"past the end", bs("\xff\xff\xff"), nil, []string{}},
	}
	s := open(t)
	defer s.Close()
	fill(t, s, data...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keysOf(t, s.Range(tt.from, tt.to)); !slices.Equal(got, tt.want) {
				t.Errorf("Range(%q, %q) = %q, want %q", tt.from, tt.to, got, tt.want)
			}
			want := slices.Clone(tt.want)
			slices.Reverse(want)
			if got := keysOf(t, s.ReverseRange(tt.from, tt.to)); !slices.Equal(got, want) {
				t.Errorf("ReverseRange(%q, %q) = %q, want %q", tt.from, tt.to, got, want)
			}
		})
	}
}

func testPrefix(t *testing.T, open Open) {
	data := []string{"", "a", "a\x00", "ab", "a\xff", "b", "\xfe\xff", "\xff", "\xff\x00", "\xff\xff", "\xff\xff\x01"}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", data},
		{"a", []string{"a", "a\x00", "ab", "a\xff"}},
		{"a\xff", []string{"a\xff"}},
		{"ab", []string{"ab"}},
		{"abc", []string{}},
		{"\xfe", []string{"\xfe\xff"}},
		{"\xff", []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xff\x01"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\x01"}},
		{"\xff\xff\xff", []string{}},
	}
	s := open(t)
	defer s.Close()
	fill(t, s, data...)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("prefix=%x", tt.prefix), func(t *testing.T) {
			if got := keysOf(t, s.PrefixScan([]byte(tt.prefix))); !slices.Equal(got, tt.want) {
				t.Errorf("PrefixScan(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}

func testCount(t *testing.T, open Open, opts Options) {
	s := open(t)
	defer s.Close()
	check := func(want int64) {
		t.Helper()
		n, err := s.ApproximateCount()
		if err != nil || n < 0 || (opts.ExactCount && n != want) {
			t.Fatalf("ApproximateCount = %d, %v; want %d", n, err, want)
		}
	}
	check(0)
	fill(t, s, "a", "b", "c")
	check(3)
	fill(t, s, "a")
	check(3)
	if err := s.Delete([]byte("b")); err != nil {
		t.Fatal(err)
	}
	check(2)
}
