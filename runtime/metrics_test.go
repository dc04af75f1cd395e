package runtime_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
)

// TestMetrics runs the word count with a manual reader and checks the
// counts the runtime reports against what it did.
func TestMetrics(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "lines"), kfake.SeedTopics(4, "word-counts"))
	addrs := c.ListenAddrs()
	want := produceLines(t, addrs, 500, 20)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	// Without the record cache, the count does not combine: every word
	// crosses the repartition topic, and the figures below are exact.
	stop := start(t, wordCountTopology(t, dsl.Materialized(state.WithCache(0))),
		runtime.WithApplicationID("metrics"), runtime.WithBrokers(addrs...), runtime.WithStateDir(t.TempDir()),
		runtime.WithGuarantee(runtime.ExactlyOnce), runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)),
		runtime.WithMeterProvider(mp))
	readCounts(t, addrs, want)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	hist := map[string]uint64{}
	gauges := map[string]int{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					sums[m.Name] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					hist[m.Name] += p.Count
				}
			case metricdata.Gauge[int64]:
				gauges[m.Name] += len(d.DataPoints)
			}
		}
	}
	// 500 lines of 3 words: 500 line records and 1,500 repartitioned words.
	if got := sums[runtime.MetricConsumed]; got != 2000 {
		t.Errorf("%s = %d, want 2000", runtime.MetricConsumed, got)
	}
	if got := sums[runtime.MetricProcessed]; got != 2000 {
		t.Errorf("%s = %d, want 2000", runtime.MetricProcessed, got)
	}
	// The 1,500 repartition records, and a count and a changelog record per
	// word occurrence at least.
	if got := sums[runtime.MetricProduced]; got < 1500+2*int64(len(want)) {
		t.Errorf("%s = %d, want at least %d", runtime.MetricProduced, got, 1500+2*len(want))
	}
	if sums[runtime.MetricRebalances] < 1 || hist[runtime.MetricCommitDur] < 1 || hist[runtime.MetricProcessDur] < 1 {
		t.Errorf("rebalances %d, commits %d, process batches %d: want each at least 1",
			sums[runtime.MetricRebalances], hist[runtime.MetricCommitDur], hist[runtime.MetricProcessDur])
	}
	kafka := 0
	for name := range sums {
		if strings.HasPrefix(name, "messaging.kafka.") {
			kafka++
		}
	}
	if kafka == 0 {
		t.Errorf("no franz-go client metric (kotel) among %v", sums)
	}
	if gauges[runtime.MetricLag] == 0 {
		t.Errorf("no %s gauge", runtime.MetricLag)
	}
}

// endLog counts the transactions franz-go's session ends, from its log.
type endLog struct{ ends atomic.Int64 }

func (l *endLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }
func (l *endLog) Log(_ kgo.LogLevel, msg string, _ ...any) {
	if msg == "transaction session ending" {
		l.ends.Add(1)
	}
}

// TestIdleCommitsEndNoTransaction: with exactly-once, a commit interval that
// polled and produced nothing ends no transaction (franz-go would hold the
// next End for 500 ms after an empty one), while one with input does.
func TestIdleCommitsEndNoTransaction(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "lines"), kfake.SeedTopics(4, "word-counts"))
	addrs := c.ListenAddrs()
	reader := sdkmetric.NewManualReader()
	log := &endLog{}
	stop := start(t, wordCountTopology(t),
		runtime.WithApplicationID("idle"), runtime.WithBrokers(addrs...), runtime.WithStateDir(t.TempDir()),
		runtime.WithGuarantee(runtime.ExactlyOnce), runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)),
		runtime.WithCommitInterval(5*time.Millisecond), runtime.WithClientOptions(kgo.WithLogger(log)),
		runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	defer stop()
	commits := func() int64 { return metricTotal(t, reader, runtime.MetricCommitDur) }
	// waitCommits waits for n more commits of the thread.
	waitCommits := func(n int64) {
		t.Helper()
		target := commits() + n
		deadline := time.Now().Add(testTimeout)
		for commits() < target {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than %d commits in %v", n, testTimeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	want := produceLines(t, addrs, 50, 5)
	readCounts(t, addrs, want)
	waitCommits(2) // the last transaction of the input has ended
	before := log.ends.Load()
	if before == 0 {
		t.Fatal("no transaction ended for the input")
	}
	waitCommits(20)
	if after := log.ends.Load(); after != before {
		t.Errorf("%d transactions ended over 20 idle commits, want none", after-before)
	}
}

// lateProc drops, as too late for its window, every record whose value is
// "late", the way windowed operators do.
type lateProc struct {
	ctx processor.Context[string, string]
}

func (p *lateProc) Init(ctx processor.Context[string, string]) error { p.ctx = ctx; return nil }
func (p *lateProc) Close() error                                     { return nil }
func (p *lateProc) Process(r processor.Record[string, string]) error {
	if r.Value == "late" {
		p.ctx.RecordLate()
		return nil
	}
	return p.ctx.Forward(r)
}

// TestLateMetric: records a processor drops as late are counted in
// gregor.records.late by task and operator, and logged at debug level.
func TestLateMetric(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "in"))
	addrs := c.ListenAddrs()
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] { return &lateProc{} }, dsl.Named("windowish"))
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	logs := &testLog{}
	stop := start(t, topo, runtime.WithApplicationID("late"), runtime.WithBrokers(addrs...), runtime.WithStateDir(t.TempDir()),
		runtime.WithDynamicMembership(), runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		runtime.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	defer stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	wantLate := 0
	for i := range 20 {
		v := "on time"
		if i%4 == 0 {
			v, wantLate = "late", wantLate+1
		}
		recs = append(recs, &kgo.Record{Topic: "in", Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for metricTotal(t, reader, runtime.MetricLate) < int64(wantLate) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d after %v, want %d", runtime.MetricLate, metricTotal(t, reader, runtime.MetricLate), testTimeout, wantLate)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	byTask := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != runtime.MetricLate {
				continue
			}
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				op, _ := p.Attributes.Value("operator")
				task, _ := p.Attributes.Value("task")
				if op.AsString() != "windowish" {
					t.Errorf("data point with operator %q, want windowish", op.AsString())
				}
				byTask[task.AsString()] += p.Value
			}
		}
	}
	total := int64(0)
	for task, n := range byTask {
		if task != "0_0" && task != "0_1" {
			t.Errorf("data point of task %q, want 0_0 or 0_1", task)
		}
		total += n
	}
	if total != int64(wantLate) {
		t.Errorf("late records by task %v: total %d, want %d", byTask, total, wantLate)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := strings.Count(logs.buf.String(), "later than its window's grace period"); n != wantLate {
		t.Errorf("%d debug lines about late records, want %d", n, wantLate)
	}
}
