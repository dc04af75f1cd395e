package runtime_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// BenchmarkE2E measures end-to-end throughput against an in-process kfake
// broker, one input record per iteration: the records are in the input
// topic (4 partitions) before the timer starts, and the timer stops when
// the application has committed them all. Run
//
//	go test ./runtime -run '^$' -bench E2E -benchtime 1000000x -count 3
//
// raw-loop and raw-txn-loop are plain franz-go consume -> transform ->
// produce loops (the second in a transactional group session, one
// transaction per poll), the baselines of stateless-alos (the same
// transform as a gregor topology, at-least-once) and wordcount-eos (gregor
// word count, exactly-once, pebble). wordcount-eos counts as Count does by
// default, combining the counts of each word before the repartition topic;
// wordcount-eos-aggregate counts with Aggregate, which does not combine:
// every word crosses the topic, the record cache coalescing the updates as
// in wordcount-eos; wordcount-eos-uncombined turns the record cache off, so
// every word crosses the topic and every update reaches the output.
func BenchmarkE2E(b *testing.B) {
	b.Run("raw-loop", func(b *testing.B) { benchE2E(b, rawLoop(false), false) })
	b.Run("stateless-alos", func(b *testing.B) { benchE2E(b, gregorStateless, false) })
	b.Run("raw-txn-loop", func(b *testing.B) { benchE2E(b, rawLoop(true), false) })
	b.Run("wordcount-eos", func(b *testing.B) { benchE2E(b, gregorWordCount(), true) })
	b.Run("wordcount-eos-aggregate", func(b *testing.B) { benchE2E(b, gregorWordAggregate, true) })
	b.Run("wordcount-eos-uncombined", func(b *testing.B) {
		benchE2E(b, gregorWordCount(dsl.Materialized(state.WithCache(0))), true)
	})
}

func lineOf(i int) string { return fmt.Sprintf("w%d w%d w%d", i%1000, (i*7)%1000, (i*13)%1000) }

// app runs an application on in until ctx ends.
type app func(ctx context.Context, b *testing.B, addrs []string, group, dir string) error

// benchE2E runs app over b.N records. Done is when the group has committed
// every input record or, with counts, when the output holds every word's
// final count (read_committed): a word count has a second stage, behind a
// repartition topic.
func benchE2E(b *testing.B, run app, counts bool) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(4, "in", "out"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, 0, 10_000)
	want := map[string]int64{}
	for i := range b.N {
		for _, w := range strings.Fields(lineOf(i)) {
			want[w]++
		}
		recs = append(recs, &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d", i), Value: []byte(lineOf(i))})
		if len(recs) == cap(recs) || i == b.N-1 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	adm := kadm.NewClient(cl)
	group := "bench"
	b.ResetTimer()
	actx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- run(actx, b, addrs, group, b.TempDir()) }()
	var out *kgo.Client
	if counts {
		out, err = kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
	}
	right := 0
	got := map[string]int64{}
	done := func() bool {
		if counts {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Millisecond)
			fs := out.PollFetches(pctx)
			pcancel()
			fs.EachRecord(func(r *kgo.Record) {
				v, _ := serde.Int64().Deserialize("out", r.Value)
				w := string(r.Key)
				if got[w] != want[w] && v == want[w] {
					right++
				}
				got[w] = v
			})
			return right == len(want)
		}
		offs, err := adm.FetchOffsetsForTopics(ctx, group, "in")
		if err != nil {
			return false
		}
		total := int64(0)
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At > 0 {
				total += o.At
			}
		})
		return total >= int64(b.N)
	}
	awaitApp(b, ctx, errc, 2*time.Millisecond, done)
	stopApp(b, ctx, stop, errc)
}

// awaitApp checks done every interval until it holds, failing b if the
// application (whose Run returns on errc) stops first or ctx ends.
func awaitApp(b *testing.B, ctx context.Context, errc <-chan error, every time.Duration, done func() bool) {
	b.Helper()
	for !done() {
		select {
		case err := <-errc:
			b.Fatalf("application stopped early: %v", err)
		case <-ctx.Done():
			b.Fatal("timed out")
		case <-time.After(every):
		}
	}
}

// stopApp stops the timer and the application, checks how it ended, and
// reports b.N records over the time measured.
func stopApp(b *testing.B, ctx context.Context, stop context.CancelFunc, errc <-chan error) {
	b.Helper()
	b.StopTimer()
	stop()
	if err := <-errc; err != nil && ctx.Err() == nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// rawLoop is the baseline: poll, upper-case each value, produce, commit
// (in a transaction per poll with txn).
func rawLoop(txn bool) app {
	return func(ctx context.Context, b *testing.B, addrs []string, group, _ string) error {
		opts := []kgo.Opt{
			kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics("in"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit(),
			kgo.ProducerLinger(5 * time.Millisecond),
		}
		var (
			cl   *kgo.Client
			sess *kgo.GroupTransactSession
			err  error
		)
		if txn {
			sess, err = kgo.NewGroupTransactSession(append(opts, kgo.TransactionalID("bench-raw"))...)
			if err != nil {
				return err
			}
			defer sess.Close()
			cl = sess.Client()
		} else {
			cl, err = kgo.NewClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
		}
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, 10_000)
			if ctx.Err() != nil || fs.Empty() {
				continue
			}
			if txn {
				if err := sess.Begin(); err != nil {
					return err
				}
			}
			fs.EachRecord(func(r *kgo.Record) {
				cl.Produce(ctx, &kgo.Record{Topic: "out", Key: r.Key, Value: bytes.ToUpper(r.Value)}, nil)
			})
			if txn {
				// Never end a transaction with a cancelled context.
				if _, err := sess.End(context.WithoutCancel(ctx), kgo.TryCommit); err != nil {
					return err
				}
				continue
			}
			if err := cl.Flush(ctx); err != nil {
				return nil // stopped
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		}
		return nil
	}
}

func runGregor(ctx context.Context, b *testing.B, build func(*dsl.Builder), addrs []string, group, dir string, g runtime.Guarantee) error {
	bld := dsl.NewBuilder()
	build(bld)
	topo, err := bld.Build()
	if err != nil {
		return err
	}
	rt, err := runtime.New(topo, runtime.WithApplicationID(group), runtime.WithBrokers(addrs...),
		runtime.WithStateDir(dir), runtime.WithGuarantee(g), runtime.WithCommitInterval(100*time.Millisecond),
		runtime.WithDynamicMembership(), runtime.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	return rt.Run(ctx)
}

func gregorStateless(ctx context.Context, b *testing.B, addrs []string, group, dir string) error {
	return runGregor(ctx, b, func(bld *dsl.Builder) {
		bld.Stream("in", serde.Bytes(), serde.String()).
			MapValues(strings.ToUpper).
			To("out")
	}, addrs, group, dir, runtime.AtLeastOnce)
}

func gregorWordCount(countOpts ...dsl.Option) app {
	return func(ctx context.Context, b *testing.B, addrs []string, group, dir string) error {
		return runGregor(ctx, b, func(bld *dsl.Builder) {
			bld.Stream("in", serde.Bytes(), serde.String()).
				FlatMapValues(strings.Fields).
				GroupBy(func(_ []byte, w string) string { return w }, serde.String(), dsl.Named("by-word")).
				Count(append([]dsl.Option{dsl.Named("counts")}, countOpts...)...).
				ToStream().
				To("out")
		}, addrs, group, dir, runtime.ExactlyOnce)
	}
}

// gregorWordAggregate is gregorWordCount counting with Aggregate.
func gregorWordAggregate(ctx context.Context, b *testing.B, addrs []string, group, dir string) error {
	return runGregor(ctx, b, func(bld *dsl.Builder) {
		bld.Stream("in", serde.Bytes(), serde.String()).
			FlatMapValues(strings.Fields).
			GroupBy(func(_ []byte, w string) string { return w }, serde.String(), dsl.Named("by-word")).
			Aggregate(func() int64 { return 0 }, func(_, _ string, n int64) int64 { return n + 1 }, serde.Int64(), dsl.Named("counts")).
			ToStream().
			To("out")
	}, addrs, group, dir, runtime.ExactlyOnce)
}
