package runtime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/internal/assign"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/state"
)

// shutdownTimeout bounds the final commit and the restore of a task when
// Run's context is already cancelled.
const shutdownTimeout = 30 * time.Second

// maxPollWait bounds a poll, so that wall-clock punctuations fire when no
// input comes.
const maxPollWait = time.Second

// thread is one stream thread: a group member with its own client (and,
// with ExactlyOnce, its own transactional producer), running its tasks in
// one goroutine.
type thread struct {
	r       *Runtime
	id      int
	name    string // member instance id and transactional id
	log     *slog.Logger
	layout  *layout
	engine  state.Engine
	brokers []string

	cl   *kgo.Client
	sess *kgo.GroupTransactSession // nil with AtLeastOnce
	m    *metrics

	scratch []processor.RawRecord // add's, reused from poll to poll

	tasks map[processor.TaskID]*task.Task
	owned atomic.Pointer[[]assign.TaskID] // for the balancer's join metadata

	// The group callbacks record the assignment; the loop acts on it.
	mu       sync.Mutex
	assigned map[string]map[int32]bool
	changed  bool
	lost     bool

	// Filled by produce promises, which run on the client's goroutines.
	pmu        sync.Mutex
	ends       map[task.TopicPartition]int64 // changelog partition -> offset after the last record produced
	produced   map[string]int64              // records produced per topic since the last report
	produceErr error

	departed   map[processor.TaskID]time.Time        // tasks that left, with their local state kept
	polled     map[task.TopicPartition][]*kgo.Record // this poll's records, for error handlers
	promise    func(*kgo.Record, error)              // t.onProduced
	inTxn      bool
	lastCommit time.Time
}

func newThread(r *Runtime, id int, pid string, brokers []string, l *layout, engine state.Engine, ms *metrics) (*thread, error) {
	t := &thread{
		m: ms,
		r: r, id: id, name: fmt.Sprintf("%s-%s-%d", r.cfg.appID, pid, id),
		log: r.log.With("thread", id), layout: l, engine: engine, brokers: brokers,
		tasks: map[processor.TaskID]*task.Task{}, assigned: map[string]map[int32]bool{},
		ends: map[task.TopicPartition]int64{}, produced: map[string]int64{},
		polled: map[task.TopicPartition][]*kgo.Record{}, departed: map[processor.TaskID]time.Time{},
	}
	var topics []string
	for name := range l.topicSub {
		topics = append(topics, name)
	}
	slices.Sort(topics)
	opts := append(r.clientOpts(brokers),
		kgo.ConsumerGroup(r.cfg.appID),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(newTaskBalancer(l.topicSub, r.cfg.endpoint, t.ownedTasks)),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsAssigned(t.onAssigned),
		kgo.OnPartitionsRevoked(t.onRevoked),
		kgo.OnPartitionsLost(t.onLost),
	)
	if !r.cfg.dynamicMembership {
		opts = append(opts, kgo.InstanceID(t.name))
	}
	t.promise = t.onProduced
	// The balancer reads owned as soon as the client joins the group.
	empty := []assign.TaskID{}
	t.owned.Store(&empty)
	var err error
	if r.cfg.guarantee == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(t.name),
			kgo.TransactionTimeout(r.cfg.txnTimeout),
			kgo.RequireStableFetchOffsets(),
		)
		t.sess, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			t.cl = t.sess.Client()
		}
	} else {
		t.cl, err = kgo.NewClient(opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("runtime: thread %d: client: %w", id, err)
	}
	return t, nil
}

func (t *thread) ownedTasks() []assign.TaskID { return *t.owned.Load() }

func (t *thread) onAssigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range parts {
		if t.assigned[topic] == nil {
			t.assigned[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			t.assigned[topic][p] = true
		}
	}
	t.changed = true
}

// onRevoked runs while the loop waits in a poll (rebalances are blocked
// otherwise). With AtLeastOnce it commits, so the next owner starts where
// this one stopped; with ExactlyOnce the session aborts the open
// transaction, and the loop resets its tasks.
func (t *thread) onRevoked(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	if t.sess == nil && len(parts) > 0 {
		if err := t.commit(ctx); err != nil {
			t.log.Error("runtime: commit on revocation failed; records since the last commit will be processed again", "err", err)
			t.closeTasks(false)
		}
	}
	t.remove(parts, false)
}

func (t *thread) onLost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	t.remove(parts, true)
}

func (t *thread) remove(parts map[string][]int32, lost bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(t.assigned[topic], p)
		}
	}
	t.changed = true
	t.lost = t.lost || lost
}

// run is the thread's loop: poll, hand records to tasks, process, punctuate,
// commit every commit interval.
func (t *thread) run(ctx context.Context) (err error) {
	defer func() {
		// Graceful end: commit what was processed, close the tasks, leave.
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err == nil || errors.Is(err, context.Canceled) {
			if cerr := t.commit(sctx); cerr != nil {
				err = errors.Join(err, cerr)
			}
		} else if t.inTxn {
			t.sess.End(sctx, kgo.TryAbort)
		}
		t.closeTasks(err == nil || errors.Is(err, context.Canceled))
		if cerr := t.cleanup(); cerr != nil {
			t.log.Warn("runtime: clean up local state", "err", cerr)
		}
		t.cl.AllowRebalance() // leaving the group is a rebalance
		if t.sess != nil {
			t.sess.Close()
		} else {
			t.cl.Close()
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("runtime: thread %d: %w", t.id, err)
		}
	}()
	t.lastCommit = time.Now()
	for {
		t.cl.AllowRebalance()
		// A poll waits at most until the next commit is due: a commit
		// (and the record caches' flush) must not wait for input.
		wait := max(t.r.cfg.commitInterval-time.Since(t.lastCommit), time.Millisecond)
		wait = min(wait, maxPollWait)
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := t.cl.PollRecords(pctx, t.r.cfg.maxPoll)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fetchError(fetches); err != nil {
			return err
		}
		discard, err := t.reconcile(ctx)
		if err != nil {
			return err
		}
		if !discard && !fetches.Empty() {
			if err := t.begin(); err != nil {
				return err
			}
			var addErr error
			fetches.EachPartition(func(p kgo.FetchTopicPartition) {
				if addErr != nil || len(p.Records) == 0 {
					return
				}
				addErr = t.add(p)
			})
			if addErr != nil {
				return addErr
			}
		}
		if err := t.process(); err != nil {
			return err
		}
		if err := t.producerError(); err != nil {
			return err
		}
		if time.Since(t.lastCommit) >= t.r.cfg.commitInterval || t.commitRequested() {
			// A commit in flight is never cancelled: a cancelled End can
			// return an error for a transaction the broker committed, or
			// leave one open (see kgo.GroupTransactSession.End).
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			err := t.commit(cctx)
			cancel()
			if err != nil {
				return err
			}
		}
		if err := t.cleanup(); err != nil {
			return err
		}
	}
}

// cleanup deletes the local state of tasks that left more than the cleanup
// delay ago and that no thread of the process runs now.
func (t *thread) cleanup() error {
	for id, since := range t.departed {
		if time.Since(since) < t.r.cfg.cleanupDelay {
			continue
		}
		delete(t.departed, id)
		if t.r.running(id) {
			continue
		}
		for _, sp := range t.r.storesOf(id) {
			if err := t.engine.Drop(sp); err != nil {
				return fmt.Errorf("clean up state of task %s: %w", id, err)
			}
		}
		t.log.Info("runtime: deleted the local state of a task that moved away", "task", id, "after", t.r.cfg.cleanupDelay)
	}
	return nil
}

func fetchError(fs kgo.Fetches) error {
	var errs []error
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		errs = append(errs, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
	})
	return errors.Join(errs...)
}

// begin starts a transaction if none is open (ExactlyOnce).
func (t *thread) begin() error {
	if t.sess == nil || t.inTxn {
		return nil
	}
	if err := t.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	t.inTxn = true
	return nil
}

// reconcile acts on a rebalance recorded by the callbacks: it closes the
// tasks that left and creates (restoring their stores) the tasks that came.
// It reports whether the records of the current poll must be dropped (an
// aborted transaction rewound the consumer).
func (t *thread) reconcile(ctx context.Context) (discard bool, err error) {
	t.mu.Lock()
	changed, lost := t.changed, t.lost
	t.changed, t.lost = false, false
	want := map[processor.TaskID]bool{}
	for topic, ps := range t.assigned {
		sub, ok := t.layout.topicSub[topic]
		if !ok {
			continue
		}
		for p := range ps {
			want[processor.TaskID{SubTopology: sub, Partition: p}] = true
		}
	}
	t.mu.Unlock()
	if !changed {
		return false, nil
	}
	if t.sess != nil {
		// The session aborts a transaction a rebalance interrupted, and
		// rewinds the consumer to the committed offsets: this interval's
		// work is gone, and so must be the tasks' uncommitted state.
		// Ending also clears the session's revoked flag when no
		// transaction is open.
		// Ending rewinds the consumer to the committed offsets, so the
		// records of this poll come again.
		hadTxn := t.inTxn
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		_, err := t.sess.End(ectx, kgo.TryAbort)
		cancel()
		if err != nil {
			return false, fmt.Errorf("abort transaction after rebalance: %w", err)
		}
		t.inTxn = false
		t.resetEnds()
		discard = true
		if hadTxn {
			t.log.Info("runtime: rebalance during a transaction: aborted it, tasks restart from the last commit")
			t.closeTasks(false)
		}
	} else if lost {
		t.closeTasks(false)
	}
	for id, tk := range t.tasks {
		if !want[id] {
			if err := tk.Close(); err != nil {
				t.log.Warn("runtime: close task", "task", id, "err", err)
			}
			delete(t.tasks, id)
			t.forget(id)
			t.r.release(id, t.id)
			t.departed[id] = time.Now()
		}
	}
	for id := range want {
		delete(t.departed, id)
		t.r.claim(id, t.id)
	}
	var ids []processor.TaskID
	for id := range want {
		if t.tasks[id] == nil {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, compareTaskIDs)
	if len(ids) > 0 {
		if err := t.restore(ctx, ids); err != nil {
			return discard, err
		}
		for _, id := range ids {
			tk, err := task.New(task.Config{ApplicationID: t.r.cfg.appID, Topology: t.r.topo, ID: id, Collector: t, Engine: t.engine})
			if err != nil {
				return discard, err
			}
			if err := tk.Init(); err != nil {
				tk.Close()
				return discard, err
			}
			t.tasks[id] = tk
		}
	}
	owned := make([]assign.TaskID, 0, len(t.tasks))
	for id := range t.tasks {
		owned = append(owned, assign.TaskID{SubTopology: id.SubTopology, Partition: id.Partition})
	}
	t.owned.Store(&owned)
	t.m.rebalances.Add(context.Background(), 1)

	t.log.Info("runtime: assignment", "tasks", taskList(t.tasks))
	return discard, nil
}

// forget drops a closed task's lag gauges.
func (t *thread) forget(id processor.TaskID) {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	for _, topic := range t.layout.subTopics[id.SubTopology] {
		delete(t.m.lag, task.TopicPartition{Topic: topic, Partition: id.Partition})
	}
}

func compareTaskIDs(a, b processor.TaskID) int {
	if a.SubTopology != b.SubTopology {
		return a.SubTopology - b.SubTopology
	}
	return int(a.Partition - b.Partition)
}

// taskIDs returns the ids of the thread's tasks, in order.
func (t *thread) taskIDs() []processor.TaskID {
	return slices.SortedFunc(maps.Keys(t.tasks), compareTaskIDs)
}

func taskList(m map[processor.TaskID]*task.Task) []string {
	var out []string
	for id := range m {
		out = append(out, id.String())
	}
	slices.Sort(out)
	return out
}

// add queues a fetched partition's records to their task.
func (t *thread) add(p kgo.FetchTopicPartition) error {
	sub, ok := t.layout.topicSub[p.Topic]
	if !ok {
		return fmt.Errorf("fetched records of %s/%d, which no sub-topology reads", p.Topic, p.Partition)
	}
	id := processor.TaskID{SubTopology: sub, Partition: p.Partition}
	tk := t.tasks[id]
	if tk == nil {
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

// handle applies the error handlers to a task's record error: nil means
// go on.
func (t *thread) handle(id processor.TaskID, err error) error {
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
			return err
		}
	default:
		return err
	}
	t.m.skipped.Add(context.Background(), 1, metric.WithAttributes(taskAttr(id), attribute.String("reason", what)))
	return nil
}

// process runs every task until its queues are empty, then fires the
// wall-clock punctuations due.
func (t *thread) process() error {
	defer clear(t.polled)
	now := time.Now()
	for _, id := range t.taskIDs() {
		tk := t.tasks[id]
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
				if err := t.handle(id, err); err != nil {
					return err
				}
			}
		}
		if err := tk.Punctuate(now); err != nil {
			return err
		}
	}
	return nil
}

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
func (t *thread) commit(ctx context.Context) error {
	t.lastCommit = time.Now()
	defer func(began time.Time) { t.m.commitDur.Record(context.Background(), time.Since(began).Seconds()) }(t.lastCommit)
	if len(t.tasks) == 0 && !t.inTxn {
		return nil
	}
	for _, id := range t.taskIDs() {
		if err := t.tasks[id].PrepareCommit(nil); err != nil {
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
		committed, err := t.sess.End(ctx, end)
		t.inTxn = false
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
		if err := t.cl.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
	}
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

// closeTasks closes every task. Without clean, their uncommitted state is
// dropped: the stores stay at their last commit, and the tasks are created
// again, from it, at the next reconcile.
func (t *thread) closeTasks(clean bool) {
	for id, tk := range t.tasks {
		if err := tk.Close(); err != nil {
			t.log.Warn("runtime: close task", "task", id, "err", err)
		}
		delete(t.tasks, id)
		t.forget(id)
		t.r.release(id, t.id)
	}
	if !clean {
		t.mu.Lock()
		t.changed = true
		t.mu.Unlock()
	}
}

// Send is the tasks' collector: it produces rec asynchronously (within the
// transaction with ExactlyOnce, which it begins if none is open) and records the offsets reached on
// changelog partitions.
func (t *thread) Send(topic string, partition int32, rec processor.RawRecord) error {
	if err := t.begin(); err != nil { // the first record of a transaction
		return err
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
	if t.sess == nil && !changelog {
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
			// which only promises empty.
			t.cl.TryProduce(context.Background(), dl, func(dr *kgo.Record, derr error) {
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
