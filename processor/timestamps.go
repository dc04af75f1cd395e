package processor

import (
	"errors"
	"fmt"
	"time"
)

// TimestampExtractor gives a record its timestamp once its source has
// decoded it, before the first processor sees it. rec carries the Kafka
// record's timestamp; wallClock reads the task's wall clock (the test
// driver's controllable one in streamtest), for extractors that want
// processing time. The result becomes the record's timestamp, truncated to
// milliseconds: downstream processors, stores and sinks see it, and stream
// time advances by it.
//
// An error, or a timestamp before the Unix epoch, fails the record with a
// *TimestampError naming its topic, partition and offset, which drivers
// handle like a record that cannot be decoded.
type TimestampExtractor[K, V any] func(rec Record[K, V], wallClock func() time.Time) (time.Time, error)

// ErrNegativeTimestamp is the error of a TimestampError whose extractor
// returned a time before the Unix epoch (the zero time.Time included):
// Kafka cannot carry it.
var ErrNegativeTimestamp = errors.New("timestamp before the Unix epoch")

// TimestampError is returned by a source whose timestamp extractor failed
// for a record.
type TimestampError struct {
	Node   string // the source node
	Origin Origin
	Err    error
}

func (e *TimestampError) Error() string {
	return fmt.Sprintf("processor: source %q: extract timestamp of topic %q partition %d offset %d: %v",
		e.Node, e.Origin.Topic, e.Origin.Partition, e.Origin.Offset, e.Err)
}

func (e *TimestampError) Unwrap() error { return e.Err }

// SetSourceTimestamps makes the source node called source take the
// timestamps of its records from ext instead of from Kafka; nil restores
// the records' own. The source must already be added, with keys K and
// values V. Records still wait in their task's queues in the order of their
// Kafka timestamps: the extractor runs after the choice of the next record,
// when it is decoded.
func (t *Topology) SetSourceTimestamps[K, V any](source string, ext TimestampExtractor[K, V]) {
	n, ok := t.byName[source]
	if !ok || n.kind != SourceNode {
		t.problem(source, SourceNode, ErrUnknownNode)
		return
	}
	impl, ok := n.impl.(*sourceImpl[K, V])
	if !ok {
		t.problems = append(t.problems, &TopologyError{Node: source, Kind: SourceNode, Err: ErrTypeMismatch,
			Detail: fmt.Sprintf("timestamp extractor of %s on a source of %s", recordType[K, V](), n.out)})
		t.checked = nil
		return
	}
	impl.ts = ext
	t.checked = nil
}
