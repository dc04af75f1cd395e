// Package task is gregor's task engine, with no Kafka in it.
//
// A Task runs one partition of one sub-topology. Its driver (the Kafka
// runtime, or the in-memory streamtest driver) adds raw records per input
// partition, asks the task to process a bounded number of them, fires
// wall-clock punctuation, and commits. Within a task, the next record is the
// one with the lowest timestamp at the head of its input queues, so inputs
// merge in timestamp order; stream time is the largest timestamp processed.
//
// A Task is not safe for concurrent use: one goroutine drives it.
package task

import (
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// Collector receives the records a task's sinks write. partition -1 asks the
// collector to choose by key, as Kafka's default partitioner does.
type Collector interface {
	Send(topic string, partition int32, rec processor.RawRecord) error
}

// Config configures a Task.
type Config struct {
	ApplicationID string
	Topology      *processor.Topology
	ID            processor.TaskID
	Collector     Collector
	// Clock is the wall clock, read for CurrentSystemTime and to start
	// wall-clock schedules. The default is time.Now.
	Clock func() time.Time
	// OnLate, if set, is called for every record a processor drops as too
	// late for its window (after window end plus grace), with the node
	// that dropped it and the record's origin, after Late counts it.
	// Drivers export it as a metric and log it.
	OnLate func(node string, origin processor.RecordMetadata)
	// Engine keeps the bytes of the task's stores: the worker's pebble
	// engine, or memory in tests. The task fills one batch of it per commit
	// interval. The default is a new in-memory engine of the task's own.
	Engine state.Engine
}

// Task runs one partition of one sub-topology.
type Task struct {
	cfg             Config
	id              processor.TaskID
	inst            *processor.Instance
	batch           state.Batch
	stores          map[string]state.Store
	storeOrder      []string                                // topological: upstream stores flush first
	changelogs      map[TopicPartition]state.StorePartition // of the logged stores
	changelogTopics map[string]string                       // store -> its changelog topic
	dropped         map[string]int64
	late            map[string]int64 // by node
	queues          []*queue
	byTP            map[TopicPartition]*queue
	buffered        int

	streamTime time.Time
	current    processor.RecordMetadata
	currentTS  time.Time
	hasCurrent bool

	punct           punctuations
	commitRequested bool
	closed          bool
}

type queue struct {
	tp     TopicPartition
	source func(processor.RawRecord) error
	recs   []processor.RawRecord
	head   int
	next   int64 // offset after the last record processed; -1 if none
	last   int64 // offset of the last record queued; -1 if none
}

// New creates a task: it builds the stores and processors of the
// sub-topology. Call Init before processing.
func New(cfg Config) (*Task, error) {
	if cfg.Topology == nil {
		return nil, errors.New("task: nil topology")
	}
	if cfg.Collector == nil {
		return nil, errors.New("task: nil collector")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	subs, err := cfg.Topology.SubTopologies()
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", cfg.ID, err)
	}
	if cfg.ID.SubTopology < 0 || cfg.ID.SubTopology >= len(subs) {
		return nil, fmt.Errorf("task %s: no sub-topology %d", cfg.ID, cfg.ID.SubTopology)
	}
	if cfg.Engine == nil {
		cfg.Engine = memory.NewEngine()
	}
	t := &Task{cfg: cfg, id: cfg.ID, stores: map[string]state.Store{}, byTP: map[TopicPartition]*queue{},
		changelogs: map[TopicPartition]state.StorePartition{}, changelogTopics: map[string]string{}, dropped: map[string]int64{}, late: map[string]int64{}}
	t.punct.clock = cfg.Clock
	t.batch = cfg.Engine.NewBatch()
	bctx := state.BuildContext{ApplicationID: cfg.ApplicationID, TaskID: cfg.ID.String(),
		Partition: cfg.ID.Partition, Batch: t.batch, Changelog: (*changelog)(t), Time: (*env)(t)}
	for _, name := range subs[cfg.ID.SubTopology].Stores {
		b, _ := cfg.Topology.StoreBuilder(name)
		t.changelogTopics[name] = state.ChangelogTopic(cfg.ApplicationID, name)
		s, err := b.Build(bctx)
		if err != nil {
			t.closeStores()
			return nil, fmt.Errorf("task %s: build store %q: %w", cfg.ID, name, err)
		}
		t.stores[name] = s
		t.storeOrder = append(t.storeOrder, name)
		if state.Logged(b) {
			tp := TopicPartition{Topic: t.changelogTopics[name], Partition: cfg.ID.Partition}
			t.changelogs[tp] = state.StorePartition{Store: name, Partition: cfg.ID.Partition}
		}
	}
	inst, err := cfg.Topology.Instantiate(cfg.ID.SubTopology, (*env)(t))
	if err != nil {
		t.closeStores()
		return nil, fmt.Errorf("task %s: %w", cfg.ID, err)
	}
	t.inst = inst
	return t, nil
}

// ID returns the task's id.
func (t *Task) ID() processor.TaskID { return t.id }

// Init initializes the processors (they may schedule punctuation and open stores).
func (t *Task) Init() error {
	if err := t.protect(t.inst.Init); err != nil {
		return fmt.Errorf("task %s: %w", t.id, err)
	}
	return nil
}

// Add queues records of one input partition, in offset order. Each record's
// Origin must name its topic, partition and offset, offsets increasing
// across calls; otherwise Add queues nothing and fails. The topic must be
// one of the sub-topology's inputs.
func (t *Task) Add(tp TopicPartition, recs ...processor.RawRecord) error {
	if t.closed {
		return ErrClosed
	}
	q, ok := t.byTP[tp]
	if !ok {
		src, ok := t.inst.Source(tp.Topic)
		if !ok {
			return fmt.Errorf("task %s: topic %q is not an input of sub-topology %d", t.id, tp.Topic, t.id.SubTopology)
		}
		q = &queue{tp: tp, source: src, next: -1, last: -1}
		t.queues = append(t.queues, q)
		t.byTP[tp] = q
	}
	// Reject the whole call before queueing any of it: a record of another
	// partition, or offsets going back, would corrupt the committed offsets.
	last := q.last
	for _, r := range recs {
		if r.Origin.Topic != tp.Topic || r.Origin.Partition != tp.Partition {
			return fmt.Errorf("task %s: add to %s: record from topic %q partition %d", t.id, tp, r.Origin.Topic, r.Origin.Partition)
		}
		if r.Origin.Offset <= last {
			return fmt.Errorf("task %s: add to %s: offset %d after %d: offsets must increase", t.id, tp, r.Origin.Offset, last)
		}
		last = r.Origin.Offset
	}
	q.last = last
	if q.head > 0 && q.head == len(q.recs) {
		clear(q.recs)
		q.recs, q.head = q.recs[:0], 0
	}
	q.recs = append(q.recs, recs...)
	t.buffered += len(recs)
	return nil
}

// Buffered is the number of records queued and not yet processed.
func (t *Task) Buffered() int { return t.buffered }

// StreamTime is the largest timestamp processed so far.
func (t *Task) StreamTime() time.Time { return t.streamTime }

// Process processes up to max queued records, the lowest timestamp first
// across the input partitions (ties go to the partition added first). It
// fires stream-time punctuation as stream time advances. It returns how many
// records it processed; on error, the failing record counts as processed
// (its offset is consumed) and the error is a *RecordError or *PunctuationError.
func (t *Task) Process(max int) (int, error) {
	if t.closed {
		return 0, ErrClosed
	}
	n := 0
	for n < max && t.buffered > 0 {
		q := t.pick()
		rec := q.recs[q.head]
		q.recs[q.head] = processor.RawRecord{}
		q.head++
		t.buffered--
		n++
		// The source sets the record's time, once decoded (SetRecordTime):
		// a timestamp extractor may change it, and stream time advances by
		// it, not by a record that failed to decode.
		t.current, t.currentTS, t.hasCurrent = rec.Origin, rec.Timestamp, true
		err := t.protect(func() error { return q.source(rec) })
		t.hasCurrent = false
		q.next = rec.Origin.Offset + 1
		if err != nil {
			return n, &RecordError{Task: t.id, Origin: rec.Origin, Err: err}
		}
		if err := t.punct.streamTime(t, t.streamTime); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (t *Task) pick() *queue {
	var best *queue
	for _, q := range t.queues {
		if q.head == len(q.recs) {
			continue
		}
		if best == nil || q.recs[q.head].Timestamp.Before(best.recs[best.head].Timestamp) {
			best = q
		}
	}
	return best
}

// Punctuate fires the wall-clock schedules due at now.
func (t *Task) Punctuate(now time.Time) error {
	if t.closed {
		return ErrClosed
	}
	return t.punct.wallClock(t, now)
}

// Offsets adds to offsets, for each input partition with a processed record,
// the offset to commit: the one after the last record processed.
func (t *Task) Offsets(offsets map[TopicPartition]int64) {
	for _, q := range t.queues {
		if q.next >= 0 {
			offsets[q.tp] = q.next
		}
	}
}

// CommitRequested reports whether a processor asked for a commit since the last Commit.
func (t *Task) CommitRequested() bool { return t.commitRequested }

// PrepareCommit is the first half of a commit: it flushes the stores, whose
// record caches pass their held writes to the changelog and forward them
// downstream (the collector receives what that produces), and, if offsets is
// not nil, adds the input offsets to commit to it. The driver then commits
// those offsets and everything the collector received to Kafka, and calls
// CompleteCommit.
func (t *Task) PrepareCommit(offsets map[TopicPartition]int64) error {
	if t.closed {
		return ErrClosed
	}
	t.commitRequested = false
	for _, name := range t.storeOrder {
		if err := t.protect(t.stores[name].Flush); err != nil {
			return fmt.Errorf("task %s: flush store %q: %w", t.id, name, err)
		}
	}
	if offsets != nil {
		t.Offsets(offsets)
	}
	return nil
}

// CompleteCommit is the second half of a commit, once Kafka has committed:
// it applies the interval's store writes to the engine, atomically with the
// changelog offsets they reach. changelogEnds gives, for changelog
// partitions written since the last commit, the offset after the last record
// written; the task takes those of its own stores as their checkpoints.
//
// If the Kafka commit failed instead, close the task without completing:
// its stores then stay at the last completed commit.
func (t *Task) CompleteCommit(changelogEnds map[TopicPartition]int64) error {
	if t.closed {
		return ErrClosed
	}
	var checkpoints map[state.StorePartition]int64
	for tp, end := range changelogEnds {
		if sp, ok := t.changelogs[tp]; ok {
			if checkpoints == nil {
				checkpoints = map[state.StorePartition]int64{}
			}
			checkpoints[sp] = end
		}
	}
	if len(t.stores) == 0 {
		return nil
	}
	if err := t.batch.Commit(checkpoints); err != nil {
		return fmt.Errorf("task %s: commit stores: %w", t.id, err)
	}
	return nil
}

// Commit is PrepareCommit then CompleteCommit with no changelog offsets: a
// commit for a driver with no Kafka to commit to in between.
func (t *Task) Commit(offsets map[TopicPartition]int64) error {
	if err := t.PrepareCommit(offsets); err != nil {
		return err
	}
	return t.CompleteCommit(nil)
}

// Changelogs maps the changelog partitions of the task's logged stores to
// their store-partitions, for restoring.
func (t *Task) Changelogs() map[TopicPartition]state.StorePartition { return maps.Clone(t.changelogs) }

// Dropped counts the records processors dropped, by reason (a null key, say).
func (t *Task) Dropped() map[string]int64 { return maps.Clone(t.dropped) }

// Late counts the records processors dropped as too late for their windows,
// by node (operator).
func (t *Task) Late() map[string]int64 { return maps.Clone(t.late) }

// Store returns the task's instance of a store, for drivers and tests.
func (t *Task) Store(name string) (state.Store, bool) {
	s, ok := t.stores[name]
	return s, ok
}

// Stores returns the task's stores by name.
func (t *Task) Stores() map[string]state.Store { return maps.Clone(t.stores) }

// Close closes the processors and the stores. Queued records are dropped.
func (t *Task) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	err := t.inst.Close()
	return errors.Join(err, t.closeStores())
}

// closeStores closes the stores and drops the batch's pending writes.
func (t *Task) closeStores() error {
	var errs []error
	defer func() {
		if t.batch != nil {
			errs = append(errs, t.batch.Close())
		}
	}()
	for name, s := range t.stores {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("task %s: close store %q: %w", t.id, name, err))
		}
	}
	return errors.Join(errs...)
}

// protect runs f, turning a panic in user code into a *PanicError.
func (t *Task) protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}
