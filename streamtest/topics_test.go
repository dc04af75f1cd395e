package streamtest_test

import (
	"maps"
	"testing"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// windowLike is a store builder declaring a changelog of its own.
type windowLike struct {
	*state.KeyValueBuilder[string, string]
}

func (windowLike) ChangelogConfig() map[string]string {
	return map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "90000000"}
}

type putProc struct {
	store *state.KeyValueStore[string, string]
}

func (p *putProc) Init(ctx processor.Context[string, string]) error {
	s, err := ctx.Store("w")
	if err != nil {
		return err
	}
	p.store = s.(*state.KeyValueStore[string, string])
	return nil
}

func (p *putProc) Process(r processor.Record[string, string]) error {
	return p.store.Put(r.Key, r.Value)
}
func (p *putProc) Close() error { return nil }

func TestTopicConfig(t *testing.T) {
	b := dsl.NewBuilder()
	b.AddStore(windowLike{state.KeyValue("w", serde.String(), serde.String())})
	in := b.Stream("in", serde.String(), serde.String())
	in.Process(func() processor.Processor[string, string, string, string] { return &putProc{} }, dsl.WithStores("w"))
	in.GroupBy(func(_, v string) string { return v }, serde.String(), dsl.Named("by-value")).Count(dsl.Named("n"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	d, err := streamtest.New(topo, streamtest.ApplicationID("app"), streamtest.TopicPartitions("in", 4))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for topic, want := range map[string]map[string]string{
		"app-w-changelog": {"cleanup.policy": "compact,delete", "retention.ms": "90000000"},
		"app-n-changelog": {"cleanup.policy": "compact"},
		"in":              nil,
	} {
		if got := d.TopicConfig(topic); !maps.Equal(got, want) {
			t.Errorf("TopicConfig(%q) = %v, want %v", topic, got, want)
		}
	}
	for _, it := range topo.InternalTopics() {
		name := topo.TopicName("app", it.Name)
		if got, want := d.TopicConfig(name), map[string]string{"cleanup.policy": "delete"}; !maps.Equal(got, want) {
			t.Errorf("TopicConfig(%q) = %v, want %v", name, got, want)
		}
	}
	if len(topo.InternalTopics()) == 0 {
		t.Error("no repartition topic")
	}
	// The changelog of a store of a 4-task sub-topology has 4 partitions:
	// every task writes to its own.
	in4 := d.InputTopic("in", serde.String(), serde.String())
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		if err := in4.Pipe(k, "v"); err != nil {
			t.Fatal(err)
		}
	}
}
