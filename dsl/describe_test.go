package dsl_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

func describe(t *testing.T, b *dsl.Builder) string {
	t.Helper()
	d, err := build(t, b).Describe()
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	return d.String()
}

// Unnamed operators get Kafka Streams' generated names: a kind and a
// number counting the builder's generated names, in the order added.
func TestDescribeGeneratedNames(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("orders", serde.String(), serde.String()).
		Filter(func(_, v string) bool { return v != "" }).
		MapValues(func(v string) string { return v }).
		To("out")
	want := `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [orders])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-MAPVALUES-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-FILTER-0000000001
    Sink: KSTREAM-SINK-0000000003 (topic: out)
      <-- KSTREAM-MAPVALUES-0000000002

`
	if diff := cmp.Diff(want, describe(t, b)); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}

// Named overrides the generated name; a named operator takes no number, so
// the generated names after it are the same as without it.
func TestDescribeNamed(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("orders", serde.String(), serde.String(), dsl.Named("orders-in")).
		Filter(func(_, v string) bool { return v != "" }, dsl.Named("non-empty")).
		MapValues(func(v string) string { return v }).
		To("out", dsl.Named("to-out"))
	want := `Topologies:
   Sub-topology: 0
    Source: orders-in (topics: [orders])
      --> non-empty
    Processor: non-empty (stores: [])
      --> KSTREAM-MAPVALUES-0000000000
      <-- orders-in
    Processor: KSTREAM-MAPVALUES-0000000000 (stores: [])
      --> to-out
      <-- non-empty
    Sink: to-out (topic: out)
      <-- KSTREAM-MAPVALUES-0000000000

`
	if diff := cmp.Diff(want, describe(t, b)); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}

// Every operator's generated prefix, and the shape of a topology with a
// split, a merge, a repartition (two sub-topologies) and a store.
func TestDescribeEveryOperator(t *testing.T) {
	b := dsl.NewBuilder()
	s := b.Stream("in", serde.String(), serde.String())                                       // 0
	f := s.FilterNot(func(string, string) bool { return false })                              // 1
	m := f.Map(func(k, v string) (string, string) { return k, v })                            // 2
	m = m.MapValuesWithKey(func(_, v string) string { return v })                             // 3
	m = m.FlatMap(func(k, v string) []dsl.KeyValue[string, string] { return nil })            // 4
	m = m.FlatMapValues(func(v string) []string { return nil })                               // 5
	m = m.SelectKey(func(k, _ string) string { return k })                                    // 6
	m = m.Peek(func(string, string) {})                                                       // 7
	m.Foreach(func(string, string) {})                                                        // 8
	br := m.Split().Branch("a", func(string, string) bool { return true }).DefaultBranch("b") // 9
	mg := br["a"].Merge(br["b"])                                                              // 10
	r := mg.Repartition()                                                                     // 11
	r.ToFunc(func(processor.Record[string, string]) string { return "x" })                    // 12
	want := `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-MAP-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-MAP-0000000002 (stores: [])
      --> KSTREAM-MAPVALUES-0000000003
      <-- KSTREAM-FILTER-0000000001
    Processor: KSTREAM-MAPVALUES-0000000003 (stores: [])
      --> KSTREAM-FLATMAP-0000000004
      <-- KSTREAM-MAP-0000000002
    Processor: KSTREAM-FLATMAP-0000000004 (stores: [])
      --> KSTREAM-FLATMAPVALUES-0000000005
      <-- KSTREAM-MAPVALUES-0000000003
    Processor: KSTREAM-FLATMAPVALUES-0000000005 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000006
      <-- KSTREAM-FLATMAP-0000000004
    Processor: KSTREAM-KEY-SELECT-0000000006 (stores: [])
      --> KSTREAM-PEEK-0000000007
      <-- KSTREAM-FLATMAPVALUES-0000000005
    Processor: KSTREAM-PEEK-0000000007 (stores: [])
      --> KSTREAM-FOREACH-0000000008, KSTREAM-BRANCH-0000000009
      <-- KSTREAM-KEY-SELECT-0000000006
    Processor: KSTREAM-FOREACH-0000000008 (stores: [])
      --> none
      <-- KSTREAM-PEEK-0000000007
    Processor: KSTREAM-BRANCH-0000000009 (stores: [])
      --> KSTREAM-BRANCH-0000000009a, KSTREAM-BRANCH-0000000009b
      <-- KSTREAM-PEEK-0000000007
    Processor: KSTREAM-BRANCH-0000000009a (stores: [])
      --> KSTREAM-MERGE-0000000010
      <-- KSTREAM-BRANCH-0000000009
    Processor: KSTREAM-BRANCH-0000000009b (stores: [])
      --> KSTREAM-MERGE-0000000010
      <-- KSTREAM-BRANCH-0000000009
    Processor: KSTREAM-MERGE-0000000010 (stores: [])
      --> KSTREAM-REPARTITION-0000000011-repartition-sink
      <-- KSTREAM-BRANCH-0000000009a, KSTREAM-BRANCH-0000000009b
    Sink: KSTREAM-REPARTITION-0000000011-repartition-sink (topic: KSTREAM-REPARTITION-0000000011-repartition)
      <-- KSTREAM-MERGE-0000000010

  Sub-topology: 1
    Source: KSTREAM-REPARTITION-0000000011-repartition-source (topics: [KSTREAM-REPARTITION-0000000011-repartition])
      --> KSTREAM-SINK-0000000012
    Sink: KSTREAM-SINK-0000000012 (topic: <chosen per record>)
      <-- KSTREAM-REPARTITION-0000000011-repartition-source

`
	if diff := cmp.Diff(want, describe(t, b)); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}

// A Process node lists the stores connected to it.
func TestDescribeStores(t *testing.T) {
	b, _ := countTopology(1)
	want := `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [clicks])
      --> count
    Processor: count (stores: [counts])
      --> KSTREAM-SINK-0000000001
      <-- KSTREAM-SOURCE-0000000000
    Sink: KSTREAM-SINK-0000000001 (topic: click-counts)
      <-- count

`
	if diff := cmp.Diff(want, describe(t, b)); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}
