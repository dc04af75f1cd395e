package state

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gregorstream/gregor/serde"
)

// ValueAndTimestamp is a value with the timestamp of the record that last
// wrote it, as tables keep their rows.
type ValueAndTimestamp[V any] struct {
	Value     V
	Timestamp time.Time
}

// TimestampedSerde encodes a ValueAndTimestamp as the timestamp (8 bytes,
// big-endian Unix milliseconds) followed by the value's own encoding. A value
// its serde encodes as nil (null) encodes as nil: a delete.
func TimestampedSerde[V any](values serde.Serde[V]) serde.Serde[ValueAndTimestamp[V]] {
	return timestampedSerde[V]{values: values, app: serde.AppenderOf(values)}
}

type timestampedSerde[V any] struct {
	values serde.Serde[V]
	app    serde.Appender[V] // values, appending
}

func (s timestampedSerde[V]) Serialize(topic string, v ValueAndTimestamp[V]) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 16), topic, v)
}

// AppendSerialize appends the encoding: with a values serde that is a
// serde.Appender, without allocating.
func (s timestampedSerde[V]) AppendSerialize(dst []byte, topic string, v ValueAndTimestamp[V]) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, uint64(v.Timestamp.UnixMilli()))
	out, err := s.app.AppendSerialize(dst, topic, v.Value)
	if err != nil || out == nil {
		return nil, err
	}
	return out, nil
}

func (s timestampedSerde[V]) Deserialize(topic string, b []byte) (ValueAndTimestamp[V], error) {
	if b == nil {
		return ValueAndTimestamp[V]{}, nil
	}
	if len(b) < 8 {
		return ValueAndTimestamp[V]{}, &serde.Error{Op: "deserialize", Topic: topic, Format: "timestamped",
			Err: fmt.Errorf("got %d bytes, want at least 8: %w", len(b), serde.ErrInvalidLength)}
	}
	v, err := s.values.Deserialize(topic, b[8:])
	if err != nil {
		return ValueAndTimestamp[V]{}, err
	}
	return ValueAndTimestamp[V]{Value: v, Timestamp: time.UnixMilli(int64(binary.BigEndian.Uint64(b)))}, nil
}

// TimestampedKeyValueStore is a key-value store of timestamped values: a
// table's rows.
type TimestampedKeyValueStore[K, V any] = KeyValueStore[K, ValueAndTimestamp[V]]

// TimestampedKeyValue returns a builder of timestamped key-value stores.
func TimestampedKeyValue[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) *KeyValueBuilder[K, ValueAndTimestamp[V]] {
	var vs serde.Serde[ValueAndTimestamp[V]]
	if values != nil {
		vs = TimestampedSerde(values)
	}
	return KeyValue(name, keys, vs, opts...)
}
