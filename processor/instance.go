package processor

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gregorstream/gregor/state"
)

// Env is what a running task provides to the nodes of its sub-topology. The
// task engine (runtime/task) implements it; it is called only from the task's
// goroutine.
type Env interface {
	ApplicationID() string
	TaskID() TaskID
	StreamTime() time.Time
	SystemTime() time.Time
	// SetRecordTime sets the timestamp of the record being processed: a
	// source calls it once it has decoded the record (and extracted its
	// timestamp), before the first processor. Stream time advances to it.
	SetRecordTime(ts time.Time)
	// RecordMetadata is the origin of the record being processed, if any.
	RecordMetadata() (RecordMetadata, bool)
	Schedule(node string, interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error)
	// Store returns the task's instance of a store.
	Store(name string) (state.Store, bool)
	RequestCommit()
	// RecordDropped counts a record a node dropped, by reason.
	RecordDropped(node, reason string)
	// RecordLate counts a record a node dropped as too late for its window.
	RecordLate(node string)
	// Send writes an encoded record to a topic (its name in Kafka). partition
	// -1 lets the collector choose by key, as Kafka's default partitioner does.
	Send(topic string, partition int32, rec RawRecord) error
}

// Instance is one task's instantiation of a sub-topology: typed processors
// chained by functions, reached through their sources.
type Instance struct {
	sources []instSource
	byTopic map[string]func(RawRecord) error
	inits   []func() error
	closers []func() error
}

type instSource struct {
	node  *node
	entry func(RawRecord) error
}

// Instantiate builds the nodes of sub-topology sub for one task. The topology
// must be valid. Call Init on the result before the first record.
func (t *Topology) Instantiate(sub int, env Env) (*Instance, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if sub < 0 || sub >= len(t.checked.subs) {
		return nil, fmt.Errorf("processor: instantiate: no sub-topology %d", sub)
	}
	inst := &Instance{byTopic: map[string]func(RawRecord) error{}}
	entries := map[*node]any{}
	nodes := t.checked.subs[sub].Nodes
	for i := len(nodes) - 1; i >= 0; i-- { // children before parents
		n := t.byName[nodes[i]]
		children := make([]any, len(n.children))
		for j, c := range n.children {
			children[j] = entries[c]
		}
		b := &build{t: t, n: n, env: env, inst: inst}
		entry, err := n.impl.build(b, children)
		if err != nil {
			return nil, fmt.Errorf("processor: instantiate node %q: %w", n.name, err)
		}
		entries[n] = entry
		if n.kind == SourceNode {
			src := instSource{node: n, entry: entry.(func(RawRecord) error)}
			inst.sources = append(inst.sources, src)
			for _, tp := range n.topics {
				inst.byTopic[t.TopicName(env.ApplicationID(), tp)] = src.entry
			}
		}
	}
	slices.Reverse(inst.inits) // parents first, in topological order
	return inst, nil
}

// Init initializes every processor, parents first.
func (i *Instance) Init() error {
	for _, f := range i.inits {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Source returns the entry of the source that reads topic (its name in Kafka).
func (i *Instance) Source(topic string) (func(RawRecord) error, bool) {
	if f, ok := i.byTopic[topic]; ok {
		return f, f != nil
	}
	for _, s := range i.sources {
		if s.node.pattern != nil && s.node.pattern.MatchString(topic) {
			i.byTopic[topic] = s.entry
			return s.entry, true
		}
	}
	i.byTopic[topic] = nil
	return nil, false
}

// Close closes every processor and returns their errors joined.
func (i *Instance) Close() error {
	var errs []error
	for _, f := range i.closers {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type build struct {
	t    *Topology
	n    *node
	env  Env
	inst *Instance
}

type nodeImpl interface {
	// build returns the node's entry: func(RawRecord) error for a source,
	// func(Record[K, V]) error for the others. children are the entries of
	// the node's children, in order.
	build(b *build, children []any) (any, error)
}

func typedChildren[K, V any](n *node, children []any) ([]func(Record[K, V]) error, error) {
	out := make([]func(Record[K, V]) error, len(children))
	for i, c := range children {
		f, ok := c.(func(Record[K, V]) error)
		if !ok { // Validate compares types, so this is a bug in this package.
			return nil, fmt.Errorf("child %q does not take %s: %w", n.children[i].name, recordType[K, V](), ErrTypeMismatch)
		}
		out[i] = f
	}
	return out, nil
}

// fanout calls every child in order.
func fanout[K, V any](children []func(Record[K, V]) error) func(Record[K, V]) error {
	switch len(children) {
	case 0:
		return func(Record[K, V]) error { return nil }
	case 1:
		return children[0]
	}
	return func(r Record[K, V]) error {
		for _, c := range children {
			if err := c(r); err != nil {
				return err
			}
		}
		return nil
	}
}
