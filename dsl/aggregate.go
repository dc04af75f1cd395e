package dsl

import (
	"fmt"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// storeNames returns an aggregation's processor and store names: both the
// Named option's, or generated ones.
func (b *Builder) storeNames(o *options, prefix string) (name, store string) {
	name = b.newName(o, prefix)
	if o.name != "" {
		return name, name
	}
	return name, prefix + "-STATE-STORE-" + name[len(prefix)+1:]
}

func addStore[K, A any](b *Builder, store string, keys serde.Serde[K], aggs serde.Serde[A], o *options) {
	if keys == nil {
		b.fail("aggregate", fmt.Errorf("store %q: no key serde; set one with WithSerdes", store))
		return
	}
	if aggs == nil {
		return
	}
	b.topo.AddStore(state.TimestampedKeyValue(store, keys, aggs, o.store...))
}

// streamAggProc aggregates a grouped stream (Kafka Streams' KStreamAggregate
// and KStreamReduce).
type streamAggProc[K, V, A any] struct {
	materialized[K, A]
	init   func() A
	agg    func(K, V, A) A
	reduce bool // the first value is the aggregate
}

// droppedNull drops, counting it, a record that a stream aggregation cannot
// take: one with a null key or value.
func droppedNull[K, V any](ctx interface{ RecordDropped(reason string) }, r processor.Record[K, V]) bool {
	switch {
	case r.NullKey:
		ctx.RecordDropped("null key")
	case r.NullValue:
		ctx.RecordDropped("null value")
	default:
		return false
	}
	return true
}

func (p *streamAggProc[K, V, A]) Process(r processor.Record[K, V]) error {
	if droppedNull(p.ctx, r) {
		return nil
	}
	old, found, err := p.rows.Get(r.Key)
	if err != nil {
		return err
	}
	var agg A
	switch {
	case found:
		agg = p.agg(r.Key, r.Value, old.Value)
	case p.reduce:
		agg = any(r.Value).(A) // A is V for Reduce
	default:
		agg = p.agg(r.Key, r.Value, p.init())
	}
	return p.update(r.Key, agg, old, found, r.Timestamp, r.Headers, r.Origin)
}

// GroupedTable is a table regrouped by a new key, ready to aggregate with an
// adder and a subtractor.
type GroupedTable[K, V any] struct {
	b      *Builder
	node   string // forwards Record[K, Change[V]] under the new keys
	keys   serde.Serde[K]
	values serde.Serde[V]
	name   string
}

// GroupBy regroups the table's rows under new keys: f maps a row to its new
// key and value, with serdes keys and values for the repartition topic. An
// update that moves a row from one group to another subtracts its old value
// from the old group and adds its new value to the new one. Options: Named
// (names the repartition topic).
func (t Table[K, V]) GroupBy[K2, V2 any](f func(K, V) (K2, V2), keys serde.Serde[K2], values serde.Serde[V2], opts ...Option) GroupedTable[K2, V2] {
	o := t.b.options("GroupBy", opts, optName)
	if f == nil {
		t.b.fail("GroupBy", errNilFunc)
	}
	name := t.b.newName(&options{}, "KTABLE-SELECT")
	t.b.topo.AddProcessor(name, func() processor.Processor[K, Change[V], K2, Change[V2]] {
		return &tableSelectProc[K, V, K2, V2]{f: f}
	}, t.node)
	return GroupedTable[K2, V2]{b: t.b, node: name, keys: keys, values: values, name: o.name}
}

// tableSelectProc maps each update to its group: the old value, if any, as a
// subtraction from the old value's group, then the new value, if any, as an
// addition to the new value's group (Kafka Streams' KTableRepartitionMap).
type tableSelectProc[K, V, K2, V2 any] struct {
	forward[K2, Change[V2]]
	f func(K, V) (K2, V2)
}

func (p *tableSelectProc[K, V, K2, V2]) Process(r processor.Record[K, Change[V]]) error {
	if r.Value.HasOld {
		k, v := p.f(r.Key, r.Value.Old)
		if err := p.next(r.WithKeyValue(k, Change[V2]{Old: v, HasOld: true})); err != nil {
			return err
		}
	}
	if r.Value.HasNew {
		k, v := p.f(r.Key, r.Value.New)
		return p.next(r.WithKeyValue(k, Change[V2]{New: v, HasNew: true}))
	}
	return nil
}

// Count counts the rows in each group. Options: Named, Materialized.
func (g GroupedTable[K, V]) Count(opts ...Option) Table[K, int64] {
	return aggregateTable(g, "Count", func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, _ V, n int64) int64 { return n - 1 }, false, serde.Int64(), opts)
}

// Reduce combines the values of each group: adder adds a row's value to the
// aggregate, subtractor removes one. The first value is the aggregate.
// Options: Named, Materialized.
func (g GroupedTable[K, V]) Reduce(adder, subtractor func(agg, value V) V, opts ...Option) Table[K, V] {
	if adder == nil || subtractor == nil {
		g.b.fail("Reduce", errNilFunc)
	}
	return aggregateTable(g, "Reduce", nil,
		func(_ K, v V, agg V) V { return adder(agg, v) },
		func(_ K, v V, agg V) V { return subtractor(agg, v) }, true, g.values, opts)
}

// Aggregate folds the rows of each group into an aggregate of type A:
// adder adds a row's value, subtractor removes one. Options: Named,
// Materialized.
func (g GroupedTable[K, V]) Aggregate[A any](init func() A, adder, subtractor func(key K, value V, aggregate A) A, aggs serde.Serde[A], opts ...Option) Table[K, A] {
	if init == nil || adder == nil || subtractor == nil {
		g.b.fail("Aggregate", errNilFunc)
	}
	return aggregateTable(g, "Aggregate", init, adder, subtractor, false, aggs, opts)
}

func aggregateTable[K, V, A any](g GroupedTable[K, V], op string, init func() A, add, sub func(K, V, A) A, reduce bool, aggs serde.Serde[A], opts []Option) Table[K, A] {
	b := g.b
	o := b.options(op, opts, optName|optMaterialized)
	if o.name == "" && b.requireNames {
		b.fail(op, fmt.Errorf("of %s: unnamed, and the builder requires names", g.node))
	}
	if aggs == nil {
		b.fail(op, fmt.Errorf("no serde for the aggregate of %s", g.node))
	}
	name, store := b.storeNames(o, "KTABLE-AGGREGATE")
	base := g.name
	if base == "" {
		base = name
	}
	if g.keys == nil || g.values == nil {
		b.fail(op, fmt.Errorf("GroupBy of %s: nil key or value serde", g.node))
		return Table[K, A]{b: b, node: name, keys: g.keys, values: aggs, store: store}
	}
	changes := Stream[K, Change[V]]{b: b, node: g.node, keys: g.keys, values: changeSerde[V]{g.values}}
	in := changes.repartitionAs(base, 0)
	addStore(b, store, g.keys, aggs, o)
	b.topo.AddProcessor(name, func() processor.Processor[K, Change[V], K, Change[A]] {
		return &tableAggProc[K, V, A]{materialized: materialized[K, A]{store: store}, init: init, add: add, sub: sub, reduce: reduce}
	}, in.node)
	b.topo.ConnectStore(store, name)
	return Table[K, A]{b: b, node: name, keys: g.keys, values: aggs, store: store}
}

// tableAggProc aggregates a regrouped table (Kafka Streams' KTableAggregate
// and KTableReduce): subtract the old value, then add the new one.
type tableAggProc[K, V, A any] struct {
	materialized[K, A]
	init     func() A
	add, sub func(K, V, A) A
	reduce   bool
}

func (p *tableAggProc[K, V, A]) Process(r processor.Record[K, Change[V]]) error {
	if r.NullKey {
		p.ctx.RecordDropped("null key")
		return nil
	}
	old, found, err := p.rows.Get(r.Key)
	if err != nil {
		return err
	}
	// As Kafka Streams' KTableAggregate: an old value is subtracted only
	// from an aggregate that exists (never from init()); a new value is
	// added to the aggregate, to init() or, for Reduce, becomes it.
	agg, changed := old.Value, false
	if r.Value.HasOld && found {
		agg, changed = p.sub(r.Key, r.Value.Old, agg), true
	}
	if r.Value.HasNew {
		switch {
		case found:
			agg = p.add(r.Key, r.Value.New, agg)
		case p.reduce: // the first value of a Reduce
			agg = any(r.Value.New).(A)
		default:
			agg = p.add(r.Key, r.Value.New, p.init())
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return p.update(r.Key, agg, old, found, r.Timestamp, r.Headers, r.Origin)
}
