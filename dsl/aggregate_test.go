package dsl_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// sentences are piped one by one, sentence i at sec(i), keyed "line-i".
var sentences = []string{
	"the quick brown fox",
	"the lazy dog and the quick cat",
	"a fox is a fox",
	"dog eat dog",
}

// Word count: FlatMapValues, GroupBy word, Count, ToStream, To. On every
// backend and partition count, the output topic, the changelog and the
// stores hold the same thing: one update per word per pipe (the driver
// commits after each, and the record cache coalesces the updates of a
// word within a sentence), timestamped with the latest sentence counted.
func TestWordCount(t *testing.T) {
	// Every update of each word, as the output topic and the changelog
	// carry them.
	want := map[string][]upd[int64]{
		"the":   {val[int64](1, sec(0)), val[int64](3, sec(1))},
		"quick": {val[int64](1, sec(0)), val[int64](2, sec(1))},
		"brown": {val[int64](1, sec(0))},
		"fox":   {val[int64](1, sec(0)), val[int64](3, sec(2))},
		"lazy":  {val[int64](1, sec(1))},
		"dog":   {val[int64](1, sec(1)), val[int64](3, sec(3))},
		"and":   {val[int64](1, sec(1))},
		"cat":   {val[int64](1, sec(1))},
		"a":     {val[int64](2, sec(2))},
		"is":    {val[int64](1, sec(2))},
		"eat":   {val[int64](1, sec(3))},
	}
	wantRows := map[string]state.ValueAndTimestamp[int64]{
		"the": vat[int64](3, sec(1)), "quick": vat[int64](2, sec(1)), "brown": vat[int64](1, sec(0)),
		"fox": vat[int64](3, sec(2)), "lazy": vat[int64](1, sec(1)), "dog": vat[int64](3, sec(3)),
		"and": vat[int64](1, sec(1)), "cat": vat[int64](1, sec(1)), "a": vat[int64](2, sec(2)),
		"is": vat[int64](1, sec(2)), "eat": vat[int64](1, sec(3)),
	}
	words := 0
	for _, s := range sentences {
		words += len(strings.Fields(s))
	}

	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Stream("sentences", serde.String(), serde.String()).
				FlatMapValues(strings.Fields).
				GroupBy(func(_, word string) string { return word }, serde.String(), dsl.Named("words")).
				Count(dsl.Named("word-counts")).
				ToStream().
				To("word-counts-out")
			d := run(t, b, be.opts...)
			in := d.InputTopic("sentences", serde.String(), serde.String())
			out := d.OutputTopic("word-counts-out", serde.String(), serde.Int64())
			rp := d.OutputTopic("streamtest-words-combined-repartition", serde.String(), serde.Int64())
			for i, s := range sentences {
				must(t, in.PipeAt(fmt.Sprintf("line-%d", i), s, sec(i)))
			}

			got := byKey(t, out)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("output topic by word (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(values(wantRows), latest(got)); diff != "" {
				t.Errorf("table read from the output topic (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRows, storeRows[string, int64](t, d, "word-counts", be.partitions, serde.String())); diff != "" {
				t.Errorf("stores (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(asLogged(want), changelog(t, d, "word-counts", be.partitions, serde.String(), serde.Int64())); diff != "" {
				t.Errorf("changelog by word (-want +got):\n%s", diff)
			}
			// Every word went through the repartition topic named by GroupBy,
			// combined: one partial count per distinct word of a sentence
			// (the driver commits after each).
			partials, total := 0, int64(0)
			for _, s := range sentences {
				partials += len(slices.Compact(slices.Sorted(slices.Values(strings.Fields(s)))))
			}
			recs, err := rp.ReadAll()
			must(t, err)
			for _, r := range recs {
				total += r.Value
			}
			if len(recs) != partials || total != int64(words) {
				t.Errorf("repartition topic holds %d partial counts of %d words in all, want %d of %d", len(recs), total, partials, words)
			}
		})
	}
}

// sale is an order line of a customer, in cents.
type sale struct {
	Order    string `json:"order"`
	Customer string `json:"customer"`
	Cents    int64  `json:"cents"`
}

// sales are piped one by one, sale i at sec(i).
var sales = []sale{
	{"o1", "ann", 500}, {"o2", "bob", 250}, {"o3", "ann", 125},
	{"o4", "cy", 1000}, {"o5", "bob", 750}, {"o6", "ann", 375},
}

// Total per customer, three ways: sales keyed by customer and GroupByKey
// (no repartition), keyed by order and GroupBy customer (repartition named
// by the aggregation), and keyed by order, Map to (customer, cents) and
// GroupByKey (repartition named by GroupByKey). Each on every backend and
// partition count: the same totals, updates, changelog and stores.
func TestTotalPerCustomer(t *testing.T) {
	want := map[string][]upd[int64]{
		"ann": {val[int64](500, sec(0)), val[int64](625, sec(2)), val[int64](1000, sec(5))},
		"bob": {val[int64](250, sec(1)), val[int64](1000, sec(4))},
		"cy":  {val[int64](1000, sec(3))},
	}
	wantRows := map[string]state.ValueAndTimestamp[int64]{
		"ann": vat[int64](1000, sec(5)), "bob": vat[int64](1000, sec(4)), "cy": vat[int64](1000, sec(3)),
	}
	sum := func(_ string, s sale, total int64) int64 { return total + s.Cents }

	tests := []struct {
		name        string
		keyOf       func(sale) string // the key sales are piped with
		total       func(s dsl.Stream[string, sale]) dsl.Table[string, int64]
		repartition string // the repartition topic in Kafka, "" for none
	}{{
		name:  "keyed by customer, GroupByKey, Aggregate",
		keyOf: func(s sale) string { return s.Customer },
		total: func(s dsl.Stream[string, sale]) dsl.Table[string, int64] {
			return s.GroupByKey().Aggregate(func() int64 { return 0 }, sum, serde.Int64(), dsl.Named("totals"))
		},
	}, {
		name:  "keyed by order, GroupBy customer, Aggregate",
		keyOf: func(s sale) string { return s.Order },
		total: func(s dsl.Stream[string, sale]) dsl.Table[string, int64] {
			return s.GroupBy(func(_ string, s sale) string { return s.Customer }, serde.String()).
				Aggregate(func() int64 { return 0 }, sum, serde.Int64(), dsl.Named("totals"))
		},
		repartition: "streamtest-totals-repartition",
	}, {
		name:  "keyed by order, Map, GroupByKey, Reduce",
		keyOf: func(s sale) string { return s.Order },
		total: func(s dsl.Stream[string, sale]) dsl.Table[string, int64] {
			return s.Map(func(_ string, s sale) (string, int64) { return s.Customer, s.Cents }).
				WithSerdes(serde.String(), serde.Int64()).
				GroupByKey(dsl.Named("by-customer")).
				Reduce(func(total, cents int64) int64 { return total + cents }, dsl.Named("totals"))
		},
		repartition: "streamtest-by-customer-repartition",
	}}
	for _, tt := range tests {
		for _, be := range backends {
			t.Run(tt.name+"/"+be.name, func(t *testing.T) {
				b := dsl.NewBuilder()
				totals := tt.total(b.Stream("sales", serde.String(), serde.JSON[sale]()))
				if totals.StoreName() != "totals" {
					t.Errorf("StoreName() = %q, want totals", totals.StoreName())
				}
				totals.ToStream().To("totals-out")
				d := run(t, b, be.opts...)
				in := d.InputTopic("sales", serde.String(), serde.JSON[sale]())
				out := d.OutputTopic("totals-out", serde.String(), serde.Int64())
				for i, s := range sales {
					must(t, in.PipeAt(tt.keyOf(s), s, sec(i)))
				}

				got := byKey(t, out)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("output topic by customer (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(values(wantRows), latest(got)); diff != "" {
					t.Errorf("table read from the output topic (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(wantRows, storeRows[string, int64](t, d, "totals", be.partitions, serde.String())); diff != "" {
					t.Errorf("stores (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(asLogged(want), changelog(t, d, "totals", be.partitions, serde.String(), serde.Int64())); diff != "" {
					t.Errorf("changelog by customer (-want +got):\n%s", diff)
				}
				if tt.repartition != "" {
					if n := d.OutputTopic(tt.repartition, serde.String(), serde.Bytes()).Len(); n != len(sales) {
						t.Errorf("%s holds %d records, want %d", tt.repartition, n, len(sales))
					}
				}
			})
		}
	}
}

// Grouping repartitions exactly when the key may have changed since the
// source, through "<name>-repartition": GroupByKey's or GroupBy's Named,
// else the aggregation's. Records then reach the task of their new key's
// partition, which the stores show.
func TestGroupingRepartition(t *testing.T) {
	byKey := map[string]int64{"k1": 2, "k2": 1}
	byValue := map[string]int64{"x": 2, "y": 1}
	toValue := func(_, v string) string { return v }
	tests := []struct {
		name  string
		count func(s dsl.Stream[string, string]) dsl.Table[string, int64]
		// topics are the internal topics, given the count's table.
		topics func(counts dsl.Table[string, int64]) []string
		want   map[string]int64
	}{{
		name: "GroupByKey of the source",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.GroupByKey().Count(dsl.Named("counts"))
		},
		want: byKey,
	}, {
		name: "GroupByKey after operators that keep the key",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.Filter(func(string, string) bool { return true }).
				MapValues(strings.ToUpper).
				FlatMapValues(func(v string) []string { return []string{v} }).
				Peek(func(string, string) {}).
				GroupByKey(dsl.Named("unused")).
				Count(dsl.Named("counts"))
		},
		want: byKey,
	}, {
		name: "GroupByKey after SelectKey: named by GroupByKey",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.SelectKey(toValue).GroupByKey(dsl.Named("by-value")).Count(dsl.Named("counts"))
		},
		topics: func(dsl.Table[string, int64]) []string { return []string{"by-value-combined-repartition"} },
		want:   byValue,
	}, {
		name: "GroupByKey after Map: named by the aggregation",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.Map(func(k, v string) (string, string) { return v, k }).GroupByKey().Count(dsl.Named("counts"))
		},
		topics: func(dsl.Table[string, int64]) []string { return []string{"counts-combined-repartition"} },
		want:   byValue,
	}, {
		name: "GroupByKey after FlatMap: generated name",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.FlatMap(func(k, v string) []dsl.KeyValue[string, string] {
				return []dsl.KeyValue[string, string]{dsl.Pair(v, k)}
			}).
				GroupByKey().Count()
		},
		topics: func(c dsl.Table[string, int64]) []string { return []string{c.Name() + "-combined-repartition"} },
		want:   byValue,
	}, {
		name: "GroupBy: named by GroupBy",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.GroupBy(toValue, serde.String(), dsl.Named("by-value")).Count(dsl.Named("counts"))
		},
		topics: func(dsl.Table[string, int64]) []string { return []string{"by-value-combined-repartition"} },
		want:   byValue,
	}, {
		name: "GroupBy: named by the aggregation",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.GroupBy(toValue, serde.String()).Count(dsl.Named("counts"))
		},
		topics: func(dsl.Table[string, int64]) []string { return []string{"counts-combined-repartition"} },
		want:   byValue,
	}, {
		name: "GroupByKey after Repartition: no second repartition",
		count: func(s dsl.Stream[string, string]) dsl.Table[string, int64] {
			return s.SelectKey(toValue).Repartition(dsl.Named("rekeyed")).GroupByKey(dsl.Named("unused")).Count(dsl.Named("counts"))
		},
		topics: func(dsl.Table[string, int64]) []string { return []string{"rekeyed-repartition"} },
		want:   byValue,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			counts := tt.count(b.Stream("in", serde.String(), serde.String()))
			counts.ToStream().To("out")
			topo := build(t, b)
			var wantTopics []string
			if tt.topics != nil {
				wantTopics = tt.topics(counts)
			}
			var gotTopics []string
			for _, it := range topo.InternalTopics() {
				gotTopics = append(gotTopics, it.Name)
			}
			if diff := cmp.Diff(wantTopics, gotTopics); diff != "" {
				t.Errorf("internal topics (-want +got):\n%s", diff)
			}
			subs, err := topo.SubTopologies()
			must(t, err)
			if len(subs) != 1+len(wantTopics) {
				t.Errorf("%d sub-topologies, want %d", len(subs), 1+len(wantTopics))
			}

			const partitions = 2
			d := run(t, b, streamtest.Partitions(partitions))
			in := d.InputTopic("in", serde.String(), serde.String())
			must(t, in.PipeKeyValues(dsl.Pair("k1", "x"), dsl.Pair("k2", "x"), dsl.Pair("k1", "y")))
			if diff := cmp.Diff(tt.want, values(storeRows[string, int64](t, d, counts.StoreName(), partitions, serde.String()))); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			for _, tp := range wantTopics {
				// The three records commit together: a combined count sends
				// one partial count per key.
				want := 3
				if strings.HasSuffix(tp, "-combined-repartition") {
					want = 2
				}
				if n := d.OutputTopic("streamtest-"+tp, serde.String(), serde.String()).Len(); n != want {
					t.Errorf("streamtest-%s holds %d records, want %d", tp, n, want)
				}
			}
		})
	}
}

// Describe shows an aggregation without a key change in one sub-topology,
// and one after SelectKey in two, joined by the repartition topic.
func TestDescribeAggregations(t *testing.T) {
	t.Run("no repartition", func(t *testing.T) {
		b := dsl.NewBuilder()
		b.Stream("clicks", serde.String(), serde.String(), dsl.Named("clicks")).
			GroupByKey().
			Count(dsl.Named("clicks-per-user")).
			ToStream(dsl.Named("changes")).
			To("counts", dsl.Named("to-counts"))
		want := `Topologies:
   Sub-topology: 0
    Source: clicks (topics: [clicks])
      --> clicks-per-user
    Processor: clicks-per-user (stores: [clicks-per-user])
      --> changes
      <-- clicks
    Processor: changes (stores: [])
      --> to-counts
      <-- clicks-per-user
    Sink: to-counts (topic: counts)
      <-- changes

`
		if diff := cmp.Diff(want, describe(t, b)); diff != "" {
			t.Errorf("Describe (-want +got):\n%s", diff)
		}
	})
	t.Run("repartition", func(t *testing.T) {
		b := dsl.NewBuilder()
		b.Stream("clicks", serde.String(), serde.String(), dsl.Named("clicks")).
			SelectKey(func(_, page string) string { return page }, dsl.Named("by-page")).
			GroupByKey(dsl.Named("pages")).
			Count(dsl.Named("clicks-per-page")).
			ToStream(dsl.Named("changes")).
			To("counts", dsl.Named("to-counts"))
		want := `Topologies:
   Sub-topology: 0
    Source: clicks (topics: [clicks])
      --> by-page
    Processor: by-page (stores: [])
      --> pages-combine
      <-- clicks
    Processor: pages-combine (stores: [pages-combine])
      --> pages-combined-repartition-sink
      <-- by-page
    Sink: pages-combined-repartition-sink (topic: pages-combined-repartition)
      <-- pages-combine

  Sub-topology: 1
    Source: pages-combined-repartition-source (topics: [pages-combined-repartition])
      --> clicks-per-page
    Processor: clicks-per-page (stores: [clicks-per-page])
      --> changes
      <-- pages-combined-repartition-source
    Processor: changes (stores: [])
      --> to-counts
      <-- clicks-per-page
    Sink: to-counts (topic: counts)
      <-- changes

`
		if diff := cmp.Diff(want, describe(t, b)); diff != "" {
			t.Errorf("Describe (-want +got):\n%s", diff)
		}
	})
}

// RequireNames makes every table and aggregation without Named a Build
// error, so that no store or changelog takes a generated name; the
// operators around them may stay unnamed.
func TestStatefulRequireNames(t *testing.T) {
	regroup := func(u, r string) (string, string) { return r, u }
	plus := func(a, b string) string { return a + b }
	tests := []struct {
		name  string
		setup func(b *dsl.Builder)
		want  string // "" if Build succeeds
	}{{
		name:  "Table",
		setup: func(b *dsl.Builder) { b.Table("users", serde.String(), serde.String()) },
		want:  `dsl: Table: of topic "users": unnamed, and the builder requires names`,
	}, {
		name:  "Count of a stream",
		setup: func(b *dsl.Builder) { b.Stream("in", serde.String(), serde.String()).GroupByKey().Count() },
		want:  "dsl: Count: of KSTREAM-SOURCE-0000000000: unnamed, and the builder requires names",
	}, {
		name:  "Reduce of a stream",
		setup: func(b *dsl.Builder) { b.Stream("in", serde.String(), serde.String()).GroupByKey().Reduce(plus) },
		want:  "dsl: Reduce: of KSTREAM-SOURCE-0000000000: unnamed, and the builder requires names",
	}, {
		name: "Aggregate of a stream",
		setup: func(b *dsl.Builder) {
			b.Stream("in", serde.String(), serde.String()).GroupByKey().
				Aggregate(func() string { return "" }, func(_, v, a string) string { return a + v }, serde.String())
		},
		want: "dsl: Aggregate: of KSTREAM-SOURCE-0000000000: unnamed, and the builder requires names",
	}, {
		name: "Count of a table",
		setup: func(b *dsl.Builder) {
			b.Table("users", serde.String(), serde.String(), dsl.Named("users")).GroupBy(regroup, serde.String(), serde.String()).Count()
		},
		want: "dsl: Count: of KTABLE-SELECT-0000000001: unnamed, and the builder requires names",
	}, {
		name: "Reduce of a table",
		setup: func(b *dsl.Builder) {
			b.Table("users", serde.String(), serde.String(), dsl.Named("users")).GroupBy(regroup, serde.String(), serde.String()).
				Reduce(plus, plus)
		},
		want: "dsl: Reduce: of KTABLE-SELECT-0000000001: unnamed, and the builder requires names",
	}, {
		name: "Aggregate of a table",
		setup: func(b *dsl.Builder) {
			b.Table("users", serde.String(), serde.String(), dsl.Named("users")).GroupBy(regroup, serde.String(), serde.String()).
				Aggregate(func() int64 { return 0 }, func(string, string, int64) int64 { return 1 }, func(string, string, int64) int64 { return 0 }, serde.Int64())
		},
		want: "dsl: Aggregate: of KTABLE-SELECT-0000000001: unnamed, and the builder requires names",
	}, {
		name: "every table and aggregation named",
		setup: func(b *dsl.Builder) {
			users := b.Table("users", serde.String(), serde.String(), dsl.Named("users"))
			users.Filter(func(_, r string) bool { return r != "" }).MapValues(strings.ToUpper).ToStream().To("users-out")
			users.GroupBy(regroup, serde.String(), serde.String()).Count(dsl.Named("region-counts")).ToStream().To("regions-out")
			b.Stream("in", serde.String(), serde.String()).
				GroupBy(func(_, v string) string { return v }, serde.String()).
				Reduce(plus, dsl.Named("joined")).
				ToStream().To("joined-out")
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder(dsl.RequireNames())
			tt.setup(b)
			_, err := b.Build()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Build: %v", err)
			case tt.want != "" && !contains(err, tt.want):
				t.Fatalf("Build error %v, want one containing %q", err, tt.want)
			}
			// Without RequireNames the same topology builds.
			b = dsl.NewBuilder()
			tt.setup(b)
			if _, err := b.Build(); err != nil {
				t.Errorf("Build without RequireNames: %v", err)
			}
		})
	}
}

// Mistakes in declaring tables, groupings and aggregations are Build
// errors naming the operator.
func TestStatefulBuildErrors(t *testing.T) {
	sumInt := func(_ string, v, a int64) int64 { return a + v }
	regroup := func(k string, v int64) (string, int64) { return k, v }
	tests := []struct {
		name  string
		setup func(s dsl.Stream[string, string], tbl dsl.Table[string, int64])
		want  []string
	}{{
		name:  "Reduce with a nil function",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) { s.GroupByKey().Reduce(nil) },
		want:  []string{"dsl: Reduce: nil function"},
	}, {
		name: "Aggregate with a nil initializer",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.GroupByKey().Aggregate(nil, func(_, _ string, a int64) int64 { return a }, serde.Int64())
		},
		want: []string{"dsl: Aggregate: nil function"},
	}, {
		name: "Aggregate with a nil aggregator",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.GroupByKey().Aggregate(func() int64 { return 0 }, nil, serde.Int64())
		},
		want: []string{"dsl: Aggregate: nil function"},
	}, {
		name: "Aggregate with no serde for the aggregate",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.GroupByKey().Aggregate(func() int64 { return 0 }, func(_, _ string, a int64) int64 { return a }, nil)
		},
		want: []string{"dsl: Aggregate: no serde for the aggregate of KSTREAM-SOURCE-"},
	}, {
		name: "GroupBy with a nil function",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.GroupBy[string](nil, serde.String()).Count()
		},
		want: []string{"dsl: GroupBy: nil function"},
	}, {
		name: "GroupBy with no key serde",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.GroupBy(func(_, v string) string { return v }, nil).Count(dsl.Named("counts"))
		},
		want: []string{"dsl: Count: no key serde for KSTREAM-KEY-SELECT-"},
	}, {
		name: "Count after a type-changing Map",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.Map(func(k, v string) (int64, int64) { return 0, 0 }, dsl.Named("zeros")).GroupByKey().Count(dsl.Named("counts"))
		},
		// A combined Count sends int64 partial counts: it needs no value serde.
		want: []string{"dsl: Count: no key serde for zeros; set one with WithSerdes"},
	}, {
		name: "Reduce after a type-changing MapValues",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.MapValues(func(v string) int64 { return int64(len(v)) }, dsl.Named("lengths")).
				GroupByKey().Reduce(func(a, b int64) int64 { return a + b }, dsl.Named("sums"))
		},
		want: []string{"dsl: Reduce: no serde for the aggregate of lengths"},
	}, {
		name: "Materialized on GroupByKey, NumPartitions on Count",
		setup: func(s dsl.Stream[string, string], _ dsl.Table[string, int64]) {
			s.GroupByKey(dsl.Materialized()).Count(dsl.NumPartitions(2))
		},
		want: []string{"dsl: GroupByKey: option Materialized does not apply", "dsl: Count: option NumPartitions does not apply"},
	}, {
		name: "nil functions of table operators",
		setup: func(_ dsl.Stream[string, string], tbl dsl.Table[string, int64]) {
			tbl.Filter(nil)
			tbl.FilterNot(nil)
			tbl.MapValues((func(int64) int64)(nil))
			tbl.GroupBy((func(string, int64) (string, int64))(nil), serde.String(), serde.Int64())
		},
		want: []string{"dsl: Filter: nil function", "dsl: FilterNot: nil function", "dsl: MapValues: nil function", "dsl: GroupBy: nil function"},
	}, {
		name: "nil functions of a grouped table",
		setup: func(_ dsl.Stream[string, string], tbl dsl.Table[string, int64]) {
			g := tbl.GroupBy(regroup, serde.String(), serde.Int64())
			g.Reduce(nil, func(a, b int64) int64 { return a - b }, dsl.Named("r1"))
			g.Reduce(func(a, b int64) int64 { return a + b }, nil, dsl.Named("r2"))
			g.Aggregate(nil, sumInt, sumInt, serde.Int64(), dsl.Named("a1"))
			g.Aggregate(func() int64 { return 0 }, sumInt, nil, serde.Int64(), dsl.Named("a2"))
		},
		want: []string{"dsl: Reduce: nil function", "dsl: Aggregate: nil function"},
	}, {
		name: "table GroupBy with no serdes",
		setup: func(_ dsl.Stream[string, string], tbl dsl.Table[string, int64]) {
			tbl.GroupBy(regroup, nil, nil).Count(dsl.Named("counts"))
		},
		want: []string{"dsl: Count: GroupBy of KTABLE-SELECT-", "nil key or value serde"},
	}, {
		name: "To after a type-changing table MapValues",
		setup: func(_ dsl.Stream[string, string], tbl dsl.Table[string, int64]) {
			tbl.MapValues(func(v int64) string { return fmt.Sprint(v) }).ToStream(dsl.Named("changes")).To("out")
		},
		want: []string{"dsl: To: no value serde for changes; set one with WithSerdes"},
	}, {
		name: "options a table does not take",
		setup: func(_ dsl.Stream[string, string], tbl dsl.Table[string, int64]) {
			tbl.Filter(func(string, int64) bool { return true }, dsl.Materialized())
			tbl.ToStream(dsl.NumPartitions(1))
		},
		want: []string{"dsl: Filter: option Materialized does not apply", "dsl: ToStream: option NumPartitions does not apply"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.setup(b.Stream("in", serde.String(), serde.String()), b.Table("table", serde.String(), serde.Int64(), dsl.Named("table")))
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded with %v", topo)
			}
			for _, w := range tt.want {
				if !contains(err, w) {
					t.Errorf("Build error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// WithSerdes gives a grouping the serdes a type change lost, and
// Table.WithSerdes a table's sink.
func TestStatefulWithSerdes(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Map(func(_, v string) (string, int64) { return v, int64(len(v)) }).
		WithSerdes(serde.String(), serde.Int64()).
		GroupByKey().
		Reduce(func(a, b int64) int64 { return a + b }, dsl.Named("lengths")).
		MapValues(func(n int64) string { return fmt.Sprint(n) }).
		WithSerdes(serde.String(), serde.String()).
		ToStream().
		To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String())
	must(t, in.Pipe("a", "xy"))
	must(t, in.Pipe("b", "xy"))
	want := []processor.KeyValue[string, string]{{Key: "xy", Value: "2"}, {Key: "xy", Value: "4"}}
	if diff := cmp.Diff(want, readKVs(t, d.OutputTopic("out", serde.String(), serde.String()))); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// Stream aggregations drop records with a null key or a null value, count
// them by reason, and go on. A null value stays null through a repartition
// topic, and is dropped after it.
func TestStreamAggregationDropsNulls(t *testing.T) {
	plus := func(a, b int64) int64 { return a + b }
	tests := []struct {
		name    string
		agg     func(s dsl.Stream[string, int64]) dsl.Table[string, int64]
		nullKey bool // pipe a record with a null key too
		want    []processor.KeyValue[string, int64]
	}{{
		name: "Count",
		agg: func(s dsl.Stream[string, int64]) dsl.Table[string, int64] {
			return s.GroupByKey().Count(dsl.Named("agg"))
		},
		nullKey: true,
		want:    []processor.KeyValue[string, int64]{{Key: "a", Value: 1}, {Key: "a", Value: 2}, {Key: "b", Value: 1}},
	}, {
		name: "Reduce",
		agg: func(s dsl.Stream[string, int64]) dsl.Table[string, int64] {
			return s.GroupByKey().Reduce(plus, dsl.Named("agg"))
		},
		nullKey: true,
		want:    []processor.KeyValue[string, int64]{{Key: "a", Value: 1}, {Key: "a", Value: 3}, {Key: "b", Value: 5}},
	}, {
		name: "Aggregate",
		agg: func(s dsl.Stream[string, int64]) dsl.Table[string, int64] {
			return s.GroupByKey().Aggregate(func() int64 { return 100 }, func(_ string, v, a int64) int64 { return a + v }, serde.Int64(), dsl.Named("agg"))
		},
		nullKey: true,
		want:    []processor.KeyValue[string, int64]{{Key: "a", Value: 101}, {Key: "a", Value: 103}, {Key: "b", Value: 105}},
	}, {
		name: "Count after GroupBy",
		agg: func(s dsl.Stream[string, int64]) dsl.Table[string, int64] {
			return s.GroupBy(func(k string, _ int64) string { return k }, serde.String()).Count(dsl.Named("agg"))
		},
		want: []processor.KeyValue[string, int64]{{Key: "a", Value: 1}, {Key: "a", Value: 2}, {Key: "b", Value: 1}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.agg(b.Stream("in", serde.String(), serde.Int64())).ToStream().To("out")
			d := run(t, b)
			in := d.InputTopic("in", serde.String(), serde.Int64(), streamtest.StartAt(sec(0)), streamtest.AutoAdvance(time.Second))
			out := d.OutputTopic("out", serde.String(), serde.Int64())
			must(t, in.Pipe("a", 1))
			wantDropped := map[string]int64{"null value": 1}
			if tt.nullKey {
				must(t, in.PipeValue(7))
				wantDropped["null key"] = 1
			}
			must(t, in.PipeRecord(processor.Record[string, int64]{Key: "a", Value: 9, NullValue: true}))
			must(t, in.Pipe("a", 2))
			must(t, in.Pipe("b", 5))
			if diff := cmp.Diff(tt.want, readKVs(t, out)); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantDropped, d.Dropped()); diff != "" {
				t.Errorf("Dropped (-want +got):\n%s", diff)
			}
			wantRows := map[string]int64{"a": tt.want[1].Value, "b": tt.want[2].Value}
			if diff := cmp.Diff(wantRows, values(storeRows[string, int64](t, d, "agg", 1, serde.String()))); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
		})
	}
}

// The record cache holds an aggregation's updates until the task commits:
// with CommitEvery(3), the output and the changelog see one update per key
// per commit, in the order the keys were first updated, each with the
// aggregate's timestamp; Commit releases what is held. Without the cache
// every update passes at once.
func TestAggregationCache(t *testing.T) {
	pipes := []string{"a", "a", "b", "a", "b", "c", "a"}
	tests := []struct {
		name  string
		store []state.Option
		// want[i] is what reaches the output after pipe i; commit is what
		// Commit releases after the last.
		want   [][]processor.Record[string, int64]
		commit []processor.Record[string, int64]
	}{{
		name: "cache",
		want: [][]processor.Record[string, int64]{
			nil, nil, {{Key: "a", Value: 2, Timestamp: sec(1)}, {Key: "b", Value: 1, Timestamp: sec(2)}},
			nil, nil, {{Key: "a", Value: 3, Timestamp: sec(3)}, {Key: "b", Value: 2, Timestamp: sec(4)}, {Key: "c", Value: 1, Timestamp: sec(5)}},
			nil,
		},
		commit: []processor.Record[string, int64]{{Key: "a", Value: 4, Timestamp: sec(6)}},
	}, {
		name:  "no cache",
		store: []state.Option{state.WithCache(0)},
		want: [][]processor.Record[string, int64]{
			{{Key: "a", Value: 1, Timestamp: sec(0)}}, {{Key: "a", Value: 2, Timestamp: sec(1)}}, {{Key: "b", Value: 1, Timestamp: sec(2)}},
			{{Key: "a", Value: 3, Timestamp: sec(3)}}, {{Key: "b", Value: 2, Timestamp: sec(4)}}, {{Key: "c", Value: 1, Timestamp: sec(5)}},
			{{Key: "a", Value: 4, Timestamp: sec(6)}},
		},
	}}
	// Records as the output topic returns them: only key, value and
	// timestamp are compared.
	kvt := cmp.Transformer("kvt", func(r processor.Record[string, int64]) upd[string] {
		return upd[string]{Value: fmt.Sprintf("%s=%d", r.Key, r.Value), TS: r.Timestamp}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Stream("clicks", serde.String(), serde.String()).
				GroupByKey().
				Count(dsl.Named("clicks"), dsl.Materialized(tt.store...)).
				ToStream().
				To("out")
			d := run(t, b, streamtest.CommitEvery(3))
			in := d.InputTopic("clicks", serde.String(), serde.String())
			out := d.OutputTopic("out", serde.String(), serde.Int64())
			log := d.OutputTopic("streamtest-clicks-changelog", serde.String(), state.TimestampedSerde(serde.Int64()))
			// checkLog checks that the changelog got what the output got.
			checkLog := func(when string, want []processor.Record[string, int64]) {
				t.Helper()
				var wantLog, gotLog []string
				for _, r := range want {
					wantLog = append(wantLog, fmt.Sprintf("%s=%d@%d", r.Key, r.Value, r.Timestamp.UnixMilli()))
				}
				for _, r := range readAll(t, log) {
					gotLog = append(gotLog, fmt.Sprintf("%s=%d@%d", r.Key, r.Value.Value, r.Value.Timestamp.UnixMilli()))
				}
				if diff := cmp.Diff(wantLog, gotLog); diff != "" {
					t.Errorf("changelog %s (-want +got):\n%s", when, diff)
				}
			}
			for i, user := range pipes {
				must(t, in.PipeAt(user, "page", sec(i)))
				if diff := cmp.Diff(tt.want[i], readAll(t, out), kvt); diff != "" {
					t.Errorf("output after pipe %d (-want +got):\n%s", i, diff)
				}
				checkLog(fmt.Sprintf("after pipe %d", i), tt.want[i])
			}
			must(t, d.Commit())
			if diff := cmp.Diff(tt.commit, readAll(t, out), kvt); diff != "" {
				t.Errorf("output after Commit (-want +got):\n%s", diff)
			}
			checkLog("after Commit", tt.commit)
		})
	}
}

// Count, Reduce and Aggregate timestamp each update, the output record and
// the stored row with the largest timestamp of the records aggregated, as
// Kafka Streams does: a late record does not move the aggregate back.
func TestAggregationTimestamps(t *testing.T) {
	in := []processor.Record[string, int64]{
		{Key: "k", Value: 1, Timestamp: sec(10)},
		{Key: "k", Value: 2, Timestamp: sec(5)},
		{Key: "k", Value: 3, Timestamp: sec(20)},
		{Key: "k", Value: 4, Timestamp: sec(15)},
	}
	wantTS := []time.Time{sec(10), sec(10), sec(20), sec(20)}
	tests := []struct {
		name string
		agg  func(g dsl.GroupedStream[string, int64], opts ...dsl.Option) dsl.Table[string, int64]
		want []int64
	}{{
		name: "Count",
		agg: func(g dsl.GroupedStream[string, int64], opts ...dsl.Option) dsl.Table[string, int64] {
			return g.Count(opts...)
		},
		want: []int64{1, 2, 3, 4},
	}, {
		name: "Reduce",
		agg: func(g dsl.GroupedStream[string, int64], opts ...dsl.Option) dsl.Table[string, int64] {
			// Not a sum: the first value must be the aggregate, not
			// combined with a zero.
			return g.Reduce(func(a, b int64) int64 { return a*10 - b }, opts...)
		},
		want: []int64{1, 8, 77, 766},
	}, {
		name: "Aggregate",
		agg: func(g dsl.GroupedStream[string, int64], opts ...dsl.Option) dsl.Table[string, int64] {
			return g.Aggregate(func() int64 { return 9 }, func(_ string, v, a int64) int64 { return a*10 + v }, serde.Int64(), opts...)
		},
		want: []int64{91, 912, 9123, 91234},
	}}
	for _, tt := range tests {
		for _, cache := range []bool{true, false} {
			name := tt.name + "/cache"
			var store []state.Option
			if !cache {
				name, store = tt.name+"/no cache", []state.Option{state.WithCache(0)}
			}
			t.Run(name, func(t *testing.T) {
				b := dsl.NewBuilder()
				tt.agg(b.Stream("in", serde.String(), serde.Int64()).GroupByKey(), dsl.Named("agg"), dsl.Materialized(store...)).
					ToStream().To("out")
				d := run(t, b)
				out := d.OutputTopic("out", serde.String(), serde.Int64())
				want := map[string][]upd[int64]{}
				for i, r := range in {
					must(t, d.InputTopic("in", serde.String(), serde.Int64()).PipeRecord(r))
					want["k"] = append(want["k"], val(tt.want[i], wantTS[i]))
				}
				if diff := cmp.Diff(want, byKey(t, out)); diff != "" {
					t.Errorf("output (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(asLogged(want), changelog(t, d, "agg", 1, serde.String(), serde.Int64())); diff != "" {
					t.Errorf("changelog (-want +got):\n%s", diff)
				}
				wantRows := map[string]state.ValueAndTimestamp[int64]{"k": vat(tt.want[3], sec(20))}
				if diff := cmp.Diff(wantRows, storeRows[string, int64](t, d, "agg", 1, serde.String())); diff != "" {
					t.Errorf("store (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// A Materialized(state.WithoutLogging()) store writes no changelog, and
// works otherwise; a logged one beside it does.
func TestWithoutLogging(t *testing.T) {
	t.Run("aggregation", func(t *testing.T) {
		b := dsl.NewBuilder()
		g := b.Stream("in", serde.String(), serde.String()).GroupByKey()
		g.Count(dsl.Named("logged")).ToStream().To("logged-out")
		g.Count(dsl.Named("unlogged"), dsl.Materialized(state.WithoutLogging())).ToStream().To("unlogged-out")
		d := run(t, b)
		must(t, d.InputTopic("in", serde.String(), serde.String()).PipeKeyValues(dsl.Pair("a", "1"), dsl.Pair("b", "2"), dsl.Pair("a", "3")))

		logged := readKVs(t, d.OutputTopic("logged-out", serde.String(), serde.Int64()))
		unlogged := readKVs(t, d.OutputTopic("unlogged-out", serde.String(), serde.Int64()))
		if diff := cmp.Diff(logged, unlogged); diff != "" || len(logged) == 0 {
			t.Errorf("outputs differ or are empty (-logged +unlogged):\n%s", diff)
		}
		want := map[string]int64{"a": 2, "b": 1}
		if diff := cmp.Diff(want, values(storeRows[string, int64](t, d, "unlogged", 1, serde.String()))); diff != "" {
			t.Errorf("unlogged store (-want +got):\n%s", diff)
		}
		if n := d.OutputTopic("streamtest-logged-changelog", serde.String(), serde.Bytes()).Len(); n != 2 {
			t.Errorf("logged store's changelog holds %d records, want 2 (one per key per commit)", n)
		}
		if n := d.OutputTopic("streamtest-unlogged-changelog", serde.String(), serde.Bytes()).Len(); n != 0 {
			t.Errorf("unlogged store's changelog holds %d records, want none", n)
		}
	})
	t.Run("table", func(t *testing.T) {
		b := dsl.NewBuilder()
		b.Table("users", serde.String(), serde.String(), dsl.Named("users"), dsl.Materialized(state.WithoutLogging())).ToStream().To("out")
		d := run(t, b)
		in := d.InputTopic("users", serde.String(), serde.String())
		must(t, in.Pipe("ann", "east"))
		must(t, in.Pipe("bob", "west"))
		must(t, in.PipeRecord(tombstone[string, string]("ann", time.Time{})))
		if diff := cmp.Diff(map[string]string{"bob": "west"}, values(storeRows[string, string](t, d, "users", 1, serde.String()))); diff != "" {
			t.Errorf("store (-want +got):\n%s", diff)
		}
		if n := d.OutputTopic("out", serde.String(), serde.String()).Len(); n != 3 {
			t.Errorf("output holds %d records, want 3", n)
		}
		if n := d.OutputTopic("streamtest-users-changelog", serde.String(), serde.Bytes()).Len(); n != 0 {
			t.Errorf("changelog holds %d records, want none", n)
		}
	})
}

// A named grouping aggregated twice shares one repartition topic, as in
// Kafka Streams; a combined Count has its own (of partial counts).
func TestNamedGroupingAggregatedTwice(t *testing.T) {
	t.Run("shared", func(t *testing.T) { namedGroupingAggregatedTwice(t, false) })
	t.Run("combined count", func(t *testing.T) { namedGroupingAggregatedTwice(t, true) })
}

func namedGroupingAggregatedTwice(t *testing.T, combine bool) {
	b := dsl.NewBuilder()
	g := b.Stream("in", serde.String(), serde.String()).
		SelectKey(func(_, v string) string { return v }).
		GroupByKey(dsl.Named("by-value"))
	opts := []dsl.Option{dsl.Named("counts")}
	// The Count crosses its combined topic whatever its cache; the
	// Reduce, the grouping's own.
	want := "[{by-value-combined-repartition 0} {by-value-repartition 0}]"
	if !combine {
		opts = append(opts, dsl.Materialized(state.WithCache(0)))
	}
	g.Count(opts...).ToStream().To("counts")
	g.Reduce(func(a, v string) string { return a + v }, dsl.Named("concat")).ToStream().To("concat")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if its := topo.InternalTopics(); fmt.Sprint(its) != want {
		t.Fatalf("internal topics = %v, want %s", its, want)
	}
	d, err := streamtest.New(topo)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	in := d.InputTopic("in", serde.String(), serde.String())
	for _, v := range []string{"a", "b", "a"} {
		if err := in.Pipe("k", v); err != nil {
			t.Fatal(err)
		}
	}
	counts, _ := d.OutputTopic("counts", serde.String(), serde.Int64()).ReadAll()
	concat, _ := d.OutputTopic("concat", serde.String(), serde.String()).ReadAll()
	if fmt.Sprint(counts) != "[{a 1} {b 1} {a 2}]" || fmt.Sprint(concat) != "[{a a} {b b} {a aa}]" {
		t.Errorf("counts = %v, concat = %v", counts, concat)
	}
}
