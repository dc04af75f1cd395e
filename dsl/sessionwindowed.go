package dsl

import (
	"container/heap"
	"fmt"
	"math"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/windows"
)

// SessionWindowedStream is a grouped stream with session windows, ready to
// aggregate per key and session.
type SessionWindowedStream[K, V any] struct {
	g    GroupedStream[K, V]
	w    windows.SessionWindows
	emit EmitStrategy
}

// SessionWindowedBy aggregates the grouped stream per key and session: a
// run of records no further apart than the inactivity gap. A record
// within the gap of several sessions merges them: the merged-away
// sessions are deleted (a tombstone downstream each) before the merged one
// is written. A session's result carries its end as timestamp. See
// WindowedBy for why this is a function.
func SessionWindowedBy[K, V any](g GroupedStream[K, V], w windows.SessionWindows) SessionWindowedStream[K, V] {
	if err := w.Validate(); err != nil {
		g.s.b.fail("SessionWindowedBy", err)
	}
	return SessionWindowedStream[K, V]{g: g, w: w}
}

// Emit sets when results are forwarded: OnWindowUpdate (the default) or
// OnWindowClose, one result per session once stream time is past its end
// plus the inactivity gap plus grace (no later record can extend it).
func (w SessionWindowedStream[K, V]) Emit(e EmitStrategy) SessionWindowedStream[K, V] {
	w.emit = e
	return w
}

// Count counts the records of each key and session. Options: Named,
// Materialized.
func (w SessionWindowedStream[K, V]) Count(opts ...Option) Table[windows.Windowed[K], int64] {
	return sessionAggregate(w, "Count", func() int64 { return 0 },
		func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, a, b int64) int64 { return a + b }, false, serde.Int64(), opts)
}

// Reduce combines the values of each key and session with f, which also
// combines the aggregates of sessions a record merges. Options: Named,
// Materialized.
func (w SessionWindowedStream[K, V]) Reduce(f func(agg, value V) V, opts ...Option) Table[windows.Windowed[K], V] {
	if f == nil {
		w.g.s.b.fail("Reduce", errNilFunc)
	}
	return sessionAggregate(w, "Reduce", nil, func(_ K, v V, agg V) V { return f(agg, v) },
		func(_ K, a, b V) V { return f(a, b) }, true, w.g.s.values, opts)
}

// Aggregate folds the values of each key and session into an aggregate of
// type A, starting from init(); merge combines the aggregates of two
// sessions a record joins. Options: Named, Materialized.
func (w SessionWindowedStream[K, V]) Aggregate[A any](init func() A, agg func(key K, value V, aggregate A) A, merge func(key K, a, b A) A, aggs serde.Serde[A], opts ...Option) Table[windows.Windowed[K], A] {
	if init == nil || agg == nil || merge == nil {
		w.g.s.b.fail("Aggregate", errNilFunc)
	}
	return sessionAggregate(w, "Aggregate", init, agg, merge, false, aggs, opts)
}

func sessionAggregate[K, V, A any](w SessionWindowedStream[K, V], op string, init func() A, agg func(K, V, A) A, merge func(K, A, A) A, reduce bool, aggs serde.Serde[A], opts []Option) Table[windows.Windowed[K], A] {
	g := w.g
	b := g.s.b
	o := b.options(op, opts, optName|optMaterialized)
	if aggs == nil {
		b.fail(op, fmt.Errorf("no serde for the aggregate of %s", g.s.node))
	}
	name, store := g.aggregateNames(op, o)
	in := g.input(op, name)
	var keys serde.Serde[windows.Windowed[K]]
	if in.keys != nil {
		keys = serde.SessionWindowed(in.keys)
	}
	out := Table[windows.Windowed[K], A]{b: b, node: name, keys: keys, values: aggs, store: store,
		win: windowKeys[K](&windowInfo{closeTime: w.w.CloseTime, session: true, suppressAfter: w.w.InactivityGap() + w.w.Grace()})}
	if in.keys == nil {
		b.fail(op, fmt.Errorf("store %q: no key serde; set one with WithSerdes", store))
		return out
	}
	if aggs == nil {
		return out
	}
	// The store keeps a session a millisecond past gap plus grace: until
	// emit-final has emitted it.
	sopts := append([]state.Option{state.WithRetention(w.w.Retention() + time.Millisecond)}, o.store...)
	b.topo.AddStore(state.Session(store, in.keys, aggs, sopts...))
	sw, emitFinal := w.w, w.emit == OnWindowClose
	b.topo.AddProcessor(name, func() processor.Processor[K, V, windows.Windowed[K], Change[A]] {
		return &sessionAggProc[K, V, A]{store: store, w: sw, init: init, agg: agg, merge: merge, reduce: reduce, emitFinal: emitFinal}
	}, in.node)
	b.topo.ConnectStore(store, name)
	return out
}

// sessionAggProc aggregates per key and session (Kafka Streams'
// KStreamSessionWindowAggregate).
type sessionAggProc[K, V, A any] struct {
	store     string
	w         windows.SessionWindows
	init      func() A
	agg       func(K, V, A) A
	merge     func(K, A, A) A
	reduce    bool
	emitFinal bool

	rows     *state.SessionStore[K, A]
	ctx      processor.Context[windows.Windowed[K], Change[A]]
	next     func(processor.Record[windows.Windowed[K], Change[A]]) error
	cached   bool
	observed int64
	emitted  int64
	pending  endHeap
	merged   []windows.Windowed[K]
	values   []A
}

func (p *sessionAggProc[K, V, A]) Init(ctx processor.Context[windows.Windowed[K], Change[A]]) error {
	rows, err := processor.StoreOf[*state.SessionStore[K, A]](ctx, p.store)
	if err != nil {
		return err
	}
	p.rows, p.ctx, p.next = rows, ctx, processor.Forwarder(ctx)
	p.observed, p.emitted = math.MinInt64, math.MinInt64
	if t, ok, err := rows.Mark(markStreamTime); err != nil {
		return err
	} else if ok {
		p.observed = t.UnixMilli()
	}
	if !p.emitFinal {
		p.cached = rows.SetFlushListener(func(k windows.Windowed[K], nv, ov A, newNull, oldNull bool, _ time.Time) error {
			return p.next(processor.Record[windows.Windowed[K], Change[A]]{Key: k, Timestamp: k.Window.End,
				Value: Change[A]{New: nv, HasNew: !newNull, Old: ov, HasOld: !oldNull}})
		})
		return nil
	}
	if t, ok, err := rows.Mark(markEmitted); err != nil {
		return err
	} else if ok {
		p.emitted = t.UnixMilli()
	}
	it := rows.All()
	for it.Next() {
		if end := it.Key().Window.End.UnixMilli(); end > p.emitted {
			heap.Push(&p.pending, end)
		}
	}
	return it.Close()
}

func (p *sessionAggProc[K, V, A]) Close() error { return nil }

func (p *sessionAggProc[K, V, A]) Process(r processor.Record[K, V]) error {
	if droppedNull(p.ctx, r) {
		return nil
	}
	ts := r.Timestamp.UnixMilli()
	if ts > p.observed {
		p.observed = ts
		if err := p.rows.SetMark(markStreamTime, r.Timestamp); err != nil {
			return err
		}
	}
	grace, gap := p.w.Grace().Milliseconds(), p.w.InactivityGap().Milliseconds()
	closeTime := p.observed - grace
	// A session is final once no record that is not late can reach it:
	// stream time past its end, plus the gap, plus grace. Emit-final emits
	// before the record's writes, which may move the store's retention.
	if err := p.emitClosed(p.observed-grace-gap-1, r.Headers); err != nil {
		return err
	}
	from, to := p.w.SearchRange(r.Timestamp)
	it := p.rows.FindSessions(r.Key, from, to)
	p.merged, p.values = p.merged[:0], p.values[:0]
	for it.Next() {
		p.merged = append(p.merged, it.Key())
		p.values = append(p.values, it.Value())
	}
	if err := it.Close(); err != nil {
		return err
	}
	sessions := make([]windows.Window, len(p.merged))
	for i, m := range p.merged {
		sessions[i] = m.Window
	}
	merged := windows.Merge(r.Timestamp, sessions...)
	if merged.End.UnixMilli() < closeTime {
		late(p.ctx, r, p.ctx.NodeName(), closeTime)
		return nil
	}
	var agg A
	has := false
	switch {
	case len(p.values) > 0 && p.reduce:
		agg, has = p.values[0], true
		for _, v := range p.values[1:] {
			agg = p.merge(r.Key, agg, v)
		}
	default:
		if !p.reduce {
			agg, has = p.init(), true
		}
		for _, v := range p.values {
			agg = p.merge(r.Key, agg, v)
		}
	}
	if has {
		agg = p.agg(r.Key, r.Value, agg)
	} else {
		agg = any(r.Value).(A)
	}
	// As Kafka Streams: unless the record is a session of its own, every
	// session it joins is deleted (a tombstone downstream each, the
	// session it lands in included), then the merged session is written.
	key := windows.Windowed[K]{Key: r.Key, Window: merged}
	newEnd := true
	if merged != (windows.Window{Start: r.Timestamp, End: r.Timestamp}) {
		for i, m := range p.merged {
			if m.Window.End.Equal(merged.End) {
				newEnd = false
			}
			if err := p.rows.Remove(m); err != nil {
				return err
			}
			if err := p.forward(m, Change[A]{Old: p.values[i], HasOld: true}, r); err != nil {
				return err
			}
		}
	}
	if err := p.rows.Put(key, agg); err != nil {
		return err
	}
	if err := p.forward(key, Change[A]{New: agg, HasNew: true}, r); err != nil {
		return err
	}
	if p.emitFinal && newEnd {
		heap.Push(&p.pending, merged.End.UnixMilli())
	}
	return nil
}

// forward forwards an update of a session, timestamped with its end,
// unless the record cache or emit-final will.
func (p *sessionAggProc[K, V, A]) forward(k windows.Windowed[K], c Change[A], r processor.Record[K, V]) error {
	if p.emitFinal || p.cached {
		return nil
	}
	return p.next(processor.Record[windows.Windowed[K], Change[A]]{Key: k, Value: c, Timestamp: k.Window.End,
		Headers: r.Headers, Origin: r.Origin})
}

// emitClosed forwards once each the sessions ending at or before closed.
func (p *sessionAggProc[K, V, A]) emitClosed(closed int64, h processor.Headers) error {
	if !p.emitFinal || closed <= p.emitted || len(p.pending) == 0 || p.pending[0] > closed {
		return nil
	}
	for len(p.pending) > 0 && p.pending[0] <= closed {
		heap.Pop(&p.pending)
	}
	from := int64(0)
	if p.emitted != math.MinInt64 {
		from = p.emitted + 1
	}
	it := p.rows.SessionsEndingBetween(time.UnixMilli(from), time.UnixMilli(closed))
	for it.Next() {
		k := it.Key()
		if err := p.next(processor.Record[windows.Windowed[K], Change[A]]{Key: k, Timestamp: k.Window.End, Headers: h,
			Value: Change[A]{New: it.Value(), HasNew: true}}); err != nil {
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
