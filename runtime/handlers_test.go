package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
)

type order struct {
	Customer string `json:"customer"`
}

// ordersTopology counts orders per customer from JSON values.
func ordersTopology(t *testing.T) *processor.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	b.Stream("orders", serde.String(), serde.JSON[order]()).
		GroupBy(func(_ string, o order) string { return o.Customer }, serde.String(), dsl.Named("by-customer")).
		Count(dsl.Named("per-customer")).
		ToStream().
		To("word-counts")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// produceOrders writes five orders, the third of which (partition 0,
// offset 2) is not JSON.
func produceOrders(t *testing.T, addrs []string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, v := range []string{`{"customer":"ann"}`, `{"customer":"bob"}`, `not json`, `{"customer":"ann"}`, `{"customer":"cy"}`} {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("k"), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func handlerOpts(t *testing.T, app string, addrs []string, g runtime.Guarantee, extra ...runtime.Option) []runtime.Option {
	return append([]runtime.Option{
		runtime.WithApplicationID(app), runtime.WithBrokers(addrs...), runtime.WithStateDir(t.TempDir()),
		runtime.WithGuarantee(g), runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)),
	}, extra...)
}

// TestRecordFailureStopsItsTask: with the default handler a malformed
// record stops its task only. The other tasks' outputs are complete and
// exact, Run goes on, Status names the failed task and the record, and the
// failed partition's committed offset stays before the record, so nothing
// is lost: a restart with a dead-letter handler completes everything.
func TestRecordFailureStopsItsTask(t *testing.T) {
	for _, g := range []runtime.Guarantee{runtime.ExactlyOnce, runtime.AtLeastOnce} {
		t.Run(g.String(), func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(4, "orders"), kfake.SeedTopics(1, "word-counts"), kfake.SeedTopics(1, "orders-dlq"))
			addrs := c.ListenAddrs()
			// Partition 0: a malformed record, then an order of c0.
			// Partitions 1-3: three orders each of c1, c2, c3.
			var recs []*kgo.Record
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("k"), Value: []byte("not json")},
				&kgo.Record{Topic: "orders", Partition: 0, Key: []byte("k"), Value: []byte(`{"customer":"c0"}`)})
			for p := int32(1); p < 4; p++ {
				for range 3 {
					recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Key: []byte("k"), Value: []byte(fmt.Sprintf(`{"customer":"c%d"}`, p))})
				}
			}
			produceRecords(t, addrs, recs)
			dir := t.TempDir()
			opts := func(extra ...runtime.Option) []runtime.Option {
				return append([]runtime.Option{
					runtime.WithApplicationID("fail"), runtime.WithBrokers(addrs...), runtime.WithStateDir(dir),
					runtime.WithGuarantee(g), runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)),
					runtime.WithCommitInterval(100 * time.Millisecond),
				}, extra...)
			}
			rt, err := runtime.New(ordersTopology(t), opts()...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runAsync(t, rt)
			readCounts(t, addrs, map[string]int64{"c1": 3, "c2": 3, "c3": 3})
			st := awaitStatus(t, rt, func(s runtime.Status) bool { return len(s.Failed) > 0 && s.State == runtime.StateRunning })
			f := st.Failed[0]
			if len(st.Failed) != 1 || f.Task != (processor.TaskID{SubTopology: 0, Partition: 0}) ||
				f.Topic != "orders" || f.Partition != 0 || f.Offset != 0 {
				t.Fatalf("failed tasks %+v, want task 0_0 at orders/0 offset 0", st.Failed)
			}
			var se *serde.Error
			if !errors.As(f.Err, &se) {
				t.Errorf("failure error %v, want the serde error", f.Err)
			}
			if slices.Contains(st.Tasks, f.Task) {
				t.Errorf("tasks %v still list the failed task", st.Tasks)
			}
			// The other tasks keep committing: Run goes on.
			more := []*kgo.Record{{Topic: "orders", Partition: 1, Key: []byte("k"), Value: []byte(`{"customer":"c1"}`)}}
			produceRecords(t, addrs, more)
			readCounts(t, addrs, map[string]int64{"c1": 4, "c2": 3, "c3": 3})
			for _, r := range readTopic(t, addrs[0], "word-counts", true) {
				if string(r.Key) == "c0" {
					t.Errorf("c0 counted (%q) though its task failed before it", r.Value)
				}
			}
			if err := stop(); err != nil {
				t.Fatalf("Run = %v, want nil after a stop with a failed task", err)
			}
			if at := committedOffset(t, addrs, "fail", "orders", 0); at > 0 {
				t.Errorf("orders/0 committed at %d: the failed record and the one after it were skipped", at)
			}

			// Fixed and restarted: the dead-letter handler takes the
			// record, and everything completes.
			rt, err = runtime.New(ordersTopology(t), opts(runtime.WithDeserializationHandler(runtime.SendToDeadLetter("orders-dlq")))...)
			if err != nil {
				t.Fatal(err)
			}
			stop = runAsync(t, rt)
			readCounts(t, addrs, map[string]int64{"c0": 1, "c1": 4, "c2": 3, "c3": 3})
			if err := stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if s := rt.Status(); len(s.Failed) != 0 || s.State != runtime.StateStopped {
				t.Errorf("status after the second run: %+v", s)
			}
			dl := readTopic(t, addrs[0], "orders-dlq", true)
			if len(dl) != 1 || string(dl[0].Value) != "not json" {
				t.Errorf("dead-letter topic: %d records, want the malformed one", len(dl))
			}
		})
	}
}

// awaitStatus waits until rt's status satisfies ok, and returns it.
func awaitStatus(t *testing.T, rt *runtime.Runtime, ok func(runtime.Status) bool) runtime.Status {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		s := rt.Status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status not reached in %v: %+v", testTimeout, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func produceRecords(t *testing.T, addrs []string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committedOffset returns the group's committed offset of a partition, or
// -1 if it has none.
func committedOffset(t *testing.T, addrs []string, group, topic string, p int32) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup(topic, p); ok {
		return o.At
	}
	return -1
}

func TestDeserializationContinueAndDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    runtime.ErrorHandler
		g    runtime.Guarantee
	}{
		{"continue", runtime.LogAndContinue, runtime.AtLeastOnce},
		{"dead-letter", runtime.SendToDeadLetter("orders-dlq"), runtime.ExactlyOnce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, kfake.SeedTopics(1, "orders"), kfake.SeedTopics(1, "word-counts"), kfake.SeedTopics(1, "orders-dlq"))
			addrs := c.ListenAddrs()
			produceOrders(t, addrs)
			start(t, ordersTopology(t), handlerOpts(t, tc.name, addrs, tc.g,
				runtime.WithDeserializationHandler(tc.h), runtime.WithCommitInterval(50_000_000))...)
			// The records around the bad one are counted.
			readCounts(t, addrs, map[string]int64{"ann": 2, "bob": 1, "cy": 1})
			if tc.name != "dead-letter" {
				return
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("orders-dlq"),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			fs := cl.PollFetches(ctx)
			recs := fs.Records()
			if len(recs) != 1 {
				t.Fatalf("dead-letter topic holds %d records (err %v), want 1", len(recs), fs.Err())
			}
			r := recs[0]
			if string(r.Value) != "not json" || string(r.Key) != "k" {
				t.Errorf("dead letter %q=%q, want the record as read", r.Key, r.Value)
			}
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			if h[runtime.HeaderTopic] != "orders" || h[runtime.HeaderPartition] != "0" || h[runtime.HeaderOffset] != "2" ||
				!strings.Contains(h[runtime.HeaderError], "json") {
				t.Errorf("dead-letter headers %v", h)
			}
		})
	}
}

// bigOutputs starts a broker with topics in and out, and returns its
// addresses, a topology that copies in to out with the value "big" made
// 64 KiB long, and a client.
func bigOutputs(t *testing.T) ([]string, *processor.Topology, *kgo.Client) {
	t.Helper()
	c := newCluster(t, kfake.SeedTopics(1, "in"), kfake.SeedTopics(1, "out"))
	addrs := c.ListenAddrs()
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		MapValues(func(v string) string {
			if v == "big" {
				return strings.Repeat("x", 64<<10)
			}
			return v
		}).
		To("out")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return addrs, topo, cl
}

// TestProductionHandler: an output the client refuses (larger than the
// batch limit) fails the application by default and is skipped with
// LogAndContinue, the other records going through (at-least-once).
func TestProductionHandler(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    runtime.ErrorHandler
	}{{"fail", runtime.LogAndFail}, {"continue", runtime.LogAndContinue}} {
		t.Run(tc.name, func(t *testing.T) {
			addrs, topo, cl := bigOutputs(t)
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			for _, v := range []string{"a", "big", "b"} {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "in", Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			rt, err := runtime.New(topo, handlerOpts(t, "prod-"+tc.name, addrs, runtime.AtLeastOnce,
				runtime.WithProductionHandler(tc.h), runtime.WithCommitInterval(50*time.Millisecond), runtime.WithoutSignalHandler(),
				runtime.WithClientOptions(kgo.ProducerBatchMaxBytes(16<<10)))...)
			if err != nil {
				t.Fatal(err)
			}
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- rt.Run(rctx) }()
			if tc.name == "fail" {
				select {
				case err := <-errc:
					if err == nil || !strings.Contains(err.Error(), "produce to out") {
						t.Fatalf("Run = %v, want a production error naming topic out", err)
					}
				case <-ctx.Done():
					t.Fatal("Run did not fail")
				}
				return
			}
			out, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			var got []string
			for len(got) < 2 {
				fs := out.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("out holds %v", got)
				}
				fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
			}
			if len(got) != 2 || got[0] != "a" || got[1] != "b" {
				t.Errorf("out = %v, want [a b]", got)
			}
			stop()
			if err := <-errc; err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// TestProductionFailureAbortsTransaction: with exactly-once, an output the
// client refuses fails the transaction it belongs to, whatever the
// production handler says: the records produced with it are aborted, the
// input offsets stay uncommitted, and Run fails naming the topic. Many small
// transactions run first, so that the refused record's failure may arrive
// while its transaction is being committed.
func TestProductionFailureAbortsTransaction(t *testing.T) {
	addrs, topo, cl := bigOutputs(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var recs []*kgo.Record
	for i := range 2000 {
		recs = append(recs, &kgo.Record{Topic: "in", Value: fmt.Append(nil, i)})
	}
	recs = append(recs, &kgo.Record{Topic: "in", Value: []byte("big")}, &kgo.Record{Topic: "in", Value: []byte("after")})
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(topo, handlerOpts(t, "prod-eos", addrs, runtime.ExactlyOnce,
		runtime.WithProductionHandler(runtime.LogAndContinue), runtime.WithCommitInterval(time.Millisecond),
		runtime.WithoutSignalHandler(), runtime.WithClientOptions(kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(0)))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Run(ctx); err == nil || !strings.Contains(err.Error(), "produce to out") {
		t.Fatalf("Run = %v, want a production error naming topic out", err)
	}
	// Read out, read_committed, to its end: nothing at or after the big
	// record's input may be there, and the group must not have committed
	// past it.
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(ctx, "prod-eos")
	if err != nil {
		t.Fatal(err)
	}
	committed := int64(0)
	if o, ok := offs.Lookup("in", 0); ok {
		committed = o.At
	}
	if committed > 2000 {
		t.Errorf("the group committed offset %d of in, past the refused record at 2000", committed)
	}
	var got []string
	for _, r := range readTopic(t, addrs[0], "out", true) {
		got = append(got, string(r.Value))
	}
	if int64(len(got)) != committed {
		t.Errorf("out holds %d committed records, the group committed %d inputs", len(got), committed)
	}
	for _, v := range got {
		if v == "after" || strings.HasPrefix(v, "xxx") {
			t.Fatalf("out holds %.10q, from the transaction of the refused record or after it", v)
		}
	}
}
