package state

import (
	"fmt"
	"time"
)

// ChangelogWriter sends the writes of a task's stores to their changelog
// topics, through the task's producer (inside its transaction, with
// exactly-once). The task engine implements it.
type ChangelogWriter interface {
	// Log records one write of store for the task's partition: a nil value
	// is a tombstone, an empty non-nil one a value. ts is the changelog
	// record's timestamp. key and value are only valid during the call
	// (the layers above reuse their buffers): Log copies what it keeps.
	Log(store string, key, value []byte, ts time.Time) error
}

// TimeSource tells a store the task's notion of time.
type TimeSource interface {
	// RecordTime is the timestamp of the record being processed, or stream
	// time in a punctuator.
	RecordTime() time.Time
	// StreamTime is the largest timestamp the task has processed.
	StreamTime() time.Time
}

// changelogging is the layer that sends every write to the changelog. It
// sits right above the task's batch, so the changelog sees exactly what
// the batch applies: after the record cache has coalesced updates.
type changelogging struct {
	KeyValueBytesStore
	w     ChangelogWriter
	clock TimeSource
}

func (c *changelogging) Put(key, value []byte) error {
	if err := c.KeyValueBytesStore.Put(key, value); err != nil {
		return err
	}
	if err := c.w.Log(c.Name(), key, value, c.clock.RecordTime()); err != nil {
		return fmt.Errorf("state: store %q: changelog: %w", c.Name(), err)
	}
	return nil
}

func (c *changelogging) Delete(key []byte) error { return c.Put(key, nil) }

// storeClock is a store's TimeSource: the task's, except while the record
// cache flushes an entry, when RecordTime is the time of the record that
// wrote it, so the changelog and downstream get the row's time, not the
// commit's.
type storeClock struct {
	src    TimeSource
	at     time.Time
	pinned bool
}

func (c *storeClock) RecordTime() time.Time {
	if c.pinned {
		return c.at
	}
	return c.src.RecordTime()
}

func (c *storeClock) StreamTime() time.Time { return c.src.StreamTime() }

// pin makes RecordTime return ts until the returned function is called.
func (c *storeClock) pin(ts time.Time) (unpin func()) {
	at, pinned := c.at, c.pinned
	c.at, c.pinned = ts, true
	return func() { c.at, c.pinned = at, pinned }
}

// flushListener is implemented by the layers that can report the writes
// they pass down late (the record cache, and the layers above it).
type flushListener interface {
	setFlushListener(fn func(key, newValue, oldValue []byte, ts time.Time) error) bool
}
