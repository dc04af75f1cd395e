package dsl

import (
	"fmt"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

// GroupedStream is a stream grouped by key, ready to aggregate.
type GroupedStream[K, V any] struct {
	s    Stream[K, V]
	name string // names the repartition topic, if one is needed
}

// GroupByKey groups the stream by its key. When the key may have changed
// since the source (Map, SelectKey, FlatMap, Process), the aggregation first
// repartitions the stream through "<application id>-<name>-repartition",
// named by this Named option, else by the aggregation's (a Count sends
// partial counts through "<application id>-<name>-combined-repartition":
// see Count). Options: Named.
func (s Stream[K, V]) GroupByKey(opts ...Option) GroupedStream[K, V] {
	o := s.b.options("GroupByKey", opts, optName)
	return GroupedStream[K, V]{s: s, name: o.name}
}

// GroupBy groups the stream by a new key, which always repartitions it;
// keys is the new key's serde. Options: Named.
func (s Stream[K, V]) GroupBy[K2 any](f func(K, V) K2, keys serde.Serde[K2], opts ...Option) GroupedStream[K2, V] {
	o := s.b.options("GroupBy", opts, optName)
	if f == nil {
		s.b.fail("GroupBy", errNilFunc)
	}
	name := s.b.newName(&options{}, "KSTREAM-KEY-SELECT")
	rekeyed := add(s, name, func() processor.Processor[K, V, K2, V] {
		return &selectKeyProc[K, V, K2]{f: f}
	}, true)
	rekeyed.keys = keys
	return GroupedStream[K2, V]{s: rekeyed, name: o.name}
}

// input returns the stream to aggregate, through a repartition topic when
// the key may have changed. base is the aggregation's name.
func (g GroupedStream[K, V]) input(op, base string) Stream[K, V] {
	if !g.s.rekeyed {
		return g.s
	}
	name := g.name
	if name == "" {
		name = base
	}
	if !g.s.needSerdes(op) {
		return g.s
	}
	// A named grouping aggregated more than once shares its repartition topic.
	key := g.s.node + "\x00" + name
	if src, ok := g.s.b.repartitions[key]; ok {
		return Stream[K, V]{b: g.s.b, node: src, keys: g.s.keys, values: g.s.values}
	}
	out := g.s.repartitionAs(name, 0)
	if g.name != "" {
		g.s.b.repartitions[key] = out.node
	}
	return out
}

// Count counts the records of each key into a table. Records with a null
// key or value are dropped and counted. Options: Named (the processor and
// its store, whose changelog is "<application id>-<name>-changelog"),
// Materialized.
//
// When the grouping repartitions the stream (GroupBy, or GroupByKey after
// a key change), Count combines: each task counts its records per key
// before the repartition topic and sends the partial counts through it
// (topic "<application id>-<name>-combined-repartition", an int64 value),
// and the table adds them up. The table ends up the same as without
// combining, each update still counts a prefix of the key's records, and far
// fewer records cross the topic (one per key, task and commit interval
// instead of one per record). Partial counts reach the table when the task
// that made them commits: with exactly-once, records behind a repartition
// topic are visible only then anyway. Turning the record cache off,
// Materialized(state.WithCache(0)), asks for an update per record, and
// counts without combining.
func (g GroupedStream[K, V]) Count(opts ...Option) Table[K, int64] {
	o := g.s.b.options("Count", opts, optName|optMaterialized)
	if g.s.rekeyed {
		return combinedCount(g, o)
	}
	return aggregateParsed(g, "Count", o, func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 }, false, serde.Int64())
}

// Reduce combines the values of each key: the first value is the key's
// aggregate, and each later one is combined with it by f. Options: Named,
// Materialized.
func (g GroupedStream[K, V]) Reduce(f func(agg, value V) V, opts ...Option) Table[K, V] {
	if f == nil {
		g.s.b.fail("Reduce", errNilFunc)
	}
	return aggregateStream(g, "Reduce", nil, func(_ K, v V, agg V) V { return f(agg, v) }, true, g.s.values, opts)
}

// Aggregate folds the values of each key into an aggregate of type A,
// starting from init(); aggs is A's serde. Options: Named, Materialized.
func (g GroupedStream[K, V]) Aggregate[A any](init func() A, agg func(key K, value V, aggregate A) A, aggs serde.Serde[A], opts ...Option) Table[K, A] {
	if init == nil || agg == nil {
		g.s.b.fail("Aggregate", errNilFunc)
	}
	return aggregateStream(g, "Aggregate", init, agg, false, aggs, opts)
}

func aggregateStream[K, V, A any](g GroupedStream[K, V], op string, init func() A, agg func(K, V, A) A, reduce bool, aggs serde.Serde[A], opts []Option) Table[K, A] {
	o := g.s.b.options(op, opts, optName|optMaterialized)
	return aggregateParsed(g, op, o, init, agg, reduce, aggs)
}

// aggregateParsed is aggregateStream with its options parsed.
func aggregateParsed[K, V, A any](g GroupedStream[K, V], op string, o *options, init func() A, agg func(K, V, A) A, reduce bool, aggs serde.Serde[A]) Table[K, A] {
	if aggs == nil {
		g.s.b.fail(op, fmt.Errorf("no serde for the aggregate of %s", g.s.node))
	}
	name, store := g.aggregateNames(op, o)
	return aggregateInto(g.input(op, name), name, store, o, init, agg, reduce, aggs)
}

// aggregateNames returns the names of an aggregation's processor and store.
func (g GroupedStream[K, V]) aggregateNames(op string, o *options) (name, store string) {
	if o.name == "" && g.s.b.requireNames {
		g.s.b.fail(op, fmt.Errorf("of %s: unnamed, and the builder requires names", g.s.node))
	}
	return g.s.b.storeNames(o, "KSTREAM-AGGREGATE")
}

// aggregateInto adds the aggregation of in, processor name over store.
func aggregateInto[K, V, A any](in Stream[K, V], name, store string, o *options, init func() A, agg func(K, V, A) A, reduce bool, aggs serde.Serde[A]) Table[K, A] {
	b := in.b
	addStore(b, store, in.keys, aggs, o)
	b.topo.AddProcessor(name, func() processor.Processor[K, V, K, Change[A]] {
		return &streamAggProc[K, V, A]{store: store, init: init, agg: agg, reduce: reduce}
	}, in.node)
	b.topo.ConnectStore(store, name)
	return Table[K, A]{b: b, node: name, keys: in.keys, values: aggs, store: store}
}
