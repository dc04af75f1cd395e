package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/internal/assign"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/state"
)

// shutdownTimeout bounds the final commit and the restore of a task when
// Run's context is already cancelled, and a commit in flight.
const shutdownTimeout = 30 * time.Second

// abortTimeout bounds the abort of a transaction that a failed session
// leaves: if the broker does not answer by then, the next session's
// producer aborts it (initializing a transactional id aborts its open
// transaction).
const abortTimeout = 5 * time.Second

// maxPollWait bounds a poll, so that wall-clock punctuations fire when no
// input comes.
const maxPollWait = time.Second

// maxFenced is how many sessions in a row may end with the producer fenced
// and no commit before a thread gives up with ErrFenced.
const maxFenced = 5

// thread is one stream thread: a group member with its own client (and,
// with ExactlyOnce, its own transactional producer), running its tasks in
// one goroutine.
//
// A thread runs sessions: a session creates the client, joins the group
// and runs the loop until an error or the end of Run's context. A
// transient error (a broker restart, a lost connection, a fenced producer,
// a stall) ends the session: it aborts its transaction, drops its tasks'
// uncommitted state and closes the client; the thread starts a new session
// after a backoff, with the same member instance id and transactional id,
// so it takes its own place back.
//
// Files: thread.go (sessions and the loop), group.go (rebalance callbacks
// and reconcile), process.go (records in, error handlers, task failures),
// commit.go (commit and produce), restore.go.
//
// Lock order: t.mu and t.pmu are never held together, nor with
// Runtime.stateMu or Runtime.ownersMu; each guards only its fields.
type thread struct {
	r       *Runtime
	id      int
	name    string // member instance id and transactional id
	log     *slog.Logger
	layout  *layout
	engine  state.Engine
	brokers []string
	m       *metrics

	// The current session's client; nil between sessions.
	cl   *kgo.Client
	sess *kgo.GroupTransactSession  // nil with AtLeastOnce
	live atomic.Pointer[kgo.Client] // cl for produce promises, nil once the session ends

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
	paused     map[processor.TaskID]bool             // failed tasks whose partitions this session paused
	promise    func(*kgo.Record, error)              // t.onProduced
	inTxn      bool
	lastCommit time.Time
	commits    int   // commits of the current session
	stallMark  int64 // the watchdog's epoch at the last commit or abort
}

func newThread(r *Runtime, id int, pid string, brokers []string, l *layout, engine state.Engine, ms *metrics) *thread {
	t := &thread{
		m: ms,
		r: r, id: id, name: fmt.Sprintf("%s-%s-%d", r.cfg.appID, pid, id),
		log: r.log.With("thread", id), layout: l, engine: engine, brokers: brokers,
		tasks: map[processor.TaskID]*task.Task{}, assigned: map[string]map[int32]bool{},
		ends: map[task.TopicPartition]int64{}, produced: map[string]int64{},
		polled: map[task.TopicPartition][]*kgo.Record{}, departed: map[processor.TaskID]time.Time{},
		paused: map[processor.TaskID]bool{},
	}
	t.promise = t.onProduced
	// The balancer reads owned as soon as the client joins the group.
	empty := []assign.TaskID{}
	t.owned.Store(&empty)
	return t
}

// connect creates the session's client, which joins the group.
func (t *thread) connect(ctx context.Context) error {
	var topics []string
	for name := range t.layout.topicSub {
		topics = append(topics, name)
	}
	slices.Sort(topics)
	// A new session starts with no assignment: the client's callbacks,
	// which may run as soon as it exists, fill it in.
	t.mu.Lock()
	t.assigned, t.changed, t.lost = map[string]map[int32]bool{}, false, false
	t.mu.Unlock()
	clear(t.paused)
	t.resetEnds()
	t.commits = 0
	t.stallMark = t.r.watch.epoch()
	r := t.r
	opts := append(r.clientOpts(t.brokers),
		kgo.ConsumerGroup(r.cfg.appID),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(newTaskBalancer(t.layout.topicSub, r.cfg.endpoint, t.ownedTasks)),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.OnPartitionsAssigned(t.onAssigned),
		kgo.OnPartitionsRevoked(t.onRevoked),
		kgo.OnPartitionsLost(t.onLost),
		kgo.WithHooks(groupErrorHook{t}),
	)
	if !r.cfg.dynamicMembership {
		opts = append(opts, kgo.InstanceID(t.name))
	}
	var err error
	if r.cfg.guarantee == ExactlyOnce {
		// No BlockRebalanceOnPoll: the session's callbacks must run when
		// the group moves tasks away (or forgets this member), so that an
		// End in flight aborts at once instead of waiting for a heartbeat
		// that cannot come. The callbacks only record the change; the
		// loop acts on it, and the session aborts a transaction that a
		// rebalance interrupted.
		opts = append(opts,
			kgo.TransactionalID(t.name),
			kgo.TransactionTimeout(r.cfg.txnTimeout),
			kgo.RequireStableFetchOffsets(),
		)
		t.sess, err = kgo.NewGroupTransactSession(opts...)
		if err == nil {
			t.cl = t.sess.Client()
			// Initializing the transactional id now aborts a transaction
			// that an earlier session of this thread left open (its
			// abort failed, or the process was killed), before restore
			// would wait for it.
			pctx, cancel := context.WithTimeout(ctx, shutdownTimeout)
			_, _, perr := t.cl.ProducerID(pctx)
			cancel()
			if perr != nil {
				t.sess.Close()
				t.cl, t.sess = nil, nil
				return fmt.Errorf("initialize transactional producer %s: %w", t.name, perr)
			}
		}
	} else {
		// At-least-once commits from the revocation callback, which
		// must run while the loop is parked in a poll.
		t.cl, err = kgo.NewClient(append(opts, kgo.BlockRebalanceOnPoll())...)
	}
	if err != nil {
		return fmt.Errorf("%w: client: %w", ErrConfig, err)
	}
	t.live.Store(t.cl)
	return nil
}

// groupErrorHook logs the errors of the client's group management, which
// retries them itself (rejoining after a session expired, waiting for a
// coordinator).
type groupErrorHook struct{ t *thread }

func (h groupErrorHook) OnGroupManageError(err error) {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
		h.t.log.Warn("runtime: group membership error; the client rejoins", "err", err)
	}
}

func (t *thread) ownedTasks() []assign.TaskID { return *t.owned.Load() }

// run runs sessions until ctx ends or an error that retrying cannot fix.
func (t *thread) run(ctx context.Context) error {
	backoff, fenced := retryMin, 0
	for {
		t.r.setThreadState(t.id, StateRebalancing, []processor.TaskID{})
		err := t.session(ctx)
		kind := classify(ctx, err)
		if kind == errStop {
			return nil
		}
		if t.commits > 0 {
			backoff, fenced = retryMin, 0
		}
		if fencedErr(err) {
			if fenced++; fenced >= maxFenced {
				return fmt.Errorf("runtime: thread %d: %w: %d sessions in a row fenced with no commit: %w", t.id, ErrFenced, fenced, err)
			}
		}
		if errors.Is(err, kerr.FencedInstanceID) && !errors.Is(err, ErrFenced) {
			return fmt.Errorf("runtime: thread %d: %w: another process joined with this member's instance id %s (the same process id): %w",
				t.id, ErrFenced, t.name, err)
		}
		if kind == errFatal {
			if fatalKerr(err) {
				err = unrecoverable(err)
			}
			return fmt.Errorf("runtime: thread %d: %w", t.id, err)
		}
		t.m.restarts.Add(context.Background(), 1)
		t.log.Warn("runtime: thread session ended on a transient error; it rejoins after a backoff", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, retryMax)
	}
}

// Backoff between sessions: doubling from retryMin to retryMax, back to
// retryMin after a session that committed.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
)

// session connects and runs the loop: poll, hand records to tasks,
// process, punctuate, commit every commit interval. It returns nil or
// ctx's error when ctx ends (after a final commit), or the error that
// ended it (after aborting).
func (t *thread) session(ctx context.Context) (err error) {
	if err := t.connect(ctx); err != nil {
		return err
	}
	defer func() { err = t.endSession(ctx, err) }()
	t.lastCommit = time.Now()
	for {
		if t.sess == nil {
			t.cl.AllowRebalance()
		}
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
		if err := t.fetchError(fetches); err != nil {
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
		if err := t.process(ctx); err != nil {
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

// endSession ends a session. When ctx ended (a clean stop) it commits what
// was processed and closes the tasks; otherwise it aborts the open
// transaction, promptly, and closes the tasks without committing, so their
// stores stay at the last commit. Either way it closes the client: a
// static member stays in the group for the next session to take back, a
// dynamic one leaves.
func (t *thread) endSession(ctx context.Context, err error) error {
	clean := classify(ctx, err) == errStop
	if clean {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if cerr := t.commit(sctx); cerr != nil {
			err, clean = errors.Join(err, cerr), false
		}
		cancel()
	}
	if !clean {
		if aerr := t.abort(ctx, abortTimeout); aerr != nil {
			t.log.Warn("runtime: abort transaction", "err", aerr)
		}
	}
	t.inTxn = false
	t.resetEnds()
	t.closeTasks(clean)
	if cerr := t.cleanup(); cerr != nil {
		t.log.Warn("runtime: clean up local state", "err", cerr)
	}
	t.live.Store(nil)
	t.cl.AllowRebalance() // leaving the group is a rebalance
	if t.sess != nil {
		t.sess.Close()
	} else {
		t.cl.Close()
	}
	t.cl, t.sess = nil, nil
	empty := []assign.TaskID{}
	t.owned.Store(&empty)
	return err
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

// fetchError returns the error of a poll that ends the session. Errors of
// group management (franz-go rejoins by itself) and data-loss notices are
// logged; errors that retrying cannot fix are marked so.
func (t *thread) fetchError(fs kgo.Fetches) error {
	var errs []error
	fs.EachError(func(topic string, p int32, err error) {
		var gs *kgo.ErrGroupSession
		var dl *kgo.ErrDataLoss
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed):
		case errors.As(err, &gs) && classify(context.Background(), gs.Err) != errFatal:
			t.log.Warn("runtime: group session error; the client rejoins", "err", err)
		case errors.As(err, &dl):
			t.log.Warn("runtime: data loss on an input partition (its records were deleted before they were read)", "topic", topic, "partition", p, "err", err)
		default:
			errs = append(errs, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
		}
	})
	return errors.Join(errs...)
}

// abort ends the session's transaction with an abort (if any is open,
// and in any case rewinding the consumer to the committed offsets and
// clearing the session's rebalance flags), within d, and forgets what the
// transaction produced. It does nothing with AtLeastOnce.
func (t *thread) abort(ctx context.Context, d time.Duration) error {
	if t.sess == nil {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	_, err := t.sess.End(actx, kgo.TryAbort)
	t.inTxn = false
	t.stallMark = t.r.watch.epoch()
	t.resetEnds()
	return err
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
