package task

import (
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
)

// env is the Task seen by its processors (processor.Env).
type env Task

func (e *env) ApplicationID() string    { return e.cfg.ApplicationID }
func (e *env) TaskID() processor.TaskID { return e.id }
func (e *env) StreamTime() time.Time    { return e.streamTime }
func (e *env) SystemTime() time.Time    { return e.cfg.Clock() }
func (e *env) RequestCommit()           { e.commitRequested = true }
func (e *env) Store(name string) (state.Store, bool) {
	s, ok := e.stores[name]
	return s, ok
}

func (e *env) RecordMetadata() (processor.RecordMetadata, bool) {
	if !e.hasCurrent || !e.current.Known() {
		return processor.RecordMetadata{}, false
	}
	return e.current, true
}

func (e *env) Schedule(node string, interval time.Duration, typ processor.PunctuationType, fn processor.Punctuator) (processor.Cancellable, error) {
	return e.punct.add(node, interval, typ, fn), nil
}

// SetRecordTime is called by the source of the record being processed once
// it is decoded, with its timestamp (extracted or its own): stores see it
// as the record's time, and stream time advances to it.
func (e *env) SetRecordTime(ts time.Time) {
	e.currentTS = ts
	if ts.After(e.streamTime) {
		e.streamTime = ts
	}
}

// RecordTime is the current record's timestamp, or stream time outside
// Process (state.TimeSource).
func (e *env) RecordTime() time.Time {
	if e.hasCurrent {
		return e.currentTS
	}
	return e.streamTime
}

func (e *env) RecordDropped(node, reason string) { e.dropped[reason]++ }

func (e *env) RecordLate(node string) {
	e.late[node]++
	if e.cfg.OnLate != nil {
		var md processor.RecordMetadata
		if e.hasCurrent {
			md = e.current
		}
		e.cfg.OnLate(node, md)
	}
}

func (e *env) Send(topic string, partition int32, rec processor.RawRecord) error {
	return e.cfg.Collector.Send(topic, partition, rec)
}

// changelog is the Task seen by its stores (state.ChangelogWriter): each
// write goes to the store's changelog topic, on the task's partition.
type changelog Task

func (c *changelog) Log(store string, key, value []byte, ts time.Time) error {
	// The collector keeps the record until it is produced, while stores may
	// reuse their buffers: hand it a copy, key and value in one allocation.
	buf := make([]byte, len(key)+len(value))
	n := copy(buf, key)
	copy(buf[n:], value)
	rec := processor.RawRecord{Key: buf[:n:n], Timestamp: ts}
	if value != nil {
		rec.Value = buf[n:]
	}
	topic, ok := c.changelogTopics[store] // every store of the task has one
	if !ok {
		topic = state.ChangelogTopic(c.cfg.ApplicationID, store)
	}
	return c.cfg.Collector.Send(topic, c.id.Partition, rec)
}
