package storetest

import (
	"bytes"
	"fmt"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
)

// alphabet is small and includes the edges (0x00, 0xFF) so that random keys
// collide, share prefixes and exercise PrefixEnd's carry.
var alphabet = []byte{0x00, 0x01, 'a', 'b', 0xFE, 0xFF}

// Key generates a non-nil key of up to 4 bytes from a small alphabet; the
// empty key is among them.
func Key() *rapid.Generator[[]byte] {
	return rapid.Map(rapid.SliceOfN(rapid.SampledFrom(alphabet), 0, 4), func(b []byte) []byte {
		return append([]byte{}, b...)
	})
}

// Value generates a value: nil (a delete, when put) one time in eight,
// otherwise a non-nil value of up to 8 bytes, possibly empty.
func Value() *rapid.Generator[[]byte] {
	return rapid.Custom(func(t *rapid.T) []byte {
		if rapid.IntRange(0, 7).Draw(t, "null") == 0 {
			return nil
		}
		return append([]byte{}, rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "bytes")...)
	})
}

// bound generates a range bound: nil (open) one time in four, else a key.
func bound() *rapid.Generator[[]byte] {
	return rapid.OneOf(rapid.Just[[]byte](nil), Key(), Key(), Key())
}

// Check runs random operations on s, which must be open and empty, and on a
// model, and fails t when they disagree. Use it in a rapid property that
// opens a fresh store per run:
//
//	rapid.Check(t, func(t *rapid.T) {
//		s := memory.New("check")
//		defer s.Close()
//		storetest.Check(t, s, storetest.Options{ExactCount: true})
//	})
//
// Beyond the answers, it checks that Put copies its arguments, that a value
// from Get survives later writes, and that an iterator keeps its snapshot
// while the store is written to.
func Check(t *rapid.T, s state.KeyValueBytesStore, opts Options) {
	m := model{}

	put := func(t *rapid.T, k, v []byte) {
		if err := s.Put(k, v); err != nil {
			t.Fatalf("Put(%x, %x): %v", k, v, err)
		}
		if v == nil {
			delete(m, string(k))
		} else {
			m[string(k)] = bytes.Clone(v)
		}
		// The store must have copied: scribble over the caller's buffers.
		for i := range k {
			k[i] ^= 0x5A
		}
		for i := range v {
			v[i] ^= 0x5A
		}
	}
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
			put(t, Key().Draw(t, "key"), Value().Draw(t, "value"))
		},
		"put many": func(t *rapid.T) {
			// Enough keys to cross the iterator batches of the backends.
			n := rapid.IntRange(1, 200).Draw(t, "n")
			for i := range n {
				put(t, fmt.Appendf(nil, "n%03d", i), []byte{byte(i)})
			}
		},
		"delete": func(t *rapid.T) {
			k := Key().Draw(t, "key")
			if err := s.Delete(k); err != nil {
				t.Fatalf("Delete(%x): %v", k, err)
			}
			delete(m, string(k))
		},
		"get": func(t *rapid.T) {
			k := Key().Draw(t, "key")
			got, found, err := s.Get(k)
			if err != nil {
				t.Fatalf("Get(%x): %v", k, err)
			}
			want, ok := m[string(k)]
			if found != ok || !bytes.Equal(got, want) || (found && got == nil) {
				t.Fatalf("Get(%x) = %x, %v; want %x, %v", k, got, found, want, ok)
			}
			if !found {
				return
			}
			// The value must survive an overwrite of its key.
			kept := bytes.Clone(got)
			put(t, bytes.Clone(k), Value().Draw(t, "new value"))
			if !bytes.Equal(got, kept) {
				t.Fatalf("value from Get(%x) changed from %x to %x after a Put", k, kept, got)
			}
		},
		"range": func(t *rapid.T) {
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			scan(t, fmt.Sprintf("Range(%x, %x)", from, to), s.Range(from, to), m.scan(from, to, false))
		},
		"reverse range": func(t *rapid.T) {
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			scan(t, fmt.Sprintf("ReverseRange(%x, %x)", from, to), s.ReverseRange(from, to), m.scan(from, to, true))
		},
		"prefix scan": func(t *rapid.T) {
			p := Key().Draw(t, "prefix")
			scan(t, fmt.Sprintf("PrefixScan(%x)", p), s.PrefixScan(p), m.prefix(p))
		},
		"write while iterating": func(t *rapid.T) {
			from, to := bound().Draw(t, "from"), bound().Draw(t, "to")
			reverse := rapid.Bool().Draw(t, "reverse")
			want := m.clone().scan(from, to, reverse)
			it := s.Range(from, to)
			if reverse {
				it = s.ReverseRange(from, to)
			}
			var got []kv
			for i := 0; it.Next(); i++ {
				got = append(got, kv{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
				// Write around the iterator: its own key, and others.
				if i%2 == 0 {
					put(t, bytes.Clone(it.Key()), Value().Draw(t, "overwrite"))
				}
				put(t, Key().Draw(t, "other"), Value().Draw(t, "other value"))
			}
			if err := it.Close(); err != nil {
				t.Fatalf("iterate while writing: %v", err)
			}
			if !equal(got, want) {
				t.Fatalf("iterator did not keep its snapshot:\n got %s\nwant %s", format(got), format(want))
			}
		},
		"count": func(t *rapid.T) {
			n, err := s.ApproximateCount()
			if err != nil {
				t.Fatalf("ApproximateCount: %v", err)
			}
			if n < 0 || (opts.ExactCount && n != int64(len(m))) {
				t.Fatalf("ApproximateCount = %d, model has %d keys", n, len(m))
			}
		},
		"": func(t *rapid.T) {
			// After every action: the whole store equals the model.
			scan(t, "Range(nil, nil)", s.Range(nil, nil), m.scan(nil, nil, false))
		},
	})
}

func format(entries []kv) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%x=%x", e.key, e.value)
		if e.value == nil {
			b.WriteString("(nil)")
		}
	}
	b.WriteByte(']')
	return b.String()
}
