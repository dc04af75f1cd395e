package dsl

import (
	"fmt"
	"github.com/gregorstream/gregor/state"
	"math"
	"strings"
)

// Option configures one operator. Each operator documents which options it
// takes; passing another is reported by Build.
type Option interface {
	apply(*options)
}

type optKind int

const (
	optName optKind = 1 << iota
	optPartitions
	optStores
	optMaterialized
	optTimestamps
)

func (k optKind) String() string {
	switch k {
	case optName:
		return "Named"
	case optPartitions:
		return "NumPartitions"
	case optStores:
		return "WithStores"
	case optMaterialized:
		return "Materialized"
	case optTimestamps:
		return "WithTimestamps"
	}
	return "?"
}

type options struct {
	name       string
	partitions int // checked to fit an int32 (Kafka's partition count)
	store      []state.Option
	stores     []string
	timestamps Timestamps
	set        optKind
}

type optFunc struct {
	kind optKind
	f    func(*options)
}

func (o optFunc) apply(c *options) { c.set |= o.kind; o.f(c) }

// Named names an operator's node (and what derives from it: a repartition
// topic, a store). Every operator takes it.
func Named(name string) Option {
	return optFunc{optName, func(o *options) { o.name = name }}
}

// NumPartitions sets the partition count of a repartition topic. By default
// it is the partition count of the writing sub-topology's inputs. Repartition
// takes it.
func NumPartitions(n int) Option {
	return optFunc{optPartitions, func(o *options) { o.partitions = n }}
}

// Materialized configures the store of a table or an aggregation: its
// record cache (state.WithCache), changelog (state.WithoutLogging) and
// time-to-live (state.WithTTL). Table, Count, Reduce and Aggregate take it.
func Materialized(opts ...state.Option) Option {
	return optFunc{optMaterialized, func(o *options) { o.store = append(o.store, opts...) }}
}

// WithStores connects stores added with Builder.AddStore to a processor.
// Process takes it.
func WithStores(names ...string) Option {
	return optFunc{optStores, func(o *options) { o.stores = append(o.stores, names...) }}
}

// options applies opts, reporting any not in allowed.
func (b *Builder) options(op string, opts []Option, allowed optKind) *options {
	o := &options{}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		opt.apply(o)
	}
	if bad := o.set &^ allowed; bad != 0 {
		var names []string
		for k := optName; k <= optTimestamps; k <<= 1 {
			if bad&k != 0 {
				names = append(names, k.String())
			}
		}
		b.fail(op, fmt.Errorf("option %s does not apply", strings.Join(names, ", ")))
	}
	if o.set&optName != 0 && o.name == "" {
		b.fail(op, fmt.Errorf("Named with an empty name"))
	}
	if o.set&optPartitions != 0 && (o.partitions <= 0 || o.partitions > math.MaxInt32) {
		b.fail(op, fmt.Errorf("NumPartitions(%d): want 1 to %d", o.partitions, math.MaxInt32))
	}
	return o
}
