package dsl

import (
	"fmt"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// Combining: a Count whose grouping repartitions the stream counts each
// task's records per key before the repartition topic, and sends the
// partial counts through it; the aggregation behind the topic adds them up.
// A word count's lines then cross the repartition topic as one record per
// distinct word and commit interval instead of one per word.
//
// The table ends up as counting every record behind the topic makes it,
// and every update is the count of a prefix of the key's records: the
// partial counts of an interval are produced in the interval's transaction
// (or before its offsets commit, at-least-once), where a reader of the topic
// with exactly-once sees the records of an interval only once it commits
// anyway, and the counts' record cache already coalesces each key's updates
// until a commit. What changes is the repartition topic's content (a key
// and an int64 count, in "<name>-combined-repartition") and which updates
// the coalescing keeps. A Count with the record cache off
// (Materialized(state.WithCache(0))) asks for every update: its combiner
// passes each record on at once, as a partial count of 1, through the same
// topic. The topology's topics and stores are the same either way, so the
// cache size can change between two versions of a running application.
// Reduce and Aggregate, whose functions need not be associative, never
// combine.

// maxCombined bounds the keys a task's combiner holds: past it, the partial
// counts go out before the commit.
const maxCombined = 1 << 16

// combineStore is a task's buffer of partial counts: a state.Store, so that
// the task flushes it at every commit, before the transaction commits. It
// is not logged: it is empty after each commit.
type combineStore[K any] struct {
	name   string
	keys   serde.Appender[K]
	topic  string // passed to the key serde
	index  map[string]int
	counts []partialCount[K]
	buf    []byte
	emit   func(partialCount[K]) error
	closed bool
}

type partialCount[K any] struct {
	key K
	n   int64
	ts  time.Time // the latest record's
}

var _ state.Store = (*combineStore[string])(nil)

func (s *combineStore[K]) Name() string { return s.name }

// add counts a record of key at ts.
func (s *combineStore[K]) add(key K, ts time.Time) error {
	if s.closed {
		return fmt.Errorf("combine %q: %w", s.name, state.ErrClosed)
	}
	b, err := s.keys.AppendSerialize(s.buf[:0], s.topic, key)
	if err != nil {
		return fmt.Errorf("combine %q: encode key: %w", s.name, err)
	}
	if b == nil {
		return fmt.Errorf("combine %q: %w", s.name, state.ErrNullKey)
	}
	s.buf = b
	if i, ok := s.index[string(b)]; ok {
		c := &s.counts[i]
		c.n++
		if ts.After(c.ts) {
			c.ts = ts
		}
		return nil
	}
	s.index[string(b)] = len(s.counts)
	s.counts = append(s.counts, partialCount[K]{key: key, n: 1, ts: ts})
	if len(s.counts) >= maxCombined {
		return s.Flush()
	}
	return nil
}

// Flush sends the partial counts downstream, in the order their keys first
// came, and empties the buffer.
func (s *combineStore[K]) Flush() error {
	if s.closed {
		return fmt.Errorf("combine %q: %w", s.name, state.ErrClosed)
	}
	counts := s.counts
	clear(s.index)
	s.counts = s.counts[:0]
	for _, c := range counts {
		if err := s.emit(c); err != nil {
			return err
		}
	}
	clear(counts)
	return nil
}

// Close drops what the buffer holds: a task closes without committing only
// when its input is read again.
func (s *combineStore[K]) Close() error {
	s.closed = true
	s.index, s.counts = nil, nil
	return nil
}

// combineBuilder builds a combineStore per task.
type combineBuilder[K any] struct {
	name string
	keys serde.Serde[K]
}

func (b combineBuilder[K]) Name() string { return b.name }

func (b combineBuilder[K]) Build(ctx state.BuildContext) (state.Store, error) {
	return &combineStore[K]{
		name:  b.name,
		keys:  serde.AppenderOf(b.keys),
		topic: ctx.ApplicationID + "-" + b.name,
		index: map[string]int{},
	}, nil
}

// combineProc counts records into its task's combineStore, which forwards
// the partial counts when the task commits; with passThrough set (a Count
// of the grouping has its record cache off) it forwards every record at
// once as a partial count of 1.
type combineProc[K, V any] struct {
	store       string
	passThrough *bool // shared by the Counts of one grouping; read when the task starts
	pass        bool
	buf         *combineStore[K]
	ctx         processor.Context[K, int64]
}

func (p *combineProc[K, V]) Init(ctx processor.Context[K, int64]) error {
	s, err := processor.StoreOf[*combineStore[K]](ctx, p.store)
	if err != nil {
		return err
	}
	p.buf, p.ctx, p.pass = s, ctx, *p.passThrough
	s.emit = func(c partialCount[K]) error {
		return ctx.Forward(processor.Record[K, int64]{Key: c.key, Value: c.n, Timestamp: c.ts})
	}
	return nil
}

func (p *combineProc[K, V]) Process(r processor.Record[K, V]) error {
	if droppedNull(p.ctx, r) {
		return nil
	}
	if p.pass {
		return p.ctx.Forward(processor.Record[K, int64]{Key: r.Key, Value: 1, Timestamp: r.Timestamp, Headers: r.Headers})
	}
	return p.buf.add(r.Key, r.Timestamp)
}

func (p *combineProc[K, V]) Close() error { return nil }

// combinedCount is Count through a combiner (see above): the partial counts
// cross "<name>-combined-repartition", and the aggregation adds them up.
func combinedCount[K, V any](g GroupedStream[K, V], o *options) Table[K, int64] {
	b := g.s.b
	name, store := g.aggregateNames("Count", o)
	base := g.name
	if base == "" {
		base = name
	}
	if g.s.keys == nil {
		b.fail("Count", fmt.Errorf("no key serde for %s; set one with WithSerdes", g.s.node))
		return Table[K, int64]{b: b, node: name, store: store}
	}
	// A named grouping counted more than once shares its combiner and
	// topic; the combiner passes records through if any of its Counts
	// has the record cache off.
	passThrough := state.CacheBytes(o.store...) == 0
	key := g.s.node + "\x00combined\x00" + base
	c, ok := b.combiners[key]
	if !ok {
		c = &combiner{pass: new(bool)}
		// The combiner and its buffer are named after the topic, so that
		// a named grouping keeps its names across versions of the topology.
		name := base + "-combine"
		pass := c.pass
		b.topo.AddProcessor(name, func() processor.Processor[K, V, K, int64] {
			return &combineProc[K, V]{store: name, passThrough: pass}
		}, g.s.node)
		b.topo.AddStore(combineBuilder[K]{name: name, keys: g.s.keys}, name)
		partial := Stream[K, int64]{b: b, node: name, keys: g.s.keys, values: serde.Int64()}
		c.src = partial.repartitionAs(base+"-combined", 0).node
		if g.name != "" {
			b.combiners[key] = c
		}
	}
	*c.pass = *c.pass || passThrough
	src := c.src
	in := Stream[K, int64]{b: b, node: src, keys: g.s.keys, values: serde.Int64()}
	return aggregateInto(in, name, store, o, func() int64 { return 0 },
		func(_ K, n, total int64) int64 { return total + n }, false, serde.Int64())
}

// combiner is a grouping's combiner as built: the source node of its
// repartition topic, and whether it passes records through.
type combiner struct {
	src  string
	pass *bool
}
