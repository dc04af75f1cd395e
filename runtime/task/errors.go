package task

import (
	"errors"
	"fmt"
	"time"

	"github.com/gregorstream/gregor/processor"
)

// ErrClosed is returned by a Task's methods after Close.
var ErrClosed = errors.New("task: closed")

// RecordError is a failure while processing one record: a deserialization,
// processing or production error, or a panic in user code.
type RecordError struct {
	Task   processor.TaskID
	Origin processor.Origin
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("task %s: record at topic %q partition %d offset %d: %v",
		e.Task, e.Origin.Topic, e.Origin.Partition, e.Origin.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// PunctuationError is a failure of a punctuator.
type PunctuationError struct {
	Task processor.TaskID
	Node string
	Type processor.PunctuationType
	Time time.Time
	Err  error
}

func (e *PunctuationError) Error() string {
	return fmt.Sprintf("task %s: %s punctuation of %q at %s: %v",
		e.Task, e.Type, e.Node, e.Time.UTC().Format(time.RFC3339Nano), e.Err)
}

func (e *PunctuationError) Unwrap() error { return e.Err }

// PanicError is a panic recovered from user code (a processor, an operator's
// function, a serde), with the stack where it happened.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("task: panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}
