package dsl

import (
	"fmt"
	"strconv"
	"time"

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

	// suppress-windowed-count: SuppressScenarioTest's final results, a
	// count of the records of stream "input" per key and window, then
	//   output-raw         the windowed counts
	//   output-suppressed  the counts through UntilWindowCloses(Unbounded())
	// Arguments: kind (tumbling, the default, sliding or session), size,
	// diff (sliding), gap (session) and grace, durations.
	registerDD("suppress-windowed-count", func(b *Builder, a *ddArgs) ([]ddOutput, error) {
		grouped := b.Stream("input", serde.String(), serde.String()).GroupByKey()
		grace := a.dur("grace", 0)
		var counts Table[windows.Windowed[string], int64]
		var keys serde.Serde[windows.Windowed[string]]
		mat := Materialized(state.WithCache(0))
		switch kind := a.str("kind", "tumbling"); kind {
		case "tumbling":
			w := windows.Tumbling(a.dur("size", time.Millisecond), grace)
			counts, keys = WindowedBy(grouped, w).Count(Named("counts"), mat), serde.TimeWindowed(serde.String(), w.Size())
		case "sliding":
			w := windows.Sliding(a.dur("diff", time.Millisecond), grace)
			counts, keys = SlidingWindowedBy(grouped, w).Count(Named("counts"), mat), serde.TimeWindowed(serde.String(), w.TimeDifference())
		case "session":
			w := windows.Session(a.dur("gap", time.Millisecond), grace)
			counts, keys = SessionWindowedBy(grouped, w).Count(Named("counts"), mat), serde.SessionWindowed(serde.String())
		default:
			return nil, fmt.Errorf("kind=%s: want tumbling, sliding or session", kind)
		}
		counts.Suppress(UntilWindowCloses(Unbounded()), Named("suppressed")).ToStream().To("output-suppressed")
		counts.ToStream().To("output-raw")
		return []ddOutput{ddWindowedCounts("output-raw", keys), ddWindowedCounts("output-suppressed", keys)}, nil
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

func ddWindowedCounts(topic string, keys serde.Serde[windows.Windowed[string]]) ddOutput {
	return ddOut(topic, keys, serde.Int64(),
		func(k windows.Windowed[string]) string { return k.String() },
		func(n int64) string { return strconv.FormatInt(n, 10) })
}
