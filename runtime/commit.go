package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
)

func (t *thread) commitRequested() bool {
	for _, tk := range t.tasks {
		if tk.CommitRequested() {
			return true
		}
	}
	return false
}

// commit commits every task: caches flush (producing their changelog and
// downstream records), then Kafka commits (the transaction, or the producer
// flush and the offset commit), then the stores apply their batches with
// the changelog offsets reached.
//
// With ExactlyOnce, a commit after a stall of the process (see watchdog)
// does none of this: the group may have given the tasks to another member
// meanwhile, so the caches must not flush into partitions that are no
// longer this member's. It returns errStalled, and the session aborts.
func (t *thread) commit(ctx context.Context) error {
	t.lastCommit = time.Now()
	defer func(began time.Time) { t.m.commitDur.Record(context.Background(), time.Since(began).Seconds()) }(t.lastCommit)
	if t.sess != nil && t.r.watch.stalledSince(t.stallMark) {
		return errStalled
	}
	if len(t.tasks) == 0 && !t.inTxn {
		return nil
	}
	for _, id := range t.taskIDs() {
		if err := t.tasks[id].PrepareCommit(nil); err != nil {
			var se *sendError
			if errors.As(err, &se) {
				return se.err
			}
			return err
		}
	}
	// With exactly-once, a transaction is open if the interval polled
	// records or produced any (Send begins one). An interval with neither
	// has nothing to commit to Kafka: ending an empty transaction would cost
	// round trips, and franz-go then holds off the next End for 500 ms.
	if t.sess != nil && t.inTxn {
		// End(TryCommit) commits whatever records were produced, even if
		// some failed: flush first, and abort a transaction that lost a
		// record, which must then fail the thread (its input is read
		// again, by the next run).
		if err := t.cl.Flush(ctx); err != nil {
			return fmt.Errorf("flush producer: %w", err)
		}
		perr := t.producerError()
		end := kgo.TryCommit
		if perr != nil {
			end = kgo.TryAbort
		}
		committed, err := t.sess.End(kgo.PreTxnCommitFnContext(ctx, t.stripPaused), end)
		t.inTxn = false
		t.stallMark = t.r.watch.epoch()
		if err != nil || !committed {
			// Aborted: by a lost record, a rebalance or a failed End. The
			// consumer is back at the committed offsets; the tasks are
			// recreated from their checkpoints at the next poll.
			if perr == nil {
				perr = t.producerError()
			}
			t.resetEnds()
			t.closeTasks(false)
			if err != nil {
				return errors.Join(perr, fmt.Errorf("commit transaction: %w", err))
			}
			if perr != nil {
				return perr
			}
			t.log.Info("runtime: transaction aborted; processing again from the last commit")
			return nil
		}
	} else if t.sess == nil {
		if err := t.cl.Flush(ctx); err != nil {
			return fmt.Errorf("flush producer: %w", err)
		}
		if err := t.producerError(); err != nil {
			return err
		}
		if err := t.commitOffsets(ctx); err != nil {
			return err
		}
	}
	t.commits++
	t.pmu.Lock()
	ends := maps.Clone(t.ends)
	clear(t.ends)
	for topic, n := range t.produced {
		t.m.produced.Add(context.Background(), n, metric.WithAttributes(attribute.String("topic", topic)))
	}
	clear(t.produced)
	t.pmu.Unlock()
	for _, id := range t.taskIDs() {
		if err := t.tasks[id].CompleteCommit(ends); err != nil {
			return err
		}
	}
	return nil
}

// stripPaused removes the partitions of failed tasks from a transaction's
// offset commit: they stay at their last commit.
func (t *thread) stripPaused(req *kmsg.TxnOffsetCommitRequest) error {
	if len(t.paused) == 0 {
		return nil
	}
	skip := map[string][]int32{}
	for id := range t.paused {
		for topic, ps := range t.partitionsOf(id) {
			skip[topic] = append(skip[topic], ps...)
		}
	}
	topics := req.Topics[:0]
	for _, tr := range req.Topics {
		parts := tr.Partitions[:0]
		for _, p := range tr.Partitions {
			if !slices.Contains(skip[tr.Topic], p.Partition) {
				parts = append(parts, p)
			}
		}
		if tr.Partitions = parts; len(parts) > 0 {
			topics = append(topics, tr)
		}
	}
	req.Topics = topics
	return nil
}

// commitOffsets commits, with AtLeastOnce, the consumer's position on
// every input partition but those of failed tasks, which stay at their
// last commit.
func (t *thread) commitOffsets(ctx context.Context) error {
	offs := t.cl.UncommittedOffsets()
	for id := range t.paused {
		for topic, ps := range t.partitionsOf(id) {
			for _, p := range ps {
				delete(offs[topic], p)
			}
		}
	}
	if len(offs) == 0 {
		return nil
	}
	var cerr error
	t.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, tr := range resp.Topics {
			for _, p := range tr.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("%s/%d: %w", tr.Topic, p.Partition, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit offsets: %w", cerr)
	}
	return nil
}

// resetEnds forgets what an aborted transaction produced: its changelog
// ends and its produced counts (the metric counts committed records).
func (t *thread) resetEnds() {
	t.pmu.Lock()
	clear(t.ends)
	clear(t.produced)
	t.produceErr = nil
	t.pmu.Unlock()
}

func (t *thread) producerError() error {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	return t.produceErr
}

// Send is the tasks' collector: it produces rec asynchronously (within the
// transaction with ExactlyOnce, which it begins if none is open) and
// records the offsets reached on changelog partitions. With ExactlyOnce,
// after a stall of the process it produces nothing: it returns errStalled
// (as a *sendError), and the session aborts.
func (t *thread) Send(topic string, partition int32, rec processor.RawRecord) error {
	if t.sess != nil && t.r.watch.stalls.Load() != t.stallMark {
		return &sendError{errStalled}
	}
	if err := t.begin(); err != nil { // the first record of a transaction
		return &sendError{err}
	}
	kr := &kgo.Record{Topic: topic, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp, Partition: choose}
	if rec.NullKey {
		kr.Key = nil
	}
	if rec.NullValue {
		kr.Value = nil
	}
	if partition >= 0 {
		kr.Partition = partition
	}
	if len(rec.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(rec.Headers))
		for i, h := range rec.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	t.cl.Produce(context.Background(), kr, t.promise)
	return nil
}

// onProduced is the promise of every record the thread produces (one func
// value for all, built once: a closure per record costs an allocation).
// It runs on the client's goroutines.
func (t *thread) onProduced(r *kgo.Record, err error) {
	changelog := t.layout.changelogs[r.Topic] // read-only once Run starts
	if errors.Is(err, kgo.ErrAborting) || errors.Is(err, kgo.ErrClientClosed) {
		// A record of a transaction the thread aborted, or of a session
		// it ended, on purpose: its input is read again.
		return
	}
	if err != nil {
		t.produceFailed(r, err, changelog)
		return
	}
	t.pmu.Lock()
	defer t.pmu.Unlock()
	t.produced[r.Topic]++ // reported at commit: a metric call per record costs
	if changelog {
		tp := task.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		t.ends[tp] = max(t.ends[tp], r.Offset+1)
	}
}

// produceFailed applies the production handler (at-least-once, outputs
// only) or records the error, which fails the thread at its next check.
func (t *thread) produceFailed(r *kgo.Record, err error, changelog bool) {
	f := FailedRecord{Topic: r.Topic, Partition: r.Partition, Offset: -1, Key: r.Key, Value: r.Value,
		Timestamp: r.Timestamp, Err: err}
	if t.r.cfg.guarantee == AtLeastOnce && !changelog {
		switch a := t.r.cfg.onProduce(f); a.kind {
		case actContinue:
			logFailed(t.log, "production", f, "skipped")
			return
		case actDeadLetter:
			logFailed(t.log, "production", f, "sent to dead-letter topic "+a.topic)
			dl := &kgo.Record{Topic: a.topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp, Partition: choose}
			for _, h := range deadLetterHeaders(f) {
				dl.Headers = append(dl.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			// TryProduce: a promise must not block on a full buffer,
			// which only promises empty. The session's client, if it is
			// still open (promises may run while it closes).
			cl := t.live.Load()
			if cl == nil {
				t.setProduceErr(fmt.Errorf("produce to dead-letter topic %s: %w", a.topic, kgo.ErrClientClosed))
				return
			}
			cl.TryProduce(context.Background(), dl, func(dr *kgo.Record, derr error) {
				if derr != nil {
					t.setProduceErr(fmt.Errorf("produce to dead-letter topic %s: %w", dr.Topic, derr))
				}
			})
			return
		}
	}
	t.setProduceErr(fmt.Errorf("produce to %s: %w", r.Topic, err))
}

func (t *thread) setProduceErr(err error) {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	if t.produceErr == nil {
		t.produceErr = err
	}
}
