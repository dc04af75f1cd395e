// Package processor is gregor's low-level API: records, processors, the
// context they run in, and the Topology graph that the DSL builds and the task
// engine runs.
//
// A Topology is a graph of named nodes: sources read a topic and decode its
// records, processors transform typed records, sinks encode them and write to a
// topic. Edges are typed: a parent that forwards Record[K, V] feeds children
// that take Record[K, V], checked when the topology is validated. For each task
// (one partition of one sub-topology) the nodes are instantiated into a chain
// of typed functions, so a record is decoded once at its source and encoded
// once at its sink.
package processor

import (
	"fmt"
	"time"

	"github.com/gregorstream/gregor/state"
)

// Processor processes the records of one node for one task. A Supplier makes a
// new instance per task; instances are never shared between tasks, and all
// methods of one instance are called from one goroutine.
type Processor[KIn, VIn, KOut, VOut any] interface {
	// Init is called once before the first record, with the context the
	// processor forwards to and schedules punctuation on.
	Init(ctx Context[KOut, VOut]) error
	// Process handles one record. An error stops the task; it reaches the
	// driver with the record's topic, partition and offset.
	Process(rec Record[KIn, VIn]) error
	// Close releases what Init acquired. It is called once, when the task closes.
	Close() error
}

// Supplier makes a new Processor instance. It is called once per task.
type Supplier[KIn, VIn, KOut, VOut any] func() Processor[KIn, VIn, KOut, VOut]

// Context is what a processor sees of its task. It is valid from Init until
// Close, and only on the task's goroutine.
type Context[K, V any] interface {
	// Forward hands rec to every child of the node, in the order they were added.
	Forward(rec Record[K, V]) error
	// ForwardTo hands rec to the named child only. Naming a node that is not a
	// child is an error.
	ForwardTo(child string, rec Record[K, V]) error
	// Schedule calls fn every interval of stream time or of wall-clock time.
	// Stream-time punctuation is aligned to multiples of interval and fires
	// when processing advances stream time past them; wall-clock punctuation
	// first fires interval after the call. fn receives the current stream or
	// wall-clock time. The interval is at least a millisecond.
	Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error)
	// Store returns a state store connected to this node.
	Store(name string) (state.Store, error)
	// RecordMetadata reports the origin of the record being processed; false
	// inside a punctuator or when the record has none.
	RecordMetadata() (RecordMetadata, bool)
	// CurrentStreamTime is the largest timestamp the task has processed.
	CurrentStreamTime() time.Time
	// CurrentSystemTime is the task's wall clock (controllable in tests).
	CurrentSystemTime() time.Time
	// Commit asks for a commit as soon as the current record is done.
	Commit()
	// RecordDropped counts a record the processor drops on purpose (a null
	// key for an aggregation, say) under reason, for the dropped-records
	// metric.
	RecordDropped(reason string)
	// RecordLate counts a record the processor drops because it arrived
	// after its window closed (stream time past window end plus grace), for
	// the late-records metric (gregor.records.late, by task and operator).
	RecordLate()
	// TaskID names the task: sub-topology and partition.
	TaskID() TaskID
	// ApplicationID is the application's id, the prefix of its internal topics.
	ApplicationID() string
	// NodeName is the name of the node this processor runs as.
	NodeName() string
}

// Punctuator is a scheduled function. An error stops the task like a processing error.
type Punctuator func(ts time.Time) error

// PunctuationType says which clock drives a schedule.
type PunctuationType int

const (
	// StreamTime punctuation advances with the timestamps of processed records.
	StreamTime PunctuationType = iota
	// WallClockTime punctuation advances with the system clock.
	WallClockTime
)

func (t PunctuationType) String() string {
	switch t {
	case StreamTime:
		return "stream-time"
	case WallClockTime:
		return "wall-clock"
	}
	return fmt.Sprintf("PunctuationType(%d)", int(t))
}

// Cancellable stops a schedule.
type Cancellable interface {
	Cancel()
}

// TaskID names a task: partition Partition of sub-topology SubTopology.
type TaskID struct {
	SubTopology int
	Partition   int32
}

// String formats the id as Kafka Streams does: "0_3".
func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.SubTopology, id.Partition) }

// Base is a helper to embed in processors: it keeps the context given to Init
// and has a no-op Close.
type Base[K, V any] struct {
	ctx Context[K, V]
}

// Init keeps ctx.
func (b *Base[K, V]) Init(ctx Context[K, V]) error { b.ctx = ctx; return nil }

// Context returns the context kept by Init.
func (b *Base[K, V]) Context() Context[K, V] { return b.ctx }

// Close does nothing.
func (b *Base[K, V]) Close() error { return nil }
