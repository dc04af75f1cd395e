package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	"github.com/gregorstream/gregor/state/pebble"
)

// testTimeout bounds every wait of these tests: a failure, not a pace.
const testTimeout = 60 * time.Second

// testLogger returns the runtime's logger for a test: its lines are kept
// and shown if the test fails (on stderr as they come with GREGOR_TEST_LOG
// set).
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("GREGOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	tl := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			tl.mu.Lock()
			defer tl.mu.Unlock()
			t.Logf("runtime log:\n%s", tl.buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testLog keeps a test's log lines, up to 1 MiB.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 1<<20 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func wordCountTopology(t *testing.T, countOpts ...dsl.Option) *processor.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	b.Stream("lines", serde.String(), serde.String()).
		FlatMapValues(func(line string) []string { return strings.Fields(line) }).
		GroupBy(func(_ string, w string) string { return w }, serde.String(), dsl.Named("by-word")).
		Count(append([]dsl.Option{dsl.Named("counts")}, countOpts...)...).
		ToStream().
		To("word-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// produceLines writes n lines of words "w0".."w(words-1)", keyed by line
// number, and returns the expected count of each word.
func produceLines(t *testing.T, addrs []string, n, words int) map[string]int64 {
	t.Helper()
	want := map[string]int64{}
	produceWords(t, addrs, 0, n, want, func(i int) string {
		return fmt.Sprintf("w%d w%d w%d", i%words, (i*7)%words, (i*13)%words)
	})
	return want
}

// produceWords writes lines from to from+n-1 of line(i) to "lines", keyed by
// line number, and adds their words to want.
func produceWords(t *testing.T, addrs []string, from, n int, want map[string]int64, line func(int) string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		l := line(i)
		for _, w := range strings.Fields(l) {
			want[w]++
		}
		recs = append(recs, &kgo.Record{Topic: "lines", Key: fmt.Appendf(nil, "line-%d", i), Value: []byte(l)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// readCounts consumes word-counts read_committed until every word's latest
// count is the expected one, and returns every count seen per word in order.
func readCounts(t *testing.T, addrs []string, want map[string]int64) map[string][]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("word-counts"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	seen := map[string][]int64{}
	done := func() bool {
		for w, n := range want {
			s := seen[w]
			if len(s) == 0 || s[len(s)-1] != n {
				return false
			}
		}
		return true
	}
	for !done() {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if t.Failed() {
			t.FailNow()
		}
		if ctx.Err() != nil {
			t.Fatalf("word-counts not complete before the deadline: %d of %d words right", len(want)-missing(seen, want), len(want))
		}
		fs.EachRecord(func(r *kgo.Record) {
			v, err := serde.Int64().Deserialize("word-counts", r.Value)
			if err != nil {
				t.Errorf("word-counts %d/%d: %v", r.Partition, r.Offset, err)
			}
			seen[string(r.Key)] = append(seen[string(r.Key)], v)
		})
	}
	return seen
}

func missing(seen map[string][]int64, want map[string]int64) int {
	n := 0
	for w, c := range want {
		if s := seen[w]; len(s) == 0 || s[len(s)-1] != c {
			n++
		}
	}
	return n
}

// start runs a Runtime until the test ends, or until stop is called; stop
// returns Run's error.
func start(t *testing.T, topo *processor.Topology, opts ...runtime.Option) (stop func() error) {
	t.Helper()
	rt, err := runtime.New(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return runAsync(t, rt)
}

// runAsync runs rt until the test ends or stop is called; stop returns
// Run's error. Run failing before stop fails the test.
func runAsync(t *testing.T, rt *runtime.Runtime) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		err := rt.Run(ctx)
		if err != nil && ctx.Err() == nil {
			t.Errorf("Run failed: %v", err)
		}
		errc <- err
	}()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(testTimeout):
				runErr = errors.New("Run did not return after cancel")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestWordCount(t *testing.T) {
	for _, tc := range []struct {
		g       runtime.Guarantee
		threads int
	}{{runtime.AtLeastOnce, 1}, {runtime.ExactlyOnce, 1}, {runtime.ExactlyOnce, 3}} {
		g := tc.g
		t.Run(fmt.Sprintf("%s/threads=%d", g, tc.threads), func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(4, "lines"), kfake.SeedTopics(4, "word-counts"))
			addrs := c.ListenAddrs()
			want := produceLines(t, addrs, 2000, 50)
			stop := start(t, wordCountTopology(t),
				runtime.WithApplicationID("wc"),
				runtime.WithBrokers(addrs...),
				runtime.WithStateDir(t.TempDir()),
				runtime.WithGuarantee(g),
				runtime.WithNumStreamThreads(tc.threads),
				runtime.WithCommitInterval(100*time.Millisecond),
				runtime.WithDynamicMembership(),
				runtime.WithLogger(testLogger(t)),
			)
			seen := readCounts(t, addrs, want)
			if gi := c.GroupInfo("wc"); gi == nil || len(gi.Members) != tc.threads {
				t.Errorf("group: %+v, want %d members (one per thread)", gi, tc.threads)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if g == runtime.ExactlyOnce {
				// Each word's counts only grow: a record processed twice
				// would show a count again or a lower one.
				for w, s := range seen {
					for i := 1; i < len(s); i++ {
						if s[i] <= s[i-1] {
							t.Fatalf("word %s: counts %v do not grow", w, s)
						}
					}
				}
			}
		})
	}
}

func TestCopartitionMismatch(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "left"), kfake.SeedTopics(3, "right"))
	b := dsl.NewBuilder()
	left := b.Stream("left", serde.String(), serde.String())
	right := b.Stream("right", serde.String(), serde.String())
	left.Merge(right).GroupByKey().Count(dsl.Named("n"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(topo, runtime.WithApplicationID("cop"), runtime.WithBrokers(c.ListenAddrs()...),
		runtime.WithStateDir(t.TempDir()), runtime.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err = rt.Run(ctx)
	if !errors.Is(err, runtime.ErrCopartition) {
		t.Fatalf("Run = %v, want ErrCopartition", err)
	}
	for _, s := range []string{"left (4 partitions)", "right (3 partitions)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

// produceMore writes n two-word lines from line from on, adding their words
// to want.
func produceMore(t *testing.T, addrs []string, from, n, words int, want map[string]int64) {
	t.Helper()
	produceWords(t, addrs, from, n, want, func(i int) string { return fmt.Sprintf("w%d w%d", i%words, (i*3)%words) })
}

// TestTwoInstances runs two instances in one group: they share the tasks;
// then one stops, its tasks move to the other, which restores their stores
// from the changelogs (its state directory never held them), and counting
// goes on from the restored counts.
func TestTwoInstances(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "lines"), kfake.SeedTopics(4, "word-counts"))
	addrs := c.ListenAddrs()
	want := produceLines(t, addrs, 2000, 50)
	opts := func(dir string) []runtime.Option {
		return []runtime.Option{
			runtime.WithApplicationID("wc2"),
			runtime.WithBrokers(addrs...),
			runtime.WithStateDir(dir),
			runtime.WithGuarantee(runtime.ExactlyOnce),
			runtime.WithDynamicMembership(),
			runtime.WithLogger(testLogger(t)),
		}
	}
	topo := wordCountTopology(t)
	stopA := start(t, topo, opts(t.TempDir())...)
	stopB := start(t, topo, opts(t.TempDir())...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Both members hold tasks: 8 tasks (2 sub-topologies x 4 partitions)
	// split 4 and 4.
	gi, err := c.WaitGroupStable(ctx, "wc2", 2)
	if err != nil {
		t.Fatalf("the group never had two stable members: %v", err)
	}
	for _, m := range gi.Members {
		if m.NumAssigned() == 0 {
			t.Errorf("member %s has no partitions: the tasks are not shared", m.MemberID)
		}
	}
	readCounts(t, addrs, want)
	if err := stopB(); err != nil {
		t.Fatalf("instance B: %v", err)
	}
	produceMore(t, addrs, 2000, 1000, 50, want)
	seen := readCounts(t, addrs, want)
	for w, s := range seen {
		for i := 1; i < len(s); i++ {
			if s[i] <= s[i-1] {
				t.Fatalf("word %s: counts %v do not grow", w, s)
			}
		}
	}
	if err := stopA(); err != nil {
		t.Fatalf("instance A: %v", err)
	}
}

// TestStateCleanup: a task that moves to another instance has its local
// state deleted from the first instance after the cleanup delay, while the
// tasks it keeps keep theirs.
func TestStateCleanup(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "lines"), kfake.SeedTopics(4, "word-counts"))
	addrs := c.ListenAddrs()
	want := produceLines(t, addrs, 1000, 40)
	dirA, dirB := t.TempDir(), t.TempDir()
	opts := func(dir string) []runtime.Option {
		return []runtime.Option{
			runtime.WithApplicationID("cleanup"), runtime.WithBrokers(addrs...), runtime.WithStateDir(dir),
			runtime.WithGuarantee(runtime.ExactlyOnce), runtime.WithDynamicMembership(),
			runtime.WithStateCleanupDelay(time.Millisecond), runtime.WithLogger(testLogger(t)),
		}
	}
	topo := wordCountTopology(t)
	stopA := start(t, topo, opts(dirA)...)
	readCounts(t, addrs, want) // A alone ran every task
	stopB := start(t, topo, opts(dirB)...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := c.WaitGroupStable(ctx, "cleanup", 2); err != nil {
		t.Fatal(err)
	}
	produceMore(t, addrs, 1000, 500, 40, want)
	readCounts(t, addrs, want)
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	// Each partition of the count store is held by exactly one instance:
	// B restored the tasks that moved, A deleted them.
	held := func(dir string, p int32) bool {
		e, err := pebble.Open(filepath.Join(dir, "state"))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		n, err := e.Reader(state.StorePartition{Store: "counts", Partition: p}).ApproximateCount()
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	moved := 0
	for p := range int32(4) {
		a, b := held(dirA, p), held(dirB, p)
		if a == b {
			t.Errorf("partition %d of the count store: held by A %v, by B %v; want exactly one", p, a, b)
		}
		if b {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("no task moved to B")
	}
}

// TestEmbeddedBroker: with no broker configured, Run starts one (and a
// schema registry), creates the missing source topic, and processes.
func TestEmbeddedBroker(t *testing.T) {
	t.Setenv(runtime.BrokersEnv, "")
	rt, err := runtime.New(wordCountTopology(t), runtime.WithApplicationID("embedded"),
		runtime.WithStateDir(t.TempDir()), runtime.WithEmbeddedBrokerPort(0), runtime.WithDynamicMembership(),
		runtime.WithoutSignalHandler(), runtime.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- rt.Run(rctx) }()
	var addrs []string
	for len(addrs) == 0 {
		if ctx.Err() != nil {
			t.Fatal("Run never reported its brokers")
		}
		time.Sleep(5 * time.Millisecond)
		addrs = rt.Brokers()
	}
	if u := rt.SchemaRegistryURL(); !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("registry URL %q", u)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := produceLines(t, addrs, 100, 10)
	readCounts(t, addrs, want)
	// The changelog is the runtime's, compacted, not one the embedded
	// broker made with its defaults on a metadata request.
	if got := topicConfig(t, kadm.NewClient(cl), "embedded-counts-changelog")["cleanup.policy"]; got != "compact" {
		t.Errorf("cleanup.policy of embedded-counts-changelog = %q, want compact", got)
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
