package serde_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gregorstream/gregor/serde"
)

const topic = "clicks"

// roundTrip serializes v, checks the bytes are non-nil, deserializes them
// and compares with eq (reflect.DeepEqual when nil).
func roundTrip[T any](t *testing.T, s serde.Serde[T], v T, eq func(a, b T) bool) {
	t.Helper()
	b, err := s.Serialize(topic, v)
	if err != nil {
		t.Fatalf("Serialize(%#v): %v", v, err)
	}
	if b == nil {
		t.Fatalf("Serialize(%#v) = nil, want non-nil bytes for a non-null value", v)
	}
	got, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatalf("Deserialize(%x): %v", b, err)
	}
	if eq == nil {
		eq = func(a, b T) bool { return reflect.DeepEqual(a, b) }
	}
	if !eq(got, v) {
		t.Fatalf("round trip of %#v: got %#v (bytes %x)", v, got, b)
	}
}

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

func TestRoundTripString(t *testing.T) {
	for _, v := range []string{"", "a", "hello, world", "héllo 世界 🎉", "\x00\xff", "\xc3\x28 invalid utf-8", strings.Repeat("x", 1<<16)} {
		t.Run(strconv.Quote(v[:min(len(v), 16)]), func(t *testing.T) {
			roundTrip(t, serde.String(), v, nil)
		})
	}
}

func TestRoundTripBytes(t *testing.T) {
	for _, v := range [][]byte{{}, {0}, {0xff, 0x00, 0x7f}, bytes.Repeat([]byte{0xab}, 1<<16)} {
		t.Run(fmt.Sprint(len(v)), func(t *testing.T) {
			roundTrip(t, serde.Bytes(), v, nil)
		})
	}
}

func TestRoundTripInt64(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 255, 256, -256, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1} {
		t.Run(strconv.FormatInt(v, 10), func(t *testing.T) {
			roundTrip(t, serde.Int64(), v, nil)
		})
	}
}

func TestRoundTripInt32(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 255, 256, -256, math.MaxInt16, math.MinInt16, math.MaxInt32, math.MinInt32} {
		t.Run(strconv.FormatInt(int64(v), 10), func(t *testing.T) {
			roundTrip(t, serde.Int32(), v, nil)
		})
	}
}

func TestRoundTripFloat64(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 1.5, math.Pi, math.MaxFloat64, -math.MaxFloat64,
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), math.NaN(),
		math.Float64frombits(0x7FF0_0000_0000_0001), // signalling NaN
		math.Float64frombits(0xFFF8_0000_0000_0000), // negative quiet NaN
	} {
		t.Run(strconv.FormatUint(math.Float64bits(v), 16), func(t *testing.T) {
			roundTrip(t, serde.Float64(), v, sameFloat)
		})
	}
	// -0 keeps its sign.
	got, _ := serde.Float64().Deserialize(topic, must(serde.Float64().Serialize(topic, math.Copysign(0, -1))))
	if !math.Signbit(got) {
		t.Errorf("-0 round-tripped to %v without its sign", got)
	}
}

type point struct {
	X, Y int
}

type event struct {
	ID       int64             `json:"id"`
	User     string            `json:"user"`
	Score    float64           `json:"score"`
	Tags     []string          `json:"tags"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	Location *point            `json:"location"`
	Children []event           `json:"children,omitempty"`
	Payload  []byte            `json:"payload"`
	Extra    any               `json:"extra"`
}

func TestRoundTripJSON(t *testing.T) {
	full := event{
		ID: math.MaxInt64, User: "ana \"<&>\" 世界", Score: -1.25,
		Tags:     []string{"a", "", "c"},
		Attrs:    map[string]string{"k": "v", "": "empty key"},
		Location: &point{X: -3, Y: 4},
		Children: []event{{ID: 1, Tags: []string{}}, {ID: 2, Location: &point{}}},
		Payload:  []byte{0, 1, 2, 0xff},
		Extra:    map[string]any{"n": 1.5, "list": []any{"x", true, nil}},
	}
	t.Run("struct", func(t *testing.T) { roundTrip(t, serde.JSON[event](), full, nil) })
	t.Run("zero struct", func(t *testing.T) { roundTrip(t, serde.JSON[event](), event{}, nil) })
	t.Run("pointer", func(t *testing.T) { roundTrip(t, serde.JSON[*event](), &full, nil) })
	t.Run("map", func(t *testing.T) { roundTrip(t, serde.JSON[map[string]int](), map[string]int{"a": 1, "b": -2}, nil) })
	t.Run("empty map", func(t *testing.T) { roundTrip(t, serde.JSON[map[string]int](), map[string]int{}, nil) })
	t.Run("empty slice", func(t *testing.T) { roundTrip(t, serde.JSON[[]int](), []int{}, nil) })
	t.Run("int", func(t *testing.T) { roundTrip(t, serde.JSON[int](), 0, nil) })
	t.Run("string", func(t *testing.T) { roundTrip(t, serde.JSON[string](), "", nil) })
	t.Run("any", func(t *testing.T) {
		roundTrip(t, serde.JSON[any](), any(map[string]any{"a": []any{1.0, "b", false}}), nil)
	})
	t.Run("raw message", func(t *testing.T) {
		roundTrip(t, serde.JSON[json.RawMessage](), json.RawMessage(`{"a":[1,2]}`), nil)
	})
}

func TestJSONFormat(t *testing.T) {
	b, err := serde.JSON[event]().Serialize(topic, event{ID: 7, User: "ana", Tags: []string{"x"}, Location: &point{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":7,"user":"ana","score":0,"tags":["x"],"location":{"X":1,"Y":2},"payload":null,"extra":null}`
	if string(b) != want {
		t.Errorf("Serialize = %s\nwant        %s", b, want)
	}
}

// TestNull checks the package's null convention for every serde.
func TestNull(t *testing.T) {
	t.Run("deserialize nil", func(t *testing.T) {
		checkNullDeserialize(t, serde.String())
		checkNullDeserialize(t, serde.Bytes())
		checkNullDeserialize(t, serde.Int64())
		checkNullDeserialize(t, serde.Int32())
		checkNullDeserialize(t, serde.Float64())
		checkNullDeserialize(t, serde.JSON[event]())
		checkNullDeserialize(t, serde.JSON[*event]())
		checkNullDeserialize(t, serde.JSON[map[string]any]())
		checkNullDeserialize(t, serde.JSON[[]int]())
		checkNullDeserialize(t, serde.JSON[any]())
		checkNullDeserialize(t, serde.JSON[io.Reader]())
		checkNullDeserialize(t, serde.Func(nil, func(string, []byte) (int, error) {
			t.Error("Func called de with nil data")
			return 1, nil
		}))
	})

	t.Run("serialize null", func(t *testing.T) {
		checkNullSerialize(t, serde.Bytes(), nil)
		checkNullSerialize(t, serde.JSON[*event](), nil)
		checkNullSerialize(t, serde.JSON[map[string]int](), nil)
		checkNullSerialize(t, serde.JSON[[]string](), nil)
		checkNullSerialize(t, serde.JSON[any](), nil)
		checkNullSerialize(t, serde.JSON[any](), any((*event)(nil)))
		checkNullSerialize(t, serde.JSON[any](), any(map[string]int(nil)))
		checkNullSerialize(t, serde.JSON[fmt.Stringer](), nil)
		checkNullSerialize(t, serde.JSON[json.RawMessage](), nil)
	})

	t.Run("empty is not null", func(t *testing.T) {
		for name, f := range map[string]func() ([]byte, error){
			"String":           func() ([]byte, error) { return serde.String().Serialize(topic, "") },
			"Bytes":            func() ([]byte, error) { return serde.Bytes().Serialize(topic, []byte{}) },
			"Int64":            func() ([]byte, error) { return serde.Int64().Serialize(topic, 0) },
			"Int32":            func() ([]byte, error) { return serde.Int32().Serialize(topic, 0) },
			"Float64":          func() ([]byte, error) { return serde.Float64().Serialize(topic, 0) },
			"JSON empty map":   func() ([]byte, error) { return serde.JSON[map[string]int]().Serialize(topic, map[string]int{}) },
			"JSON empty slice": func() ([]byte, error) { return serde.JSON[[]int]().Serialize(topic, []int{}) },
			"JSON zero struct": func() ([]byte, error) { return serde.JSON[event]().Serialize(topic, event{}) },
			"JSON empty ptr":   func() ([]byte, error) { return serde.JSON[*event]().Serialize(topic, &event{}) },
		} {
			b, err := f()
			if err != nil || b == nil {
				t.Errorf("%s: Serialize of an empty/zero value = %v, %v; want non-nil bytes", name, b, err)
			}
		}
		// An empty string and an empty byte slice stay empty, not null.
		if s, err := serde.String().Deserialize(topic, []byte{}); s != "" || err != nil {
			t.Errorf("String().Deserialize(empty) = %q, %v", s, err)
		}
		if b, err := serde.Bytes().Deserialize(topic, []byte{}); b == nil || len(b) != 0 || err != nil {
			t.Errorf("Bytes().Deserialize(empty) = %#v, %v; want non-nil empty", b, err)
		}
	})

	t.Run("JSON null text", func(t *testing.T) {
		p, err := serde.JSON[*event]().Deserialize(topic, []byte("null"))
		if p != nil || err != nil {
			t.Errorf("JSON[*event] Deserialize(null) = %v, %v; want nil, nil", p, err)
		}
		m, err := serde.JSON[map[string]int]().Deserialize(topic, []byte(" null "))
		if m != nil || err != nil {
			t.Errorf("JSON[map] Deserialize(null) = %v, %v; want nil, nil", m, err)
		}
	})
}

func checkNullDeserialize[T any](t *testing.T, s serde.Serde[T]) {
	t.Helper()
	got, err := s.Deserialize(topic, nil)
	var zero T
	if err != nil || !reflect.DeepEqual(got, zero) {
		t.Errorf("%v: Deserialize(nil) = %#v, %v; want zero value, nil", s, got, err)
	}
}

func checkNullSerialize[T any](t *testing.T, s serde.Serde[T], v T) {
	t.Helper()
	b, err := s.Serialize(topic, v)
	if b != nil || err != nil {
		t.Errorf("%v: Serialize(%#v) = %q, %v; want nil, nil", s, v, b, err)
	}
}

// TestKafkaVectors checks byte-exact compatibility with Kafka's
// LongSerializer, IntegerSerializer, DoubleSerializer and StringSerializer.
func TestKafkaVectors(t *testing.T) {
	type vector struct {
		name  string
		ser   func() ([]byte, error)
		de    func([]byte) (any, error)
		value any
		hex   string
	}
	int64v := func(v int64, h string) vector {
		return vector{"int64 " + h, func() ([]byte, error) { return serde.Int64().Serialize(topic, v) },
			func(b []byte) (any, error) { return serde.Int64().Deserialize(topic, b) }, v, h}
	}
	int32v := func(v int32, h string) vector {
		return vector{"int32 " + h, func() ([]byte, error) { return serde.Int32().Serialize(topic, v) },
			func(b []byte) (any, error) { return serde.Int32().Deserialize(topic, b) }, v, h}
	}
	float64v := func(v float64, h string) vector {
		return vector{"float64 " + h, func() ([]byte, error) { return serde.Float64().Serialize(topic, v) },
			func(b []byte) (any, error) { return serde.Float64().Deserialize(topic, b) }, v, h}
	}
	stringv := func(v string, h string) vector {
		return vector{"string " + h, func() ([]byte, error) { return serde.String().Serialize(topic, v) },
			func(b []byte) (any, error) { return serde.String().Deserialize(topic, b) }, v, h}
	}
	vectors := []vector{
		int64v(0, "0000000000000000"),
		int64v(1, "0000000000000001"),
		int64v(-1, "ffffffffffffffff"),
		int64v(256, "0000000000000100"),
		int64v(0x0102030405060708, "0102030405060708"),
		int64v(math.MaxInt64, "7fffffffffffffff"),
		int64v(math.MinInt64, "8000000000000000"),
		int32v(0, "00000000"),
		int32v(1, "00000001"),
		int32v(-1, "ffffffff"),
		int32v(0x01020304, "01020304"),
		int32v(math.MaxInt32, "7fffffff"),
		int32v(math.MinInt32, "80000000"),
		float64v(0, "0000000000000000"),
		float64v(math.Copysign(0, -1), "8000000000000000"),
		float64v(1, "3ff0000000000000"),
		float64v(1.5, "3ff8000000000000"),
		float64v(-2, "c000000000000000"),
		float64v(0.1, "3fb999999999999a"),
		float64v(math.MaxFloat64, "7fefffffffffffff"),
		float64v(math.SmallestNonzeroFloat64, "0000000000000001"),
		float64v(math.Inf(1), "7ff0000000000000"),
		float64v(math.Inf(-1), "fff0000000000000"),
		stringv("", ""),
		stringv("abc", "616263"),
		stringv("héllo", "68c3a96c6c6f"),
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			want, _ := hex.DecodeString(v.hex)
			got, err := v.ser()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("Serialize(%v) = %x, %v; want %x", v.value, got, err, want)
			}
			back, err := v.de(want)
			if err != nil || !reflect.DeepEqual(back, v.value) {
				t.Errorf("Deserialize(%x) = %v, %v; want %v", want, back, err, v.value)
			}
		})
	}
}

// TestFloat64NaN checks that every NaN serializes as Java's canonical NaN
// (Double.doubleToLongBits) and that Deserialize keeps any NaN's bits.
func TestFloat64NaN(t *testing.T) {
	const canonical = "7ff8000000000000"
	for _, bits := range []uint64{0x7FF8_0000_0000_0000, 0x7FF8_0000_0000_0001, 0x7FF0_0000_0000_0001, 0xFFF8_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF} {
		nan := math.Float64frombits(bits)
		b, err := serde.Float64().Serialize(topic, nan)
		if err != nil || hex.EncodeToString(b) != canonical {
			t.Errorf("Serialize(NaN %016x) = %x, %v; want %s", bits, b, err, canonical)
		}
		var in [8]byte
		for i := range in {
			in[i] = byte(bits >> (56 - 8*i))
		}
		v, err := serde.Float64().Deserialize(topic, in[:])
		if err != nil || math.Float64bits(v) != bits {
			t.Errorf("Deserialize(%x) = %016x, %v; want bits %016x", in, math.Float64bits(v), err, bits)
		}
	}
}

func TestInvalidLength(t *testing.T) {
	type deserializer func(topic string, data []byte) (any, error)
	serdes := []struct {
		format string
		want   int
		de     deserializer
	}{
		{"int64", 8, func(tp string, b []byte) (any, error) { return serde.Int64().Deserialize(tp, b) }},
		{"int32", 4, func(tp string, b []byte) (any, error) { return serde.Int32().Deserialize(tp, b) }},
		{"float64", 8, func(tp string, b []byte) (any, error) { return serde.Float64().Deserialize(tp, b) }},
	}
	for _, s := range serdes {
		for _, n := range []int{0, 1, s.want - 1, s.want + 1, 100} {
			t.Run(fmt.Sprintf("%s/%d", s.format, n), func(t *testing.T) {
				data := bytes.Repeat([]byte{0xff}, n)
				v, err := s.de("page-views", data)
				if err == nil {
					t.Fatalf("Deserialize(%d bytes) = %v, nil; want error", n, v)
				}
				if !reflect.ValueOf(v).IsZero() {
					t.Errorf("Deserialize returned %v with the error, want zero", v)
				}
				if !errors.Is(err, serde.ErrInvalidLength) {
					t.Errorf("errors.Is(%v, ErrInvalidLength) = false", err)
				}
				se, ok := errors.AsType[*serde.Error](err)
				if !ok {
					t.Fatalf("error %T is not a *serde.Error", err)
				}
				if se.Op != "deserialize" || se.Topic != "page-views" || se.Format != s.format {
					t.Errorf("Error = %+v", se)
				}
				want := fmt.Sprintf(`serde: deserialize %s from topic "page-views": got %d bytes, want %d: invalid length`, s.format, n, s.want)
				if err.Error() != want {
					t.Errorf("message = %q\nwant      %q", err.Error(), want)
				}
			})
		}
	}
}

type failingMarshaler struct{}

var errMarshal = errors.New("cannot marshal")

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errMarshal }

func TestJSONSerializeErrors(t *testing.T) {
	check := func(t *testing.T, b []byte, err error, target any) {
		t.Helper()
		if b != nil {
			t.Errorf("Serialize returned bytes %q with the error", b)
		}
		se, ok := errors.AsType[*serde.Error](err)
		if !ok {
			t.Fatalf("Serialize error = %v (%T), want *serde.Error", err, err)
		}
		if se.Op != "serialize" || se.Format != "json" || se.Topic != topic {
			t.Errorf("Error = %+v", se)
		}
		if !strings.Contains(err.Error(), `"`+topic+`"`) || !strings.HasPrefix(err.Error(), "serde: serialize json ") {
			t.Errorf("message %q does not name the operation and topic", err)
		}
		if !errors.As(err, target) {
			t.Errorf("errors.As(%v, %T) = false", err, target)
		}
	}
	t.Run("channel", func(t *testing.T) {
		b, err := serde.JSON[chan int]().Serialize(topic, make(chan int))
		check(t, b, err, new(*json.UnsupportedTypeError))
	})
	t.Run("nil channel", func(t *testing.T) {
		b, err := serde.JSON[chan int]().Serialize(topic, nil)
		check(t, b, err, new(*json.UnsupportedTypeError))
	})
	t.Run("func in any", func(t *testing.T) {
		b, err := serde.JSON[any]().Serialize(topic, func() {})
		check(t, b, err, new(*json.UnsupportedTypeError))
	})
	t.Run("NaN", func(t *testing.T) {
		b, err := serde.JSON[float64]().Serialize(topic, math.NaN())
		check(t, b, err, new(*json.UnsupportedValueError))
	})
	t.Run("Inf field", func(t *testing.T) {
		b, err := serde.JSON[event]().Serialize(topic, event{Score: math.Inf(1)})
		check(t, b, err, new(*json.UnsupportedValueError))
	})
	t.Run("marshaler", func(t *testing.T) {
		b, err := serde.JSON[failingMarshaler]().Serialize(topic, failingMarshaler{})
		check(t, b, err, new(*json.MarshalerError))
		if !errors.Is(err, errMarshal) {
			t.Errorf("errors.Is(%v, errMarshal) = false", err)
		}
	})
}

func TestJSONDeserializeErrors(t *testing.T) {
	syntax := new(*json.SyntaxError)
	typ := new(*json.UnmarshalTypeError)
	tests := []struct {
		name   string
		de     func([]byte) (any, error)
		data   string
		target any
	}{
		{"empty", jsonDe[event](), "", syntax},
		{"truncated", jsonDe[event](), `{"id":1`, syntax},
		{"garbage", jsonDe[event](), `not json`, syntax},
		{"trailing data", jsonDe[int](), `1 2`, syntax},
		{"bad utf-8 outside string", jsonDe[any](), "\xff", syntax},
		{"wrong type", jsonDe[int](), `"one"`, typ},
		{"wrong field type", jsonDe[event](), `{"id":"x","user":"ana"}`, typ},
		{"overflow", jsonDe[int32](), `4294967296`, typ},
		{"object into slice", jsonDe[[]int](), `{}`, typ},
		{"pointer wrong type", jsonDe[*event](), `[1]`, typ},
		{"non-empty interface", jsonDe[io.Reader](), `{}`, typ},
		{"channel", jsonDe[chan int](), `1`, typ},
		{"func", jsonDe[func()](), `{}`, typ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.de([]byte(tt.data))
			if err == nil {
				t.Fatalf("Deserialize(%q) = %v, nil; want error", tt.data, v)
			}
			if rv := reflect.ValueOf(v); rv.IsValid() && !rv.IsZero() {
				t.Errorf("Deserialize returned %#v with the error, want zero value", v)
			}
			se, ok := errors.AsType[*serde.Error](err)
			if !ok {
				t.Fatalf("error %v (%T) is not a *serde.Error", err, err)
			}
			if se.Op != "deserialize" || se.Format != "json" || se.Topic != topic {
				t.Errorf("Error = %+v", se)
			}
			if !strings.HasPrefix(err.Error(), `serde: deserialize json from topic "`+topic+`": `) {
				t.Errorf("message = %q", err)
			}
			if !errors.As(err, tt.target) {
				t.Errorf("errors.As(%v, %T) = false", err, tt.target)
			}
		})
	}
}

func jsonDe[T any]() func([]byte) (any, error) {
	return func(b []byte) (any, error) { return serde.JSON[T]().Deserialize(topic, b) }
}

func TestJSONPartialDecodeIsZero(t *testing.T) {
	// encoding/json keeps decoding after a type error and fills what it can;
	// Deserialize must not return that partial value.
	v, err := serde.JSON[event]().Deserialize(topic, []byte(`{"user":"ana","id":"not a number","score":2}`))
	if err == nil {
		t.Fatal("want error")
	}
	if !reflect.DeepEqual(v, event{}) {
		t.Errorf("Deserialize returned %+v with the error, want zero", v)
	}
}

func TestJSONNilInterfaces(t *testing.T) {
	// Decoding into an interface type: null is fine, anything else is a
	// type error, and nothing panics.
	r, err := serde.JSON[io.Reader]().Deserialize(topic, []byte("null"))
	if r != nil || err != nil {
		t.Errorf("JSON[io.Reader] Deserialize(null) = %v, %v", r, err)
	}
	a, err := serde.JSON[any]().Deserialize(topic, []byte("null"))
	if a != nil || err != nil {
		t.Errorf("JSON[any] Deserialize(null) = %v, %v", a, err)
	}
	// A non-nil value in an interface type is encoded normally.
	b, err := serde.JSON[fmt.Stringer]().Serialize(topic, stringer("x"))
	if string(b) != `"x"` || err != nil {
		t.Errorf("JSON[fmt.Stringer] Serialize = %q, %v", b, err)
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

var errUser = errors.New("user error")

func TestFunc(t *testing.T) {
	s := serde.Func(
		func(_ string, v int) ([]byte, error) {
			if v < 0 {
				return nil, errUser
			}
			return strconv.AppendInt(nil, int64(v), 10), nil
		},
		func(_ string, b []byte) (int, error) { return strconv.Atoi(string(b)) },
	)
	roundTrip(t, s, 42, nil)
	roundTrip(t, s, 0, nil)
	if fmt.Sprint(s) != "func" {
		t.Errorf("name = %q, want func", fmt.Sprint(s))
	}

	t.Run("serialize error", func(t *testing.T) {
		b, err := s.Serialize(topic, -1)
		if b != nil || !errors.Is(err, errUser) {
			t.Fatalf("Serialize(-1) = %q, %v; want wrapped errUser", b, err)
		}
		se, ok := errors.AsType[*serde.Error](err)
		if !ok || se.Op != "serialize" || se.Format != "func" || se.Topic != topic {
			t.Errorf("error = %#v", err)
		}
		if want := `serde: serialize func for topic "clicks": user error`; err.Error() != want {
			t.Errorf("message = %q, want %q", err, want)
		}
	})

	t.Run("deserialize error", func(t *testing.T) {
		v, err := s.Deserialize(topic, []byte("x"))
		if v != 0 || !errors.As(err, new(*strconv.NumError)) {
			t.Fatalf("Deserialize(x) = %v, %v; want wrapped *strconv.NumError", v, err)
		}
		se, ok := errors.AsType[*serde.Error](err)
		if !ok || se.Op != "deserialize" || se.Format != "func" || se.Topic != topic {
			t.Errorf("error = %#v", err)
		}
	})

	t.Run("partial value discarded", func(t *testing.T) {
		s := serde.Func[int](nil, func(string, []byte) (int, error) { return 7, errUser })
		if v, err := s.Deserialize(topic, []byte{1}); v != 0 || err == nil {
			t.Errorf("Deserialize = %v, %v; want 0, error", v, err)
		}
	})

	t.Run("serde error passes through", func(t *testing.T) {
		inner := serde.Int64()
		s := serde.Func(
			func(tp string, v int64) ([]byte, error) { return inner.Serialize(tp, v) },
			func(tp string, b []byte) (int64, error) {
				v, err := inner.Deserialize(tp, b)
				if err != nil {
					return 0, fmt.Errorf("decoding key: %w", err)
				}
				return v, nil
			},
		)
		_, err := s.Deserialize(topic, []byte{1, 2, 3})
		if !errors.Is(err, serde.ErrInvalidLength) {
			t.Fatalf("err = %v, want ErrInvalidLength", err)
		}
		se, _ := errors.AsType[*serde.Error](err)
		if se == nil || se.Format != "int64" {
			t.Errorf("err = %v: the inner *serde.Error should be kept, not rewrapped", err)
		}
		if !strings.HasPrefix(err.Error(), "decoding key: ") {
			t.Errorf("err = %q: the user's error should be returned as is", err)
		}
	})

	t.Run("missing direction", func(t *testing.T) {
		deOnly := serde.Func(nil, func(string, []byte) (string, error) { return "", nil })
		if _, err := deOnly.Serialize(topic, "x"); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("Serialize with nil ser: err = %v, want ErrUnsupported", err)
		}
		serOnly := serde.Func(func(string, string) ([]byte, error) { return nil, nil }, nil)
		if _, err := serOnly.Deserialize(topic, []byte("x")); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("Deserialize with nil de: err = %v, want ErrUnsupported", err)
		}
		if _, err := serOnly.Deserialize(topic, nil); err != nil {
			t.Errorf("Deserialize(nil) with nil de: err = %v, want nil", err)
		}
	})
}

func TestNames(t *testing.T) {
	for want, s := range map[string]any{
		"string":  serde.String(),
		"bytes":   serde.Bytes(),
		"int64":   serde.Int64(),
		"int32":   serde.Int32(),
		"float64": serde.Float64(),
		"json":    serde.JSON[event](),
		"func":    serde.Func[int](nil, nil),
	} {
		st, ok := s.(fmt.Stringer)
		if !ok || st.String() != want {
			t.Errorf("%T: String() = %v, want %q", s, st, want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		err  *serde.Error
		want string
	}{
		{&serde.Error{Op: "deserialize", Topic: "clicks", Format: "int64", Err: serde.ErrInvalidLength},
			`serde: deserialize int64 from topic "clicks": invalid length`},
		{&serde.Error{Op: "serialize", Topic: "odd \"topic\"\n", Format: "json", Err: errUser},
			`serde: serialize json for topic "odd \"topic\"\n": user error`},
		{&serde.Error{Op: "deserialize", Topic: "", Format: "func"},
			`serde: deserialize func from topic ""`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if e := (&serde.Error{Err: errUser}); e.Unwrap() != errUser {
		t.Error("Unwrap does not return Err")
	}
}

func TestAllocations(t *testing.T) {
	var sink any
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"String()", 0, func() { sink = serde.String() }},
		{"Bytes()", 0, func() { sink = serde.Bytes() }},
		{"Int64()", 0, func() { sink = serde.Int64() }},
		{"Int32()", 0, func() { sink = serde.Int32() }},
		{"Float64()", 0, func() { sink = serde.Float64() }},
		{"JSON()", 0, func() { sink = serde.JSON[event]() }},
		{"String.Serialize", 1, func() { b, _ := serde.String().Serialize(topic, "hello"); sink = len(b) }},
		{"String.Serialize empty", 0, func() { b, _ := serde.String().Serialize(topic, ""); sink = b != nil }},
		{"String.Deserialize", 1, func() { s, _ := serde.String().Deserialize(topic, []byte("hello")); sink = len(s) }},
		{"Bytes.Serialize", 0, func() { b, _ := serde.Bytes().Serialize(topic, []byte("hello")); sink = len(b) }},
		{"Bytes.Deserialize", 0, func() { b, _ := serde.Bytes().Deserialize(topic, []byte("hello")); sink = len(b) }},
		{"Int64.Serialize", 1, func() { b, _ := serde.Int64().Serialize(topic, 1); sink = len(b) }},
		{"Int64.Deserialize", 0, func() { v, _ := serde.Int64().Deserialize(topic, []byte{1, 2, 3, 4, 5, 6, 7, 8}); sink = v > 0 }},
		{"Int32.Serialize", 1, func() { b, _ := serde.Int32().Serialize(topic, 1); sink = len(b) }},
		{"Int32.Deserialize", 0, func() { v, _ := serde.Int32().Deserialize(topic, []byte{1, 2, 3, 4}); sink = v > 0 }},
		{"Float64.Serialize", 1, func() { b, _ := serde.Float64().Serialize(topic, 1.5); sink = len(b) }},
		{"Float64.Deserialize", 0, func() { v, _ := serde.Float64().Deserialize(topic, []byte{1, 2, 3, 4, 5, 6, 7, 8}); sink = v > 0 }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
			t.Errorf("%s: %v allocations, want at most %v", tt.name, got, tt.max)
		}
	}
	_ = sink
}

// TestConcurrentUse shares one value of each serde between goroutines; run
// with -race.
func TestConcurrentUse(t *testing.T) {
	str, i64, js := serde.String(), serde.Int64(), serde.JSON[*event]()
	fn := serde.Func(func(_ string, v int) ([]byte, error) { return strconv.AppendInt(nil, int64(v), 10), nil },
		func(_ string, b []byte) (int, error) { return strconv.Atoi(string(b)) })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				n := g*1000 + i
				if v, err := str.Deserialize(topic, must(str.Serialize(topic, strconv.Itoa(n)))); err != nil || v != strconv.Itoa(n) {
					t.Errorf("String: got %q, %v; want %d", v, err, n)
				}
				if v, err := i64.Deserialize(topic, must(i64.Serialize(topic, int64(n)))); err != nil || v != int64(n) {
					t.Errorf("Int64: got %d, %v; want %d", v, err, n)
				}
				if v, err := js.Deserialize(topic, must(js.Serialize(topic, &event{ID: int64(n)}))); err != nil || v == nil || v.ID != int64(n) {
					t.Errorf("JSON: got %+v, %v; want ID %d", v, err, n)
				}
				if v, err := fn.Deserialize(topic, must(fn.Serialize(topic, n))); err != nil || v != n {
					t.Errorf("Func: got %d, %v; want %d", v, err, n)
				}
			}
		})
	}
	wg.Wait()
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestAppendSerialize checks that the primitives' AppendSerialize appends
// exactly what Serialize returns, after what dst holds, and that
// serde.AppenderOf falls back to Serialize for other serdes.
func TestAppendSerialize(t *testing.T) {
	check := func(name string, app func(dst []byte) ([]byte, error), ser func() ([]byte, error)) {
		t.Helper()
		want, err := ser()
		if err != nil {
			t.Fatalf("%s: Serialize: %v", name, err)
		}
		got, err := app([]byte("prefix"))
		if err != nil {
			t.Fatalf("%s: AppendSerialize: %v", name, err)
		}
		if want == nil {
			if got != nil {
				t.Errorf("%s: AppendSerialize of null = %q, want nil", name, got)
			}
			return
		}
		if string(got) != "prefix"+string(want) {
			t.Errorf("%s: AppendSerialize = %q, want prefix + %q", name, got, want)
		}
	}
	for _, v := range []string{"", "héllo"} {
		check("string "+v, func(d []byte) ([]byte, error) { return serde.AppenderOf(serde.String()).AppendSerialize(d, "t", v) },
			func() ([]byte, error) { return serde.String().Serialize("t", v) })
	}
	for _, v := range []int64{0, -1, 1 << 62} {
		check(fmt.Sprint("int64 ", v), func(d []byte) ([]byte, error) { return serde.AppenderOf(serde.Int64()).AppendSerialize(d, "t", v) },
			func() ([]byte, error) { return serde.Int64().Serialize("t", v) })
	}
	for _, v := range []int32{0, -7} {
		check(fmt.Sprint("int32 ", v), func(d []byte) ([]byte, error) { return serde.AppenderOf(serde.Int32()).AppendSerialize(d, "t", v) },
			func() ([]byte, error) { return serde.Int32().Serialize("t", v) })
	}
	for _, v := range []float64{0, math.NaN(), math.Inf(-1)} {
		check(fmt.Sprint("float64 ", v), func(d []byte) ([]byte, error) { return serde.AppenderOf(serde.Float64()).AppendSerialize(d, "t", v) },
			func() ([]byte, error) { return serde.Float64().Serialize("t", v) })
	}
	for _, v := range [][]byte{nil, {}, []byte("raw")} {
		check(fmt.Sprintf("bytes %q", v), func(d []byte) ([]byte, error) { return serde.AppenderOf(serde.Bytes()).AppendSerialize(d, "t", v) },
			func() ([]byte, error) { return serde.Bytes().Serialize("t", v) })
	}
	type point struct{ X int }
	for _, v := range []*point{nil, {X: 3}} {
		check(fmt.Sprint("json ", v), func(d []byte) ([]byte, error) {
			return serde.AppenderOf(serde.JSON[*point]()).AppendSerialize(d, "t", v)
		},
			func() ([]byte, error) { return serde.JSON[*point]().Serialize("t", v) })
	}
}
