// Package storetest checks that a state.KeyValueBytesStore keeps the
// contract: Conformance runs table-driven cases, Check compares the store with
// a simple model on random operations (a rapid property). Every backend's
// tests run both; decorators' tests can too.
package storetest

import (
	"bytes"
	"maps"
	"slices"

	"github.com/gregorstream/gregor/state"
)

// model is the reference key-value store: a map, sorted when scanned.
type model map[string][]byte

// kv is one entry, as the checkers compare them.
type kv struct {
	key, value []byte
}

// scan returns the entries of m in [from, to) (nil bounds are open) in
// ascending order, or descending when reverse is set.
func (m model) scan(from, to []byte, reverse bool) []kv {
	keys := slices.Sorted(maps.Keys(m))
	var out []kv
	for _, k := range keys {
		kb := []byte(k)
		if from != nil && bytes.Compare(kb, from) < 0 {
			continue
		}
		if to != nil && bytes.Compare(kb, to) >= 0 {
			continue
		}
		out = append(out, kv{kb, m[k]})
	}
	if reverse {
		slices.Reverse(out)
	}
	return out
}

// prefix returns the entries of m whose key starts with p, ascending. It
// does not use state.PrefixEnd, so it checks it too.
func (m model) prefix(p []byte) []kv {
	var out []kv
	for _, e := range m.scan(nil, nil, false) {
		if bytes.HasPrefix(e.key, p) {
			out = append(out, e)
		}
	}
	return out
}

func (m model) clone() model { return maps.Clone(m) }

// drain reads it to the end, copying every entry, and closes it.
func drain(it state.Iterator) ([]kv, error) {
	var out []kv
	for it.Next() {
		out = append(out, kv{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	err := it.Err()
	if cerr := it.Close(); cerr != err {
		return out, cerr
	}
	return out, err
}

// equal compares entries, treating nil and empty values alike only when
// both are empty: a stored empty value must read back as non-nil.
func equal(a, b []kv) bool {
	return slices.EqualFunc(a, b, func(x, y kv) bool {
		return bytes.Equal(x.key, y.key) && bytes.Equal(x.value, y.value) && (x.value == nil) == (y.value == nil)
	})
}

// Options adjusts the checks to a backend.
type Options struct {
	// ExactCount requires ApproximateCount to be exact, as it is for
	// memory. Without it, the count is only required to be non-negative.
	ExactCount bool
}
