package runtime_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// adminClient returns an admin client of the cluster, closed with the test.
func adminClient(t *testing.T, c *kfake.Cluster) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// topicConfig returns the configuration of topic, waiting until the topic
// exists.
func topicConfig(t *testing.T, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		cancel()
		if err == nil && len(rcs) == 1 && rcs[0].Err == nil {
			out := map[string]string{}
			for _, c := range rcs[0].Configs {
				out[c.Key] = c.MaybeValue()
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %q: no configuration after %v (last error %v)", topic, testTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func countTopology(t *testing.T) *processor.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).GroupByKey().Count(dsl.Named("n"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestChangelogCreatedCompacted(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "in"))
	stop := start(t, countTopology(t), runtime.WithApplicationID("cl"), runtime.WithBrokers(c.ListenAddrs()...),
		runtime.WithStateDir(t.TempDir()), runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)))
	defer stop()
	cfg := topicConfig(t, adminClient(t, c), "cl-n-changelog")
	if got := cfg["cleanup.policy"]; got != "compact" {
		t.Errorf("cleanup.policy of cl-n-changelog = %q, want compact", got)
	}
}

func TestChangelogWrongPolicyRefused(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "in"))
	adm := adminClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "cl-n-changelog")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(countTopology(t), runtime.WithApplicationID("cl"), runtime.WithBrokers(c.ListenAddrs()...),
		runtime.WithStateDir(t.TempDir()), runtime.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	err = rt.Run(ctx)
	if !errors.Is(err, runtime.ErrChangelogConfig) {
		t.Fatalf("Run = %v, want ErrChangelogConfig", err)
	}
	for _, s := range []string{`"cl-n-changelog"`, `cleanup.policy="delete"`, `needs "compact"`,
		"--entity-name cl-n-changelog --add-config cleanup.policy=[compact]", "delete the topic"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

// windowLike is a key-value store builder that declares a changelog of its
// own, as window stores do.
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

func customChangelogTopology(t *testing.T) *processor.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	b.AddStore(windowLike{state.KeyValue("w", serde.String(), serde.String())})
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] { return &putProc{} }, dsl.WithStores("w"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func TestChangelogCustomConfig(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "in"))
	opts := []runtime.Option{runtime.WithApplicationID("cl"), runtime.WithBrokers(c.ListenAddrs()...),
		runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t))}
	stop := start(t, customChangelogTopology(t), append(opts, runtime.WithStateDir(t.TempDir()))...)
	cfg := topicConfig(t, adminClient(t, c), "cl-w-changelog")
	if got, want := cfg["cleanup.policy"], "compact,delete"; got != want {
		t.Errorf("cleanup.policy = %q, want %q", got, want)
	}
	if got, want := cfg["retention.ms"], "90000000"; got != want {
		t.Errorf("retention.ms = %q, want %q", got, want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The topic it created passes its own check, the policies being
	// compared as sets.
	rt, err := runtime.New(customChangelogTopology(t), append(opts, runtime.WithStateDir(t.TempDir()))...)
	if err != nil {
		t.Fatal(err)
	}
	stop = runAsync(t, rt)
	awaitStatus(t, rt, func(s runtime.Status) bool { return s.State == runtime.StateRunning })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

type noopProc struct{}

func (noopProc) Init(processor.Context[string, string]) error   { return nil }
func (noopProc) Process(processor.Record[string, string]) error { return nil }
func (noopProc) Close() error                                   { return nil }

// TestWindowStoreChangelog: a window store's changelog is created
// compact,delete with its retention plus a day, and an existing one whose
// policy lists the same two in the other order is accepted.
func TestWindowStoreChangelog(t *testing.T) {
	topo := func() *processor.Topology {
		b := dsl.NewBuilder()
		b.AddStore(state.Window("win", serde.String(), serde.String(), time.Minute, state.WithRetention(time.Hour)))
		b.Stream("in", serde.String(), serde.String()).
			Process(func() processor.Processor[string, string, string, string] { return noopProc{} }, dsl.WithStores("win"))
		topo, err := b.Build()
		if err != nil {
			t.Fatal(err)
		}
		return topo
	}
	c := newCluster(t, kfake.SeedTopics(2, "in"))
	adm := adminClient(t, c)
	opts := func(app string) []runtime.Option {
		return []runtime.Option{runtime.WithApplicationID(app), runtime.WithBrokers(c.ListenAddrs()...),
			runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)), runtime.WithStateDir(t.TempDir())}
	}
	stop := start(t, topo(), opts("win")...)
	cfg := topicConfig(t, adm, "win-win-changelog")
	want := strconv.FormatInt((25 * time.Hour).Milliseconds(), 10)
	if cfg["cleanup.policy"] != "compact,delete" || cfg["retention.ms"] != want {
		t.Errorf("changelog cleanup.policy=%q retention.ms=%q, want compact,delete and %s", cfg["cleanup.policy"], cfg["retention.ms"], want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, 2, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete,compact"),
		"retention.ms": kadm.StringPtr(want)}, "other-win-changelog")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(topo(), opts("other")...)
	if err != nil {
		t.Fatal(err)
	}
	stop = runAsync(t, rt)
	awaitStatus(t, rt, func(s runtime.Status) bool { return s.State == runtime.StateRunning })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
