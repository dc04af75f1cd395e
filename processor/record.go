package processor

import "time"

// Record is one key-value record travelling through a topology.
//
// Timestamp is a time.Time, as franz-go's kgo.Record has it. Kafka stores
// timestamps in milliseconds since the Unix epoch: a finer timestamp is
// truncated to the millisecond when the record is written to a topic, and the
// in-memory driver truncates it the same way. A zero Timestamp means "none";
// a sink leaves it to the producer.
//
// # Null
//
// Kafka keys and values may be null (nil bytes), which a Go value of a type
// like string or int64 cannot say. A source that reads a null key or value
// decodes it to the zero value (see package serde) and sets NullKey or
// NullValue. Operators that replace the key or value clear the flag
// (WithKey, WithValue); a sink writes nil bytes for a flagged key or value
// whatever its serde would make of the zero value, so a tombstone stays a
// tombstone through a topology. Aggregations drop records with a null key;
// tables treat a null value as a delete. For a pointer, map or slice type
// the zero value is nil and its serde writes nil bytes anyway.
//
// Records are passed by value. Headers is a slice shared by every copy of a
// record: build a new one (Headers.With) instead of modifying it in place.
type Record[K, V any] struct {
	Key       K
	Value     V
	NullKey   bool // the key is null (Key is K's zero value)
	NullValue bool // the value is null (Value is V's zero value)
	Timestamp time.Time
	Headers   Headers
	// Origin is the topic, partition and offset the record was read from, where
	// known. Operators that derive a record from another keep its origin; a
	// record built from scratch (in a punctuator, say) has none.
	Origin Origin
}

// WithKey returns a copy of r with another key, of any type, not null.
func (r Record[K, V]) WithKey[K2 any](key K2) Record[K2, V] {
	return Record[K2, V]{Key: key, Value: r.Value, NullValue: r.NullValue, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
}

// WithValue returns a copy of r with another value, of any type, not null.
func (r Record[K, V]) WithValue[V2 any](value V2) Record[K, V2] {
	return Record[K, V2]{Key: r.Key, Value: value, NullKey: r.NullKey, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
}

// WithNullValue returns a copy of r with a null value: a tombstone.
func (r Record[K, V]) WithNullValue() Record[K, V] {
	var zero V
	r.Value, r.NullValue = zero, true
	return r
}

// WithKeyValue returns a copy of r with another key and value, neither null.
func (r Record[K, V]) WithKeyValue[K2, V2 any](key K2, value V2) Record[K2, V2] {
	return Record[K2, V2]{Key: key, Value: value, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
}

// WithTimestamp returns a copy of r with another timestamp.
func (r Record[K, V]) WithTimestamp(ts time.Time) Record[K, V] {
	r.Timestamp = ts
	return r
}

// RawRecord is a record as Kafka holds it: bytes, before a source decodes it
// or after a sink encodes it. A nil Key or Value is null.
type RawRecord = Record[[]byte, []byte]

// KeyValue is a key and a value, as FlatMap returns them and test drivers read them.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// Pair returns a KeyValue.
func Pair[K, V any](key K, value V) KeyValue[K, V] { return KeyValue[K, V]{Key: key, Value: value} }

// Origin is where a record was read from. The zero Origin (Topic "") means unknown.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Known reports whether o names a topic.
func (o Origin) Known() bool { return o.Topic != "" }

// RecordMetadata is the origin of the record being processed, as Context reports it.
type RecordMetadata = Origin

// Header is one Kafka record header. Keys may repeat.
type Header struct {
	Key   string
	Value []byte
}

// Headers are a record's headers, in order.
type Headers []Header

// Get returns the value of the last header with the given key.
func (h Headers) Get(key string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			return h[i].Value, true
		}
	}
	return nil, false
}

// With returns new headers with one more header added at the end; h is not modified.
func (h Headers) With(key string, value []byte) Headers {
	out := make(Headers, len(h), len(h)+1)
	copy(out, h)
	return append(out, Header{Key: key, Value: value})
}

// Without returns new headers with every header of the given key removed; h is not modified.
func (h Headers) Without(key string) Headers {
	out := make(Headers, 0, len(h))
	for _, x := range h {
		if x.Key != key {
			out = append(out, x)
		}
	}
	return out
}
