package serde_test

import (
	"encoding/hex"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/windows"
)

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

func TestTimeWindowedFormat(t *testing.T) {
	s := serde.TimeWindowed(serde.String(), 10*time.Second)
	k := windows.Windowed[string]{Key: "page", Window: windows.Window{Start: ms(1000), End: ms(11000)}}
	b, err := s.Serialize(topic, k)
	if err != nil {
		t.Fatal(err)
	}
	// Kafka Streams' WindowKeySchema.toStoreKeyBinary without the sequence
	// number, as TimeWindowedSerializer writes it: key bytes, be64 start.
	if got, want := hex.EncodeToString(b), hex.EncodeToString([]byte("page"))+"00000000000003e8"; got != want {
		t.Fatalf("Serialize = %s, want %s", got, want)
	}
	got, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Window.Start.Equal(k.Window.Start) || !got.Window.End.Equal(k.Window.End) || got.Key != k.Key {
		t.Fatalf("Deserialize = %v, want %v", got, k)
	}
	// The appender writes the same bytes after a prefix.
	a := serde.AppenderOf(s)
	out, err := a.AppendSerialize([]byte("x"), topic, k)
	if err != nil || string(out[1:]) != string(b) || out[0] != 'x' {
		t.Fatalf("AppendSerialize = %x, %v; want x then %x", out, err, b)
	}
}

func TestTimeWindowedEndSaturates(t *testing.T) {
	s := serde.TimeWindowed(serde.Int64(), time.Minute)
	b := append(make([]byte, 8), 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00)
	got, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Window.End.UnixMilli() != math.MaxInt64 {
		t.Fatalf("end = %d, want the largest time", got.Window.End.UnixMilli())
	}
}

func TestSessionWindowedFormat(t *testing.T) {
	s := serde.SessionWindowed(serde.String())
	k := windows.Windowed[string]{Key: "u1", Window: windows.Window{Start: ms(5), End: ms(260)}}
	b, err := s.Serialize(topic, k)
	if err != nil {
		t.Fatal(err)
	}
	// SessionKeySchema.toBinary: key bytes, be64 end, be64 start.
	if got, want := hex.EncodeToString(b), hex.EncodeToString([]byte("u1"))+"0000000000000104"+"0000000000000005"; got != want {
		t.Fatalf("Serialize = %s, want %s", got, want)
	}
	got, err := s.Deserialize(topic, b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != "u1" || !got.Window.Start.Equal(k.Window.Start) || !got.Window.End.Equal(k.Window.End) {
		t.Fatalf("Deserialize = %v, want %v", got, k)
	}
}

func TestWindowedBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    serde.Serde[windows.Windowed[string]]
		data []byte
	}{
		{"time short", serde.TimeWindowed(serde.String(), time.Second), []byte{1, 2, 3}},
		{"time empty", serde.TimeWindowed(serde.String(), time.Second), []byte{}},
		{"session short", serde.SessionWindowed(serde.String()), make([]byte, 15)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Deserialize(topic, tc.data)
			var se *serde.Error
			if !errors.As(err, &se) || !errors.Is(err, serde.ErrInvalidLength) || se.Topic != topic {
				t.Fatalf("Deserialize(%x) error = %v, want a *serde.Error for %q wrapping ErrInvalidLength", tc.data, err, topic)
			}
		})
	}
	// nil decodes as the zero value, as for every serde of the package.
	if got, err := serde.SessionWindowed(serde.String()).Deserialize(topic, nil); err != nil || got.Key != "" {
		t.Fatalf("Deserialize(nil) = %v, %v", got, err)
	}
	// A key that serializes to null has no windowed form.
	_, err := serde.TimeWindowed(serde.Bytes(), time.Second).Serialize(topic, windows.Windowed[[]byte]{})
	if !errors.Is(err, serde.ErrNullWindowedKey) {
		t.Fatalf("Serialize(null key) error = %v, want ErrNullWindowedKey", err)
	}
	// The inner key serde's error comes through.
	_, err = serde.TimeWindowed(serde.Int64(), time.Second).Deserialize(topic, make([]byte, 11))
	if !errors.Is(err, serde.ErrInvalidLength) {
		t.Fatalf("Deserialize with a 3-byte int64 key: %v, want ErrInvalidLength", err)
	}
}
