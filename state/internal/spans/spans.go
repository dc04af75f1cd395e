// Package spans keeps sets of key ranges: the range tombstones of the state
// backends. A Set is immutable once built (Add returns a new one), so a
// snapshot of a set is the set itself.
package spans

import (
	"bytes"
	"sort"
)

// Span is the key range [From, To). From is never nil (the empty key is the
// smallest key); a nil To runs to the last key.
type Span struct {
	From, To []byte
}

// Set is a sorted list of disjoint, non-adjacent spans.
type Set []Span

// cmpEnd compares two exclusive upper bounds, nil being past every key.
func cmpEnd(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// Empty reports whether [from, to) holds no key, with the state package's
// rules for nil bounds.
func Empty(from, to []byte) bool {
	return to != nil && (len(to) == 0 || (from != nil && bytes.Compare(from, to) >= 0))
}

// Add returns the union of s and [from, to), with the state package's rules
// for nil bounds. s is not modified. The bounds are copied.
func (s Set) Add(from, to []byte) Set {
	if Empty(from, to) {
		return s
	}
	n := Span{From: append([]byte{}, from...)}
	if to != nil {
		n.To = append([]byte{}, to...)
	}
	out := make(Set, 0, len(s)+1)
	placed := false
	for _, sp := range s {
		switch {
		case sp.To != nil && bytes.Compare(sp.To, n.From) < 0: // before
			out = append(out, sp)
		case n.To != nil && bytes.Compare(sp.From, n.To) > 0: // after
			if !placed {
				out, placed = append(out, n), true
			}
			out = append(out, sp)
		default: // overlapping or adjacent: merge into n
			if bytes.Compare(sp.From, n.From) < 0 {
				n.From = sp.From
			}
			if cmpEnd(sp.To, n.To) > 0 {
				n.To = sp.To
			}
		}
	}
	if !placed {
		out = append(out, n)
	}
	return out
}

// Union returns the union of s and o.
func (s Set) Union(o Set) Set {
	for _, sp := range o {
		s = s.Add(sp.From, sp.To)
	}
	return s
}

// Find returns the span of s holding key, if any.
func (s Set) Find(key []byte) (Span, bool) {
	i := sort.Search(len(s), func(i int) bool { return cmpEnd(s[i].To, key) > 0 })
	if i < len(s) && bytes.Compare(s[i].From, key) <= 0 {
		return s[i], true
	}
	return Span{}, false
}

// Covers reports whether a span of s holds key.
func (s Set) Covers(key []byte) bool {
	_, ok := s.Find(key)
	return ok
}

// Gaps returns, in key order, the parts of [from, to) (nil bounds open)
// that no span of s holds. A gap's From is nil when it starts at from = nil.
func (s Set) Gaps(from, to []byte) []Span {
	if Empty(from, to) {
		return nil
	}
	cur := from
	var out []Span
	for _, sp := range s {
		if sp.To != nil && bytes.Compare(sp.To, cur) <= 0 {
			continue
		}
		if to != nil && bytes.Compare(sp.From, to) >= 0 {
			break
		}
		if bytes.Compare(sp.From, cur) > 0 {
			out = append(out, Span{From: cur, To: sp.From})
		}
		if sp.To == nil {
			return out
		}
		cur = sp.To
	}
	if to == nil || bytes.Compare(cur, to) < 0 {
		out = append(out, Span{From: cur, To: to})
	}
	return out
}

// Mem estimates the memory s holds.
func (s Set) Mem() int {
	n := 0
	for _, sp := range s {
		n += len(sp.From) + len(sp.To) + 48
	}
	return n
}
