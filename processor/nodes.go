package processor

import (
	"fmt"
	"slices"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

type sourceImpl[K, V any] struct {
	keys   serde.Serde[K]
	values serde.Serde[V]
	ts     TimestampExtractor[K, V] // nil: the Kafka record's timestamp
}

func (s *sourceImpl[K, V]) build(b *build, children []any) (any, error) {
	cs, err := typedChildren[K, V](b.n, children)
	if err != nil {
		return nil, err
	}
	next := fanout(cs)
	name, env, ext := b.n.name, b.env, s.ts
	clock := env.SystemTime
	return func(raw RawRecord) error {
		k, err := s.keys.Deserialize(raw.Origin.Topic, raw.Key)
		if err != nil {
			return &DeserializationError{Node: name, Origin: raw.Origin, Key: true, Err: err}
		}
		v, err := s.values.Deserialize(raw.Origin.Topic, raw.Value)
		if err != nil {
			return &DeserializationError{Node: name, Origin: raw.Origin, Err: err}
		}
		r := Record[K, V]{Key: k, Value: v, NullKey: raw.Key == nil, NullValue: raw.Value == nil,
			Timestamp: raw.Timestamp, Headers: raw.Headers, Origin: raw.Origin}
		if ext != nil {
			ts, err := ext(r, clock)
			if err == nil && ts.UnixMilli() < 0 {
				err = fmt.Errorf("%w: %v", ErrNegativeTimestamp, ts)
			}
			if err != nil {
				return &TimestampError{Node: name, Origin: raw.Origin, Err: err}
			}
			r.Timestamp = ts.Truncate(time.Millisecond)
		}
		env.SetRecordTime(r.Timestamp)
		return next(r)
	}, nil
}

type sinkImpl[K, V any] struct {
	topic   string
	topicOf func(Record[K, V]) string
	keys    serde.Serde[K]
	values  serde.Serde[V]
}

func (s *sinkImpl[K, V]) build(b *build, _ []any) (any, error) {
	env, name := b.env, b.n.name
	topic := ""
	if s.topicOf == nil {
		topic = b.t.TopicName(env.ApplicationID(), s.topic)
	}
	return func(r Record[K, V]) error {
		tp := topic
		if s.topicOf != nil {
			if tp = s.topicOf(r); tp == "" {
				return &SerializationError{Node: name, Err: ErrNoTopic}
			}
		}
		var k, v []byte
		var err error
		if !r.NullKey {
			if k, err = s.keys.Serialize(tp, r.Key); err != nil {
				return &SerializationError{Node: name, Topic: tp, Key: true, Err: err}
			}
		}
		if !r.NullValue {
			if v, err = s.values.Serialize(tp, r.Value); err != nil {
				return &SerializationError{Node: name, Topic: tp, Err: err}
			}
		}
		return env.Send(tp, -1, RawRecord{Key: k, Value: v, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin})
	}, nil
}

type processorImpl[KIn, VIn, KOut, VOut any] struct {
	supplier Supplier[KIn, VIn, KOut, VOut]
}

func (p *processorImpl[KIn, VIn, KOut, VOut]) build(b *build, children []any) (any, error) {
	cs, err := typedChildren[KOut, VOut](b.n, children)
	if err != nil {
		return nil, err
	}
	proc := p.supplier()
	if proc == nil {
		return nil, ErrNoSupplier
	}
	ctx := &nodeContext[KOut, VOut]{env: b.env, node: b.n, children: cs, forward: fanout(cs)}
	name := b.n.name
	b.inst.inits = append(b.inst.inits, func() error {
		if err := proc.Init(ctx); err != nil {
			return fmt.Errorf("processor: init %q: %w", name, err)
		}
		return nil
	})
	b.inst.closers = append(b.inst.closers, func() error {
		if err := proc.Close(); err != nil {
			return fmt.Errorf("processor: close %q: %w", name, err)
		}
		return nil
	})
	return proc.Process, nil
}

// nodeContext is the Context of one processor node in one task.
type nodeContext[K, V any] struct {
	env      Env
	node     *node
	children []func(Record[K, V]) error
	forward  func(Record[K, V]) error
}

func (c *nodeContext[K, V]) Forward(r Record[K, V]) error { return c.forward(r) }

func (c *nodeContext[K, V]) ForwardTo(child string, r Record[K, V]) error {
	for i, n := range c.node.children {
		if n.name == child {
			return c.children[i](r)
		}
	}
	return fmt.Errorf("processor: %q forward to %q: %w", c.node.name, child, ErrUnknownChild)
}

func (c *nodeContext[K, V]) Schedule(interval time.Duration, typ PunctuationType, fn Punctuator) (Cancellable, error) {
	if interval < time.Millisecond {
		return nil, fmt.Errorf("processor: %q schedule %v: %w", c.node.name, interval, ErrBadInterval)
	}
	if fn == nil {
		return nil, fmt.Errorf("processor: %q schedule: nil punctuator", c.node.name)
	}
	return c.env.Schedule(c.node.name, interval, typ, fn)
}

func (c *nodeContext[K, V]) Store(name string) (state.Store, error) {
	if !slices.Contains(c.node.stores, name) {
		return nil, fmt.Errorf("processor: %q store %q: %w", c.node.name, name, ErrStoreNotAttached)
	}
	s, ok := c.env.Store(name)
	if !ok {
		return nil, fmt.Errorf("processor: %q store %q: %w", c.node.name, name, ErrUnknownStore)
	}
	return s, nil
}

func (c *nodeContext[K, V]) RecordMetadata() (RecordMetadata, bool) { return c.env.RecordMetadata() }
func (c *nodeContext[K, V]) CurrentStreamTime() time.Time           { return c.env.StreamTime() }
func (c *nodeContext[K, V]) CurrentSystemTime() time.Time           { return c.env.SystemTime() }
func (c *nodeContext[K, V]) RecordDropped(reason string)            { c.env.RecordDropped(c.node.name, reason) }
func (c *nodeContext[K, V]) RecordLate()                            { c.env.RecordLate(c.node.name) }
func (c *nodeContext[K, V]) Commit()                                { c.env.RequestCommit() }
func (c *nodeContext[K, V]) TaskID() TaskID                         { return c.env.TaskID() }
func (c *nodeContext[K, V]) ApplicationID() string                  { return c.env.ApplicationID() }
func (c *nodeContext[K, V]) NodeName() string                       { return c.node.name }
