package serde

import (
	"errors"
	"strconv"
)

// ErrInvalidLength is the cause when a fixed-width serde (Int64, Int32,
// Float64) is asked to decode a non-nil value of the wrong length. Test for it
// with errors.Is; the *Error's Err field wraps it with the lengths involved.
var ErrInvalidLength = errors.New("invalid length")

// Error is returned by every serde in this package for bad input, and by a
// Func serde for any error its functions return. Use errors.As to get at it
// and errors.Is / errors.As on it to reach the cause.
type Error struct {
	Op     string // "serialize" or "deserialize"
	Topic  string
	Format string // the serde's name: "string", "bytes", "int64", "int32", "float64", "json", "func"
	Err    error  // the cause: wraps ErrInvalidLength, a *json.SyntaxError, a Func's own error, ...
}

// Error returns a message naming the operation, format, topic and cause, e.g.
//
//	serde: deserialize int64 from topic "clicks": got 3 bytes, want 8: invalid length
func (e *Error) Error() string {
	b := make([]byte, 0, 64)
	b = append(b, "serde: "...)
	b = append(b, e.Op...)
	b = append(b, ' ')
	b = append(b, e.Format...)
	if e.Op == opSerialize {
		b = append(b, " for topic "...)
	} else {
		b = append(b, " from topic "...)
	}
	b = strconv.AppendQuote(b, e.Topic)
	if e.Err != nil {
		b = append(b, ": "...)
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

const (
	opSerialize   = "serialize"
	opDeserialize = "deserialize"
)

// lengthError is the cause for a fixed-width value of the wrong size. It
// unwraps to ErrInvalidLength.
type lengthError struct {
	got, want int
}

func (e *lengthError) Error() string {
	return "got " + strconv.Itoa(e.got) + " bytes, want " + strconv.Itoa(e.want) + ": " + ErrInvalidLength.Error()
}

func (e *lengthError) Unwrap() error { return ErrInvalidLength }

func invalidLength(topic, format string, got, want int) error {
	return &Error{Op: opDeserialize, Topic: topic, Format: format, Err: &lengthError{got: got, want: want}}
}
