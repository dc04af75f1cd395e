package serde

import (
	"encoding/binary"
	"math"
)

// The primitive serdes are zero-size struct types: storing one in a Serde
// interface does not allocate, and they are trivially safe for concurrent use.

// String returns a Serde that encodes a string as its bytes, like Kafka's
// StringSerializer/StringDeserializer with the default UTF-8 encoding.
//
// Serialize never fails and never returns nil: "" encodes as a non-nil empty
// slice. Deserialize never fails: nil and empty data both decode as "".
// Like Kafka's StringDeserializer, it does not validate UTF-8; invalid
// sequences are kept as they are (ranging over the string yields U+FFFD for
// them), so Deserialize followed by Serialize returns the original bytes.
func String() Serde[string] { return stringSerde{} }

type stringSerde struct{}

func (stringSerde) String() string { return "string" }

func (stringSerde) Serialize(_ string, v string) ([]byte, error) {
	if v == "" {
		return []byte{}, nil // non-nil: an empty value, not null
	}
	return []byte(v), nil
}

func (stringSerde) AppendSerialize(dst []byte, _ string, v string) ([]byte, error) {
	return append(dst, v...), nil
}

func (stringSerde) Deserialize(_ string, data []byte) (string, error) {
	return string(data), nil
}

// Bytes returns a Serde that passes byte slices through unchanged, like
// Kafka's ByteArraySerializer/ByteArrayDeserializer. Neither direction
// copies: Serialize returns v itself (nil for nil, so a nil slice is null) and
// Deserialize returns data itself. It never fails.
func Bytes() Serde[[]byte] { return bytesSerde{} }

type bytesSerde struct{}

func (bytesSerde) String() string { return "bytes" }

func (bytesSerde) Serialize(_ string, v []byte) ([]byte, error) { return v, nil }

func (bytesSerde) Deserialize(_ string, data []byte) ([]byte, error) { return data, nil }

// Int64 returns a Serde that encodes an int64 as 8 bytes, big-endian two's
// complement, the format of Kafka's LongSerializer/LongDeserializer.
//
// Serialize never fails. Deserialize decodes nil as 0 and fails with an
// *Error wrapping ErrInvalidLength for any other data that is not exactly
// 8 bytes long (an empty slice included).
func Int64() Serde[int64] { return int64Serde{} }

type int64Serde struct{}

func (int64Serde) String() string { return "int64" }

func (int64Serde) Serialize(_ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v)), nil
}

func (int64Serde) AppendSerialize(dst []byte, _ string, v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, uint64(v)), nil
}

func (s int64Serde) Deserialize(topic string, data []byte) (int64, error) {
	if data == nil {
		return 0, nil
	}
	if len(data) != 8 {
		return 0, invalidLength(topic, s.String(), len(data), 8)
	}
	return int64(binary.BigEndian.Uint64(data)), nil
}

// Int32 returns a Serde that encodes an int32 as 4 bytes, big-endian two's
// complement, the format of Kafka's IntegerSerializer/IntegerDeserializer.
//
// Serialize never fails. Deserialize decodes nil as 0 and fails with an
// *Error wrapping ErrInvalidLength for any other data that is not exactly
// 4 bytes long (an empty slice included).
func Int32() Serde[int32] { return int32Serde{} }

type int32Serde struct{}

func (int32Serde) String() string { return "int32" }

func (int32Serde) Serialize(_ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(make([]byte, 0, 4), uint32(v)), nil
}

func (int32Serde) AppendSerialize(dst []byte, _ string, v int32) ([]byte, error) {
	return binary.BigEndian.AppendUint32(dst, uint32(v)), nil
}

func (s int32Serde) Deserialize(topic string, data []byte) (int32, error) {
	if data == nil {
		return 0, nil
	}
	if len(data) != 4 {
		return 0, invalidLength(topic, s.String(), len(data), 4)
	}
	return int32(binary.BigEndian.Uint32(data)), nil
}

// canonicalNaN is the bit pattern Java's Double.doubleToLongBits gives every
// NaN, and so the one Kafka's DoubleSerializer writes.
const canonicalNaN = 0x7FF8_0000_0000_0000

// Float64 returns a Serde that encodes a float64 as its 8-byte IEEE-754
// binary64 representation, big-endian, the format of Kafka's
// DoubleSerializer/DoubleDeserializer.
//
// Serialize never fails. Like Kafka's DoubleSerializer (which uses
// Double.doubleToLongBits) it writes every NaN as the canonical quiet NaN
// 7FF8000000000000, so equal values give equal bytes; all other values,
// ±Inf and -0 included, keep their exact bits. Deserialize keeps the exact
// bits of any 8 bytes, decodes nil as 0, and fails with an *Error wrapping
// ErrInvalidLength for any other data that is not exactly 8 bytes long.
func Float64() Serde[float64] { return float64Serde{} }

type float64Serde struct{}

func (float64Serde) String() string { return "float64" }

func (s float64Serde) Serialize(topic string, v float64) ([]byte, error) {
	return s.AppendSerialize(make([]byte, 0, 8), topic, v)
}

func (float64Serde) AppendSerialize(dst []byte, _ string, v float64) ([]byte, error) {
	bits := math.Float64bits(v)
	if v != v { // NaN
		bits = canonicalNaN
	}
	return binary.BigEndian.AppendUint64(dst, bits), nil
}

func (s float64Serde) Deserialize(topic string, data []byte) (float64, error) {
	if data == nil {
		return 0, nil
	}
	if len(data) != 8 {
		return 0, invalidLength(topic, s.String(), len(data), 8)
	}
	return math.Float64frombits(binary.BigEndian.Uint64(data)), nil
}
