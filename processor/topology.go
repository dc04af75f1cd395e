package processor

import (
	"fmt"
	"reflect"
	"regexp"
	"sync"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// NodeKind is what a node does.
type NodeKind int

const (
	// SourceNode reads and decodes records from one or more topics.
	SourceNode NodeKind = iota + 1
	// ProcessorNode runs a Processor.
	ProcessorNode
	// SinkNode encodes records and writes them to a topic.
	SinkNode
)

func (k NodeKind) String() string {
	switch k {
	case SourceNode:
		return "Source"
	case ProcessorNode:
		return "Processor"
	case SinkNode:
		return "Sink"
	}
	return fmt.Sprintf("NodeKind(%d)", int(k))
}

// Topology is a graph of sources, processors and sinks with their state
// stores. Build one by hand with the Add methods, or with the dsl package.
//
// The Add methods record problems instead of returning them; Validate reports
// them all, together with what can only be checked on the whole graph (unknown
// parents, cycles, type mismatches on edges, a sink feeding its own
// sub-topology). A Topology is not safe for concurrent modification; once
// built it may be shared by every task: Validate, which creating a task
// calls, may run on several goroutines at once, and a validated topology is
// read-only.
type Topology struct {
	nodes    []*node
	byName   map[string]*node
	stores   []*storeEntry
	internal map[string]*InternalTopic
	problems []error
	checked  *graph // set by Validate, cleared by any Add

	// validating serializes Validate, which every task's creation calls:
	// tasks created on several goroutines from a topology nobody validated
	// first would otherwise race on the graph it builds.
	validating sync.Mutex
}

type node struct {
	name     string
	kind     NodeKind
	order    int
	parents  []string
	stores   []string
	topics   []string       // source: topics; sink: one topic (empty when topicFn)
	pattern  *regexp.Regexp // source
	dynamic  bool           // sink whose topic is chosen per record
	in, out  reflect.Type   // record types taken and forwarded; nil for none
	children []*node        // set by Validate
	impl     nodeImpl
}

type storeEntry struct {
	builder state.Builder
	nodes   []string
}

// InternalTopic is a topic the application owns, such as a repartition topic.
// Its name in Kafka is "<application id>-<Name>".
type InternalTopic struct {
	Name string
	// Partitions is the partition count; 0 means derive it from the input
	// topics of the sub-topology that writes to it.
	Partitions int32
}

// NewTopology returns an empty topology.
func NewTopology() *Topology {
	return &Topology{byName: map[string]*node{}, internal: map[string]*InternalTopic{}}
}

func recordType[K, V any]() reflect.Type { return reflect.TypeFor[Record[K, V]]() }

func (t *Topology) addNode(n *node) {
	t.checked = nil
	if n.name == "" {
		t.problems = append(t.problems, &TopologyError{Kind: n.kind, Err: ErrEmptyName})
		return
	}
	if _, dup := t.byName[n.name]; dup {
		t.problems = append(t.problems, &TopologyError{Node: n.name, Kind: n.kind, Err: ErrDuplicateName})
		return
	}
	n.order = len(t.nodes)
	t.nodes = append(t.nodes, n)
	t.byName[n.name] = n
}

func (t *Topology) problem(name string, kind NodeKind, err error) {
	t.checked = nil
	t.problems = append(t.problems, &TopologyError{Node: name, Kind: kind, Err: err})
}

// AddSource adds a source node reading the given topics and decoding their
// records with keys and values. A topic may be read by one source only.
func (t *Topology) AddSource[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], topics ...string) {
	if len(topics) == 0 {
		t.problem(name, SourceNode, ErrNoTopic)
		return
	}
	for _, tp := range topics {
		if tp == "" {
			t.problem(name, SourceNode, ErrNoTopic)
			return
		}
	}
	if keys == nil || values == nil {
		t.problem(name, SourceNode, ErrNoSerde)
		return
	}
	t.addNode(&node{name: name, kind: SourceNode, topics: append([]string(nil), topics...),
		out: recordType[K, V](), impl: &sourceImpl[K, V]{keys: keys, values: values}})
}

// AddSourcePattern adds a source node reading every topic whose whole name
// matches pattern.
func (t *Topology) AddSourcePattern[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], pattern *regexp.Regexp) {
	if pattern == nil {
		t.problem(name, SourceNode, ErrNoTopic)
		return
	}
	if keys == nil || values == nil {
		t.problem(name, SourceNode, ErrNoSerde)
		return
	}
	anchored := regexp.MustCompile(`^(?:` + pattern.String() + `)$`)
	t.addNode(&node{name: name, kind: SourceNode, pattern: anchored,
		out: recordType[K, V](), impl: &sourceImpl[K, V]{keys: keys, values: values}})
}

// AddProcessor adds a processor node fed by the named parents, which must
// forward Record[KIn, VIn]. Parents may be added later; Validate checks them.
func (t *Topology) AddProcessor[KIn, VIn, KOut, VOut any](name string, supplier Supplier[KIn, VIn, KOut, VOut], parents ...string) {
	if supplier == nil {
		t.problem(name, ProcessorNode, ErrNoSupplier)
		return
	}
	t.addNode(&node{name: name, kind: ProcessorNode, parents: append([]string(nil), parents...),
		in: recordType[KIn, VIn](), out: recordType[KOut, VOut](),
		impl: &processorImpl[KIn, VIn, KOut, VOut]{supplier: supplier}})
}

// AddSink adds a sink node writing the records of its parents to topic.
func (t *Topology) AddSink[K, V any](name, topic string, keys serde.Serde[K], values serde.Serde[V], parents ...string) {
	if topic == "" {
		t.problem(name, SinkNode, ErrNoTopic)
		return
	}
	if keys == nil || values == nil {
		t.problem(name, SinkNode, ErrNoSerde)
		return
	}
	t.addNode(&node{name: name, kind: SinkNode, topics: []string{topic}, parents: append([]string(nil), parents...),
		in: recordType[K, V](), impl: &sinkImpl[K, V]{topic: topic, keys: keys, values: values}})
}

// AddSinkFunc adds a sink node that writes each record to the topic topicOf
// returns for it. An empty topic name is a processing error.
func (t *Topology) AddSinkFunc[K, V any](name string, topicOf func(Record[K, V]) string, keys serde.Serde[K], values serde.Serde[V], parents ...string) {
	if topicOf == nil {
		t.problem(name, SinkNode, ErrNoTopic)
		return
	}
	if keys == nil || values == nil {
		t.problem(name, SinkNode, ErrNoSerde)
		return
	}
	t.addNode(&node{name: name, kind: SinkNode, dynamic: true, parents: append([]string(nil), parents...),
		in: recordType[K, V](), impl: &sinkImpl[K, V]{topicOf: topicOf, keys: keys, values: values}})
}

// AddStore adds a state store and connects it to the named processors. Each
// task gets its own instance, built by b. Processors connected to one store
// always share a sub-topology.
func (t *Topology) AddStore(b state.Builder, processors ...string) {
	t.checked = nil
	if b == nil || b.Name() == "" {
		t.problems = append(t.problems, &TopologyError{Err: ErrNoStoreName})
		return
	}
	for _, s := range t.stores {
		if s.builder.Name() == b.Name() {
			t.problems = append(t.problems, &TopologyError{Store: b.Name(), Err: ErrDuplicateStore})
			return
		}
	}
	t.stores = append(t.stores, &storeEntry{builder: b})
	t.ConnectStore(b.Name(), processors...)
}

// ConnectStore connects an added store to more processors.
func (t *Topology) ConnectStore(store string, processors ...string) {
	t.checked = nil
	for _, s := range t.stores {
		if s.builder.Name() == store {
			s.nodes = append(s.nodes, processors...)
			return
		}
	}
	t.problems = append(t.problems, &TopologyError{Store: store, Err: ErrUnknownStore})
}

// AddInternalTopic declares a topic the application owns (a repartition
// topic). Sources and sinks name it by its short name; in Kafka it is
// "<application id>-<name>". partitions 0 derives the count from the writing
// sub-topology's inputs.
func (t *Topology) AddInternalTopic(name string, partitions int32) {
	t.checked = nil
	if name == "" {
		t.problems = append(t.problems, &TopologyError{Err: ErrNoTopic})
		return
	}
	if _, dup := t.internal[name]; dup {
		t.problems = append(t.problems, &TopologyError{Topic: name, Err: ErrDuplicateTopic})
		return
	}
	t.internal[name] = &InternalTopic{Name: name, Partitions: partitions}
}

// InternalTopics lists the declared internal topics, sorted by name.
func (t *Topology) InternalTopics() []InternalTopic {
	out := make([]InternalTopic, 0, len(t.internal))
	for _, it := range t.internal {
		out = append(out, *it)
	}
	sortInternal(out)
	return out
}

// TopicName is the name topic has in Kafka for the given application: the
// prefixed name for an internal topic, the name itself otherwise.
func (t *Topology) TopicName(applicationID, topic string) string {
	if _, ok := t.internal[topic]; ok {
		return applicationID + "-" + topic
	}
	return topic
}

// StoreBuilder returns the builder of an added store.
func (t *Topology) StoreBuilder(name string) (state.Builder, bool) {
	for _, s := range t.stores {
		if s.builder.Name() == name {
			return s.builder, true
		}
	}
	return nil, false
}
