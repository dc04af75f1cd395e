package serde

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gregorstream/gregor/windows"
)

// ErrNullWindowedKey is the cause when a windowed key's own key serializes to
// null: Kafka's windowed key formats have no null key.
var ErrNullWindowedKey = errors.New("windowed key with a null key")

// TimeWindowed returns the serde of the keys of time-windowed tables (tumbling,
// hopping and sliding windows) in Kafka Streams' binary format, the one its
// TimeWindowedSerializer and TimeWindowedDeserializer use, so that Java and
// other Kafka Streams-aware consumers read them: the key's bytes (keys'
// encoding), then the window start as 8 bytes, big-endian Unix milliseconds.
//
// The format does not carry the window end: Deserialize sets it to start plus
// size (the windows' size; for sliding windows their time difference), as
// Kafka's deserializer does with its window size, saturating at the largest
// time Kafka represents. Deserialize decodes nil as the zero Windowed and
// fails with an *Error wrapping ErrInvalidLength for fewer than 8 bytes.
func TimeWindowed[K any](keys Serde[K], size time.Duration) Serde[windows.Windowed[K]] {
	return timeWindowed[K]{keys: keys, app: AppenderOf(keys), size: size.Milliseconds()}
}

type timeWindowed[K any] struct {
	keys Serde[K]
	app  Appender[K]
	size int64 // ms
}

func (timeWindowed[K]) String() string { return "time-windowed" }

func (s timeWindowed[K]) Serialize(topic string, v windows.Windowed[K]) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 24), topic, v)
}

// AppendSerialize appends the encoding to dst, allocating nothing when keys is
// an Appender and dst has room.
func (s timeWindowed[K]) AppendSerialize(dst []byte, topic string, v windows.Windowed[K]) ([]byte, error) {
	out, err := appendWindowedKey(dst, s.app, topic, s.String(), v.Key)
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(out, uint64(v.Window.Start.UnixMilli())), nil
}

func (s timeWindowed[K]) Deserialize(topic string, data []byte) (windows.Windowed[K], error) {
	var w windows.Windowed[K]
	if data == nil {
		return w, nil
	}
	n := len(data) - 8
	if n < 0 {
		return w, &Error{Op: opDeserialize, Topic: topic, Format: s.String(),
			Err: fmt.Errorf("got %d bytes, want at least 8: %w", len(data), ErrInvalidLength)}
	}
	k, err := s.keys.Deserialize(topic, data[:n:n])
	if err != nil {
		return w, err
	}
	start := int64(binary.BigEndian.Uint64(data[n:]))
	end := int64(math.MaxInt64)
	if start <= math.MaxInt64-s.size {
		end = start + s.size
	}
	return windows.Windowed[K]{Key: k, Window: windows.Window{Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(end).UTC()}}, nil
}

// SessionWindowed returns the serde of the keys of session-windowed tables in
// Kafka Streams' binary format (its SessionWindowedSerializer and
// SessionKeySchema): the key's bytes, then the session end and the session
// start, each 8 bytes, big-endian Unix milliseconds. Both bounds are
// inclusive. Deserialize decodes nil as the zero Windowed and fails with an
// *Error wrapping ErrInvalidLength for fewer than 16 bytes.
func SessionWindowed[K any](keys Serde[K]) Serde[windows.Windowed[K]] {
	return sessionWindowed[K]{keys: keys, app: AppenderOf(keys)}
}

type sessionWindowed[K any] struct {
	keys Serde[K]
	app  Appender[K]
}

func (sessionWindowed[K]) String() string { return "session-windowed" }

func (s sessionWindowed[K]) Serialize(topic string, v windows.Windowed[K]) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 32), topic, v)
}

// AppendSerialize appends the encoding to dst, as TimeWindowed's does.
func (s sessionWindowed[K]) AppendSerialize(dst []byte, topic string, v windows.Windowed[K]) ([]byte, error) {
	out, err := appendWindowedKey(dst, s.app, topic, s.String(), v.Key)
	if err != nil {
		return nil, err
	}
	out = binary.BigEndian.AppendUint64(out, uint64(v.Window.End.UnixMilli()))
	return binary.BigEndian.AppendUint64(out, uint64(v.Window.Start.UnixMilli())), nil
}

func (s sessionWindowed[K]) Deserialize(topic string, data []byte) (windows.Windowed[K], error) {
	var w windows.Windowed[K]
	if data == nil {
		return w, nil
	}
	n := len(data) - 16
	if n < 0 {
		return w, &Error{Op: opDeserialize, Topic: topic, Format: s.String(),
			Err: fmt.Errorf("got %d bytes, want at least 16: %w", len(data), ErrInvalidLength)}
	}
	k, err := s.keys.Deserialize(topic, data[:n:n])
	if err != nil {
		return w, err
	}
	end := int64(binary.BigEndian.Uint64(data[n:]))
	start := int64(binary.BigEndian.Uint64(data[n+8:]))
	return windows.Windowed[K]{Key: k, Window: windows.Window{Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(end).UTC()}}, nil
}

// appendWindowedKey appends the encoding of a windowed key's own key.
func appendWindowedKey[K any](dst []byte, app Appender[K], topic, format string, k K) ([]byte, error) {
	out, err := app.AppendSerialize(dst, topic, k)
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, &Error{Op: opSerialize, Topic: topic, Format: format, Err: ErrNullWindowedKey}
	}
	return out, nil
}
