package runtime

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

// FailedRecord is an input record that failed, or an output record that
// could not be produced, with the error.
type FailedRecord struct {
	Task      processor.TaskID
	Topic     string
	Partition int32
	Offset    int64 // -1 for an output record
	Key       []byte
	Value     []byte
	Headers   processor.Headers
	Timestamp time.Time
	Err       error
}

// Action is what an ErrorHandler decides for a failed record.
type Action struct {
	kind  actionKind
	topic string
}

type actionKind int

const (
	actFail actionKind = iota
	actContinue
	actDeadLetter
)

var (
	// Fail stops the record's task (not the application): the task stays
	// at its last commit, its partitions are paused, and the failure is
	// logged, counted and listed in Status().Failed, while the other tasks
	// go on. The record is not committed, so it is read again after a
	// restart. A refused output (WithProductionHandler) with Fail stops
	// Run instead: its task is not known.
	Fail = Action{kind: actFail}
	// Continue skips the record (counted and logged by the runtime).
	Continue = Action{kind: actContinue}
)

// DeadLetter writes the failed record, as read, to topic, with the error
// and its origin in headers (see the Header* constants), and goes on. With
// ExactlyOnce it is written in the same transaction as the rest.
func DeadLetter(topic string) Action { return Action{kind: actDeadLetter, topic: topic} }

// Headers of a dead-letter record.
const (
	HeaderError     = "gregor.error"
	HeaderTopic     = "gregor.topic"
	HeaderPartition = "gregor.partition"
	HeaderOffset    = "gregor.offset"
	HeaderTask      = "gregor.task"
)

// ErrorHandler decides what becomes of a failed record.
type ErrorHandler func(FailedRecord) Action

// LogAndFail is the default handler: Fail.
func LogAndFail(FailedRecord) Action { return Fail }

// LogAndContinue skips failed records; the runtime logs each at warn level
// and counts them.
func LogAndContinue(FailedRecord) Action { return Continue }

// SendToDeadLetter returns a handler that sends every failed record to topic.
func SendToDeadLetter(topic string) ErrorHandler {
	return func(FailedRecord) Action { return DeadLetter(topic) }
}

// WithDeserializationHandler sets what happens to an input record whose key
// or value cannot be decoded, or whose source's timestamp extractor fails;
// the default is LogAndFail.
func WithDeserializationHandler(h ErrorHandler) Option {
	return func(c *config) { c.onDeserialize = h }
}

// WithProcessingHandler sets what happens to an input record whose
// processing fails (a processor's error or panic); the default is
// LogAndFail. With Continue or DeadLetter, effects of the record before the
// failure (records forwarded, store writes) stay; with Fail, the task goes
// back to its last commit (with ExactlyOnce), so they go.
func WithProcessingHandler(h ErrorHandler) Option {
	return func(c *config) { c.onProcess = h }
}

// WithProductionHandler sets what happens to an output record the broker or
// the client refuses (too large, say); the default is LogAndFail. Continue
// and DeadLetter apply with AtLeastOnce; with ExactlyOnce a refused record
// fails the transaction, and the runtime fails.
func WithProductionHandler(h ErrorHandler) Option {
	return func(c *config) { c.onProduce = h }
}

// isDeserialization reports whether err is a source's decoding error, or
// the failure of its timestamp extractor: either way a record that never
// reached a processor.
func isDeserialization(err error) bool {
	var se *serde.Error
	var te *processor.TimestampError
	return errors.As(err, &se) && se.Op == "deserialize" || errors.As(err, &te)
}

func deadLetterHeaders(f FailedRecord) processor.Headers {
	h := append(processor.Headers{}, f.Headers...)
	return append(h,
		processor.Header{Key: HeaderError, Value: []byte(f.Err.Error())},
		processor.Header{Key: HeaderTopic, Value: []byte(f.Topic)},
		processor.Header{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(f.Partition)))},
		processor.Header{Key: HeaderOffset, Value: []byte(strconv.FormatInt(f.Offset, 10))},
		processor.Header{Key: HeaderTask, Value: []byte(f.Task.String())},
	)
}

func logFailed(l *slog.Logger, what string, f FailedRecord, action string) {
	l.Warn("runtime: "+what+" failed: "+action, "task", f.Task, "topic", f.Topic, "partition", f.Partition,
		"offset", f.Offset, "err", f.Err)
}
