package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
)

// add queues a fetched partition's records to their task.
func (t *thread) add(p kgo.FetchTopicPartition) error {
	sub, ok := t.layout.topicSub[p.Topic]
	if !ok {
		return fmt.Errorf("fetched records of %s/%d, which no sub-topology reads", p.Topic, p.Partition)
	}
	id := processor.TaskID{SubTopology: sub, Partition: p.Partition}
	tk := t.tasks[id]
	if tk == nil {
		if t.paused[id] {
			return nil // fetched before the pause: the task stays at its last commit
		}
		return fmt.Errorf("fetched records of %s/%d, whose task %s is not assigned here", p.Topic, p.Partition, id)
	}
	tp := task.TopicPartition{Topic: p.Topic, Partition: p.Partition}
	t.polled[tp] = p.Records
	t.m.consumed.Add(context.Background(), int64(len(p.Records)), metric.WithAttributes(taskAttr(id), attribute.String("topic", p.Topic)))
	t.m.setLag(tp, max(p.HighWatermark-p.Records[len(p.Records)-1].Offset-1, 0))
	// The task copies the records into its queue: one scratch slice
	// serves every partition of every poll.
	recs := t.scratch[:0]
	for _, kr := range p.Records {
		recs = append(recs, rawRecord(kr))
	}
	err := tk.Add(tp, recs...)
	clear(recs) // drop the references to this poll's records
	t.scratch = recs[:0]
	return err
}

func rawRecord(kr *kgo.Record) processor.RawRecord {
	rec := processor.RawRecord{
		Key: kr.Key, Value: kr.Value, NullKey: kr.Key == nil, NullValue: kr.Value == nil,
		Timestamp: kr.Timestamp,
		Origin:    processor.Origin{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset},
	}
	if len(kr.Headers) > 0 {
		rec.Headers = make(processor.Headers, len(kr.Headers))
		for i, h := range kr.Headers {
			rec.Headers[i] = processor.Header{Key: h.Key, Value: h.Value}
		}
	}
	return rec
}

// sendError is an error of the thread's collector (no transaction could
// begin, or the process stalled): it belongs to the session, not to the
// record being processed, and no error handler sees it.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// handle applies the error handlers to a task's record error: nil means
// go on. It returns a *task.RecordError when the record fails its task,
// and other errors as they are (they end the session).
func (t *thread) handle(id processor.TaskID, err error) error {
	var se *sendError
	if errors.As(err, &se) {
		return se.err
	}
	var re *task.RecordError
	if !errors.As(err, &re) {
		return err
	}
	f := FailedRecord{Task: id, Topic: re.Origin.Topic, Partition: re.Origin.Partition, Offset: re.Origin.Offset, Err: re.Err}
	recs := t.polled[task.TopicPartition{Topic: f.Topic, Partition: f.Partition}]
	if i, ok := slices.BinarySearchFunc(recs, f.Offset, func(r *kgo.Record, off int64) int { return cmp.Compare(r.Offset, off) }); ok {
		r := rawRecord(recs[i])
		f.Key, f.Value, f.Headers, f.Timestamp = r.Key, r.Value, r.Headers, r.Timestamp
	}
	what, h := "processing", t.r.cfg.onProcess
	if isDeserialization(re.Err) {
		what, h = "deserialization", t.r.cfg.onDeserialize
	}
	a := h(f)
	switch a.kind {
	case actContinue:
		logFailed(t.log, what, f, "skipped")
	case actDeadLetter:
		logFailed(t.log, what, f, "sent to dead-letter topic "+a.topic)
		rec := processor.RawRecord{Key: f.Key, Value: f.Value, NullKey: f.Key == nil, NullValue: f.Value == nil,
			Timestamp: f.Timestamp, Headers: deadLetterHeaders(f)}
		if err := t.Send(a.topic, -1, rec); err != nil {
			return errors.Unwrap(err)
		}
	default:
		return re
	}
	t.m.skipped.Add(context.Background(), 1, metric.WithAttributes(taskAttr(id), attribute.String("reason", what)))
	return nil
}

// process runs every task until its queues are empty, then fires the
// wall-clock punctuations due. A task whose record or punctuator fails
// with the Fail action stops (see failTask); the others go on.
func (t *thread) process(ctx context.Context) error {
	defer clear(t.polled)
	now := time.Now()
	for _, id := range t.taskIDs() {
		tk := t.tasks[id]
		if tk == nil {
			continue // failed, with AtLeastOnce, during this call
		}
		failed := false
		for tk.Buffered() > 0 {
			if err := t.begin(); err != nil {
				return err
			}
			began := time.Now()
			n, err := tk.Process(tk.Buffered())
			attrs := metric.WithAttributes(taskAttr(id))
			t.m.processed.Add(context.Background(), int64(n), attrs)
			t.m.processDur.Record(context.Background(), time.Since(began).Seconds(), attrs)
			if err != nil {
				if err = t.handle(id, err); err != nil {
					var re *task.RecordError
					if !errors.As(err, &re) {
						return err
					}
					f := TaskFailure{Task: id, Topic: re.Origin.Topic, Partition: re.Origin.Partition, Offset: re.Origin.Offset, Err: re.Err}
					if err := t.failTask(ctx, f); err != nil {
						return err
					}
					failed = true
					break
				}
			}
		}
		if failed {
			if t.sess != nil {
				return nil // aborted: every task restarts from its last commit
			}
			continue
		}
		if err := tk.Punctuate(now); err != nil {
			var se *sendError
			var pe *task.PunctuationError
			if errors.As(err, &se) {
				return se.err
			}
			if !errors.As(err, &pe) {
				return err
			}
			if err := t.failTask(ctx, TaskFailure{Task: id, Partition: -1, Offset: -1, Err: pe}); err != nil {
				return err
			}
			if t.sess != nil {
				return nil
			}
		}
	}
	return nil
}

// failTask stops a task whose record (or punctuator) failed with the Fail
// action: the task stays at its last commit, its partitions are paused,
// and it is reported (log, metric, Status) while the other tasks go on.
//
// With ExactlyOnce the open transaction holds the failed record's partial
// effects together with the other tasks' work, so it is aborted: every
// task goes back to its last commit, the others process their records
// again, and the failed one stays there. With AtLeastOnce only the failed
// task closes, and its offsets are no longer committed.
func (t *thread) failTask(ctx context.Context, f TaskFailure) error {
	f.At = time.Now()
	t.log.Error("runtime: task failed: its partitions are paused and it stays at its last commit; the other tasks go on (restart the instance once the cause is fixed)",
		"task", f.Task, "topic", f.Topic, "partition", f.Partition, "offset", f.Offset, "err", f.Err)
	t.r.taskFailed(f)
	t.m.failedTasks.Add(context.Background(), 1, metric.WithAttributes(taskAttr(f.Task)))
	t.pause(f.Task)
	if t.sess != nil {
		if err := t.abort(ctx, shutdownTimeout); err != nil {
			return fmt.Errorf("abort transaction after task %s failed: %w", f.Task, err)
		}
		t.closeTasks(false)
		return nil
	}
	if t.tasks[f.Task] != nil {
		t.closeTask(f.Task)
	}
	t.r.setThreadState(t.id, StateRunning, t.taskIDs())
	return nil
}
