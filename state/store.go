// Package state holds the local state of a stream-processing task: the
// lifecycle contract the task engine drives (Store, Builder), the byte-level
// key-value contract every backend implements (KeyValueBytesStore, Iterator),
// and the typed stores processors use (KeyValueStore[K, V]).
//
// # Layering
//
// A typed store encodes keys and values once and hands bytes to a byte store.
// Byte stores compose as decorators, Kafka Streams style: a backend
// (state/memory, later state/pebble) at the bottom, wrapped by changelogging,
// caching and metering layers that implement the same KeyValueBytesStore
// interface, so a typed store sees metered(caching(changelogging(backend)))
// without knowing it.
//
// # Ownership and threading
//
// A Store instance belongs to one task: one partition of one sub-topology,
// and is used from that task's goroutine only: its record cache and its
// batch are not shared. Other goroutines (interactive queries) read the
// committed state through Engine.Reader, whose views are safe for concurrent
// use. A byte store standing alone, such as a memory.Store, allows reads
// concurrent with the owner's writes.
package state

import (
	"fmt"
	"reflect"
)

// Store is a state store instance owned by one task (one partition of one
// sub-topology). The task engine builds it with a Builder, flushes it at every
// commit and closes it when the task goes away.
type Store interface {
	// Name is the store's name, as given to its Builder.
	Name() string
	// Flush makes buffered writes durable. It is a no-op for memory.
	Flush() error
	// Close releases the store. Iterators must be closed first. Close is
	// idempotent; afterwards every method but Name and Close fails with
	// ErrClosed.
	Close() error
}

// Builder creates one Store per task. The engine calls Build once for every
// task that uses the store, possibly from several goroutines at once.
type Builder interface {
	// Name is the store's name. It must be stable across deployments: it
	// names the changelog topic (see ChangelogTopic).
	Name() string
	// Build returns a new, open store for the task described by ctx.
	Build(ctx BuildContext) (Store, error)
}

// BuildContext tells a Builder which task it builds for, and carries what the
// driver (the Kafka runtime or streamtest) provides to every store.
type BuildContext struct {
	// ApplicationID is the application's id, the prefix of its topics.
	ApplicationID string
	// TaskID names the task, e.g. "0_3" (sub-topology 0, partition 3).
	TaskID string
	// Partition is the input partition the task processes, which is also
	// the partition of the store's changelog topic.
	Partition int32
	// Batch is the task's pending batch: a store keeps its bytes in the
	// batch's view of its store-partition, so its writes commit with the
	// task's, atomically with their changelog offsets.
	Batch Batch
	// Changelog receives the writes of logged stores; nil turns
	// changelogging off for every store of the task.
	Changelog ChangelogWriter
	// Time tells stores the record and stream time (for changelog
	// timestamps and time-to-live).
	Time TimeSource
}

// ChangelogTopic returns the name of the changelog topic of a store:
// "<applicationID>-<store>-changelog". Typed stores also pass it as the topic
// to their serdes, so a schema-aware serde registers the changelog's subject.
func ChangelogTopic(applicationID, store string) string {
	return applicationID + "-" + store + "-changelog"
}

// Lookup fetches the store called name through get (typically a processor
// context's store lookup) and checks that it has type S, e.g.
//
//	counts, err := state.Lookup[*state.KeyValueStore[string, int64]](ctx.Store, "counts")
//
// The error names the store and wraps ErrUnknownStore when get does not
// know it, ErrWrongStoreType when it has another type.
func Lookup[S Store](get func(name string) (Store, bool), name string) (S, error) {
	var zero S
	if get == nil {
		return zero, fmt.Errorf("state: lookup store %q: nil lookup function: %w", name, ErrUnknownStore)
	}
	s, ok := get(name)
	if !ok || s == nil {
		return zero, fmt.Errorf("state: lookup store %q: %w (is it connected to this processor?)", name, ErrUnknownStore)
	}
	typed, ok := s.(S)
	if !ok {
		return zero, fmt.Errorf("state: lookup store %q: it is a %T, not a %v: %w",
			name, s, reflect.TypeFor[S](), ErrWrongStoreType)
	}
	return typed, nil
}
