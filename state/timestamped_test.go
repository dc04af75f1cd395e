package state_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

func TestTimestampedSerde(t *testing.T) {
	const topic = "app-s-changelog"
	s := state.TimestampedSerde(serde.String())
	be := func(ms int64, v string) []byte { return append(binary.BigEndian.AppendUint64(nil, uint64(ms)), v...) }
	for _, tt := range []struct {
		name string
		in   state.ValueAndTimestamp[string]
		want []byte
	}{
		{"value", state.ValueAndTimestamp[string]{"v", time.UnixMilli(1_700_000_000_123)}, be(1_700_000_000_123, "v")},
		{"empty value", state.ValueAndTimestamp[string]{"", time.UnixMilli(5)}, be(5, "")},
		{"before 1970", state.ValueAndTimestamp[string]{"old", time.UnixMilli(-86_400_000)}, be(-86_400_000, "old")},
		{"epoch", state.ValueAndTimestamp[string]{"e", time.UnixMilli(0)}, be(0, "e")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := s.Serialize(topic, tt.in)
			if err != nil || !bytes.Equal(b, tt.want) || b == nil {
				t.Fatalf("Serialize = %x, %v; want %x", b, err, tt.want)
			}
			got, err := s.Deserialize(topic, b)
			if err != nil || got.Value != tt.in.Value || !got.Timestamp.Equal(tt.in.Timestamp) {
				t.Fatalf("Deserialize(%x) = %+v, %v; want %+v", b, got, err, tt.in)
			}
		})
	}

	// Below the millisecond, the timestamp is truncated, as Kafka's are.
	b, _ := s.Serialize(topic, state.ValueAndTimestamp[string]{"v", time.UnixMilli(7).Add(999 * time.Microsecond)})
	if got, _ := s.Deserialize(topic, b); !got.Timestamp.Equal(time.UnixMilli(7)) {
		t.Errorf("timestamp 7.999ms read back as %v", got.Timestamp)
	}

	// Null: a value its serde encodes as nil encodes as nil, a delete; nil
	// decodes as the zero value.
	type point struct{ X int }
	js := state.TimestampedSerde(serde.JSON[*point]())
	if b, err := js.Serialize(topic, state.ValueAndTimestamp[*point]{nil, time.UnixMilli(9)}); b != nil || err != nil {
		t.Errorf("Serialize of a null value = %x, %v; want nil", b, err)
	}
	if b, err := state.TimestampedSerde(serde.Bytes()).Serialize(topic, state.ValueAndTimestamp[[]byte]{}); b != nil || err != nil {
		t.Errorf("Serialize of nil bytes = %x, %v; want nil", b, err)
	}
	if v, err := js.Deserialize(topic, nil); v.Value != nil || !v.Timestamp.IsZero() || err != nil {
		t.Errorf("Deserialize(nil) = %+v, %v; want the zero value", v, err)
	}

	// Short input: fewer than 8 bytes.
	for _, in := range [][]byte{{}, {1, 2, 3}, {1, 2, 3, 4, 5, 6, 7}} {
		_, err := s.Deserialize(topic, in)
		var serr *serde.Error
		if !errors.As(err, &serr) || !errors.Is(err, serde.ErrInvalidLength) || serr.Topic != topic || serr.Op != "deserialize" || serr.Format != "timestamped" {
			t.Errorf("Deserialize(%x): error %#v, want a *serde.Error of timestamped, wrapping ErrInvalidLength", in, err)
		}
	}
	// The value's serde's errors come through.
	if _, err := state.TimestampedSerde(serde.Int64()).Deserialize(topic, be(1, "abc")); !errors.Is(err, serde.ErrInvalidLength) {
		t.Errorf("Deserialize of a bad int64: error %v, want ErrInvalidLength", err)
	}
}

func TestTimestampedKeyValue(t *testing.T) {
	k := newTask(t)
	s, err := state.TimestampedKeyValue("rows", serde.String(), serde.Int64()).BuildKeyValue(k.ctx())
	if err != nil {
		t.Fatal(err)
	}
	row := state.ValueAndTimestamp[int64]{Value: 42, Timestamp: time.UnixMilli(1_000)}
	must(t, s.Put("k", row))
	got, found, err := s.Get("k")
	if err != nil || !found || got.Value != 42 || !got.Timestamp.Equal(row.Timestamp) {
		t.Fatalf("Get = %+v, %v, %v; want %+v", got, found, err, row)
	}
	if _, err := state.TimestampedKeyValue[string, int64]("rows", serde.String(), nil).BuildKeyValue(k.ctx()); !errors.Is(err, state.ErrInvalidBuilder) {
		t.Errorf("TimestampedKeyValue with a nil value serde: %v, want ErrInvalidBuilder", err)
	}
}

// FuzzTimestampedSerde checks that decoding never panics and that what
// decodes encodes back to the same bytes.
func FuzzTimestampedSerde(f *testing.F) {
	f.Add([]byte(nil))
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 'v'})
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 'v'})
	s := state.TimestampedSerde(serde.String())
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := s.Deserialize("t", in)
		if err != nil {
			if len(in) >= 8 {
				t.Fatalf("Deserialize(%x): %v", in, err)
			}
			return
		}
		out, err := s.Serialize("t", v)
		if err != nil {
			t.Fatalf("Serialize(%+v): %v", v, err)
		}
		if in == nil {
			// nil decodes to the zero value, whose timestamp is not Unix
			// 0: it encodes as a row, not as null. Only check it decodes.
			return
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("Deserialize then Serialize of %x gave %x", in, out)
		}
	})
}
