package dsl

import (
	"fmt"
	"reflect"
	"time"

	"github.com/gregorstream/gregor/processor"
)

// Timestamps says where a source's records take their timestamps from:
// RecordTime (the default), WallClockTime or TimestampFunc. WithTimestamps
// gives it to a source.
type Timestamps interface {
	// timestamps returns the choice itself, or nil for the records' own
	// timestamps. The interface is sealed: only this package implements it.
	timestamps() any
}

type recordTime struct{}

func (recordTime) timestamps() any { return nil }

type wallClockTime struct{}

func (wallClockTime) timestamps() any { return wallClockTime{} }

type timestampFunc[K, V any] struct {
	f func(key K, value V, recordTime time.Time) (time.Time, error)
}

func (t timestampFunc[K, V]) timestamps() any { return t }

// RecordTime keeps the timestamps of the Kafka records (their CreateTime or
// LogAppendTime): event time, as the producer set it. It is the default.
func RecordTime() Timestamps { return recordTime{} }

// WallClockTime gives each record the task's wall-clock time when it is
// processed (processing time): the machine's clock in the runtime, the
// driver's controllable clock in streamtest.
func WallClockTime() Timestamps { return wallClockTime{} }

// TimestampFunc gives each record the time f returns for it, from its key,
// its value (zero values for a null key or value) and its Kafka timestamp:
// event time read from the payload, say. An error, or a time before the
// Unix epoch, fails the record like one that cannot be decoded (the
// runtime's deserialization handler decides: LogAndFail stops the task with
// an error naming the record's topic, partition and offset,
// LogAndContinue skips and counts it). K and V must be the source's key and
// value types; Build reports a mismatch.
func TimestampFunc[K, V any](f func(key K, value V, recordTime time.Time) (time.Time, error)) Timestamps {
	return timestampFunc[K, V]{f: f}
}

// WithTimestamps sets where a source's records take their timestamps from
// (RecordTime, WallClockTime, TimestampFunc). The timestamp is set after a
// record is decoded, before the first operator: downstream operators,
// windows, stores and output records see it, and stream time advances by
// it. Within a task, though, the choice of the next record among its input
// partitions still follows the Kafka records' timestamps, since it is made
// before decoding. Stream, Streams, StreamPattern and Table take it.
func WithTimestamps(ts Timestamps) Option {
	return optFunc{optTimestamps, func(o *options) { o.timestamps = ts }}
}

// setTimestamps gives the source node the extractor o asks for.
func setTimestamps[K, V any](b *Builder, op, source string, o *options) {
	if o.timestamps == nil {
		return
	}
	switch ts := o.timestamps.timestamps().(type) {
	case nil:
	case wallClockTime:
		b.topo.SetSourceTimestamps(source, func(_ processor.Record[K, V], wallClock func() time.Time) (time.Time, error) {
			return wallClock(), nil
		})
	case timestampFunc[K, V]:
		if ts.f == nil {
			b.fail(op, errNilFunc)
			return
		}
		b.topo.SetSourceTimestamps(source, func(r processor.Record[K, V], _ func() time.Time) (time.Time, error) {
			return ts.f(r.Key, r.Value, r.Timestamp)
		})
	default:
		b.fail(op, fmt.Errorf("WithTimestamps: %T does not fit a source of %v keys and %v values", ts, reflect.TypeFor[K](), reflect.TypeFor[V]()))
	}
}
