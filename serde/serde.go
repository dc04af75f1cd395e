// Package serde converts between Go values and the bytes Kafka stores.
//
// A Serde[T] is used at the edges of a topology only: a source decodes each
// record once, a sink or a store encodes it once, and everything between sees
// typed values.
//
// # Null
//
// Kafka distinguishes a null key or value from an empty one; a null value on a
// compacted topic (a table) is a tombstone that deletes the key. gregor's
// convention: nil bytes are null, a non-nil empty slice is an empty value.
//
//   - Deserialize(topic, nil) returns T's zero value and no error for every
//     serde in this package (a nil pointer, map or slice for JSON of such a type).
//   - Serialize returns nil bytes only for a null value: a nil []byte for Bytes,
//     a nil pointer, map, slice or interface for JSON. The primitives never
//     return nil: String("") is a non-nil empty slice.
//
// Tables decide tombstones on the raw bytes, before decoding.
package serde

// Serde converts values of type T to and from bytes. Implementations must be
// safe for concurrent use: one Serde value is shared by every task.
type Serde[T any] interface {
	// Serialize encodes v for the given topic. The topic lets a schema-aware
	// serde pick a subject; the serdes in this package ignore it except in errors.
	Serialize(topic string, v T) ([]byte, error)
	// Deserialize decodes data read from topic. It never panics: bad input
	// yields an *Error. The result may alias data (Bytes returns it as is):
	// callers hand over data and do not modify it afterwards.
	Deserialize(topic string, data []byte) (T, error)
}

// Appender is an optional interface of a Serde: AppendSerialize appends the
// encoding Serialize would return to dst, which is not nil, and returns the
// extended slice; it returns nil for a null value, as Serialize does. Stores
// use it to encode into a buffer they reuse, so that a read-modify-write of a
// key allocates nothing for its encoding. The primitives of this package
// (String, Int64, Int32, Float64) implement it.
type Appender[T any] interface {
	AppendSerialize(dst []byte, topic string, v T) ([]byte, error)
}

// AppenderOf returns s as an Appender: s itself if it is one, else one that
// appends what s.Serialize returns (a copy). Call it once, where the serde
// is kept, not per value: the type assertion is not free.
func AppenderOf[T any](s Serde[T]) Appender[T] {
	if a, ok := s.(Appender[T]); ok {
		return a
	}
	return serializeAppender[T]{s}
}

type serializeAppender[T any] struct{ s Serde[T] }

func (a serializeAppender[T]) AppendSerialize(dst []byte, topic string, v T) ([]byte, error) {
	b, err := a.s.Serialize(topic, v)
	if err != nil || b == nil {
		return nil, err
	}
	return append(dst, b...), nil
}
