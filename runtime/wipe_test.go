package runtime_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/pebble"
)

// TestRestoreWipesStaleCheckpoint: when the changelog's start moved past a
// store's checkpoint (compaction or retention removed records the store
// never saw), the store is wiped and restored from the changelog's start,
// rather than keeping state the changelog no longer backs.
func TestRestoreWipesStaleCheckpoint(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(4, "lines"), kfake.SeedTopics(4, "word-counts"))
	addrs := c.ListenAddrs()
	want := produceLines(t, addrs, 400, 20)
	dir := t.TempDir()
	opts := func(extra ...runtime.Option) []runtime.Option {
		return append([]runtime.Option{
			runtime.WithApplicationID("wc"), runtime.WithBrokers(addrs...), runtime.WithStateDir(dir),
			runtime.WithDynamicMembership(), runtime.WithLogger(testLogger(t)),
		}, extra...)
	}
	stop := start(t, wordCountTopology(t), opts()...)
	readCounts(t, addrs, want)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Another writer appends to every changelog partition, then the
	// records up to the last one are deleted: the checkpoints now lie
	// before the log start.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	ts := make([]byte, 8) // timestamp 0, then the count
	for p := range int32(4) {
		for i := range 3 {
			v, _ := serde.Int64().Serialize("", int64(100+i))
			r := &kgo.Record{Topic: "wc-counts-changelog", Partition: p, Key: fmt.Appendf(nil, "fresh-%d", p), Value: append(ts[:8:8], v...)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "wc-counts-changelog")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if err := c.DeleteRecords(o.Topic, o.Partition, o.Offset-1); err != nil {
			t.Fatal(err)
		}
	})

	reader := sdkmetric.NewManualReader()
	stop = start(t, wordCountTopology(t), opts(runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))...)
	for restored(t, reader) < 4 { // the one record left in each partition
		if ctx.Err() != nil {
			t.Fatal("restore did not happen")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e, err := pebble.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for p := range int32(4) {
		it := e.Reader(state.StorePartition{Store: "counts", Partition: p}).Range(nil, nil)
		var keys []string
		for it.Next() {
			keys = append(keys, string(it.Key()))
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0] != fmt.Sprintf("fresh-%d", p) {
			t.Errorf("partition %d holds %v, want only fresh-%d (the old words wiped)", p, keys, p)
		}
	}
}

// restored returns the changelog records the runtime reports restored.
func restored(t testing.TB, reader *sdkmetric.ManualReader) int64 {
	return metricTotal(t, reader, runtime.MetricRestored)
}

// metricTotal collects reader and returns the total of the metric called
// name: the sum of a counter's points, or the number of values a
// histogram recorded.
func metricTotal(t testing.TB, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					n += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					n += int64(p.Count)
				}
			}
		}
	}
	return n
}
