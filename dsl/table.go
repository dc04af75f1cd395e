package dsl

import (
	"fmt"

	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// Table is a changelog stream read as a table: the latest value of each key.
// Its node forwards each update as a Change. Like Stream, it is a small value
// and operators return new tables.
type Table[K, V any] struct {
	b      *Builder
	node   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	// store is the name of the store holding the table's rows, "" when the
	// table is not materialized (a filter or mapping of another table).
	store string
	// win describes the windows of a windowed table (from a windowed
	// aggregation), nil otherwise. Operators that keep the keys (Filter,
	// MapValues, Suppress) pass it on.
	win *windowInfo
}

// Name returns the name of the node that produces the table.
func (t Table[K, V]) Name() string { return t.node }

// StoreName returns the name of the store that materializes the table, or ""
// when it is computed from its parent's updates.
func (t Table[K, V]) StoreName() string { return t.store }

// Table reads topic as a table, materialized in a timestamped key-value
// store named by Named (generated otherwise, see RequireNames). A record with
// a null value deletes its key; a record with a null key is dropped and
// counted. Options: Named, Materialized, WithTimestamps.
func (b *Builder) Table[K, V any](topic string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Table[K, V] {
	o := b.options("Table", opts, optName|optMaterialized|optTimestamps)
	if o.name == "" && b.requireNames {
		b.fail("Table", fmt.Errorf("of topic %q: unnamed, and the builder requires names", topic))
	}
	src := b.newName(&options{}, "KSTREAM-SOURCE")
	b.topo.AddSource(src, keys, values, topic)
	setTimestamps[K, V](b, "Table", src, o)
	name := b.newName(o, "KTABLE-SOURCE")
	store := name
	if o.name == "" {
		store = topic + "-STATE-STORE-" + name[len("KTABLE-SOURCE-"):]
	}
	b.topo.AddStore(state.TimestampedKeyValue(store, keys, values, o.store...))
	b.topo.AddProcessor(name, func() processor.Processor[K, V, K, Change[V]] {
		return &tableSourceProc[K, V]{materialized[K, V]{store: store}}
	}, src)
	b.topo.ConnectStore(store, name)
	return Table[K, V]{b: b, node: name, keys: keys, values: values, store: store}
}

// Filter keeps the rows for which pred is true: a row that stops satisfying
// it is deleted downstream. Options: Named.
func (t Table[K, V]) Filter(pred func(K, V) bool, opts ...Option) Table[K, V] {
	return t.filter("Filter", pred, false, opts)
}

// FilterNot drops the rows for which pred is true. Options: Named.
func (t Table[K, V]) FilterNot(pred func(K, V) bool, opts ...Option) Table[K, V] {
	return t.filter("FilterNot", pred, true, opts)
}

func (t Table[K, V]) filter(op string, pred func(K, V) bool, not bool, opts []Option) Table[K, V] {
	o := t.b.options(op, opts, optName)
	if pred == nil {
		t.b.fail(op, errNilFunc)
	}
	name := t.b.newName(o, "KTABLE-FILTER")
	t.b.topo.AddProcessor(name, func() processor.Processor[K, Change[V], K, Change[V]] {
		return &tableFilterProc[K, V]{pred: pred, not: not}
	}, t.node)
	return Table[K, V]{b: t.b, node: name, keys: t.keys, values: t.values}
}

// MapValues maps each row's value. Options: Named.
func (t Table[K, V]) MapValues[V2 any](f func(V) V2, opts ...Option) Table[K, V2] {
	o := t.b.options("MapValues", opts, optName)
	if f == nil {
		t.b.fail("MapValues", errNilFunc)
	}
	name := t.b.newName(o, "KTABLE-MAPVALUES")
	t.b.topo.AddProcessor(name, func() processor.Processor[K, Change[V], K, Change[V2]] {
		return &tableMapValuesProc[K, V, V2]{f: f}
	}, t.node)
	return Table[K, V2]{b: t.b, node: name, keys: t.keys, values: carry[V2](t.values)}
}

// WithSerdes sets the serdes used downstream for the table's keys and values.
func (t Table[K, V]) WithSerdes(keys serde.Serde[K], values serde.Serde[V]) Table[K, V] {
	t.keys, t.values = keys, values
	return t
}

// ToStream turns the table's updates into a stream: each update is a record
// with the new value; a delete is a record with a null value (a tombstone,
// see processor.Record). Options: Named.
func (t Table[K, V]) ToStream(opts ...Option) Stream[K, V] {
	o := t.b.options("ToStream", opts, optName)
	name := t.b.newName(o, "KTABLE-TOSTREAM")
	t.b.topo.AddProcessor(name, func() processor.Processor[K, Change[V], K, V] {
		return &toStreamProc[K, V]{}
	}, t.node)
	return Stream[K, V]{b: t.b, node: name, keys: t.keys, values: t.values}
}

// materialized is the part every processor that keeps a table's rows
// shares: the store, and the forwarding of the rows' updates.
type materialized[K, V any] struct {
	store string
	rows  *state.TimestampedKeyValueStore[K, V]
	out   tableForwarder[K, V]
	ctx   processor.Context[K, Change[V]]
}

func (m *materialized[K, V]) Init(ctx processor.Context[K, Change[V]]) error {
	rows, err := processor.StoreOf[*state.TimestampedKeyValueStore[K, V]](ctx, m.store)
	if err != nil {
		return err
	}
	m.rows, m.ctx = rows, ctx
	m.out.init(ctx, rows)
	return nil
}

func (m *materialized[K, V]) Close() error { return nil }

// update stores an aggregate's new value with the later of the record's
// and the old row's timestamps (Kafka Streams' rule) and forwards the change.
func (m *materialized[K, V]) update(key K, agg V, old state.ValueAndTimestamp[V], found bool, ts time.Time, h processor.Headers, o processor.Origin) error {
	if found && old.Timestamp.After(ts) {
		ts = old.Timestamp
	}
	if err := m.rows.Put(key, state.ValueAndTimestamp[V]{Value: agg, Timestamp: ts}); err != nil {
		return err
	}
	return m.out.forward(processor.Record[K, Change[V]]{Key: key, Timestamp: ts, Headers: h, Origin: o,
		Value: Change[V]{New: agg, HasNew: true, Old: old.Value, HasOld: found}})
}

// tableSourceProc materializes a table topic and forwards its updates.
type tableSourceProc[K, V any] struct {
	materialized[K, V]
}

func (p *tableSourceProc[K, V]) Process(r processor.Record[K, V]) error {
	if r.NullKey {
		p.ctx.RecordDropped("null key")
		return nil
	}
	old, found, err := p.rows.Get(r.Key)
	if err != nil {
		return err
	}
	if r.NullValue {
		if !found {
			return nil
		}
		if err := p.rows.Delete(r.Key); err != nil {
			return err
		}
		return p.out.forward(r.WithValue(Change[V]{Old: old.Value, HasOld: true}))
	}
	if err := p.rows.Put(r.Key, state.ValueAndTimestamp[V]{Value: r.Value, Timestamp: r.Timestamp}); err != nil {
		return err
	}
	return p.out.forward(r.WithValue(Change[V]{New: r.Value, HasNew: true, Old: old.Value, HasOld: found}))
}

// tableForwarder forwards a materialized table's updates: at once when its
// store has no cache, else when the cache flushes them (on commit or
// eviction), coalesced per key, as Kafka Streams' TimestampedTupleForwarder.
type tableForwarder[K, V any] struct {
	next   func(processor.Record[K, Change[V]]) error
	cached bool
}

func (f *tableForwarder[K, V]) init(ctx processor.Context[K, Change[V]], rows *state.TimestampedKeyValueStore[K, V]) {
	f.next = processor.Forwarder(ctx)
	f.cached = rows.SetFlushListener(func(k K, nv, ov state.ValueAndTimestamp[V], newNull, oldNull bool, written time.Time) error {
		ts := nv.Timestamp
		if newNull {
			ts = written
		}
		return f.next(processor.Record[K, Change[V]]{Key: k, Timestamp: ts,
			Value: Change[V]{New: nv.Value, HasNew: !newNull, Old: ov.Value, HasOld: !oldNull}})
	})
}

func (f *tableForwarder[K, V]) forward(r processor.Record[K, Change[V]]) error {
	if f.cached {
		return nil
	}
	return f.next(r)
}

type tableFilterProc[K, V any] struct {
	forward[K, Change[V]]
	pred func(K, V) bool
	not  bool
}

func (p *tableFilterProc[K, V]) Process(r processor.Record[K, Change[V]]) error {
	c := r.Value
	if c.HasNew && p.pred(r.Key, c.New) == p.not {
		var zero V
		c.New, c.HasNew = zero, false
	}
	if c.HasOld && p.pred(r.Key, c.Old) == p.not {
		var zero V
		c.Old, c.HasOld = zero, false
	}
	if !c.HasNew && !c.HasOld {
		return nil
	}
	return p.next(r.WithValue(c))
}

type tableMapValuesProc[K, V, V2 any] struct {
	forward[K, Change[V2]]
	f func(V) V2
}

func (p *tableMapValuesProc[K, V, V2]) Process(r processor.Record[K, Change[V]]) error {
	var c Change[V2]
	if r.Value.HasNew {
		c.New, c.HasNew = p.f(r.Value.New), true
	}
	if r.Value.HasOld {
		c.Old, c.HasOld = p.f(r.Value.Old), true
	}
	return p.next(r.WithValue(c))
}

type toStreamProc[K, V any] struct {
	forward[K, V]
}

func (p *toStreamProc[K, V]) Process(r processor.Record[K, Change[V]]) error {
	if !r.Value.HasNew {
		return p.next(r.WithValue(r.Value.New).WithNullValue())
	}
	return p.next(r.WithValue(r.Value.New))
}
