package serde

import (
	"encoding/json"
	"reflect"
)

// JSON returns a Serde that encodes values of type T with encoding/json.
//
// Serialize returns json.Marshal's output (compact, no trailing newline, with
// Marshal's HTML escaping), except that a null value — a nil pointer, map,
// slice or interface, including an interface holding a nil pointer, map or
// slice — serializes as nil bytes (a tombstone), not as the text null.
// Values json.Marshal rejects (channels, functions, NaN or infinite floats,
// a failing MarshalJSON method) yield an *Error wrapping Marshal's error.
//
// Deserialize decodes nil data as T's zero value and otherwise calls
// json.Unmarshal on a fresh T. Non-nil empty data is a syntax error; the text
// null decodes as T's zero value. On failure it returns T's zero value (never
// a partly decoded one) and an *Error wrapping Unmarshal's error, so
// errors.As still reaches a *json.SyntaxError or *json.UnmarshalTypeError.
// Unknown object fields are ignored, as with json.Unmarshal.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

type jsonSerde[T any] struct{}

func (jsonSerde[T]) String() string { return "json" }

func (s jsonSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	a := any(v) // boxed once, shared by the null check and Marshal
	if isNull(a) {
		return nil, nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, &Error{Op: opSerialize, Topic: topic, Format: s.String(), Err: err}
	}
	return b, nil
}

func (s jsonSerde[T]) Deserialize(topic string, data []byte) (T, error) {
	var v T
	if data == nil {
		return v, nil
	}
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, &Error{Op: opDeserialize, Topic: topic, Format: s.String(), Err: err}
	}
	return v, nil
}

// isNull reports whether a is nil or holds a nil pointer, map or slice.
func isNull(a any) bool {
	if a == nil {
		return true
	}
	switch rv := reflect.ValueOf(a); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		return rv.IsNil()
	}
	return false
}
