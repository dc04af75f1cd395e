package processor_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state/memory"
)

// twoChains builds two chains with no edge between them:
//
//	src-a ("a") -> pa -> sink-a ("out-a")
//	src-b ("b") -> pb -> sink-b ("out-b")
func twoChains() *processor.Topology {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src-a", s, s, "a")
	topo.AddProcessor("pa", pass[string, string](), "src-a")
	topo.AddSink("sink-a", "out-a", s, s, "pa")
	topo.AddSource("src-b", s, s, "b")
	topo.AddProcessor("pb", pass[string, string](), "src-b")
	topo.AddSink("sink-b", "out-b", s, s, "pb")
	return topo
}

func subNodes(t *testing.T, topo *processor.Topology) [][]string {
	t.Helper()
	subs, err := topo.SubTopologies()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for i, s := range subs {
		if s.ID != i {
			t.Errorf("sub-topology %d has ID %d", i, s.ID)
		}
		out = append(out, s.Nodes)
	}
	return out
}

func TestSubTopologiesGrouping(t *testing.T) {
	t.Run("edges", func(t *testing.T) {
		got := subNodes(t, twoChains())
		want := [][]string{{"src-a", "pa", "sink-a"}, {"src-b", "pb", "sink-b"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("sub-topologies = %v, want %v", got, want)
		}
	})
	t.Run("a store of one processor does not merge", func(t *testing.T) {
		topo := twoChains()
		topo.AddStore(memory.NewBuilder("st-a"), "pa")
		topo.AddStore(memory.NewBuilder("st-b"), "pb")
		if got := subNodes(t, topo); len(got) != 2 {
			t.Errorf("sub-topologies = %v, want 2", got)
		}
	})
	t.Run("shared store", func(t *testing.T) {
		topo := twoChains()
		topo.AddStore(memory.NewBuilder("shared"), "pb", "pa")
		got := subNodes(t, topo)
		want := [][]string{{"src-a", "pa", "sink-a", "src-b", "pb", "sink-b"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("sub-topologies = %v, want %v", got, want)
		}
	})
	t.Run("store connected later", func(t *testing.T) {
		topo := twoChains()
		topo.AddStore(memory.NewBuilder("shared"), "pa")
		if got := subNodes(t, topo); len(got) != 2 {
			t.Fatalf("before ConnectStore: %v, want 2 sub-topologies", got)
		}
		topo.ConnectStore("shared", "pb")
		if got := subNodes(t, topo); len(got) != 1 {
			t.Errorf("after ConnectStore: %v, want 1 sub-topology", got)
		}
	})
	t.Run("edge merges chains", func(t *testing.T) {
		topo := twoChains()
		topo.AddProcessor("join", pass[string, string](), "pb", "pa")
		got := subNodes(t, topo)
		want := [][]string{{"src-a", "pa", "sink-a", "src-b", "pb", "sink-b", "join"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("sub-topologies = %v, want %v", got, want)
		}
	})
	t.Run("numbered by first node added", func(t *testing.T) {
		s := serde.String()
		topo := processor.NewTopology()
		topo.AddProcessor("pb", pass[string, string](), "src-b") // first node: its group is 0
		topo.AddSource("src-a", s, s, "a")
		topo.AddSource("src-b", s, s, "b")
		topo.AddProcessor("pa", pass[string, string](), "src-a")
		got := subNodes(t, topo)
		want := [][]string{{"src-b", "pb"}, {"src-a", "pa"}}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("sub-topologies = %v, want %v", got, want)
		}
	})
}

func TestSubTopologyFields(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("orders", s, s, "orders", "orders-eu")
	topo.AddSourcePattern("updates", s, s, regexp.MustCompile(`cust-\d+`))
	topo.AddProcessor("enrich", pass[string, string](), "orders")
	topo.AddProcessor("update", pass[string, string](), "updates")
	topo.AddSink("rep", "rekeyed", s, s, "enrich")
	topo.AddSink("rep-again", "rekeyed", s, s, "enrich") // same topic: listed once
	topo.AddSink("audit", "audit", s, s, "update")
	topo.AddSinkFunc("route", func(r processor.Record[string, string]) string { return r.Key }, s, s, "update")
	topo.AddStore(memory.NewBuilder("customers"), "enrich", "update")
	topo.AddStore(memory.NewBuilder("seen"), "update")
	topo.AddSource("by-customer", s, s, "rekeyed")
	topo.AddProcessor("count", pass[string, string](), "by-customer")
	topo.AddStore(memory.NewBuilder("counts"), "count")
	topo.AddInternalTopic("rekeyed", 8)

	subs, err := topo.SubTopologies()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 {
		t.Fatalf("got %d sub-topologies, want 2", len(subs))
	}
	s0, s1 := subs[0], subs[1]
	if want := []string{"orders", "orders-eu"}; !slices.Equal(s0.Topics, want) {
		t.Errorf("sub 0 Topics = %v, want %v", s0.Topics, want)
	}
	if len(s0.Patterns) != 1 {
		t.Fatalf("sub 0 Patterns = %v, want one", s0.Patterns)
	}
	// The pattern is anchored: it matches whole topic names only.
	for topic, want := range map[string]bool{"cust-12": true, "cust-": false, "xcust-1": false, "cust-1x": false} {
		if got := s0.Patterns[0].MatchString(topic); got != want {
			t.Errorf("pattern %v matches %q = %v, want %v", s0.Patterns[0], topic, got, want)
		}
	}
	if want := []string{"rekeyed", "audit"}; !slices.Equal(s0.SinkTopics, want) {
		t.Errorf("sub 0 SinkTopics = %v, want %v (fixed topics only, once each)", s0.SinkTopics, want)
	}
	if want := []string{"customers", "seen"}; !slices.Equal(s0.Stores, want) {
		t.Errorf("sub 0 Stores = %v, want %v", s0.Stores, want)
	}
	if want := []string{"rekeyed"}; !slices.Equal(s1.Topics, want) {
		t.Errorf("sub 1 Topics = %v, want %v (the short name of the internal topic)", s1.Topics, want)
	}
	if len(s1.Patterns) != 0 || len(s1.SinkTopics) != 0 {
		t.Errorf("sub 1 Patterns = %v, SinkTopics = %v, want none", s1.Patterns, s1.SinkTopics)
	}
	if want := []string{"counts"}; !slices.Equal(s1.Stores, want) {
		t.Errorf("sub 1 Stores = %v, want %v", s1.Stores, want)
	}

	if got := topo.TopicName("shop", "rekeyed"); got != "shop-rekeyed" {
		t.Errorf("TopicName(internal) = %q, want shop-rekeyed", got)
	}
	if got := topo.TopicName("shop", "orders"); got != "orders" {
		t.Errorf("TopicName(external) = %q, want orders", got)
	}
	if b, ok := topo.StoreBuilder("seen"); !ok || b.Name() != "seen" {
		t.Errorf("StoreBuilder(seen) = %v, %v", b, ok)
	}
	if _, ok := topo.StoreBuilder("nope"); ok {
		t.Error("StoreBuilder(nope) found a store")
	}
}

func TestInternalTopicsSorted(t *testing.T) {
	topo := processor.NewTopology()
	topo.AddInternalTopic("z-rep", 0)
	topo.AddInternalTopic("a-rep", 6)
	want := []processor.InternalTopic{{Name: "a-rep", Partitions: 6}, {Name: "z-rep", Partitions: 0}}
	if got := topo.InternalTopics(); !slices.Equal(got, want) {
		t.Errorf("InternalTopics() = %v, want %v", got, want)
	}
}

// TestResultsAreCopies checks that what SubTopologies and Describe return
// can be modified without changing the topology.
func TestResultsAreCopies(t *testing.T) {
	topo := twoChains()
	topo.AddStore(memory.NewBuilder("st"), "pa")
	before, err := topo.Describe()
	if err != nil {
		t.Fatal(err)
	}
	want := before.String()

	subs, _ := topo.SubTopologies()
	subs[0].Nodes[0] = "mutated"
	subs[0].Topics[0] = "mutated"
	subs[0].SinkTopics[0] = "mutated"
	subs[0].Stores[0] = "mutated"
	d, _ := topo.Describe()
	for _, n := range d.SubTopologies[0].Nodes {
		for _, l := range [][]string{n.Topics, n.Parents, n.Stores, n.Children} {
			if len(l) > 0 {
				l[0] = "mutated"
			}
		}
	}

	again, err := topo.SubTopologies()
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Nodes[0] != "src-a" || again[0].Topics[0] != "a" || again[0].SinkTopics[0] != "out-a" || again[0].Stores[0] != "st" {
		t.Errorf("SubTopologies() after modifying an earlier result = %+v", again[0])
	}
	after, err := topo.Describe()
	if err != nil {
		t.Fatal(err)
	}
	if after.String() != want {
		t.Errorf("Describe() after modifying an earlier result:\n%s\nwant\n%s", after, want)
	}
	// The topology still runs.
	env := newFakeEnv()
	inst, err := topo.Instantiate(0, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Init(); err != nil {
		t.Fatal(err)
	}
	src, ok := inst.Source("a")
	if !ok {
		t.Fatal("no source for topic a")
	}
	if err := src(raw("a", 0, "k", "v")); err != nil {
		t.Fatal(err)
	}
	if len(env.sends) != 1 || env.sends[0].topic != "out-a" {
		t.Errorf("sends = %+v, want one to out-a", env.sends)
	}
}
