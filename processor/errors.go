package processor

import (
	"errors"
	"fmt"
	"strings"
)

// Topology errors, reported by Validate inside a *TopologyError.
var (
	ErrEmptyName        = errors.New("empty node name")
	ErrDuplicateName    = errors.New("duplicate node name")
	ErrUnknownParent    = errors.New("unknown parent")
	ErrDuplicateParent  = errors.New("parent named twice")
	ErrUnknownNode      = errors.New("no such node")
	ErrNoParent         = errors.New("no parent")
	ErrSourceParent     = errors.New("a source cannot have parents")
	ErrSinkParent       = errors.New("a sink cannot be a parent")
	ErrCycle            = errors.New("cycle")
	ErrTypeMismatch     = errors.New("record types do not match")
	ErrNoTopic          = errors.New("no topic")
	ErrDuplicateTopic   = errors.New("topic already registered")
	ErrNoSerde          = errors.New("nil serde")
	ErrNoSupplier       = errors.New("nil processor supplier")
	ErrNoStoreName      = errors.New("store without a name")
	ErrDuplicateStore   = errors.New("duplicate store name")
	ErrUnknownStore     = errors.New("unknown store")
	ErrStoreOnSource    = errors.New("stores connect to processors only")
	ErrSinkToOwnSource  = errors.New("sink writes to a source topic of its own sub-topology")
	ErrEmptyTopology    = errors.New("no source")
	ErrNotValidated     = errors.New("topology not validated")
	ErrUnknownChild     = errors.New("not a child of this node")
	ErrStoreNotAttached = errors.New("store not connected to this node")
	ErrBadInterval      = errors.New("punctuation interval under a millisecond")
)

// TopologyError is one problem found in a Topology. Err is one of the Err
// sentinels of this package.
type TopologyError struct {
	Node   string // the node concerned, if any
	Kind   NodeKind
	Parent string // for ErrUnknownParent and ErrTypeMismatch
	Store  string // for store errors
	Topic  string // for topic errors
	Detail string // more context, e.g. the types or the cycle
	Err    error
}

func (e *TopologyError) Error() string {
	var b strings.Builder
	b.WriteString("processor: topology: ")
	if e.Node != "" {
		if e.Kind != 0 {
			b.WriteString(strings.ToLower(e.Kind.String()) + " ")
		}
		fmt.Fprintf(&b, "%q: ", e.Node)
	}
	if e.Parent != "" {
		fmt.Fprintf(&b, "parent %q: ", e.Parent)
	}
	if e.Store != "" {
		fmt.Fprintf(&b, "store %q: ", e.Store)
	}
	if e.Topic != "" {
		fmt.Fprintf(&b, "topic %q: ", e.Topic)
	}
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(" (" + e.Detail + ")")
	}
	return b.String()
}

func (e *TopologyError) Unwrap() error { return e.Err }

// DeserializationError is returned by a source that cannot decode a record.
type DeserializationError struct {
	Node   string // the source node
	Origin Origin
	Key    bool // the key failed, not the value
	Err    error
}

func (e *DeserializationError) Error() string {
	part := "value"
	if e.Key {
		part = "key"
	}
	return fmt.Sprintf("processor: source %q: deserialize %s of topic %q partition %d offset %d: %v",
		e.Node, part, e.Origin.Topic, e.Origin.Partition, e.Origin.Offset, e.Err)
}

func (e *DeserializationError) Unwrap() error { return e.Err }

// SerializationError is returned by a sink that cannot encode a record.
type SerializationError struct {
	Node  string // the sink node
	Topic string
	Key   bool
	Err   error
}

func (e *SerializationError) Error() string {
	if e.Topic == "" && errors.Is(e.Err, ErrNoTopic) {
		return fmt.Sprintf("processor: sink %q: the topic function chose no topic", e.Node)
	}
	part := "value"
	if e.Key {
		part = "key"
	}
	return fmt.Sprintf("processor: sink %q: serialize %s for topic %q: %v", e.Node, part, e.Topic, e.Err)
}

func (e *SerializationError) Unwrap() error { return e.Err }
