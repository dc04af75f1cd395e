package runtime

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
)

// WithMeterProvider sets the OpenTelemetry meter provider of the runtime's
// metrics; the default is the global one (otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meterProvider = mp }
}

// WithTracerProvider turns on traces of the franz-go clients (kotel: a
// span per produced and per fetched record) through tp. They are off by
// default: they cost about a third of the throughput of a stateless
// topology (BenchmarkE2E).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracerProvider = tp }
}

// clientHooks returns franz-go's kotel hooks: with WithMeterProvider, the
// clients' own metrics (connections, bytes and records written and read);
// with WithTracerProvider, record traces. Nil without either.
func (c *config) clientHooks() []kgo.Opt {
	var opts []kotel.Opt
	if c.meterProvider != nil {
		opts = append(opts, kotel.WithMeter(kotel.NewMeter(kotel.MeterProvider(c.meterProvider))))
	}
	if c.tracerProvider != nil {
		opts = append(opts, kotel.WithTracer(kotel.NewTracer(kotel.TracerProvider(c.tracerProvider))))
	}
	if len(opts) == 0 {
		return nil
	}
	return []kgo.Opt{kgo.WithHooks(kotel.NewKotel(opts...).Hooks()...)}
}

// Metric names. Attributes: "task" (0_3), "topic", "store", "reason".
const (
	MetricConsumed   = "gregor.records.consumed"  // records fetched, by task and topic
	MetricProcessed  = "gregor.records.processed" // records processed, by task
	MetricProduced   = "gregor.records.produced"  // records written, by topic
	MetricSkipped    = "gregor.records.skipped"   // records an error handler skipped or dead-lettered, by task and reason
	MetricProcessDur = "gregor.process.duration"  // seconds per batch of records a task processes
	MetricCommitDur  = "gregor.commit.duration"   // seconds per commit of a thread
	MetricRestored   = "gregor.restore.records"   // changelog records restored, by store
	MetricRestoreLag = "gregor.restore.remaining" // changelog records left to restore, by store
	MetricRebalances = "gregor.rebalances"        // assignments received
	MetricLag        = "gregor.consumer.lag"      // records behind the end of each input partition, by topic and partition
	MetricRestarts   = "gregor.thread.restarts"   // sessions a thread started again after a transient error
	MetricFailed     = "gregor.tasks.failed"      // tasks stopped by a failed record or punctuator, by task
	MetricLate       = "gregor.records.late"      // records dropped as later than their window's grace period, by task and operator
)

type metrics struct {
	consumed, processed, produced, skipped, restored, rebalances metric.Int64Counter
	restarts, failedTasks, late                                  metric.Int64Counter
	processDur, commitDur                                        metric.Float64Histogram

	mu          sync.Mutex
	lag         map[task.TopicPartition]int64
	restoreLeft map[string]int64
	reg         metric.Registration
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter("github.com/gregorstream/gregor/runtime")
	ms := &metrics{lag: map[task.TopicPartition]int64{}, restoreLeft: map[string]int64{}}
	var errs []error
	counter := func(name, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{record}"))
		errs = append(errs, err)
		return c
	}
	ms.consumed = counter(MetricConsumed, "Records fetched from input topics.")
	ms.processed = counter(MetricProcessed, "Records processed.")
	ms.produced = counter(MetricProduced, "Records written to output, repartition and changelog topics.")
	ms.skipped = counter(MetricSkipped, "Records an error handler skipped or sent to a dead-letter topic.")
	ms.restored = counter(MetricRestored, "Changelog records restored into stores.")
	ms.late = counter(MetricLate, "Records dropped as later than the grace period of their window.")
	rb, err := m.Int64Counter(MetricRebalances, metric.WithDescription("Assignments received by stream threads."))
	errs = append(errs, err)
	ms.rebalances = rb
	ms.restarts, err = m.Int64Counter(MetricRestarts, metric.WithDescription("Sessions a stream thread started again after a transient error."))
	errs = append(errs, err)
	ms.failedTasks, err = m.Int64Counter(MetricFailed, metric.WithDescription("Tasks stopped by a record or punctuator that failed with the Fail action."))
	errs = append(errs, err)
	ms.processDur, err = m.Float64Histogram(MetricProcessDur, metric.WithUnit("s"), metric.WithDescription("Time a task takes to process a batch of records."))
	errs = append(errs, err)
	ms.commitDur, err = m.Float64Histogram(MetricCommitDur, metric.WithUnit("s"), metric.WithDescription("Time a thread takes to commit."))
	errs = append(errs, err)
	lag, err := m.Int64ObservableGauge(MetricLag, metric.WithUnit("{record}"), metric.WithDescription("Records behind the end of each input partition."))
	errs = append(errs, err)
	left, err := m.Int64ObservableGauge(MetricRestoreLag, metric.WithUnit("{record}"), metric.WithDescription("Changelog records left to restore."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ms.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		for tp, n := range ms.lag {
			o.ObserveInt64(lag, n, metric.WithAttributes(attribute.String("topic", tp.Topic), attribute.Int("partition", int(tp.Partition))))
		}
		for store, n := range ms.restoreLeft {
			o.ObserveInt64(left, n, metric.WithAttributes(attribute.String("store", store)))
		}
		return nil
	}, lag, left)
	if err != nil {
		return nil, err
	}
	return ms, nil
}

func (ms *metrics) close() {
	if ms.reg != nil {
		ms.reg.Unregister()
	}
}

// lateRecord returns a task's hook for the records its processors drop as
// too late for their windows: it counts them, by task and operator, and logs
// each at debug level.
func (t *thread) lateRecord(id processor.TaskID) func(node string, origin processor.RecordMetadata) {
	attrs := taskAttr(id)
	return func(node string, origin processor.RecordMetadata) {
		t.m.late.Add(context.Background(), 1, metric.WithAttributes(attrs, attribute.String("operator", node)))
		if t.log.Enabled(context.Background(), slog.LevelDebug) {
			t.log.Debug("runtime: dropped a record later than its window's grace period",
				"task", id, "operator", node, "topic", origin.Topic, "partition", origin.Partition, "offset", origin.Offset)
		}
	}
}

func taskAttr(id processor.TaskID) attribute.KeyValue { return attribute.String("task", id.String()) }

func (ms *metrics) setLag(tp task.TopicPartition, n int64) {
	ms.mu.Lock()
	ms.lag[tp] = n
	ms.mu.Unlock()
}

func (ms *metrics) addRestoreLeft(store string, n int64) {
	ms.mu.Lock()
	ms.restoreLeft[store] += n
	ms.mu.Unlock()
}
