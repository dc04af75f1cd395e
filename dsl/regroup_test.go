package dsl_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// member is a row of the "members" table, keyed by user.
type member struct {
	Region string `json:"region"`
	Score  int64  `json:"score"`
}

// memberSteps are piped in order to the "members" table, step i at sec(i);
// a nil member is a tombstone, piped as nil bytes when raw is set.
var memberSteps = []struct {
	user   string
	member *member
	raw    bool
}{
	{"ann", &member{"east", 10}, false}, // 0
	{"bob", &member{"east", 5}, false},  // 1
	{"cy", &member{"west", 7}, false},   // 2
	{"ann", &member{"west", 10}, false}, // 3: ann moves from east to west
	{"ann", &member{"west", 20}, false}, // 4: ann stays in west, with a new score
	{"bob", nil, false},                 // 5: bob leaves
	{"dan", nil, false},                 // 6: dan was never there
	{"cy", nil, true},                   // 7: cy leaves, nil bytes
}

// regionTopology regroups the members table by region three times: a
// Count, an Aggregate summing scores, and a Reduce summing them with an
// adder and a subtractor, each to its own output topic. store configures
// the table's and the aggregations' stores.
func regionTopology(store ...state.Option) *dsl.Builder {
	b := dsl.NewBuilder()
	members := b.Table("members", serde.String(), serde.JSON[member](), dsl.Named("members"), dsl.Materialized(store...))
	byRegion := func(_ string, m member) (string, member) { return m.Region, m }
	members.GroupBy(byRegion, serde.String(), serde.JSON[member]()).
		Count(dsl.Named("region-counts"), dsl.Materialized(store...)).
		ToStream().To("counts")
	members.GroupBy(byRegion, serde.String(), serde.JSON[member](), dsl.Named("by-region")).
		Aggregate(func() int64 { return 0 },
			func(_ string, m member, sum int64) int64 { return sum + m.Score },
			func(_ string, m member, sum int64) int64 { return sum - m.Score },
			serde.Int64(), dsl.Named("region-scores"), dsl.Materialized(store...)).
		ToStream().To("scores")
	members.GroupBy(func(_ string, m member) (string, int64) { return m.Region, m.Score }, serde.String(), serde.Int64()).
		Reduce(func(sum, score int64) int64 { return sum + score },
			func(sum, score int64) int64 { return sum - score },
			dsl.Named("region-scores-reduced"), dsl.Materialized(store...)).
		ToStream().To("reduced")
	return b
}

func pipeMember(t *testing.T, d *streamtest.Driver, i int) {
	t.Helper()
	s := memberSteps[i]
	in := d.InputTopic("members", serde.String(), serde.JSON[member]())
	switch {
	case s.raw:
		must(t, d.PipeRaw("members", -1, processor.RawRecord{Key: []byte(s.user), Timestamp: sec(i)}))
	case s.member == nil:
		must(t, in.PipeRecord(tombstone[string, member](s.user, sec(i))))
	default:
		must(t, in.PipeAt(s.user, *s.member, sec(i)))
	}
}

// regionOutputs are the three outputs of regionTopology after a step.
type regionOutputs struct {
	Counts, Scores, Reduced []processor.KeyValue[string, int64]
}

func readRegions(t *testing.T, d *streamtest.Driver) regionOutputs {
	t.Helper()
	return regionOutputs{
		Counts:  readKVs(t, d.OutputTopic("counts", serde.String(), serde.Int64())),
		Scores:  readKVs(t, d.OutputTopic("scores", serde.String(), serde.Int64())),
		Reduced: readKVs(t, d.OutputTopic("reduced", serde.String(), serde.Int64())),
	}
}

type kvs = []processor.KeyValue[string, int64]

func kv(k string, v int64) processor.KeyValue[string, int64] { return processor.Pair(k, v) }

// A table regrouped by region (Kafka Streams' KGroupedTable): a row's old
// value is subtracted from its old group before its new value is added to
// its new group. A user moving from east to west decrements east, then
// increments west; a tombstone decrements the user's region; a tombstone of
// a missing user changes nothing. Without caches each step shows; with
// them, the updates of a region within a commit are one (here only when a
// user changes score within a region: the driver commits after each pipe).
func TestTableRegroup(t *testing.T) {
	sameForAll := func(want kvs) regionOutputs { return regionOutputs{want, want, want} }
	noCache := []regionOutputs{
		{kvs{kv("east", 1)}, kvs{kv("east", 10)}, kvs{kv("east", 10)}},
		{kvs{kv("east", 2)}, kvs{kv("east", 15)}, kvs{kv("east", 15)}},
		{kvs{kv("west", 1)}, kvs{kv("west", 7)}, kvs{kv("west", 7)}},
		{kvs{kv("east", 1), kv("west", 2)}, kvs{kv("east", 5), kv("west", 17)}, kvs{kv("east", 5), kv("west", 17)}},
		// The old value is subtracted, then the new one added, both in
		// west: two updates (Kafka Streams 3.5 and later send one, see
		// KIP-904).
		{kvs{kv("west", 1), kv("west", 2)}, kvs{kv("west", 7), kv("west", 27)}, kvs{kv("west", 7), kv("west", 27)}},
		sameForAll(kvs{kv("east", 0)}),
		{},
		{kvs{kv("west", 1)}, kvs{kv("west", 20)}, kvs{kv("west", 20)}},
	}
	withCache := append([]regionOutputs(nil), noCache...)
	withCache[4] = regionOutputs{kvs{kv("west", 2)}, kvs{kv("west", 27)}, kvs{kv("west", 27)}}

	tests := []struct {
		name       string
		store      []state.Option
		partitions int
		want       []regionOutputs
	}{
		{"no cache", []state.Option{state.WithCache(0)}, 1, noCache},
		{"cache", nil, 1, withCache},
		{"no cache, 4 partitions", []state.Option{state.WithCache(0)}, 4, noCache},
		{"cache, 4 partitions", nil, 4, withCache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := run(t, regionTopology(tt.store...), streamtest.Partitions(tt.partitions))
			for i := range memberSteps {
				pipeMember(t, d, i)
				got := readRegions(t, d)
				var opts []cmp.Option
				if tt.partitions > 1 {
					// Regions live in different tasks: only the order of
					// each region's updates is kept.
					opts = append(opts, cmpopts.SortSlices(func(a, b processor.KeyValue[string, int64]) bool { return a.Key < b.Key }))
				}
				opts = append(opts, cmpopts.EquateEmpty())
				if diff := cmp.Diff(tt.want[i], got, opts...); diff != "" {
					s := memberSteps[i]
					t.Errorf("step %d (%s = %+v) (-want +got):\n%s", i, s.user, s.member, diff)
				}
			}
			// Regions stay in the table at zero: a regrouped aggregate is
			// never deleted by its subtractor.
			for store, want := range map[string]map[string]int64{
				"region-counts":         {"east": 0, "west": 1},
				"region-scores":         {"east": 0, "west": 20},
				"region-scores-reduced": {"east": 0, "west": 20},
			} {
				if diff := cmp.Diff(want, values(storeRows[string, int64](t, d, store, tt.partitions, serde.String()))); diff != "" {
					t.Errorf("store %s (-want +got):\n%s", store, diff)
				}
			}
			// The changelogs hold each region's updates.
			wantLog := map[string][]int64{}
			for _, w := range tt.want {
				for _, c := range w.Counts {
					wantLog[c.Key] = append(wantLog[c.Key], c.Value)
				}
			}
			gotLog := map[string][]int64{}
			for k, us := range changelog(t, d, "region-counts", tt.partitions, serde.String(), serde.Int64()) {
				for _, u := range us {
					gotLog[k] = append(gotLog[k], u.Value.Value)
				}
			}
			if diff := cmp.Diff(wantLog, gotLog); diff != "" {
				t.Errorf("region-counts changelog (-want +got):\n%s", diff)
			}
		})
	}
}

// With commits further apart, the caches coalesce a whole interval: the
// table passes on one change per user (its value at the last commit to its
// value now) and the aggregations one update per region.
func TestTableRegroupCoalesced(t *testing.T) {
	d := run(t, regionTopology(), streamtest.CommitEvery(1000))
	// commit commits twice: the first flushes the table's cache into the
	// repartition topics, and the aggregations then hold what that caused
	// in their caches until the second.
	commit := func() {
		t.Helper()
		must(t, d.Commit())
		must(t, d.Commit())
	}
	for i := range 3 {
		pipeMember(t, d, i)
	}
	if got := readRegions(t, d); len(got.Counts)+len(got.Scores)+len(got.Reduced) != 0 {
		t.Errorf("updates before the first commit: %+v", got)
	}
	commit()
	want := regionOutputs{
		kvs{kv("east", 2), kv("west", 1)},
		kvs{kv("east", 15), kv("west", 7)},
		kvs{kv("east", 15), kv("west", 7)},
	}
	if diff := cmp.Diff(want, readRegions(t, d)); diff != "" {
		t.Errorf("first interval (-want +got):\n%s", diff)
	}
	// Second interval: ann goes from east/10 to west/20 (two updates, one
	// change), bob and cy leave.
	for i := 3; i < len(memberSteps); i++ {
		pipeMember(t, d, i)
	}
	commit()
	want = regionOutputs{
		kvs{kv("east", 0), kv("west", 1)},
		kvs{kv("east", 0), kv("west", 20)},
		kvs{kv("east", 0), kv("west", 20)},
	}
	if diff := cmp.Diff(want, readRegions(t, d)); diff != "" {
		t.Errorf("second interval (-want +got):\n%s", diff)
	}
	// The changelog has the same, one record per region per interval. (The
	// rows' timestamps are not compared: see TestTableCacheDeleteTimestamp.)
	wantLog := map[string][]int64{"east": {2, 0}, "west": {1, 1}}
	gotLog := map[string][]int64{}
	for k, us := range changelog(t, d, "region-counts", 1, serde.String(), serde.Int64()) {
		for _, u := range us {
			gotLog[k] = append(gotLog[k], u.Value.Value)
		}
	}
	if diff := cmp.Diff(wantLog, gotLog); diff != "" {
		t.Errorf("region-counts changelog (-want +got):\n%s", diff)
	}
}

// A regrouped table keeps a group's aggregate timestamped with the latest
// record that changed it, subtraction or addition.
func TestTableRegroupTimestamps(t *testing.T) {
	b := dsl.NewBuilder()
	b.Table("users", serde.String(), serde.String(), dsl.Named("users"), dsl.Materialized(state.WithCache(0))).
		GroupBy(func(u, r string) (string, string) { return r, u }, serde.String(), serde.String()).
		Count(dsl.Named("regions"), dsl.Materialized(state.WithCache(0))).
		ToStream().To("out")
	d := run(t, b)
	in := d.InputTopic("users", serde.String(), serde.String())
	must(t, in.PipeAt("ann", "east", sec(10)))
	must(t, in.PipeAt("bob", "east", sec(5)))  // late: east stays at 10
	must(t, in.PipeAt("ann", "west", sec(20))) // east loses ann at 20
	want := map[string][]upd[int64]{
		"east": {val[int64](1, sec(10)), val[int64](2, sec(10)), val[int64](1, sec(20))},
		"west": {val[int64](1, sec(20))},
	}
	if diff := cmp.Diff(want, byKey(t, d.OutputTopic("out", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	wantRows := map[string]state.ValueAndTimestamp[int64]{"east": vat[int64](1, sec(20)), "west": vat[int64](1, sec(20))}
	if diff := cmp.Diff(wantRows, storeRows[string, int64](t, d, "regions", 1, serde.String())); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
}

// A subtraction for a group that has no aggregate (here: it expired) is
// ignored, as Kafka Streams' KTableAggregate ignores an old value when the
// old aggregate is null: it is never subtracted from the initializer.
func TestTableRegroupSubtractFromNothing(t *testing.T) {
	b := dsl.NewBuilder()
	b.Table("users", serde.String(), serde.String(), dsl.Named("users"), dsl.Materialized(state.WithCache(0))).
		GroupBy(func(u, r string) (string, string) { return r, u }, serde.String(), serde.String()).
		Count(dsl.Named("regions"), dsl.Materialized(state.WithCache(0), state.WithTTL(time.Hour))).
		ToStream().To("out")
	d := run(t, b)
	in := d.InputTopic("users", serde.String(), serde.String())
	must(t, in.PipeAt("ann", "east", t0))
	must(t, in.PipeAt("bob", "west", t0.Add(2*time.Hour))) // east's count expires
	must(t, in.PipeAt("ann", "north", t0.Add(2*time.Hour)))
	want := []processor.KeyValue[string, int64]{kv("east", 1), kv("west", 1), kv("north", 1)}
	if diff := cmp.Diff(want, readKVs(t, d.OutputTopic("out", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

// A regrouped Reduce starts each group with its first value (the adder is
// not called on a zero aggregate), and keeps a group whose subtractor
// emptied it: the next value is added to the empty aggregate.
func TestTableRegroupReduce(t *testing.T) {
	remove := func(users, user string) string {
		return strings.Join(slices.DeleteFunc(strings.Split(users, ","), func(u string) bool { return u == user }), ",")
	}
	b := dsl.NewBuilder()
	b.Table("users", serde.String(), serde.String(), dsl.Named("users")).
		GroupBy(func(u, r string) (string, string) { return r, u }, serde.String(), serde.String()).
		Reduce(func(users, user string) string { return users + "," + user }, remove, dsl.Named("region-users")).
		ToStream().To("out")
	d := run(t, b)
	in := d.InputTopic("users", serde.String(), serde.String())
	out := d.OutputTopic("out", serde.String(), serde.String())
	steps := []struct {
		pipe func() error
		want []processor.KeyValue[string, string]
	}{
		{func() error { return in.Pipe("ann", "east") }, []processor.KeyValue[string, string]{{Key: "east", Value: "ann"}}},
		{func() error { return in.Pipe("bob", "east") }, []processor.KeyValue[string, string]{{Key: "east", Value: "ann,bob"}}},
		{func() error { return in.Pipe("ann", "west") }, []processor.KeyValue[string, string]{{Key: "east", Value: "bob"}, {Key: "west", Value: "ann"}}},
		{func() error { return in.PipeRecord(tombstone[string, string]("bob", time.Time{})) }, []processor.KeyValue[string, string]{{Key: "east", Value: ""}}},
		{func() error { return in.Pipe("cy", "east") }, []processor.KeyValue[string, string]{{Key: "east", Value: ",cy"}}},
	}
	for i, st := range steps {
		must(t, st.pipe())
		if diff := cmp.Diff(st.want, readKVs(t, out)); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
	want := map[string]string{"east": ",cy", "west": "ann"}
	if diff := cmp.Diff(want, values(storeRows[string, string](t, d, "region-users", 1, serde.String()))); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
}
