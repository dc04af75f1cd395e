package dsl

import (
	"fmt"
	"strconv"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/windows"
)

// The data-file topologies of suppression, after Kafka Streams'
// SuppressScenarioTest.

func init() {
	// suppress-time-limit: SuppressScenarioTest's value counts, a table of
	// topic "input" regrouped by value and counted, then
	//   output-raw         the counts
	//   output-suppressed  the counts through UntilTimeLimit(limit, buffer)
	// Arguments: limit (a duration, default 0), max-records, max-bytes,
	// when-full (emit-early, the default, or fail).
	registerDD("suppress-time-limit", func(b *Builder, a *ddArgs) ([]ddOutput, error) {
		limit := a.dur("limit", 0)
		buf, err := ddBuffer(a)
		if err != nil {
			return nil, err
		}
		counts := b.Table("input", serde.String(), serde.String(), Materialized(state.WithCache(0))).
			GroupBy(func(k, v string) (string, string) { return v, k }, serde.String(), serde.String()).
			Count(Named("counts"), Materialized(state.WithCache(0)))
		counts.Suppress(UntilTimeLimit(limit, buf), Named("suppressed")).ToStream().To("output-suppressed")
		counts.ToStream().To("output-raw")
		return []ddOutput{ddCounts("output-raw"), ddCounts("output-suppressed")}, nil
	})

	// suppress-table: SuppressScenarioTest.shouldWorkBeforeGroupBy, a table
	// of topic "input" through UntilTimeLimit(limit, Unbounded()), then
	// regrouped by its rows (key and value unchanged) and counted to
	// "output".
	registerDD("suppress-table", func(b *Builder, a *ddArgs) ([]ddOutput, error) {
		limit := a.dur("limit", 0)
		b.Table("input", serde.String(), serde.String(), Materialized(state.WithCache(0))).
			Suppress(UntilTimeLimit(limit, Unbounded()), Named("suppressed")).
			GroupBy(func(k, v string) (string, string) { return k, v }, serde.String(), serde.String()).
			Count(Named("counts"), Materialized(state.WithCache(0))).
			ToStream().To("output")
		return []ddOutput{ddCounts("output")}, nil
	})

	// suppress-window-count: SuppressScenarioTest's final results of time
	// windows, a count of the records of stream "input" per key and
	// tumbling window (size, grace), then
	//   output-raw         the windowed counts
	//   output-suppressed  the counts through UntilWindowCloses(Unbounded())
	// The windowed count is a stand-in with Kafka Streams'
	// KStreamWindowAggregate semantics (late records dropped, a result's
	// timestamp the largest of its records'), kept in task memory.
	registerDD("suppress-window-count", func(b *Builder, a *ddArgs) ([]ddOutput, error) {
		w := windows.Tumbling(a.dur("size", time.Millisecond), a.dur("grace", 0))
		if err := w.Validate(); err != nil {
			return nil, err
		}
		counts := testWindowedCount(b, b.Stream("input", serde.String(), serde.String()), w)
		counts.Suppress(UntilWindowCloses(Unbounded()), Named("suppressed")).ToStream().To("output-suppressed")
		counts.ToStream().To("output-raw")
		return []ddOutput{ddWindowedCounts("output-raw", w.Size()), ddWindowedCounts("output-suppressed", w.Size())}, nil
	})
}

func ddBuffer(a *ddArgs) (BufferConfig, error) {
	recs, bytes := a.int("max-records", 0), a.int("max-bytes", 0)
	full := a.str("when-full", "emit-early")
	if recs == 0 && bytes == 0 {
		if a.has("when-full") {
			return nil, fmt.Errorf("when-full needs max-records or max-bytes")
		}
		return Unbounded(), nil
	}
	var b Buffer
	if recs != 0 {
		b = b.MaxRecords(recs)
	}
	if bytes != 0 {
		b = b.MaxBytes(bytes)
	}
	switch full {
	case "emit-early":
		return b.EmitEarlyWhenFull(), nil
	case "fail":
		return b.FailWhenFull(), nil
	}
	return nil, fmt.Errorf("when-full=%s: want emit-early or fail", full)
}

func ddCounts(topic string) ddOutput {
	return ddOut(topic, serde.String(), serde.Int64(), func(k string) string { return k },
		func(n int64) string { return strconv.FormatInt(n, 10) })
}

func ddWindowedCounts(topic string, size time.Duration) ddOutput {
	return ddOut(topic, serde.TimeWindowed(serde.String(), size), serde.Int64(),
		func(k windows.Windowed[string]) string { return k.String() },
		func(n int64) string { return strconv.FormatInt(n, 10) })
}

// testWindowedCount counts the records of s per key and window of w, in
// task memory, as Kafka Streams' KStreamWindowAggregate: a record for a
// window whose end plus grace is at or before the task's stream time is
// late and dropped, a result's timestamp is the largest of its records'.
// It makes windowed tables for the tests of Suppress.
func testWindowedCount(b *Builder, s Stream[string, string], w windows.TimeWindows) Table[windows.Windowed[string], int64] {
	name := b.newName(&options{}, "TEST-WINDOWED-COUNT")
	b.topo.AddProcessor(name, func() processor.Processor[string, string, windows.Windowed[string], Change[int64]] {
		return &testWindowCountProc{w: w, counts: map[windows.Windowed[string]]state.ValueAndTimestamp[int64]{}}
	}, s.node)
	win := windowKeys[string](&windowInfo{closeTime: w.CloseTime, suppressAfter: w.Grace()})
	return Table[windows.Windowed[string], int64]{b: b, node: name,
		keys: serde.TimeWindowed(serde.String(), w.Size()), values: serde.Int64(), win: win}
}

type testWindowCountProc struct {
	forward[windows.Windowed[string], Change[int64]]
	ctx        processor.Context[windows.Windowed[string], Change[int64]]
	w          windows.TimeWindows
	counts     map[windows.Windowed[string]]state.ValueAndTimestamp[int64]
	streamTime time.Time
}

func (p *testWindowCountProc) Init(ctx processor.Context[windows.Windowed[string], Change[int64]]) error {
	p.ctx = ctx
	return p.forward.Init(ctx)
}

func (p *testWindowCountProc) Process(r processor.Record[string, string]) error {
	if r.Timestamp.After(p.streamTime) {
		p.streamTime = r.Timestamp
	}
	for _, win := range p.w.WindowsFor(r.Timestamp) {
		if !p.w.CloseTime(win).After(p.streamTime) {
			p.ctx.RecordLate()
			continue
		}
		k := windows.Windowed[string]{Key: r.Key, Window: win}
		old, found := p.counts[k]
		ts := r.Timestamp
		if found && old.Timestamp.After(ts) {
			ts = old.Timestamp
		}
		p.counts[k] = state.ValueAndTimestamp[int64]{Value: old.Value + 1, Timestamp: ts}
		c := Change[int64]{New: old.Value + 1, HasNew: true, Old: old.Value, HasOld: found}
		if err := p.next(processor.Record[windows.Windowed[string], Change[int64]]{Key: k, Value: c, Timestamp: ts, Headers: r.Headers, Origin: r.Origin}); err != nil {
			return err
		}
	}
	return nil
}
