package serde

import "errors"

// Func returns a Serde built from a pair of functions, for formats this
// package does not provide. Both functions must be safe for concurrent use.
//
// The returned Serde keeps the package's null convention: Deserialize
// returns T's zero value for nil data without calling de, so de only ever
// sees non-nil data. Serialize passes ser's result through as is; ser should
// return nil bytes only for a null value.
//
// An error from ser or de is returned wrapped in an *Error with Format
// "func", unless its chain already holds an *Error, in which case it is
// returned unchanged. On error Deserialize returns T's zero value. Either
// function may be nil, for a serde used in one direction only; calling the
// missing direction yields an *Error wrapping errors.ErrUnsupported.
func Func[T any](ser func(topic string, v T) ([]byte, error), de func(topic string, b []byte) (T, error)) Serde[T] {
	return &funcSerde[T]{ser: ser, de: de}
}

type funcSerde[T any] struct {
	ser func(topic string, v T) ([]byte, error)
	de  func(topic string, b []byte) (T, error)
}

func (*funcSerde[T]) String() string { return "func" }

func (s *funcSerde[T]) Serialize(topic string, v T) ([]byte, error) {
	if s.ser == nil {
		return nil, s.wrap(opSerialize, topic, errors.ErrUnsupported)
	}
	b, err := s.ser(topic, v)
	if err != nil {
		return nil, s.wrap(opSerialize, topic, err)
	}
	return b, nil
}

func (s *funcSerde[T]) Deserialize(topic string, data []byte) (T, error) {
	var zero T
	if data == nil {
		return zero, nil
	}
	if s.de == nil {
		return zero, s.wrap(opDeserialize, topic, errors.ErrUnsupported)
	}
	v, err := s.de(topic, data)
	if err != nil {
		return zero, s.wrap(opDeserialize, topic, err)
	}
	return v, nil
}

func (s *funcSerde[T]) wrap(op, topic string, err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	return &Error{Op: op, Topic: topic, Format: s.String(), Err: err}
}
