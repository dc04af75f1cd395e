package dsl

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/windows"
)

// EmitStrategy says when a windowed aggregation forwards its results, as
// Kafka Streams' EmitStrategy.
type EmitStrategy int

const (
	// OnWindowUpdate forwards every update of a window's result (the
	// default), coalesced per window by the record cache between commits
	// when the store has one.
	OnWindowUpdate EmitStrategy = iota
	// OnWindowClose forwards one result per window, its final one, once
	// stream time passes the window's end plus grace; nothing before.
	// Records for a closed window are late: dropped and counted.
	OnWindowClose
)

func (e EmitStrategy) String() string {
	switch e {
	case OnWindowUpdate:
		return "on window update"
	case OnWindowClose:
		return "on window close"
	}
	return fmt.Sprintf("EmitStrategy(%d)", int(e))
}

// Marks the windowed aggregations keep in their stores: the processor's
// observed stream time (the largest record timestamp it has seen, which
// decides lateness) and, for emit-final, the close time up to which it has
// emitted. Both are written at commit, with the store's changelog, so a
// restarted task decides lateness and emission as the one before it did.
const (
	markStreamTime = "stream-time"
	markEmitted    = "emitted"
)

// TimeWindowedStream is a grouped stream with time windows (tumbling,
// hopping or sliding), ready to aggregate per key and window.
type TimeWindowedStream[K, V any] struct {
	g       GroupedStream[K, V]
	time    *windows.TimeWindows
	sliding *windows.SlidingWindows
	emit    EmitStrategy
}

// WindowedBy aggregates the grouped stream per key and time window:
// tumbling or hopping windows (windows.Tumbling, windows.Hopping):
//
//	counts := dsl.WindowedBy(views.GroupByKey(), windows.Tumbling(time.Minute, 10*time.Second)).
//		Emit(dsl.OnWindowClose).
//		Count(dsl.Named("views-per-minute"))
//
// It is a function, not a method of GroupedStream, as are SlidingWindowedBy
// and SessionWindowedBy: a windowed aggregation's table is keyed by
// windows.Windowed[K], and Go rejects methods whose results wrap their
// type's parameters in a cycle (a grouped windowed table could be windowed
// again, without end).
func WindowedBy[K, V any](g GroupedStream[K, V], w windows.TimeWindows) TimeWindowedStream[K, V] {
	if err := w.Validate(); err != nil {
		g.s.b.fail("WindowedBy", err)
	}
	return TimeWindowedStream[K, V]{g: g, time: &w}
}

// SlidingWindowedBy aggregates the grouped stream per key and sliding
// window (windows.Sliding): Kafka Streams' sliding windows, aligned to the
// records, both bounds inclusive, each window holding a distinct set of
// records.
func SlidingWindowedBy[K, V any](g GroupedStream[K, V], w windows.SlidingWindows) TimeWindowedStream[K, V] {
	if err := w.Validate(); err != nil {
		g.s.b.fail("SlidingWindowedBy", err)
	}
	return TimeWindowedStream[K, V]{g: g, sliding: &w}
}

// Emit sets when results are forwarded: OnWindowUpdate (the default) or
// OnWindowClose.
func (w TimeWindowedStream[K, V]) Emit(e EmitStrategy) TimeWindowedStream[K, V] {
	w.emit = e
	return w
}

// Count counts the records of each key and window. Records with a null key
// or value are dropped and counted; records later than the grace period
// are dropped and counted as late. Options: Named, Materialized.
func (w TimeWindowedStream[K, V]) Count(opts ...Option) Table[windows.Windowed[K], int64] {
	return timeWindowAggregate(w, "Count", func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 }, false, serde.Int64(), opts)
}

// Reduce combines the values of each key and window: the first value is
// the window's aggregate, later ones are combined with it by f. Options:
// Named, Materialized.
func (w TimeWindowedStream[K, V]) Reduce(f func(agg, value V) V, opts ...Option) Table[windows.Windowed[K], V] {
	if f == nil {
		w.g.s.b.fail("Reduce", errNilFunc)
	}
	return timeWindowAggregate(w, "Reduce", nil, func(_ K, v V, agg V) V { return f(agg, v) }, true, w.g.s.values, opts)
}

// Aggregate folds the values of each key and window into an aggregate of
// type A, starting from init(); aggs is A's serde. Options: Named,
// Materialized.
func (w TimeWindowedStream[K, V]) Aggregate[A any](init func() A, agg func(key K, value V, aggregate A) A, aggs serde.Serde[A], opts ...Option) Table[windows.Windowed[K], A] {
	if init == nil || agg == nil {
		w.g.s.b.fail("Aggregate", errNilFunc)
	}
	return timeWindowAggregate(w, "Aggregate", init, agg, false, aggs, opts)
}

func timeWindowAggregate[K, V, A any](w TimeWindowedStream[K, V], op string, init func() A, agg func(K, V, A) A, reduce bool, aggs serde.Serde[A], opts []Option) Table[windows.Windowed[K], A] {
	g := w.g
	b := g.s.b
	o := b.options(op, opts, optName|optMaterialized)
	if aggs == nil {
		b.fail(op, fmt.Errorf("no serde for the aggregate of %s", g.s.node))
	}
	name, store := g.aggregateNames(op, o)
	in := g.input(op, name)
	var (
		size, retention time.Duration
		info            *windowInfo
	)
	switch {
	case w.time != nil:
		tw := *w.time
		size, retention = tw.Size(), tw.Retention()
		info = windowKeys[K](&windowInfo{closeTime: tw.CloseTime, suppressAfter: tw.Grace()})
	case w.sliding != nil:
		sw := *w.sliding
		// A record reads the windows up to twice the time difference back.
		size, retention = sw.TimeDifference(), 2*sw.TimeDifference()+sw.Grace()
		info = windowKeys[K](&windowInfo{closeTime: sw.CloseTime, suppressAfter: sw.Grace()})
	}
	var keys serde.Serde[windows.Windowed[K]]
	if in.keys != nil {
		keys = serde.TimeWindowed(in.keys, size)
	}
	out := Table[windows.Windowed[K], A]{b: b, node: name, keys: keys, values: aggs, store: store, win: info}
	if in.keys == nil {
		b.fail(op, fmt.Errorf("store %q: no key serde; set one with WithSerdes", store))
		return out
	}
	if aggs == nil || size <= 0 {
		return out
	}
	sopts := append([]state.Option{state.WithRetention(retention)}, o.store...)
	b.topo.AddStore(state.TimestampedWindow(store, in.keys, aggs, size, sopts...))
	emitFinal := w.emit == OnWindowClose
	if w.time != nil {
		tw := *w.time
		b.topo.AddProcessor(name, func() processor.Processor[K, V, windows.Windowed[K], Change[A]] {
			return &timeWindowAggProc[K, V, A]{windowAgg: windowAgg[K, A]{store: store, emitFinal: emitFinal, size: tw.Size().Milliseconds()},
				w: tw, init: init, agg: agg, reduce: reduce}
		}, in.node)
	} else {
		sw := *w.sliding
		b.topo.AddProcessor(name, func() processor.Processor[K, V, windows.Windowed[K], Change[A]] {
			return &slidingWindowAggProc[K, V, A]{windowAgg: windowAgg[K, A]{store: store, emitFinal: emitFinal, size: sw.TimeDifference().Milliseconds(), inclusive: true},
				w: sw, init: init, agg: agg, reduce: reduce}
		}, in.node)
	}
	b.topo.ConnectStore(store, name)
	return out
}

// windowAgg is what the time-window aggregations share: the store, the
// observed stream time, forwarding (eager through the record cache, or
// final) and the emit-final bookkeeping.
type windowAgg[K, A any] struct {
	store     string
	emitFinal bool
	size      int64 // ms: a window's end is its start plus size
	inclusive bool  // window ends are inclusive (sliding windows)

	rows   *state.WindowStore[K, state.ValueAndTimestamp[A]]
	ctx    processor.Context[windows.Windowed[K], Change[A]]
	next   func(processor.Record[windows.Windowed[K], Change[A]]) error
	cached bool

	observed int64 // the largest record timestamp seen, math.MinInt64 before any
	emitted  int64 // emit-final: windows ending at or before it were emitted
	// pending holds the ends of windows not yet emitted (emit-final), so
	// that a record scans the store only when a window closes.
	pending endHeap
	lastEnd int64 // the end last pushed on pending, to skip repeats
}

func (p *windowAgg[K, A]) init(ctx processor.Context[windows.Windowed[K], Change[A]]) error {
	rows, err := processor.StoreOf[*state.WindowStore[K, state.ValueAndTimestamp[A]]](ctx, p.store)
	if err != nil {
		return err
	}
	p.rows, p.ctx, p.next = rows, ctx, processor.Forwarder(ctx)
	p.observed, p.emitted, p.lastEnd = math.MinInt64, math.MinInt64, math.MinInt64
	if t, ok, err := rows.Mark(markStreamTime); err != nil {
		return err
	} else if ok {
		p.observed = t.UnixMilli()
	}
	if !p.emitFinal {
		p.cached = rows.SetFlushListener(func(k windows.Windowed[K], nv, ov state.ValueAndTimestamp[A], newNull, oldNull bool, written time.Time) error {
			ts := nv.Timestamp
			if newNull {
				ts = written
			}
			return p.next(processor.Record[windows.Windowed[K], Change[A]]{Key: k, Timestamp: ts,
				Value: Change[A]{New: nv.Value, HasNew: !newNull, Old: ov.Value, HasOld: !oldNull}})
		})
		return nil
	}
	if t, ok, err := rows.Mark(markEmitted); err != nil {
		return err
	} else if ok {
		p.emitted = t.UnixMilli()
	}
	// The windows not yet emitted: a restarted task rebuilds what it
	// knew from the store.
	it := rows.All()
	for it.Next() {
		if end := p.end(it.Key().Window.Start.UnixMilli()); end > p.emitted {
			p.push(end)
		}
	}
	return it.Close()
}

func (p *windowAgg[K, A]) Close() error { return nil }

func (p *windowAgg[K, A]) end(start int64) int64 { return start + p.size }

func (p *windowAgg[K, A]) push(end int64) {
	if end != p.lastEnd {
		heap.Push(&p.pending, end)
		p.lastEnd = end
	}
}

// observe advances the observed stream time to ts and returns it.
func (p *windowAgg[K, A]) observe(ts int64) (int64, error) {
	if ts > p.observed {
		p.observed = ts
		if err := p.rows.SetMark(markStreamTime, time.UnixMilli(ts)); err != nil {
			return 0, err
		}
	}
	return p.observed, nil
}

// late counts a record dropped as too late and logs it at debug level.
func late[K, V any](ctx interface{ RecordLate() }, r processor.Record[K, V], what string, closeTime int64) {
	ctx.RecordLate()
	if slog.Default().Enabled(context.Background(), slog.LevelDebug) {
		slog.Debug("dsl: dropping a record later than its window's grace period",
			"operator", what, "topic", r.Origin.Topic, "partition", r.Origin.Partition, "offset", r.Origin.Offset,
			"timestamp", r.Timestamp.UnixMilli(), "close_time", closeTime)
	}
}

// update stores a window's new aggregate, with the later of the record's
// and the old aggregate's timestamps, and forwards the update unless the
// record cache or emit-final will.
func (p *windowAgg[K, A]) update(key K, start int64, agg A, old state.ValueAndTimestamp[A], found bool, r processor.Record[K, any]) error {
	ts := r.Timestamp
	if found && old.Timestamp.After(ts) {
		ts = old.Timestamp
	}
	return p.put(key, start, state.ValueAndTimestamp[A]{Value: agg, Timestamp: ts}, old.Value, found, r)
}

// put stores v as the window's aggregate and forwards it as update does.
func (p *windowAgg[K, A]) put(key K, start int64, v state.ValueAndTimestamp[A], old A, hadOld bool, r processor.Record[K, any]) error {
	if err := p.rows.Put(key, v, time.UnixMilli(start)); err != nil {
		return err
	}
	if p.emitFinal {
		if !hadOld {
			p.push(p.end(start))
		}
		return nil
	}
	if p.cached {
		return nil
	}
	return p.next(processor.Record[windows.Windowed[K], Change[A]]{Key: p.windowed(key, start), Timestamp: v.Timestamp,
		Headers: r.Headers, Origin: r.Origin, Value: Change[A]{New: v.Value, HasNew: true, Old: old, HasOld: hadOld}})
}

func (p *windowAgg[K, A]) windowed(key K, start int64) windows.Windowed[K] {
	return windows.Windowed[K]{Key: key, Window: windows.Window{Start: time.UnixMilli(start).UTC(), End: time.UnixMilli(p.end(start)).UTC()}}
}

// emitClosed forwards, once each, the final results of the windows whose
// end is at or before closed, in the store's order (by segment, key and
// start), each with its aggregate's timestamp and the headers of the record
// that closed it.
func (p *windowAgg[K, A]) emitClosed(closed int64, h processor.Headers) error {
	if !p.emitFinal || closed <= p.emitted || len(p.pending) == 0 || p.pending[0] > closed {
		return nil
	}
	for len(p.pending) > 0 && p.pending[0] <= closed {
		heap.Pop(&p.pending)
	}
	from := int64(0)
	if p.emitted != math.MinInt64 {
		from = max(from, p.emitted-p.size+1)
	}
	it := p.rows.FetchAll(time.UnixMilli(from), time.UnixMilli(closed-p.size))
	for it.Next() {
		v := it.Value()
		if err := p.next(processor.Record[windows.Windowed[K], Change[A]]{Key: it.Key(), Timestamp: v.Timestamp, Headers: h,
			Value: Change[A]{New: v.Value, HasNew: true}}); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	p.emitted = closed
	return p.rows.SetMark(markEmitted, time.UnixMilli(closed))
}

// endHeap is a min-heap of window ends.
type endHeap []int64

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h endHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// timeWindowAggProc aggregates per key and tumbling or hopping window
// (Kafka Streams' KStreamWindowAggregate).
type timeWindowAggProc[K, V, A any] struct {
	windowAgg[K, A]
	w      windows.TimeWindows
	init   func() A
	agg    func(K, V, A) A
	reduce bool
}

func (p *timeWindowAggProc[K, V, A]) Init(ctx processor.Context[windows.Windowed[K], Change[A]]) error {
	return p.windowAgg.init(ctx)
}

func (p *timeWindowAggProc[K, V, A]) Process(r processor.Record[K, V]) error {
	if droppedNull(p.ctx, r) {
		return nil
	}
	ts := r.Timestamp.UnixMilli()
	observed, err := p.observe(ts)
	if err != nil {
		return err
	}
	closeTime := observed - p.w.Grace().Milliseconds()
	// Emit-final emits before the record's windows are put: a put may
	// move the store's retention past the windows that close now.
	if err := p.emitClosed(closeTime, r.Headers); err != nil {
		return err
	}
	meta := processor.Record[K, any]{Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin}
	dropped := false
	for _, win := range p.w.WindowsFor(r.Timestamp) {
		if win.End.UnixMilli() <= closeTime {
			dropped = true
			continue
		}
		start := win.Start.UnixMilli()
		old, found, err := p.rows.Get(r.Key, win.Start)
		if err != nil {
			return err
		}
		var agg A
		switch {
		case found:
			agg = p.agg(r.Key, r.Value, old.Value)
		case p.reduce:
			agg = any(r.Value).(A)
		default:
			agg = p.agg(r.Key, r.Value, p.init())
		}
		if err := p.update(r.Key, start, agg, old, found, meta); err != nil {
			return err
		}
	}
	if dropped {
		late(p.ctx, r, p.ctx.NodeName(), closeTime)
	}
	return nil
}

// slidingWindowAggProc aggregates per key and sliding window (Kafka
// Streams' KStreamSlidingWindowAggregate): each record creates its left
// window [t - d, t] and, when a later record falls within d of it, its
// right window [t + 1, t + 1 + d], and updates every existing window that
// contains it; records before d (the epoch) share the window [0, d].
type slidingWindowAggProc[K, V, A any] struct {
	windowAgg[K, A]
	w      windows.SlidingWindows
	init   func() A
	agg    func(K, V, A) A
	reduce bool
	// droppedLate is set when the record was too late for one of its
	// windows.
	droppedLate bool
}

func (p *slidingWindowAggProc[K, V, A]) Init(ctx processor.Context[windows.Windowed[K], Change[A]]) error {
	return p.windowAgg.init(ctx)
}

// window is a window read from the store.
type window[A any] struct {
	start int64
	v     state.ValueAndTimestamp[A]
}

func (p *slidingWindowAggProc[K, V, A]) Process(r processor.Record[K, V]) error {
	if droppedNull(p.ctx, r) {
		return nil
	}
	ts := r.Timestamp.UnixMilli()
	observed, err := p.observe(ts)
	if err != nil {
		return err
	}
	d := p.w.TimeDifference().Milliseconds()
	closeTime := observed - p.w.Grace().Milliseconds()
	// A sliding window [s, e] is final once closeTime passes e. As for
	// time windows, emit-final emits before the record's puts.
	if err := p.emitClosed(closeTime-1, r.Headers); err != nil {
		return err
	}
	if ts+1+d <= closeTime {
		late(p.ctx, r, p.ctx.NodeName(), closeTime)
		return nil
	}
	p.droppedLate = false
	if ts < d {
		err = p.processEarly(r, ts, d, closeTime)
	} else {
		err = p.processInOrder(r, ts, d, closeTime)
	}
	if err != nil {
		return err
	}
	if p.droppedLate {
		late(p.ctx, r, p.ctx.NodeName(), closeTime)
	}
	return nil
}

// fetch returns key's windows starting in [from, to].
func (p *slidingWindowAggProc[K, V, A]) fetch(key K, from, to int64) ([]window[A], error) {
	it := p.rows.Fetch(key, time.UnixMilli(from), time.UnixMilli(to))
	var out []window[A]
	for it.Next() {
		out = append(out, window[A]{start: it.Start().UnixMilli(), v: it.Value()})
	}
	return out, it.Close()
}

func (p *slidingWindowAggProc[K, V, A]) processInOrder(r processor.Record[K, V], ts, d, closeTime int64) error {
	ws, err := p.fetch(r.Key, max(0, ts-2*d), ts+1)
	if err != nil {
		return err
	}
	starts := map[int64]bool{}
	var leftAgg, rightAgg *state.ValueAndTimestamp[A]
	leftCreated, rightCreated := false, false
	prev, hasPrev := int64(0), false
	for i := range ws {
		w := &ws[i]
		starts[w.start] = true
		end, maxTs := w.start+d, w.v.Timestamp.UnixMilli()
		switch {
		case end < ts:
			leftAgg, prev, hasPrev = &w.v, maxTs, true
		case end == ts:
			leftCreated = true
			if maxTs < ts {
				prev, hasPrev = maxTs, true
			}
			if err := p.updateWindow(r, w.start, &w.v, closeTime); err != nil {
				return err
			}
		case end > ts && w.start <= ts:
			rightAgg = &w.v
			if err := p.updateWindow(r, w.start, &w.v, closeTime); err != nil {
				return err
			}
		case w.start == ts+1:
			rightCreated = true
		default:
			return fmt.Errorf("dsl: sliding windows of %s: unexpected window starting at %d for a record at %d", p.ctx.NodeName(), w.start, ts)
		}
	}
	// The previous record's right window, if it holds this record.
	if hasPrev && !starts[prev+1] && prev+1+d >= ts {
		if err := p.updateWindow(r, prev+1, nil, closeTime); err != nil {
			return err
		}
	}
	if !leftCreated {
		var base *state.ValueAndTimestamp[A]
		if hasPrev && ts-d <= prev {
			base = leftAgg
		}
		if err := p.createWindow(r, ts-d, base, closeTime); err != nil {
			return err
		}
	}
	if !rightCreated && rightAgg != nil && rightAgg.Timestamp.UnixMilli() > ts {
		return p.put(r.Key, ts+1, *rightAgg, *new(A), false, processor.Record[K, any]{Timestamp: rightAgg.Timestamp, Headers: r.Headers, Origin: r.Origin})
	}
	return nil
}

func (p *slidingWindowAggProc[K, V, A]) processEarly(r processor.Record[K, V], ts, d, closeTime int64) error {
	ws, err := p.fetch(r.Key, 0, ts+1)
	if err != nil {
		return err
	}
	starts := map[int64]bool{}
	var combined, rightAgg *state.ValueAndTimestamp[A]
	rightCreated := false
	prev, hasPrev := int64(0), false
	for i := range ws {
		w := &ws[i]
		starts[w.start] = true
		maxTs := w.v.Timestamp.UnixMilli()
		switch {
		case w.start == 0:
			combined = &w.v
			if maxTs < ts {
				prev, hasPrev = maxTs, true
			}
		case w.start <= ts:
			rightAgg = &w.v
			if err := p.updateWindow(r, w.start, &w.v, closeTime); err != nil {
				return err
			}
		case w.start == ts+1:
			rightCreated = true
		default:
			return fmt.Errorf("dsl: sliding windows of %s: unexpected window starting at %d for an early record at %d", p.ctx.NodeName(), w.start, ts)
		}
	}
	// Without a right window found, the combined window holds only records
	// of this record's right window, when it holds later ones at all.
	if rightAgg == nil && combined != nil && combined.Timestamp.UnixMilli() > ts {
		rightAgg = combined
	}
	if !rightCreated && rightAgg != nil && rightAgg.Timestamp.UnixMilli() > ts {
		if err := p.put(r.Key, ts+1, *rightAgg, *new(A), false, processor.Record[K, any]{Timestamp: rightAgg.Timestamp, Headers: r.Headers, Origin: r.Origin}); err != nil {
			return err
		}
	}
	if hasPrev && !starts[prev+1] {
		if err := p.updateWindow(r, prev+1, nil, closeTime); err != nil {
			return err
		}
	}
	if combined == nil {
		return p.createWindow(r, 0, nil, closeTime)
	}
	return p.updateWindow(r, 0, combined, closeTime)
}

// createWindow creates the window starting at start from base's aggregate
// (or init()), adding the record; the window's timestamp is the record's.
func (p *slidingWindowAggProc[K, V, A]) createWindow(r processor.Record[K, V], start int64, base *state.ValueAndTimestamp[A], closeTime int64) error {
	if base == nil {
		return p.updateWindow(r, start, nil, closeTime)
	}
	seed := state.ValueAndTimestamp[A]{Value: base.Value, Timestamp: r.Timestamp}
	return p.addTo(r, start, &seed, true, closeTime)
}

// updateWindow adds the record to the window starting at start, whose
// aggregate is old (nil for a new window), unless the window is closed.
func (p *slidingWindowAggProc[K, V, A]) updateWindow(r processor.Record[K, V], start int64, old *state.ValueAndTimestamp[A], closeTime int64) error {
	return p.addTo(r, start, old, false, closeTime)
}

// addTo adds the record to old, the aggregate of the window starting at
// start, or of a new window seeded with it (seeded).
func (p *slidingWindowAggProc[K, V, A]) addTo(r processor.Record[K, V], start int64, old *state.ValueAndTimestamp[A], seeded bool, closeTime int64) error {
	if start+p.size < closeTime {
		p.droppedLate = true
		return nil
	}
	var agg A
	ts := r.Timestamp
	found := old != nil
	switch {
	case found:
		agg = p.agg(r.Key, r.Value, old.Value)
		if old.Timestamp.After(ts) {
			ts = old.Timestamp
		}
	case p.reduce:
		agg = any(r.Value).(A)
	default:
		agg = p.agg(r.Key, r.Value, p.init())
	}
	var prior A
	if found && !seeded {
		prior = old.Value
	}
	return p.put(r.Key, start, state.ValueAndTimestamp[A]{Value: agg, Timestamp: ts}, prior, found && !seeded,
		processor.Record[K, any]{Timestamp: ts, Headers: r.Headers, Origin: r.Origin})
}
