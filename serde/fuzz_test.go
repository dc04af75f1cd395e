package serde_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/windows"
)

// Each fuzz target checks that Deserialize never panics, that it fails only
// with an *Error, and that whenever it succeeds, Serialize followed by
// Deserialize gives back an equal value.

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a", "hello, world", "héllo 世界", "\x00", "\xff\xfe", "\xc3\x28", "\xed\xa0\x80"} {
		f.Add([]byte(s))
	}
	s := serde.String()
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize(topic, data)
		if err != nil {
			t.Fatalf("Deserialize(%q): %v", data, err)
		}
		b, err := s.Serialize(topic, v)
		if err != nil || b == nil {
			t.Fatalf("Serialize(%q) = %q, %v; want non-nil bytes", v, b, err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("Serialize(Deserialize(%q)) = %q; want the input back", data, b)
		}
		if v2, err := s.Deserialize(topic, b); err != nil || v2 != v {
			t.Fatalf("round trip of %q: got %q, %v", v, v2, err)
		}
	})
}

func FuzzBytes(f *testing.F) {
	for _, s := range []string{"", "\x00", "abc", "\xff\x00\xff"} {
		f.Add([]byte(s))
	}
	s := serde.Bytes()
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := s.Deserialize(topic, data)
		if err != nil {
			t.Fatalf("Deserialize(%q): %v", data, err)
		}
		if (v == nil) != (data == nil) || !bytes.Equal(v, data) {
			t.Fatalf("Deserialize(%#v) = %#v", data, v)
		}
		b, err := s.Serialize(topic, v)
		if err != nil || (b == nil) != (v == nil) || !bytes.Equal(b, v) {
			t.Fatalf("Serialize(%#v) = %#v, %v", v, b, err)
		}
		if v2, err := s.Deserialize(topic, b); err != nil || !bytes.Equal(v2, v) {
			t.Fatalf("round trip of %q: got %q, %v", v, v2, err)
		}
	})
}

// fuzzFixed is the body of the fixed-width fuzz targets: data of the right
// size decodes and re-encodes to itself (modulo canon), anything else non-nil
// is an ErrInvalidLength.
func fuzzFixed[T any](t *testing.T, s serde.Serde[T], size int, data []byte, canon func([]byte) []byte, eq func(a, b T) bool) {
	v, err := s.Deserialize(topic, data)
	if len(data) != size {
		if data == nil {
			if err != nil {
				t.Fatalf("Deserialize(nil): %v", err)
			}
			return
		}
		if !errors.Is(err, serde.ErrInvalidLength) {
			t.Fatalf("Deserialize(%d bytes) = %v, %v; want ErrInvalidLength", len(data), v, err)
		}
		if _, ok := errors.AsType[*serde.Error](err); !ok {
			t.Fatalf("Deserialize error %T is not a *serde.Error", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Deserialize(%x): %v", data, err)
	}
	b, err := s.Serialize(topic, v)
	if err != nil {
		t.Fatalf("Serialize(%v): %v", v, err)
	}
	want := data
	if canon != nil {
		want = canon(data)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("Serialize(Deserialize(%x)) = %x; want %x", data, b, want)
	}
	v2, err := s.Deserialize(topic, b)
	if err != nil || !eq(v2, v) {
		t.Fatalf("round trip of %v: got %v, %v", v, v2, err)
	}
}

func FuzzInt64(f *testing.F) {
	for _, s := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x01", "\x80\x00\x00\x00\x00\x00\x00\x00",
		"\x7f\xff\xff\xff\xff\xff\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff", "\x01\x02\x03", "\x00\x00\x00\x00\x00\x00\x00\x00\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFixed(t, serde.Int64(), 8, data, nil, func(a, b int64) bool { return a == b })
	})
}

func FuzzInt32(f *testing.F) {
	for _, s := range []string{"", "\x00\x00\x00\x01", "\x80\x00\x00\x00", "\x7f\xff\xff\xff", "\xff\xff\xff\xff", "\x01\x02\x03", "\x00\x00\x00\x00\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFixed(t, serde.Int32(), 4, data, nil, func(a, b int32) bool { return a == b })
	})
}

func FuzzFloat64(f *testing.F) {
	for _, s := range []string{"", "\x3f\xf8\x00\x00\x00\x00\x00\x00", "\x80\x00\x00\x00\x00\x00\x00\x00",
		"\x7f\xf0\x00\x00\x00\x00\x00\x00", "\xff\xf0\x00\x00\x00\x00\x00\x00", "\x7f\xf8\x00\x00\x00\x00\x00\x00",
		"\x7f\xf8\x00\x00\x00\x00\x00\x01", "\xff\xff\xff\xff\xff\xff\xff\xff", "\x00\x00\x00\x00\x00\x00\x00\x01", "\x3f\xf8"} {
		f.Add([]byte(s))
	}
	canon := func(data []byte) []byte {
		bits := uint64(0)
		for _, c := range data {
			bits = bits<<8 | uint64(c)
		}
		if math.IsNaN(math.Float64frombits(bits)) {
			return []byte{0x7f, 0xf8, 0, 0, 0, 0, 0, 0}
		}
		return data
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFixed(t, serde.Float64(), 8, data, canon, sameFloat)
	})
}

// fuzzEvent exercises most encoding/json kinds: integers, floats, strings,
// bools, slices, maps, interfaces, pointers, base64 bytes and recursion.
type fuzzEvent struct {
	ID    int64          `json:"id"`
	Count uint8          `json:"count,omitempty"`
	Name  string         `json:"name"`
	Score float64        `json:"score"`
	OK    bool           `json:"ok"`
	Tags  []string       `json:"tags"`
	Attrs map[string]any `json:"attrs"`
	Raw   []byte         `json:"raw"`
	Any   any            `json:"any"`
	Child *fuzzEvent     `json:"child"`
	Ints  [2]int16       `json:"ints"`
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		``, `null`, ` null `, `{}`, `[]`, `0`, `-0`, `1e308`, `1e400`, `"s"`, `true`,
		`{"id":1,"name":"ana","score":1.5,"ok":true,"tags":["a","b"],"attrs":{"k":[1,"x",null,{"y":false}]}}`,
		`{"id":9223372036854775807,"count":255,"raw":"AAEC/w==","any":{"a":[]},"child":{"id":-1,"child":null}}`,
		`{"ID":1,"id":2,"Name":"case"}`,
		`{"attrs":{"a":1},"attrs":{"b":2}}`,
		`{"child":{"id":1},"child":{"name":"x"}}`,
		`{"name":"\ud800 \u2028 \u00e9 <&>","tags":null,"ints":[1,2,3]}`,
		`{"id":1.5}`, `{"id":"1"}`, `{"raw":"!"}`, `{"count":256}`,
		"{\"name\":\"\xff\"}", `{"id":1}x`, `[[[[[[[[[[]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzJSON(t, serde.JSON[fuzzEvent](), data)
		fuzzJSON(t, serde.JSON[*fuzzEvent](), data)
		fuzzJSON(t, serde.JSON[map[string]any](), data)
		fuzzJSON(t, serde.JSON[any](), data)
		fuzzJSON(t, serde.JSON[[]int](), data)
	})
}

func fuzzJSON[T any](t *testing.T, s serde.Serde[T], data []byte) {
	t.Helper()
	v, err := s.Deserialize(topic, data)
	if err != nil {
		se, ok := errors.AsType[*serde.Error](err)
		if !ok || se.Format != "json" || se.Op != "deserialize" {
			t.Fatalf("Deserialize(%q): error %v (%T), want a json *serde.Error", data, err, err)
		}
		var zero T
		if !reflect.DeepEqual(v, zero) {
			t.Fatalf("Deserialize(%q) returned %#v with its error, want zero", data, v)
		}
		return
	}
	b, err := s.Serialize(topic, v)
	if err != nil {
		t.Fatalf("Serialize(%#v) (decoded from %q): %v", v, data, err)
	}
	if b != nil && !json.Valid(b) {
		t.Fatalf("Serialize(%#v) = %q: not valid JSON", v, b)
	}
	v2, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatalf("Deserialize(Serialize(%#v)) = Deserialize(%q): %v", v, b, err)
	}
	// Values decoded from JSON hold no NaN, so DeepEqual is exact here.
	if !reflect.DeepEqual(v2, v) {
		t.Fatalf("round trip of %q: decoded %#v, re-encoded %q, re-decoded %#v", data, v, b, v2)
	}
}

func FuzzWindowed(f *testing.F) {
	for _, s := range []string{"", "\x00", "page\x00\x00\x00\x00\x00\x00\x03\xe8", "u1\x00\x00\x00\x00\x00\x00\x01\x04\x00\x00\x00\x00\x00\x00\x00\x05"} {
		f.Add([]byte(s))
	}
	tw := serde.TimeWindowed(serde.String(), time.Minute)
	sw := serde.SessionWindowed(serde.String())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range []serde.Serde[windows.Windowed[string]]{tw, sw} {
			v, err := s.Deserialize(topic, data)
			if err != nil {
				var se *serde.Error
				if !errors.As(err, &se) {
					t.Fatalf("Deserialize(%q): %v, want a *serde.Error", data, err)
				}
				continue
			}
			b, err := s.Serialize(topic, v)
			if err != nil || !bytes.Equal(b, data) {
				t.Fatalf("Serialize(Deserialize(%q)) = %q, %v; want the input back", data, b, err)
			}
		}
	})
}
