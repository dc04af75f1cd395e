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

func (e *env) Send(topic string, partition int32, rec processor.RawRecord) error {
	return e.cfg.Collector.Send(topic, partition, rec)
}
