package streamtest

import (
	"fmt"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

// InputTopic pipes typed records into a topic.
type InputTopic[K, V any] struct {
	d       *Driver
	name    string
	keys    serde.Serde[K]
	values  serde.Serde[V]
	next    time.Time
	advance time.Duration
}

// InputOption configures an InputTopic.
type InputOption func(*inputConfig)

type inputConfig struct {
	start   time.Time
	advance time.Duration
}

// StartAt sets the timestamp Pipe gives the topic's first record. The
// default is the driver's wall-clock time when the topic is created.
func StartAt(t time.Time) InputOption { return func(c *inputConfig) { c.start = t } }

// AutoAdvance makes Pipe advance the timestamp by d after each record.
func AutoAdvance(d time.Duration) InputOption { return func(c *inputConfig) { c.advance = d } }

// InputTopic returns a typed handle to pipe records into topic (its name in Kafka).
func (d *Driver) InputTopic[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], opts ...InputOption) *InputTopic[K, V] {
	c := inputConfig{start: d.clock}
	for _, o := range opts {
		o(&c)
	}
	return &InputTopic[K, V]{d: d, name: name, keys: keys, values: values, next: c.start, advance: c.advance}
}

// Pipe sends one record with the topic's current timestamp (see StartAt,
// AutoAdvance) and processes it.
func (in *InputTopic[K, V]) Pipe(key K, value V) error {
	ts := in.next
	in.next = in.next.Add(in.advance)
	return in.PipeRecord(processor.Record[K, V]{Key: key, Value: value, Timestamp: ts})
}

// PipeAt sends one record with the given timestamp and processes it.
func (in *InputTopic[K, V]) PipeAt(key K, value V, ts time.Time) error {
	return in.PipeRecord(processor.Record[K, V]{Key: key, Value: value, Timestamp: ts})
}

// PipeValue sends a record with a null key.
func (in *InputTopic[K, V]) PipeValue(value V) error {
	v, err := in.values.Serialize(in.name, value)
	if err != nil {
		return fmt.Errorf("streamtest: pipe to %q: %w", in.name, err)
	}
	ts := in.next
	in.next = in.next.Add(in.advance)
	return in.d.PipeRaw(in.name, -1, processor.RawRecord{Value: v, Timestamp: ts})
}

// PipeRecord sends one record with its timestamp (the topic's current one if
// zero) and headers, and processes it.
func (in *InputTopic[K, V]) PipeRecord(rec processor.Record[K, V]) error {
	return in.PipeRecords(rec)
}

// PipeRecords sends the records, in order, then processes them all.
func (in *InputTopic[K, V]) PipeRecords(recs ...processor.Record[K, V]) error {
	var err error
	runErr := in.d.Batch(func() {
		for _, r := range recs {
			var k, v []byte
			if !r.NullKey {
				if k, err = in.keys.Serialize(in.name, r.Key); err != nil {
					err = fmt.Errorf("streamtest: pipe to %q: key: %w", in.name, err)
					return
				}
			}
			if !r.NullValue {
				if v, err = in.values.Serialize(in.name, r.Value); err != nil {
					err = fmt.Errorf("streamtest: pipe to %q: value: %w", in.name, err)
					return
				}
			}
			ts := r.Timestamp
			if ts.IsZero() {
				ts = in.next
				in.next = in.next.Add(in.advance)
			}
			if err = in.d.PipeRaw(in.name, -1, processor.RawRecord{Key: k, Value: v, Timestamp: ts, Headers: r.Headers}); err != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return runErr
}

// PipeKeyValues sends one record per pair with the topic's current
// timestamps, then processes them all.
func (in *InputTopic[K, V]) PipeKeyValues(kvs ...processor.KeyValue[K, V]) error {
	recs := make([]processor.Record[K, V], len(kvs))
	for i, kv := range kvs {
		recs[i] = processor.Record[K, V]{Key: kv.Key, Value: kv.Value}
	}
	return in.PipeRecords(recs...)
}

// PipeRaw appends an encoded record to a partition of topic (-1 chooses by
// key, as Kafka's default partitioner does) and processes it. The record's
// Origin is set by the driver.
func (d *Driver) PipeRaw(topic string, partition int32, rec processor.RawRecord) error {
	if d.closed {
		return ErrClosed
	}
	t := d.topic(topic)
	if t.conflict != nil {
		return t.conflict
	}
	if _, err := d.append(t, partition, rec); err != nil {
		return err
	}
	return d.run()
}

// OutputTopic reads, in the order they were written, the records sinks wrote
// to a topic. Reading consumes: two handles on one topic share one position.
type OutputTopic[K, V any] struct {
	d      *Driver
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
}

// OutputTopic returns a typed handle to read topic (its name in Kafka:
// "<application id>-<name>" for an internal topic).
func (d *Driver) OutputTopic[K, V any](name string, keys serde.Serde[K], values serde.Serde[V]) *OutputTopic[K, V] {
	d.topic(name).captured = true
	return &OutputTopic[K, V]{d: d, name: name, keys: keys, values: values}
}

// ReadRecord reads the next record, or returns ErrNoRecord.
func (out *OutputTopic[K, V]) ReadRecord() (processor.Record[K, V], error) {
	raw, ok := out.d.topic(out.name).next(true)
	if !ok {
		return processor.Record[K, V]{}, fmt.Errorf("read %q: %w", out.name, ErrNoRecord)
	}
	k, err := out.keys.Deserialize(out.name, raw.Key)
	if err != nil {
		return processor.Record[K, V]{}, &processor.DeserializationError{Node: "test reader", Origin: raw.Origin, Key: true, Err: err}
	}
	v, err := out.values.Deserialize(out.name, raw.Value)
	if err != nil {
		return processor.Record[K, V]{}, &processor.DeserializationError{Node: "test reader", Origin: raw.Origin, Err: err}
	}
	return processor.Record[K, V]{Key: k, Value: v, NullKey: raw.Key == nil, NullValue: raw.Value == nil,
		Timestamp: raw.Timestamp, Headers: raw.Headers, Origin: raw.Origin}, nil
}

// ReadKeyValue reads the next record's key and value, or returns ErrNoRecord.
func (out *OutputTopic[K, V]) ReadKeyValue() (processor.KeyValue[K, V], error) {
	r, err := out.ReadRecord()
	return processor.KeyValue[K, V]{Key: r.Key, Value: r.Value}, err
}

// ReadValue reads the next record's value, or returns ErrNoRecord.
func (out *OutputTopic[K, V]) ReadValue() (V, error) {
	r, err := out.ReadRecord()
	return r.Value, err
}

// ReadRecords reads every unread record.
func (out *OutputTopic[K, V]) ReadRecords() ([]processor.Record[K, V], error) {
	var recs []processor.Record[K, V]
	for !out.IsEmpty() {
		r, err := out.ReadRecord()
		if err != nil {
			return recs, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// ReadAll reads the key and value of every unread record.
func (out *OutputTopic[K, V]) ReadAll() ([]processor.KeyValue[K, V], error) {
	recs, err := out.ReadRecords()
	kvs := make([]processor.KeyValue[K, V], len(recs))
	for i, r := range recs {
		kvs[i] = processor.KeyValue[K, V]{Key: r.Key, Value: r.Value}
	}
	return kvs, err
}

// ReadRaw reads the next record as bytes, without decoding it.
func (out *OutputTopic[K, V]) ReadRaw() (processor.RawRecord, bool) {
	return out.d.topic(out.name).next(true)
}

// IsEmpty reports whether every record has been read.
func (out *OutputTopic[K, V]) IsEmpty() bool { return out.d.topic(out.name).unread() == 0 }

// Len is the number of unread records.
func (out *OutputTopic[K, V]) Len() int { return out.d.topic(out.name).unread() }
