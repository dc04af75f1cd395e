// Package dsl is gregor's fluent, typed builder of topologies.
//
// A Builder makes streams from topics; each operator is a method of a
// concrete generic type that returns the next stream, type-changing
// operators included, so a topology reads as one chain:
//
//	b := dsl.NewBuilder()
//	b.Stream("orders", serde.String(), serde.JSON[Order]()).
//		Filter(func(_ string, o Order) bool { return o.Total > 100 }).
//		MapValues(func(o Order) string { return o.Customer }).
//		To("big-order-customers")
//	topo, err := b.Build()
//
// Build returns a processor.Topology: the same graph the Processor API builds
// by hand, run by the task engine as a chain of typed functions.
//
// Operator functions return no error. A panic in one is recovered by the task
// and reported as a processing error naming the record's topic, partition and
// offset; for a fallible step, use Process.
package dsl

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// KeyValue is a key and a value, as FlatMap returns them.
type KeyValue[K, V any] = processor.KeyValue[K, V]

// Pair returns a KeyValue.
func Pair[K, V any](key K, value V) KeyValue[K, V] { return KeyValue[K, V]{Key: key, Value: value} }

// Builder builds a topology. Its zero value is not usable: call NewBuilder.
// A Builder is not safe for concurrent use.
type Builder struct {
	topo         *processor.Topology
	index        int
	requireNames bool
	errs         []error
	// repartitions maps a named grouping (its stream's node and name) to the
	// source node reading its repartition topic.
	repartitions map[string]string
	// combiners maps a named grouping counted through a combiner to it.
	combiners map[string]*combiner
	// stores are the WithStores connections of Process nodes, made by
	// Build so that AddStore may come before or after the Process.
	stores []storeUse
}

type storeUse struct{ store, node string }

// BuilderOption configures a Builder.
type BuilderOption func(*Builder)

// RequireNames makes Build fail for every repartition (and, later, every
// stateful operator) that has no Named option. Generated names number the
// nodes in the order they were added, so adding an operator upstream renames
// the internal topics and stores downstream of it; named ones never move.
func RequireNames() BuilderOption { return func(b *Builder) { b.requireNames = true } }

// NewBuilder returns an empty Builder.
func NewBuilder(opts ...BuilderOption) *Builder {
	b := &Builder{topo: processor.NewTopology(), repartitions: map[string]string{}, combiners: map[string]*combiner{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Build validates the topology and returns it. Problems found while adding
// operators are reported here, joined, together with the topology's own.
func (b *Builder) Build() (*processor.Topology, error) {
	for _, u := range b.stores {
		if _, ok := b.topo.StoreBuilder(u.store); !ok {
			b.fail("Process", fmt.Errorf("%s: WithStores(%q): no such store; add it with Builder.AddStore", u.node, u.store))
			continue
		}
		b.topo.ConnectStore(u.store, u.node)
	}
	b.stores = nil
	err := b.topo.Validate()
	if len(b.errs) > 0 || err != nil {
		return nil, errors.Join(append(b.errs, err)...)
	}
	return b.topo, nil
}

// newName returns the name to use: the Named option's, or a generated one in
// Kafka Streams' style, "KSTREAM-FILTER-0000000001".
func (b *Builder) newName(o *options, prefix string) string {
	if o.name != "" {
		return o.name
	}
	n := fmt.Sprintf("%s-%010d", prefix, b.index)
	b.index++
	return n
}

func (b *Builder) fail(op string, err error) {
	b.errs = append(b.errs, fmt.Errorf("dsl: %s: %w", op, err))
}

// Stream reads one or more topics as a stream, decoding keys and values with
// the given serdes. Options: Named, WithTimestamps.
func (b *Builder) Stream[K, V any](topic string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Stream[K, V] {
	return b.Streams([]string{topic}, keys, values, opts...)
}

// Streams reads several topics as one stream. Options: Named,
// WithTimestamps.
func (b *Builder) Streams[K, V any](topics []string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Stream[K, V] {
	o := b.options("Stream", opts, optName|optTimestamps)
	name := b.newName(o, "KSTREAM-SOURCE")
	b.topo.AddSource(name, keys, values, topics...)
	setTimestamps[K, V](b, "Stream", name, o)
	return Stream[K, V]{b: b, node: name, keys: keys, values: values}
}

// StreamPattern reads every topic whose whole name matches pattern.
// Options: Named, WithTimestamps.
func (b *Builder) StreamPattern[K, V any](pattern *regexp.Regexp, keys serde.Serde[K], values serde.Serde[V], opts ...Option) Stream[K, V] {
	o := b.options("StreamPattern", opts, optName|optTimestamps)
	name := b.newName(o, "KSTREAM-SOURCE")
	b.topo.AddSourcePattern(name, keys, values, pattern)
	setTimestamps[K, V](b, "StreamPattern", name, o)
	return Stream[K, V]{b: b, node: name, keys: keys, values: values}
}

// AddStore adds a state store, for processors that name it in Process with
// WithStores, before or after them.
func (b *Builder) AddStore(s state.Builder) {
	b.topo.AddStore(s)
}
