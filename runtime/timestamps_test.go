package runtime_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
)

// eventTimeTopology copies "events" to "timed", the timestamp of each
// record read from its value (milliseconds since the epoch).
func eventTimeTopology(t *testing.T) *processor.Topology {
	t.Helper()
	b := dsl.NewBuilder()
	b.Stream("events", serde.String(), serde.String(), dsl.WithTimestamps(dsl.TimestampFunc(func(_, v string, _ time.Time) (time.Time, error) {
		ms, err := strconv.ParseInt(v, 10, 64)
		return time.UnixMilli(ms), err
	}))).To("timed")
	topo, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// consumeN reads n records of topic, read_committed.
func consumeN(t *testing.T, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d records of %s after %v, want %d", len(out), topic, testTimeout, n)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestTimestampExtractorErrors: a record whose timestamp extractor fails
// goes through the deserialization handler like a poison record: skipped
// and counted with LogAndContinue, its task stopped at its offset with the
// default handler. The others carry their extracted timestamps out.
func TestTimestampExtractorErrors(t *testing.T) {
	events := func() []*kgo.Record { // new ones per producer: it keeps state in them
		return []*kgo.Record{
			{Topic: "events", Key: []byte("k"), Value: []byte("5000"), Timestamp: time.UnixMilli(1)},
			{Topic: "events", Key: []byte("k"), Value: []byte("bad"), Timestamp: time.UnixMilli(2)},
			{Topic: "events", Key: []byte("k"), Value: []byte("7000"), Timestamp: time.UnixMilli(3)},
		}
	}
	t.Run("continue", func(t *testing.T) {
		c := newCluster(t, kfake.SeedTopics(1, "events"), kfake.SeedTopics(1, "timed"))
		addrs := c.ListenAddrs()
		produceRecords(t, addrs, events())
		reader := sdkmetric.NewManualReader()
		stop := start(t, eventTimeTopology(t), handlerOpts(t, "tsc", addrs, runtime.ExactlyOnce,
			runtime.WithDeserializationHandler(runtime.LogAndContinue),
			runtime.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))...)
		defer stop()
		recs := consumeN(t, addrs, "timed", 2)
		for i, want := range []int64{5000, 7000} {
			if got := recs[i].Timestamp.UnixMilli(); got != want || string(recs[i].Value) != strconv.FormatInt(want, 10) {
				t.Errorf("record %d: %q at %d, want %d at %d", i, recs[i].Value, got, want, want)
			}
		}
		if n := metricTotal(t, reader, runtime.MetricSkipped); n != 1 {
			t.Errorf("%s = %d, want 1", runtime.MetricSkipped, n)
		}
	})
	t.Run("fail", func(t *testing.T) {
		c := newCluster(t, kfake.SeedTopics(1, "events"), kfake.SeedTopics(1, "timed"))
		addrs := c.ListenAddrs()
		produceRecords(t, addrs, events())
		rt, err := runtime.New(eventTimeTopology(t), handlerOpts(t, "tsf", addrs, runtime.AtLeastOnce)...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runAsync(t, rt)
		defer stop()
		st := awaitStatus(t, rt, func(s runtime.Status) bool { return len(s.Failed) > 0 })
		f := st.Failed[0]
		var te *processor.TimestampError
		if f.Topic != "events" || f.Partition != 0 || f.Offset != 1 || !errors.As(f.Err, &te) {
			t.Errorf("failure %+v, want a timestamp error at events/0 offset 1", f)
		}
		if f.Err == nil || !strings.Contains(f.Err.Error(), `topic "events" partition 0 offset 1`) {
			t.Errorf("error %q does not name the record", f.Err)
		}
	})
}
