package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
)

// BenchmarkRestoreRuntime measures the runtime's restore path: b.N records
// in a count store's changelog (one partition, 100,000 distinct keys, 16-byte
// timestamped values), restored into pebble by a starting instance, read
// with read_committed in batches. The timer runs from Run's start until the
// restore metric has counted every record. Run
//
//	go test ./runtime -run '^$' -bench RestoreRuntime -benchtime 500000x -count 3
func BenchmarkRestoreRuntime(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.SeedTopics(1, "in"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	if err := c.CreateTopic("rbench-counts-changelog", 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, 0, 10_000)
	for i := range b.N {
		v := make([]byte, 16)
		binary.BigEndian.PutUint64(v, uint64(i))
		binary.BigEndian.PutUint64(v[8:], uint64(i/100_000+1))
		recs = append(recs, &kgo.Record{Topic: "rbench-counts-changelog", Partition: 0, Key: fmt.Appendf(nil, "user-%06d", i%100_000), Value: v})
		if len(recs) == cap(recs) || i == b.N-1 {
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	bld := dsl.NewBuilder()
	bld.Stream("in", serde.String(), serde.String()).GroupByKey().Count(dsl.Named("counts"))
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	rt, err := runtime.New(topo, runtime.WithApplicationID("rbench"), runtime.WithBrokers(addrs...),
		runtime.WithStateDir(b.TempDir()), runtime.WithDynamicMembership(), runtime.WithoutSignalHandler(),
		runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
		runtime.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- rt.Run(rctx) }()
	awaitApp(b, ctx, errc, 5*time.Millisecond, func() bool { return restored(b, reader) >= int64(b.N) })
	stopApp(b, ctx, stop, errc)
}
