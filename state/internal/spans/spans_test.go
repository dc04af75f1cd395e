package spans

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// TestSetAgreesWithModel checks Add, Covers and Gaps against a list of the
// ranges added, over keys of a small alphabet.
func TestSetAgreesWithModel(t *testing.T) {
	key := rapid.Map(rapid.SliceOfN(rapid.SampledFrom([]byte{0, 'a', 'b', 0xFF}), 0, 3), func(b []byte) []byte { return append([]byte{}, b...) })
	bound := rapid.OneOf(rapid.Just[[]byte](nil), key, key)
	in := func(k, from, to []byte) bool {
		return (from == nil || bytes.Compare(k, from) >= 0) && (to == nil || bytes.Compare(k, to) < 0)
	}
	rapid.Check(t, func(t *rapid.T) {
		var s Set
		var added [][2][]byte
		for range rapid.IntRange(0, 6).Draw(t, "ranges") {
			from, to := bound.Draw(t, "from"), bound.Draw(t, "to")
			s = s.Add(from, to)
			added = append(added, [2][]byte{from, to})
		}
		for i := 1; i < len(s); i++ {
			if s[i-1].To == nil || bytes.Compare(s[i-1].To, s[i].From) >= 0 {
				t.Fatalf("spans not sorted and disjoint: %q", s)
			}
		}
		from, to := bound.Draw(t, "gaps from"), bound.Draw(t, "gaps to")
		gaps := s.Gaps(from, to)
		for range 20 {
			k := key.Draw(t, "key")
			want := false
			for _, r := range added {
				want = want || in(k, r[0], r[1])
			}
			if got := s.Covers(k); got != want {
				t.Fatalf("Covers(%q) = %v, want %v; set %q", k, got, want, s)
			}
			inGap := false
			for _, g := range gaps {
				inGap = inGap || in(k, g.From, g.To)
			}
			if wantGap := in(k, from, to) && !want; inGap != wantGap {
				t.Fatalf("key %q in the gaps of [%q, %q) = %v, want %v; gaps %q", k, from, to, inGap, wantGap, gaps)
			}
		}
	})
}
