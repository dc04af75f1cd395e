package dsl_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// TestCombinedCountAgrees checks that a combined Count (partial counts per
// task and commit interval sent through the repartition topic) gives what
// counting every record behind the topic gives, on every backend, partition
// count and commit interval: the same store rows; on the output topic and
// the changelog, for every key, increasing counts that end at the same
// count and timestamp, with no more updates. (The updates in between
// differ: the partial counts reach the counts when their task commits.)
// The reference counts with Aggregate, which does not combine.
func TestCombinedCountAgrees(t *testing.T) {
	vocab := strings.Fields("the quick brown fox jumps over a lazy dog and cat")
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 1))
		lines := make([]string, 20+rng.IntN(60))
		words := 0
		for i := range lines {
			ws := make([]string, rng.IntN(6))
			for j := range ws {
				ws[j] = vocab[rng.IntN(len(vocab))]
			}
			words += len(ws)
			lines[i] = strings.Join(ws, " ")
		}
		every := []int{1, 3, 7, 50}[rng.IntN(4)]
		be := backends[rng.IntN(len(backends))]
		t.Run(fmt.Sprintf("seed %d %s every %d", seed, be.name, every), func(t *testing.T) {
			type result struct {
				out      map[string][]upd[int64]
				rows     map[string]state.ValueAndTimestamp[int64]
				logged   map[string][]upd[state.ValueAndTimestamp[int64]]
				internal int // records through the repartition topic
			}
			count := func(combine bool) result {
				b := dsl.NewBuilder()
				g := b.Stream("lines", serde.String(), serde.String()).
					FlatMapValues(strings.Fields).
					GroupBy(func(_, w string) string { return w }, serde.String(), dsl.Named("words"))
				if combine {
					g.Count(dsl.Named("counts")).ToStream().To("out")
				} else {
					g.Aggregate(func() int64 { return 0 }, func(_, _ string, n int64) int64 { return n + 1 },
						serde.Int64(), dsl.Named("counts")).ToStream().To("out")
				}
				d := run(t, b, append(be.opts, streamtest.CommitEvery(every))...)
				in := d.InputTopic("lines", serde.String(), serde.String())
				for i, l := range lines {
					must(t, in.PipeAt(fmt.Sprintf("line-%d", i), l, sec(i)))
				}
				must(t, d.Commit())
				topic := "streamtest-words-repartition"
				if combine {
					topic = "streamtest-words-combined-repartition"
				}
				return result{
					out:      byKey(t, d.OutputTopic("out", serde.String(), serde.Int64())),
					rows:     storeRows[string, int64](t, d, "counts", be.partitions, serde.String()),
					logged:   changelog(t, d, "counts", be.partitions, serde.String(), serde.Int64()),
					internal: d.OutputTopic(topic, serde.String(), serde.Bytes()).Len(),
				}
			}
			want, got := count(false), count(true)
			if diff := cmp.Diff(want.rows, got.rows); diff != "" {
				t.Errorf("store rows (-counted +combined):\n%s", diff)
			}
			if len(got.out) != len(want.out) {
				t.Errorf("output has %d keys combined, %d counted", len(got.out), len(want.out))
			}
			for k, ws := range want.out {
				gs := got.out[k]
				if len(gs) == 0 || len(gs) > len(ws) || gs[len(gs)-1] != ws[len(ws)-1] {
					t.Errorf("%s: combined updates %v, counted %v: want no more, ending the same", k, gs, ws)
					continue
				}
				for i := 1; i < len(gs); i++ {
					if gs[i].Value <= gs[i-1].Value {
						t.Errorf("%s: combined updates %v do not increase", k, gs)
					}
				}
			}
			if diff := cmp.Diff(lastOf(want.logged), lastOf(got.logged)); diff != "" {
				t.Errorf("last changelog record by key (-counted +combined):\n%s", diff)
			}
			if want.internal != words || got.internal > words || (every > 1 && got.internal >= words) {
				t.Errorf("repartition topics hold %d records counted, %d combined, for %d words", want.internal, got.internal, words)
			}
		})
	}
}

// TestCombinedCountWithoutCache checks that a Count whose record cache is
// off, which asks for an update per record, gets one per record, through
// the same topics and stores as with the cache on: the topology is the
// same whatever the cache size, so it can change between two versions of a
// running application.
func TestCombinedCountWithoutCache(t *testing.T) {
	topology := func(cache bool) *dsl.Builder {
		b := dsl.NewBuilder()
		opts := []dsl.Option{dsl.Named("counts")}
		if !cache {
			opts = append(opts, dsl.Materialized(state.WithCache(0)))
		}
		b.Stream("lines", serde.String(), serde.String()).
			FlatMapValues(strings.Fields).
			GroupBy(func(_, w string) string { return w }, serde.String(), dsl.Named("words")).
			Count(opts...).ToStream().To("out")
		return b
	}
	cached, uncached := build(t, topology(true)), build(t, topology(false))
	if its := uncached.InternalTopics(); fmt.Sprint(its) != "[{words-combined-repartition 0}]" {
		t.Fatalf("internal topics = %v, want words-combined-repartition", its)
	}
	dc, err1 := cached.Describe()
	du, err2 := uncached.Describe()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if diff := cmp.Diff(dc.String(), du.String()); diff != "" {
		t.Errorf("the topology depends on the cache size (-cache +no cache):\n%s", diff)
	}
	b := topology(false)
	d := run(t, b, streamtest.CommitEvery(100))
	must(t, d.InputTopic("lines", serde.String(), serde.String()).Pipe("l", "a b a"))
	must(t, d.Commit())
	if got := fmt.Sprint(readKVs(t, d.OutputTopic("out", serde.String(), serde.Int64()))); got != "[{a 1} {b 1} {a 2}]" {
		t.Errorf("updates = %s, want one per record", got)
	}
}

// lastOf returns the last update of each key.
func lastOf[K comparable, V any](updates map[K][]V) map[K]V {
	out := map[K]V{}
	for k, us := range updates {
		out[k] = us[len(us)-1]
	}
	return out
}
