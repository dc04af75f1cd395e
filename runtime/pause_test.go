package runtime_test

// The pause tests (issue 9): a worker paused (SIGSTOP: a long GC pause, a
// frozen VM) past its session timeout, then resumed, must not cost
// stateful outputs any update with exactly-once.
//
// What goes wrong: the paused worker A wakes up and commits; its record
// caches flush changelog records into partitions its tasks no longer own,
// in a transaction that stays open (A's End waits, its membership lost),
// and pins those partitions' last stable offset (LSO). B, the tasks' owner
// now, commits above it: committed, but invisible to read_committed
// readers while A's transaction is open. When the tasks move again, their
// next owner restores only up to the LSO, takes the committed input
// offsets, already past B's invisible records, and misses their updates
// for good: counts end below the true count, in the output topic, the
// changelog and the store. A worker that exits over the pause is a
// failure too.
//
// Each variant runs workers A, B and then C as child processes (the test
// binary running TestCrashWorker, see crash_test.go), each with its own
// state dir (so its own process id, static member and transactional id),
// against an in-process kfake broker that allows short sessions:
//
//  1. input is produced in the background, all along;
//  2. B (commit interval 100 ms), then A (1 s) join and share the tasks;
//  3. A is stopped with SIGSTOP (with the full topology, while its
//     transaction is open), until its session expires and B holds every
//     task, and B has committed some more;
//  4. A is resumed with SIGCONT, and given a moment to write;
//  5. C starts: the tasks move again;
//  6. the input stops, the workers process it all and stop with SIGTERM;
//  7. the outputs (read_committed), the changelogs and the stores are
//     checked against the input.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/pebble"
)

// Environment of TestCrashWorker set by the pause tests: each, if set,
// overrides one setting of the worker.
const (
	pauseSessionEnv   = "GREGOR_PAUSE_SESSION_TIMEOUT"    // kgo.SessionTimeout (a time.Duration)
	pauseHeartbeatEnv = "GREGOR_PAUSE_HEARTBEAT_INTERVAL" // kgo.HeartbeatInterval
	pauseTxnEnv       = "GREGOR_PAUSE_TXN_TIMEOUT"        // runtime.WithTransactionTimeout
	pauseCommitEnv    = "GREGOR_PAUSE_COMMIT_INTERVAL"    // runtime.WithCommitInterval (the worker's default: 100 ms)
	pauseAggOnlyEnv   = "GREGOR_PAUSE_AGG_ONLY"           // "1": crashAggTopology, the two counts without the filter
)

// pauseSettings are the worker's settings read from the GREGOR_PAUSE_*
// environment.
type pauseSettings struct {
	aggOnly    bool
	opts       []runtime.Option
	clientOpts []kgo.Opt
}

// Defaults of the settings, as the worker has them when unset.
const (
	kgoDefaultSession = 45 * time.Second
	kgoDefaultHB      = 3 * time.Second
	gregorDefaultTxn  = 10 * time.Second
)

func pauseWorkerSettings(t *testing.T) pauseSettings {
	t.Helper()
	dur := func(env string) time.Duration {
		s := os.Getenv(env)
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive duration", env, s)
		}
		return d
	}
	var ps pauseSettings
	session, txn := dur(pauseSessionEnv), dur(pauseTxnEnv)
	if session > 0 {
		ps.clientOpts = append(ps.clientOpts, kgo.SessionTimeout(session))
	}
	if hb := dur(pauseHeartbeatEnv); hb > 0 {
		ps.clientOpts = append(ps.clientOpts, kgo.HeartbeatInterval(hb))
	}
	if txn > 0 {
		ps.opts = append(ps.opts, runtime.WithTransactionTimeout(txn))
	}
	if cmp.Or(txn, gregorDefaultTxn) >= cmp.Or(session, kgoDefaultSession) {
		ps.opts = append(ps.opts, runtime.AllowTransactionTimeoutAboveSession())
	}
	if ci := dur(pauseCommitEnv); ci > 0 {
		ps.opts = append(ps.opts, runtime.WithCommitInterval(ci))
	}
	ps.aggOnly = os.Getenv(pauseAggOnlyEnv) == "1"
	return ps
}

// crashAggTopology is crashTopology's aggregation only: the count per key
// and the count by regrouped key, without the filtered stream. Every record
// it produces then goes out when a commit flushes the caches.
func crashAggTopology() (*processor.Topology, error) {
	b := dsl.NewBuilder()
	in := b.Stream(crashIn, serde.String(), serde.String())
	in.GroupByKey().Count(dsl.Named(crashStore)).ToStream().To(crashCounts)
	in.GroupBy(crashGroupOf, serde.String(), dsl.Named(crashGroupBy)).Count(dsl.Named(pauseGroupStore)).ToStream().To(crashGroups)
	return b.Build()
}

const (
	pauseGroupStore = "group-counts"
	pauseBatch      = 100                    // input records every 50 ms
	pauseMaxRecords = 400_000                // bounds the input, at 2,000 records/s
	pauseSlowCommit = time.Second            // A's commit interval: a transaction open most of the time
	pauseFastCommit = 100 * time.Millisecond // B's and C's
	pauseLateWrite  = 5 * time.Second        // how long A is given, resumed, to write
)

var pauseRepartition = crashApp + "-" + crashGroupBy + "-combined-repartition"

// pauseVariant is one configuration of the workers.
type pauseVariant struct {
	name string
	// 0: the default (kgo's 45 s session and 3 s heartbeat, the
	// runtime's 10 s transaction timeout).
	session, heartbeat, txn time.Duration
	aggOnly                 bool
}

func (v pauseVariant) effSession() time.Duration { return cmp.Or(v.session, kgoDefaultSession) }
func (v pauseVariant) effTxn() time.Duration     { return cmp.Or(v.txn, gregorDefaultTxn) }

// TestPauseExactlyOnce pauses a worker past its session timeout and
// resumes it, then moves the tasks (see the top of the file): no worker
// may exit, and every output, changelog and store must hold each input
// record's effect exactly once.
func TestPauseExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: child processes, tens of seconds (and one variant pauses past a 45 s session)")
	}
	for _, v := range []pauseVariant{
		// The transaction outlives the session: A's transaction, open
		// when it is stopped, is still open when it resumes, and takes
		// its late changelog records.
		{name: "TxnAboveSession", session: 3 * time.Second, heartbeat: time.Second, txn: 6 * time.Second},
		// The broker aborts A's transaction while A is stopped (and
		// fences its epoch): what A writes on resuming must not land.
		{name: "TxnBelowSession", session: 6 * time.Second, heartbeat: time.Second, txn: 2 * time.Second},
		// The defaults, 45 s and 10 s. Nothing is produced between
		// commits by this topology, so A has no transaction open on
		// the broker while it is stopped: it opens one on resuming,
		// with an epoch still valid.
		{name: "Defaults", aggOnly: true},
	} {
		t.Run(v.name, func(t *testing.T) { runPause(t, v) })
	}
}

func runPause(t *testing.T, v pauseVariant) {
	pt := newPauseTest(t, v)
	rng := crashRand(t)
	pt.logf("session timeout %v, heartbeat %v, transaction timeout %v, topology %s; A commits every %v, B and C every %v",
		v.effSession(), cmp.Or(v.heartbeat, kgoDefaultHB), v.effTxn(), map[bool]string{false: "full", true: "aggregation only"}[v.aggOnly],
		pauseSlowCommit, pauseFastCommit)
	pt.produce(rng)

	// B first, then A: the balancer is sticky, and keeps each member's
	// lowest partitions, so A gets partitions 2 and 3 of both
	// sub-topologies, which B gives up when C joins after the pause.
	b := pt.startWorker("B", pauseFastCommit)
	pt.waitGroup("B holds every task", crashDeadline, func(g groupView) bool {
		return len(g.members) == 1 && len(g.members[b.name]) == 2*crashParts
	})
	a := pt.startWorker("A", pauseSlowCommit)
	g := pt.waitGroup("A and B share the tasks", crashDeadline, func(g groupView) bool {
		return len(g.members) == 2 && len(g.members[a.name]) > 0 && len(g.members[b.name]) > 0
	})
	aTasks := g.members[a.name]
	pt.waitCommitted("A and B process", 500, crashDeadline)

	pt.pauseInTxn(a)
	stopped := time.Now()
	pt.waitGroup("A's session expired and B holds every task", v.effSession()+crashDeadline, func(g groupView) bool {
		return len(g.members) == 1 && len(g.members[b.name]) == 2*crashParts
	})
	pt.logf("B took over %v after A was stopped; A's transaction: %s", time.Since(stopped).Round(time.Millisecond), pt.txnState(a))
	pt.waitCommitted("B commits more", 500, crashDeadline)

	pt.resume(a)
	pt.waitLateWrite(a)
	pt.waitCommitted("B commits after A resumed", 200, crashDeadline)

	c := pt.startWorker("C", pauseFastCommit)
	g = pt.waitGroup("the tasks moved again, C holds some", crashDeadline, func(g groupView) bool {
		return len(g.members[c.name]) > 0
	})
	moved := intersect(g.members[c.name], aTasks)
	pt.logf("C holds %v, of which A had %v; A's transaction as the tasks move: %s; %s",
		g.members[c.name], moved, pt.txnState(a), pt.changelogLag())
	if len(moved) == 0 {
		pt.logf("none of the tasks A had moved to C: this run does not restore what A wrote into late")
	}
	pt.waitCommitted("the workers process after the move", 4000, crashDeadline)

	pt.stopProducing()
	pt.waitCaughtUp()
	pt.stopAll()
	pt.check()
	pt.logf("done")
}

// pauseTest is one run of a variant: the broker, the workers, the input.
type pauseTest struct {
	t     *testing.T
	v     pauseVariant
	addr  string
	adm   *kadm.Client
	ct    *crashTest // for its helpers: consumed, checkKcat
	dir   string
	begin time.Time

	workers []*pauseWorker

	produced atomic.Int64
	stopOnce sync.Once
	stopProd chan struct{}
	prodDone chan struct{}
	prodErr  error            // once prodDone is closed
	counts   map[string]int64 // expected count per key, once prodDone is closed
	big      map[string]int   // expected crash-big records, once prodDone is closed
}

// pauseWorker is one worker (A, B or C) and its state dir, across its
// restarts.
type pauseWorker struct {
	name     string
	stateDir string
	log      string
	env      []string
	cur      *child
	runs     int
	txnID    string // also its static member's instance id
	paused   bool
	stopping bool
}

func newPauseTest(t *testing.T, v pauseVariant) *pauseTest {
	begin := time.Now()
	c := newCluster(t, kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "1000"}),
		kfake.SeedTopics(crashParts, crashIn), kfake.SeedTopics(crashParts, crashCounts),
		kfake.SeedTopics(crashParts, crashBig), kfake.SeedTopics(crashParts, crashGroups))
	addr := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	pt := &pauseTest{t: t, v: v, addr: addr, adm: kadm.NewClient(cl), dir: t.TempDir(), begin: begin,
		stopProd: make(chan struct{}), prodDone: make(chan struct{}), counts: map[string]int64{}, big: map[string]int{}}
	pt.ct = &crashTest{t: t, addr: addr, adm: pt.adm}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, w := range pt.workers {
			t.Logf("tail of worker %s's log %s:\n%s", w.name, w.log, tail(w.log, 40))
		}
	})
	return pt
}

// logf logs with the time since the start of the run: the timeline.
func (pt *pauseTest) logf(format string, args ...any) {
	pt.t.Helper()
	pt.t.Logf("%7.3fs  %s", time.Since(pt.begin).Seconds(), fmt.Sprintf(format, args...))
}

// produce writes input to crash-in in the background, 100 records every
// 50 ms, until stopProducing: keys k0..k999 at random, values the record's
// index, so that each record is unique.
func (pt *pauseTest) produce(rng *rand.Rand) {
	t := pt.t
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(pt.addr))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	n := 0
	next := func(m int) []*kgo.Record {
		recs := make([]*kgo.Record, m)
		for i := range recs {
			k, v := "k"+strconv.Itoa(rng.IntN(crashKeys)), strconv.Itoa(n)
			n++
			pt.counts[k]++
			if crashBigKeeps(k, v) {
				pt.big[k+" "+v]++
			}
			recs[i] = &kgo.Record{Topic: crashIn, Key: []byte(k), Value: []byte(v)}
		}
		return recs
	}
	if err := cl.ProduceSync(ctx, next(20*pauseBatch)...).FirstErr(); err != nil {
		cancel()
		cl.Close()
		t.Fatalf("produce input: %v", err)
	}
	pt.produced.Store(int64(n))
	go func() {
		defer close(pt.prodDone)
		defer cl.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n < pauseMaxRecords {
			select {
			case <-tick.C:
			case <-pt.stopProd:
				return
			case <-ctx.Done():
				pt.prodErr = ctx.Err()
				return
			}
			if err := cl.ProduceSync(ctx, next(pauseBatch)...).FirstErr(); err != nil {
				pt.prodErr = err
				return
			}
			pt.produced.Store(int64(n))
		}
		pt.prodErr = fmt.Errorf("%d records produced and the test still wants more", n)
	}()
	t.Cleanup(func() {
		cancel()
		pt.stopOnce.Do(func() { close(pt.stopProd) })
		<-pt.prodDone
	})
}

// stopProducing stops the background producer and waits for it.
func (pt *pauseTest) stopProducing() {
	t := pt.t
	t.Helper()
	pt.stopOnce.Do(func() { close(pt.stopProd) })
	select {
	case <-pt.prodDone:
	case <-time.After(crashDeadline):
		t.Fatalf("the producer did not stop within %v", crashDeadline)
	}
	if pt.prodErr != nil {
		t.Fatalf("produce input: %v", pt.prodErr)
	}
	pt.logf("input stopped: %d records", pt.produced.Load())
}

// startWorker starts worker name with its own state dir, and learns its
// process id.
func (pt *pauseTest) startWorker(name string, commit time.Duration) *pauseWorker {
	t := pt.t
	t.Helper()
	w := &pauseWorker{name: name, stateDir: filepath.Join(pt.dir, name+"-state"), log: filepath.Join(pt.dir, name+".log")}
	if keep := os.Getenv(crashLogDirEnv); keep != "" {
		w.log = filepath.Join(keep, fmt.Sprintf("%s-%d-%s.log", strings.ReplaceAll(t.Name(), "/", "-"), pt.begin.UnixNano(), name))
		t.Logf("worker %s's log: %s", name, w.log)
	}
	w.env = []string{crashWorkerEnv + "=1", crashBrokersEnv + "=" + pt.addr, crashStateEnv + "=" + w.stateDir,
		pauseCommitEnv + "=" + commit.String()}
	for env, d := range map[string]time.Duration{pauseSessionEnv: pt.v.session, pauseHeartbeatEnv: pt.v.heartbeat, pauseTxnEnv: pt.v.txn} {
		if d > 0 {
			w.env = append(w.env, env+"="+d.String())
		}
	}
	if pt.v.aggOnly {
		w.env = append(w.env, pauseAggOnlyEnv+"=1")
	}
	pt.workers = append(pt.workers, w)
	pt.run(w)
	path := filepath.Join(w.stateDir, "process-id")
	deadline := time.Now().Add(crashDeadline)
	for {
		b, err := os.ReadFile(path)
		if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
			w.txnID = crashApp + "-" + pid + "-0"
			break
		}
		if w.cur.exited() {
			t.Fatalf("%s exited at start: %v", w.cur.name, w.cur.err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s wrote no process id in %v", w.cur.name, crashDeadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
	pt.logf("started worker %s (member and transactional id %s)", name, w.txnID)
	return w
}

func (pt *pauseTest) run(w *pauseWorker) {
	w.runs++
	w.cur = startChild(pt.t, fmt.Sprintf("worker %s #%d", w.name, w.runs), "^TestCrashWorker$", w.log, w.env...)
}

// supervise reports a worker that exited on its own, a failure, and
// restarts it (at most twice) so that the run goes on to the checks.
func (pt *pauseTest) supervise() {
	t := pt.t
	t.Helper()
	for _, w := range pt.workers {
		if w.paused || w.stopping || !w.cur.exited() {
			continue
		}
		t.Errorf("%s exited on its own after %v: %v: %s", w.cur.name, time.Since(w.cur.started).Round(time.Millisecond),
			w.cur.err, workerError(w.log))
		if w.runs > 2 {
			t.Fatalf("worker %s exited %d times", w.name, w.runs)
		}
		pt.run(w)
		pt.logf("restarted worker %s", w.name)
	}
}

// workerError returns the last error line of a worker log.
func workerError(path string) string {
	lines := strings.Split(tail(path, 200), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := lines[i]; strings.Contains(l, "worker: Run:") || strings.Contains(l, "level=ERROR") {
			return strings.TrimSpace(l)
		}
	}
	return "(no error line in its log)"
}

// groupView is the group as DescribeGroups shows it: each member's
// assigned partitions, by worker name.
type groupView struct {
	state   string
	members map[string][]string
}

func (g groupView) String() string {
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(g.members)) {
		parts = append(parts, fmt.Sprintf("%s: %d partitions", m, len(g.members[m])))
	}
	return g.state + " {" + strings.Join(parts, ", ") + "}"
}

func (pt *pauseTest) group() (groupView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ds, err := pt.adm.DescribeGroups(ctx, crashApp)
	if err != nil {
		return groupView{}, err
	}
	d, ok := ds[crashApp]
	if !ok {
		return groupView{}, errors.New("group not described")
	}
	if d.Err != nil {
		return groupView{}, d.Err
	}
	g := groupView{state: d.State, members: map[string][]string{}}
	for _, m := range d.Members {
		name := "member " + m.MemberID
		if m.InstanceID != nil {
			name = "instance " + *m.InstanceID
			for _, w := range pt.workers {
				if w.txnID == *m.InstanceID {
					name = w.name
				}
			}
		}
		var parts []string
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range ca.Topics {
				for _, p := range tp.Partitions {
					parts = append(parts, fmt.Sprintf("%s/%d", tp.Topic, p))
				}
			}
		}
		g.members[name] = parts
	}
	return g, nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// waitGroup waits until the group is stable and cond holds, and returns
// the group.
func (pt *pauseTest) waitGroup(what string, d time.Duration, cond func(groupView) bool) groupView {
	t := pt.t
	t.Helper()
	deadline := time.Now().Add(d)
	var last groupView
	var lastErr error
	for {
		pt.supervise()
		g, err := pt.group()
		if err == nil && g.state == "Stable" && cond(g) {
			pt.logf("%s: %s", what, g)
			return g
		}
		last, lastErr = g, err
		if time.Now().After(deadline) {
			t.Fatalf("not after %v: %s; the group: %s (%v)", d, what, last, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCommitted waits until the group has committed n more input records.
func (pt *pauseTest) waitCommitted(what string, n int64, d time.Duration) {
	t := pt.t
	t.Helper()
	base := pt.ct.consumed()
	deadline := time.Now().Add(d)
	for {
		pt.supervise()
		c := pt.ct.consumed()
		if base < 0 {
			base = c
		} else if c >= base+n {
			pt.logf("%s: %d input records committed (+%d)", what, c, c-base)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %v: %s: %d input records committed, want %d more than %d", d, what, c, n, base)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// txn describes the worker's transaction on the broker.
func (pt *pauseTest) txn(w *pauseWorker) (kadm.DescribedTransaction, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ds, err := pt.adm.DescribeTransactions(ctx, w.txnID)
	if err != nil {
		return kadm.DescribedTransaction{}, err
	}
	d, ok := ds[w.txnID]
	if !ok {
		return kadm.DescribedTransaction{}, errors.New("transaction not described")
	}
	return d, d.Err
}

func (pt *pauseTest) txnState(w *pauseWorker) string {
	d, err := pt.txn(w)
	if err != nil {
		return "unknown: " + err.Error()
	}
	s := fmt.Sprintf("%s (producer %d epoch %d)", d.State, d.ProducerID, d.ProducerEpoch)
	if d.State == "Ongoing" {
		start := time.UnixMilli(d.StartTimestamp)
		s += fmt.Sprintf(", started %v ago, times out in %v, on %s", time.Since(start).Round(time.Millisecond),
			time.Until(start.Add(time.Duration(d.TimeoutMillis)*time.Millisecond)).Round(time.Millisecond), topicsList(d.Topics))
	}
	return s
}

func topicsList(ts kadm.TopicsSet) string {
	var out []string
	for _, tp := range ts.Sorted() {
		out = append(out, fmt.Sprintf("%s%v", tp.Topic, tp.Partitions))
	}
	return strings.Join(out, " ")
}

// writesChangelog reports whether a transaction holds changelog partitions.
func writesChangelog(d kadm.DescribedTransaction) bool {
	for topic := range d.Topics {
		if strings.HasSuffix(topic, "-changelog") {
			return true
		}
	}
	return false
}

// pauseInTxn stops worker w with SIGSTOP. With the full topology, it picks
// a moment when w's transaction is open on the broker (the filter writes
// at once) and young, before its commit flushes the caches into the
// changelogs. The aggregation-only topology writes nothing between
// commits: it picks the middle of a commit interval, when w has processed
// input it has not committed and no transaction open on the broker.
func (pt *pauseTest) pauseInTxn(w *pauseWorker) {
	t := pt.t
	t.Helper()
	deadline := time.Now().Add(crashDeadline)
	sawOpen, epoch := false, int16(-1)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("found no moment to stop worker %s in %v: its transaction: %s", w.name, crashDeadline, pt.txnState(w))
		}
		pt.supervise()
		d, err := pt.txn(w)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		open := d.State == "Ongoing"
		if !pt.v.aggOnly {
			if open && !writesChangelog(d) && time.Since(time.UnixMilli(d.StartTimestamp)) < 200*time.Millisecond {
				break
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// A commit ended when the transaction was seen open and is not
		// now, or when the producer epoch moved (each EndTxn bumps it
		// with transactions V2): then wait half an interval, for input
		// processed since.
		ended := !open && (sawOpen || epoch >= 0 && d.ProducerEpoch != epoch)
		sawOpen, epoch = open, d.ProducerEpoch
		if ended {
			time.Sleep(pauseSlowCommit / 2)
			if d, err := pt.txn(w); err == nil && d.State != "Ongoing" {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	state := pt.txnState(w)
	if err := w.cur.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", w.cur.name, err)
	}
	w.paused = true
	pt.logf("stopped worker %s with SIGSTOP; its transaction: %s", w.name, state)
}

// resume resumes a stopped worker with SIGCONT.
func (pt *pauseTest) resume(w *pauseWorker) {
	t := pt.t
	t.Helper()
	state := pt.txnState(w)
	if err := w.cur.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", w.cur.name, err)
	}
	w.paused = false
	pt.logf("resumed worker %s with SIGCONT; its transaction: %s", w.name, state)
}

// waitLateWrite gives the resumed worker w a moment to write, for at most
// pauseLateWrite: until records of its open transaction lie in changelog
// partitions (of tasks other workers own now) above their last stable
// offset, or it exits, or it is a member of the group again (a worker
// that aborts at once and rejoins writes no such records).
func (pt *pauseTest) waitLateWrite(w *pauseWorker) {
	deadline := time.Now().Add(pauseLateWrite)
	for time.Now().Before(deadline) {
		if w.cur.exited() {
			pt.logf("worker %s exited after it resumed: %v: %s", w.name, w.cur.err, workerError(w.log))
			return
		}
		if d, err := pt.txn(w); err == nil && d.State == "Ongoing" && writesChangelog(d) && len(pt.unstable(d.Topics)) > 0 {
			pt.logf("worker %s writes into the changelogs of tasks it lost, in a transaction left open: %s; %s",
				w.name, pt.txnState(w), pt.changelogLag())
			return
		}
		if g, err := pt.group(); err == nil && len(g.members[w.name]) > 0 {
			pt.logf("worker %s is a member of the group again: %s; its transaction: %s", w.name, g, pt.txnState(w))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	pt.logf("worker %s, resumed, wrote into no changelog and did not rejoin within %v; its transaction: %s; %s",
		w.name, pauseLateWrite, pt.txnState(w), pt.changelogLag())
}

// unstable returns the changelog partitions among ts whose high watermark
// is above their last stable offset.
func (pt *pauseTest) unstable(ts kadm.TopicsSet) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var topics []string
	for topic := range ts {
		if strings.HasSuffix(topic, "-changelog") {
			topics = append(topics, topic)
		}
	}
	hw, err1 := pt.adm.ListEndOffsets(ctx, topics...)
	ls, err2 := pt.adm.ListCommittedOffsets(ctx, topics...)
	if errors.Join(err1, err2, hw.Error(), ls.Error()) != nil {
		return nil
	}
	var out []string
	hw.Each(func(o kadm.ListedOffset) {
		if _, in := ts[o.Topic][o.Partition]; !in {
			return
		}
		if l, ok := ls.Lookup(o.Topic, o.Partition); ok && o.Offset > l.Offset {
			out = append(out, fmt.Sprintf("%s/%d", o.Topic, o.Partition))
		}
	})
	return out
}

// changelogLag lists the changelog partitions whose high watermark is
// above their last stable offset: what read_committed readers, a restore
// among them, cannot see yet.
func (pt *pauseTest) changelogLag() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	topics := []string{state.ChangelogTopic(crashApp, crashStore), state.ChangelogTopic(crashApp, pauseGroupStore)}
	hw, err1 := pt.adm.ListEndOffsets(ctx, topics...)
	ls, err2 := pt.adm.ListCommittedOffsets(ctx, topics...)
	if err := errors.Join(err1, err2, hw.Error(), ls.Error()); err != nil {
		return "changelog offsets: " + err.Error()
	}
	var out []string
	hw.Each(func(o kadm.ListedOffset) {
		if l, ok := ls.Lookup(o.Topic, o.Partition); ok && o.Offset > l.Offset {
			out = append(out, fmt.Sprintf("%s/%d LSO %d < HW %d", o.Topic, o.Partition, l.Offset, o.Offset))
		}
	})
	if len(out) == 0 {
		return "no changelog partition has records above its LSO"
	}
	slices.Sort(out)
	return "changelog partitions with records above the LSO: " + strings.Join(out, ", ")
}

// caughtUp reports whether the group committed all the input: every
// crash-in record, and every committed record of the repartition topic,
// with no transaction open on it.
func (pt *pauseTest) caughtUp() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	offs, err := pt.adm.FetchOffsets(ctx, crashApp)
	if err != nil || offs.Error() != nil {
		return false
	}
	ends, err1 := pt.adm.ListEndOffsets(ctx, crashIn, pauseRepartition)
	stable, err2 := pt.adm.ListCommittedOffsets(ctx, pauseRepartition)
	if errors.Join(err1, err2, ends.Error(), stable.Error()) != nil {
		return false
	}
	from := map[int32]int64{}
	for p := range int32(crashParts) {
		at, ok := offs.Lookup(crashIn, p)
		end, _ := ends.Lookup(crashIn, p)
		if !ok || at.At != end.Offset {
			return false
		}
		rend, _ := ends.Lookup(pauseRepartition, p)
		rstable, _ := stable.Lookup(pauseRepartition, p)
		if rend.Offset != rstable.Offset {
			return false
		}
		if at, ok := offs.Lookup(pauseRepartition, p); ok {
			from[p] = at.At
		}
	}
	return len(readTopicFrom(pt.t, pt.addr, pauseRepartition, true, from)) == 0
}

// waitCaughtUp waits until the group committed all the input.
func (pt *pauseTest) waitCaughtUp() {
	t := pt.t
	t.Helper()
	deadline := time.Now().Add(crashDeadline)
	for !pt.caughtUp() {
		pt.supervise()
		if time.Now().After(deadline) {
			t.Fatalf("the input is not all committed after %v: %d of %d crash-in records", crashDeadline, pt.ct.consumed(), pt.produced.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	g, _ := pt.group()
	pt.logf("the group committed all the input; the group: %s", g)
}

// stopAll stops every worker with SIGTERM and requires clean exits; a
// failure is reported, and the checks run all the same.
func (pt *pauseTest) stopAll() {
	t := pt.t
	t.Helper()
	for _, w := range pt.workers {
		w.stopping = true
		if w.cur.exited() {
			t.Errorf("%s exited before the end: %v: %s", w.cur.name, w.cur.err, workerError(w.log))
			continue
		}
		if err := w.cur.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("stop %s: %v", w.cur.name, err)
		}
	}
	for _, w := range pt.workers {
		select {
		case <-w.cur.done:
		case <-time.After(crashDeadline):
			t.Fatalf("%s did not exit within %v of SIGTERM", w.cur.name, crashDeadline)
		}
		if w.cur.err != nil {
			t.Errorf("%s did not stop cleanly on SIGTERM: %v: %s", w.cur.name, w.cur.err, workerError(w.log))
		} else {
			pt.logf("%s stopped cleanly", w.cur.name)
		}
	}
}

// check compares the outputs, the changelogs and the stores with the input.
func (pt *pauseTest) check() {
	t := pt.t
	t.Helper()
	groups := map[string]int64{}
	for k, n := range pt.counts {
		groups[crashGroupOf(k, "")] += n
	}
	if !pt.v.aggOnly {
		got := map[string]int{}
		for _, r := range readTopic(t, pt.addr, crashBig, true) {
			got[string(r.Key)+" "+string(r.Value)]++
		}
		compareMultisets(t, "crash-big (read_committed)", got, pt.big)
		pt.ct.big = pt.big
		pt.ct.checkKcat()
	}
	checkCounts(t, pt.addr, crashCounts, pt.counts)
	checkCounts(t, pt.addr, crashGroups, groups)
	pt.checkChangelog(crashStore, pt.counts)
	pt.checkChangelog(pauseGroupStore, groups)
	pt.checkStores(crashStore, pt.counts)
	pt.checkStores(pauseGroupStore, groups)
}

// checkChangelog reads a store's changelog read_committed and checks that
// each key's last value is want's.
func (pt *pauseTest) checkChangelog(store string, want map[string]int64) {
	t := pt.t
	t.Helper()
	topic := state.ChangelogTopic(crashApp, store)
	last := map[string]int64{}
	vs := state.TimestampedSerde(serde.Int64())
	for _, r := range readTopic(t, pt.addr, topic, true) {
		if r.Value == nil {
			delete(last, string(r.Key))
			continue
		}
		v, err := vs.Deserialize(topic, r.Value)
		if err != nil {
			t.Fatalf("%s %d/%d: %v", topic, r.Partition, r.Offset, err)
		}
		last[string(r.Key)] = v.Value
	}
	compareFinal(t, topic+" (read_committed, last value per key)", last, want)
}

// checkStores checks a store's final contents: each partition as the
// worker that committed it last (the highest checkpoint) has it.
func (pt *pauseTest) checkStores(store string, want map[string]int64) {
	t := pt.t
	t.Helper()
	engines := make([]*pebble.Engine, len(pt.workers))
	for i, w := range pt.workers {
		e, err := pebble.Open(filepath.Join(w.stateDir, "state"))
		if err != nil {
			t.Errorf("open worker %s's state: %v", w.name, err)
			continue
		}
		engines[i] = e
		defer func() {
			if err := e.Close(); err != nil {
				t.Errorf("close worker %s's state: %v", w.name, err)
			}
		}()
	}
	vs := state.TimestampedSerde(serde.Int64())
	got := map[string]int64{}
	var owners []string
	for p := range int32(crashParts) {
		sp := state.StorePartition{Store: store, Partition: p}
		best, bestCP := -1, int64(-1)
		for i, e := range engines {
			if e == nil {
				continue
			}
			if cp, ok, err := e.Checkpoint(sp); err != nil {
				t.Errorf("worker %s's store %s/%d: checkpoint: %v", pt.workers[i].name, store, p, err)
			} else if ok && cp > bestCP {
				best, bestCP = i, cp
			}
		}
		if best < 0 {
			t.Errorf("store %s/%d: no worker has a checkpoint", store, p)
			continue
		}
		owners = append(owners, fmt.Sprintf("%d: %s at %d", p, pt.workers[best].name, bestCP))
		it := engines[best].Reader(sp).Range(nil, nil)
		for it.Next() {
			v, err := vs.Deserialize(store, it.Value())
			if err != nil {
				t.Errorf("store %s/%d: key %s: %v", store, p, it.Key(), err)
				continue
			}
			got[string(it.Key())] = v.Value
		}
		if err := it.Close(); err != nil {
			t.Fatalf("read store %s/%d: %v", store, p, err)
		}
	}
	pt.logf("store %s: partitions read from %s", store, strings.Join(owners, ", "))
	compareFinal(t, "store "+store, got, want)
}

// compareFinal checks final values per key against want's.
func compareFinal(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	bad, below := 0, 0
	var lost int64
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g := got[k]; g != want[k] {
			if bad++; bad <= 10 {
				t.Errorf("%s: key %s = %d, want %d", what, k, g, want[k])
			}
			if g < want[k] {
				below++
				lost += want[k] - g
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: key %s was never input", what, k)
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d keys wrong, %d of them below the true count (%d updates lost)", what, bad, len(want), below, lost)
	} else {
		t.Logf("%s: %d keys, all at their true count", what, len(want))
	}
}
