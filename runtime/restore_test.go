package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// TestRestoreWaitsForOpenTransaction: a changelog partition holds a
// transaction still open (a stalled previous owner's) and, above it,
// records another owner committed. A restore to the last stable offset
// would miss the committed records for good; the task must not count as
// restored until the open transaction ends, and then it restores up to
// the end seen when it took the task.
func TestRestoreWaitsForOpenTransaction(t *testing.T) {
	const changelog = "rw-counts-changelog"
	c := newCluster(t, kfake.SeedTopics(1, "lines"), kfake.SeedTopics(1, "word-counts"))
	addrs := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// The changelog as the runtime makes it, compacted: it refuses another policy.
	if resp, err := adminClient(t, c).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, changelog); err != nil || resp.Err != nil {
		t.Fatal(err, resp.Err)
	}
	count := func(n int64) []byte {
		b, err := state.TimestampedSerde(serde.Int64()).Serialize(changelog, state.ValueAndTimestamp[int64]{Value: n, Timestamp: time.UnixMilli(1)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	txnClient := func(id string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID(id), kgo.TransactionTimeout(testTimeout),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	// The stalled owner: w0 -> 5, in a transaction left open.
	stalled := txnClient("stalled-owner")
	if err := stalled.ProduceSync(ctx, &kgo.Record{Topic: changelog, Key: []byte("w0"), Value: count(5)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The next owner: w1 -> 7, committed above it.
	next := txnClient("next-owner")
	if err := next.ProduceSync(ctx, &kgo.Record{Topic: changelog, Key: []byte("w1"), Value: count(7)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := next.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(next)
	hw, err1 := adm.ListEndOffsets(ctx, changelog)
	lso, err2 := adm.ListCommittedOffsets(ctx, changelog)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	h, _ := hw.Lookup(changelog, 0)
	l, _ := lso.Lookup(changelog, 0)
	if !(l.Offset < h.Offset) {
		t.Fatalf("changelog stable offset %d, high watermark %d: want an open transaction below the end", l.Offset, h.Offset)
	}

	rt, err := runtime.New(wordCountTopology(t), runtime.WithApplicationID("rw"), runtime.WithBrokers(addrs...),
		runtime.WithStateDir(t.TempDir()), runtime.WithLogger(testLogger(t)), runtime.WithDynamicMembership())
	if err != nil {
		t.Fatal(err)
	}
	stop := runAsync(t, rt)
	awaitStatus(t, rt, func(s runtime.Status) bool { return s.State == runtime.StateRestoring })
	// A restore that ignored the open transaction would be done within
	// milliseconds; this one must still wait.
	time.Sleep(time.Second)
	if s := rt.Status(); s.State != runtime.StateRestoring {
		t.Fatalf("state %v while the changelog holds an open transaction: want restoring", s.State)
	}
	if err := stalled.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	awaitStatus(t, rt, func(s runtime.Status) bool { return s.State == runtime.StateRunning })
	produceWords(t, addrs, 0, 1, map[string]int64{}, func(int) string { return "w0 w1" })
	readCounts(t, addrs, map[string]int64{"w0": 6, "w1": 8})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
