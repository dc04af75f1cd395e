package dsl

import (
	"fmt"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

// Stream is a record stream: every record is an independent event. It is a
// small value; operators return new streams and never modify the receiver.
type Stream[K, V any] struct {
	b    *Builder
	node string
	// keys and values are the serdes known for this stream's types (from its
	// source, carried through operators that keep the type, or set with
	// WithSerdes); nil when unknown.
	keys   serde.Serde[K]
	values serde.Serde[V]
	// rekeyed is set once the key may have changed since the source: grouping
	// and joins must repartition first.
	rekeyed bool
}

// Name returns the name of the node that produces the stream.
func (s Stream[K, V]) Name() string { return s.node }

// WithSerdes sets the serdes that sinks and repartition topics downstream use
// for this stream's keys and values. Operators keep a known serde as long as
// the type does not change.
func (s Stream[K, V]) WithSerdes(keys serde.Serde[K], values serde.Serde[V]) Stream[K, V] {
	s.keys, s.values = keys, values
	return s
}

// carry returns s as a serde of another type when the types are the same.
func carry[T, S any](s serde.Serde[S]) serde.Serde[T] {
	if t, ok := any(s).(serde.Serde[T]); ok {
		return t
	}
	return nil
}

// add adds a processor node fed by s and returns the stream it produces.
func add[K, V, K2, V2 any](s Stream[K, V], name string, supplier processor.Supplier[K, V, K2, V2], rekeyed bool) Stream[K2, V2] {
	s.b.topo.AddProcessor(name, supplier, s.node)
	return Stream[K2, V2]{b: s.b, node: name, keys: carry[K2](s.keys), values: carry[V2](s.values), rekeyed: rekeyed}
}

// Filter keeps the records for which pred is true. Options: Named.
func (s Stream[K, V]) Filter(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.filter("Filter", "KSTREAM-FILTER", pred, false, opts)
}

// FilterNot drops the records for which pred is true. Options: Named.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool, opts ...Option) Stream[K, V] {
	return s.filter("FilterNot", "KSTREAM-FILTER", pred, true, opts)
}

func (s Stream[K, V]) filter(op, prefix string, pred func(K, V) bool, not bool, opts []Option) Stream[K, V] {
	o := s.b.options(op, opts, optName)
	if pred == nil {
		s.b.fail(op, errNilFunc)
	}
	return add(s, s.b.newName(o, prefix), func() processor.Processor[K, V, K, V] {
		return &filterProc[K, V]{pred: pred, not: not}
	}, s.rekeyed)
}

// Map replaces each record's key and value. The key may change, so grouping
// or joining the result repartitions it. Options: Named.
func (s Stream[K, V]) Map[K2, V2 any](f func(K, V) (K2, V2), opts ...Option) Stream[K2, V2] {
	o := s.b.options("Map", opts, optName)
	if f == nil {
		s.b.fail("Map", errNilFunc)
	}
	return add(s, s.b.newName(o, "KSTREAM-MAP"), func() processor.Processor[K, V, K2, V2] {
		return &mapProc[K, V, K2, V2]{f: f}
	}, true)
}

// MapValues replaces each record's value; the key stays. Options: Named.
func (s Stream[K, V]) MapValues[V2 any](f func(V) V2, opts ...Option) Stream[K, V2] {
	if f == nil {
		s.b.fail("MapValues", errNilFunc)
		return s.mapValues[V2]("MapValues", nil, opts)
	}
	return s.mapValues("MapValues", func(_ K, v V) V2 { return f(v) }, opts)
}

// MapValuesWithKey replaces each record's value with f of its key and value.
// Options: Named.
func (s Stream[K, V]) MapValuesWithKey[V2 any](f func(K, V) V2, opts ...Option) Stream[K, V2] {
	if f == nil {
		s.b.fail("MapValuesWithKey", errNilFunc)
	}
	return s.mapValues("MapValuesWithKey", f, opts)
}

func (s Stream[K, V]) mapValues[V2 any](op string, f func(K, V) V2, opts []Option) Stream[K, V2] {
	o := s.b.options(op, opts, optName)
	return add(s, s.b.newName(o, "KSTREAM-MAPVALUES"), func() processor.Processor[K, V, K, V2] {
		return &mapValuesProc[K, V, V2]{f: f}
	}, s.rekeyed)
}

// FlatMap replaces each record with zero or more records. Options: Named.
func (s Stream[K, V]) FlatMap[K2, V2 any](f func(K, V) []KeyValue[K2, V2], opts ...Option) Stream[K2, V2] {
	o := s.b.options("FlatMap", opts, optName)
	if f == nil {
		s.b.fail("FlatMap", errNilFunc)
	}
	return add(s, s.b.newName(o, "KSTREAM-FLATMAP"), func() processor.Processor[K, V, K2, V2] {
		return &flatMapProc[K, V, K2, V2]{f: f}
	}, true)
}

// FlatMapValues replaces each record with zero or more records of the same
// key. Options: Named.
func (s Stream[K, V]) FlatMapValues[V2 any](f func(V) []V2, opts ...Option) Stream[K, V2] {
	o := s.b.options("FlatMapValues", opts, optName)
	if f == nil {
		s.b.fail("FlatMapValues", errNilFunc)
	}
	return add(s, s.b.newName(o, "KSTREAM-FLATMAPVALUES"), func() processor.Processor[K, V, K, V2] {
		return &flatMapValuesProc[K, V, V2]{f: f}
	}, s.rekeyed)
}

// SelectKey sets each record's key to f of its key and value. Grouping or
// joining the result repartitions it. Options: Named.
func (s Stream[K, V]) SelectKey[K2 any](f func(K, V) K2, opts ...Option) Stream[K2, V] {
	o := s.b.options("SelectKey", opts, optName)
	if f == nil {
		s.b.fail("SelectKey", errNilFunc)
	}
	return add(s, s.b.newName(o, "KSTREAM-KEY-SELECT"), func() processor.Processor[K, V, K2, V] {
		return &selectKeyProc[K, V, K2]{f: f}
	}, true)
}

// Peek calls f for each record and passes the record on. Options: Named.
func (s Stream[K, V]) Peek(f func(K, V), opts ...Option) Stream[K, V] {
	o := s.b.options("Peek", opts, optName)
	if f == nil {
		s.b.fail("Peek", errNilFunc)
	}
	return add(s, s.b.newName(o, "KSTREAM-PEEK"), func() processor.Processor[K, V, K, V] {
		return &peekProc[K, V]{f: f, pass: true}
	}, s.rekeyed)
}

// Foreach calls f for each record; the stream ends there. Options: Named.
func (s Stream[K, V]) Foreach(f func(K, V), opts ...Option) {
	o := s.b.options("Foreach", opts, optName)
	if f == nil {
		s.b.fail("Foreach", errNilFunc)
	}
	add(s, s.b.newName(o, "KSTREAM-FOREACH"), func() processor.Processor[K, V, K, V] {
		return &peekProc[K, V]{f: f}
	}, s.rekeyed)
}

// Merge returns a stream of the records of s and other. Records of the two
// reach the next operator in timestamp order within a task. Options: Named.
func (s Stream[K, V]) Merge(other Stream[K, V], opts ...Option) Stream[K, V] {
	o := s.b.options("Merge", opts, optName)
	if other.b != s.b {
		s.b.fail("Merge", fmt.Errorf("streams of different builders"))
		return s
	}
	name := s.b.newName(o, "KSTREAM-MERGE")
	s.b.topo.AddProcessor(name, func() processor.Processor[K, V, K, V] { return &passProc[K, V]{} }, s.node, other.node)
	keys, values := s.keys, s.values
	if keys == nil {
		keys = other.keys
	}
	if values == nil {
		values = other.values
	}
	return Stream[K, V]{b: s.b, node: name, keys: keys, values: values, rekeyed: s.rekeyed || other.rekeyed}
}

// Process runs a Processor on each record: the way into the Processor API,
// with punctuation, headers, record metadata and state stores. Options:
// Named, WithStores.
func (s Stream[K, V]) Process[K2, V2 any](supplier processor.Supplier[K, V, K2, V2], opts ...Option) Stream[K2, V2] {
	o := s.b.options("Process", opts, optName|optStores)
	if supplier == nil {
		s.b.fail("Process", errNilFunc)
	}
	name := s.b.newName(o, "KSTREAM-PROCESSOR")
	out := add(s, name, supplier, true)
	for _, st := range o.stores {
		s.b.stores = append(s.b.stores, storeUse{store: st, node: name})
	}
	return out
}
