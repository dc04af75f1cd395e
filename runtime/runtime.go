// Package runtime runs a topology on Kafka: each instance of a program that
// calls Run joins the application's consumer group, receives tasks (one
// partition of one sub-topology each), restores their stores from the
// changelog topics, and processes, committing outputs, changelog writes and
// input offsets together, in one transaction with ExactlyOnce.
//
// Scaling out is starting one more instance with the same application id.
// With no broker configured, Run starts an embedded broker (franz-go's
// kfake, with its data in the state directory), so a program runs on a
// laptop with nothing installed.
package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"golang.org/x/sync/errgroup"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
)

// Runtime runs one topology. Create it with New and call Run.
type Runtime struct {
	// Set by Run when it starts the embedded broker.
	embedded bool
	infoMu   sync.Mutex
	addrs    []string
	registry string

	// owners records which thread runs each task, so that no thread deletes
	// the local state of a task another thread of the process runs.
	ownersMu sync.Mutex
	owners   map[processor.TaskID]int

	// The state of the runtime and its threads (see Status).
	stateMu      sync.Mutex
	state        State
	runErr       error
	threadStates map[int]State
	threadTasks  map[int][]processor.TaskID
	failed       map[processor.TaskID]TaskFailure

	watch *watchdog // the stall detector; read-only once Run starts

	cfg  config
	topo *processor.Topology
	subs []processor.SubTopology
	log  *slog.Logger
}

// New checks the topology and the options and returns a Runtime.
func New(topo *processor.Topology, opts ...Option) (*Runtime, error) {
	if topo == nil {
		return nil, errors.New("runtime: nil topology")
	}
	cfg := config{threads: 1, embeddedPort: 9092, logger: slog.Default(), maxPoll: 10_000, restoreBatch: 10_000, txnTimeout: 10 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	for _, h := range []*ErrorHandler{&cfg.onDeserialize, &cfg.onProcess, &cfg.onProduce} {
		if *h == nil {
			*h = LogAndFail
		}
	}
	if cfg.appID == "" {
		return nil, errors.New("runtime: an application id is required (WithApplicationID)")
	}
	if strings.ContainsAny(cfg.appID, "/\\ ") {
		return nil, fmt.Errorf("runtime: application id %q: no spaces or slashes", cfg.appID)
	}
	if cfg.threads < 1 {
		return nil, fmt.Errorf("runtime: %d stream threads: need at least 1", cfg.threads)
	}
	if cfg.commitInterval <= 0 {
		cfg.commitInterval = DefaultCommitIntervalExactlyOnce
		if cfg.guarantee == AtLeastOnce {
			cfg.commitInterval = DefaultCommitIntervalAtLeastOnce
		}
	}
	if cfg.stateDir == "" {
		cfg.stateDir = filepath.Join(os.TempDir(), "gregor", cfg.appID)
	}
	subs, err := topo.SubTopologies()
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	for _, s := range subs {
		if len(s.Patterns) > 0 {
			return nil, fmt.Errorf("runtime: sub-topology %d reads a topic pattern (%s): pattern sources run in streamtest only for now", s.ID, s.Patterns[0])
		}
	}
	if cfg.cleanupDelay <= 0 {
		cfg.cleanupDelay = DefaultStateCleanupDelay
	}
	log := cfg.logger.With("app", cfg.appID)
	if err := cfg.checkTimeouts(log); err != nil {
		return nil, err
	}
	return &Runtime{cfg: cfg, topo: topo, subs: subs, log: log, owners: map[processor.TaskID]int{},
		threadStates: map[int]State{}, threadTasks: map[int][]processor.TaskID{}, failed: map[processor.TaskID]TaskFailure{},
		watch: newWatchdog(stallBound(cfg.sessionTimeout, cfg.txnTimeout))}, nil
}

// checkTimeouts reads the session timeout of the user's client options and
// checks the transaction timeout against it (see WithTransactionTimeout).
func (c *config) checkTimeouts(log *slog.Logger) error {
	if c.txnTimeout <= 0 {
		return fmt.Errorf("runtime: %w: transaction timeout %v: must be positive", ErrConfig, c.txnTimeout)
	}
	// A client that is never used reads the options as franz-go applies
	// them; it connects to nothing.
	cl, err := kgo.NewClient(c.clientOpts...)
	if err != nil {
		return fmt.Errorf("runtime: %w: client options: %w", ErrConfig, err)
	}
	c.sessionTimeout, _ = cl.OptValue(kgo.SessionTimeout).(time.Duration)
	cl.Close()
	if c.guarantee != ExactlyOnce || c.txnTimeout < c.sessionTimeout || c.allowTxnAboveSession {
		return nil
	}
	if c.txnTimeoutSet {
		return fmt.Errorf("runtime: %w: transaction timeout %v is not below the session timeout %v: a member stalled past its session "+
			"would keep its transaction open after its tasks moved, and hold up their next owner; lower WithTransactionTimeout "+
			"or raise kgo.SessionTimeout", ErrConfig, c.txnTimeout, c.sessionTimeout)
	}
	was := c.txnTimeout
	c.txnTimeout = c.sessionTimeout / 2
	log.Warn("runtime: the session timeout is at or below the default transaction timeout: lowered the transaction timeout to half the session timeout",
		"session_timeout", c.sessionTimeout, "transaction_timeout", c.txnTimeout, "default", was)
	return nil
}

// Run processes until ctx is cancelled, the process receives SIGTERM or
// SIGINT (unless WithoutSignalHandler), or a fatal error occurs. On cancel
// or signal it finishes the record in hand, commits, closes the stores and
// leaves the group, and returns nil. A fatal error is returned with its context
// (thread, task, topic, partition, offset).
//
// Run rides out transient faults by itself: a broker that restarts or is
// unreachable for a while, a lost connection, a producer fenced after a
// stall, a member the group forgot. The thread concerned aborts its
// transaction, drops its tasks' uncommitted state and rejoins the group,
// retrying with a backoff. Run returns an error only for what retrying
// cannot fix: ErrConfig, ErrMissingTopic, ErrCopartition, ErrChangelogConfig, ErrFenced,
// ErrUnrecoverable (authorization, unsupported or invalid requests). A
// record that fails with the Fail action stops its task only (see
// TaskFailure and Status), not Run.
func (r *Runtime) Run(ctx context.Context) (err error) {
	r.stateMu.Lock()
	if r.state != StateCreated {
		r.stateMu.Unlock()
		return fmt.Errorf("runtime: %w: Run called twice", ErrConfig)
	}
	r.setStateLocked(StateStarting, nil)
	r.stateMu.Unlock()
	defer func() {
		if err != nil {
			r.setState(StateFailed, err)
		} else {
			r.setState(StateStopped, nil)
		}
	}()
	if !r.cfg.noSignals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
		defer stop()
	}
	// A stop during start-up is a clean stop.
	stopped := func(err error) error {
		if ctx.Err() != nil {
			r.log.Info("runtime: stopped during start-up", "cause", err)
			return nil
		}
		return err
	}
	if err := os.MkdirAll(r.cfg.stateDir, 0o755); err != nil {
		return fmt.Errorf("runtime: state dir: %w", err)
	}
	brokers, stopBroker, err := r.brokers()
	if err != nil {
		return err
	}
	defer stopBroker()
	r.infoMu.Lock()
	r.addrs = brokers
	r.infoMu.Unlock()

	admCl, err := kgo.NewClient(r.clientOptsCreating(brokers, false)...)
	if err != nil {
		return fmt.Errorf("runtime: %w: admin client: %w", ErrConfig, err)
	}
	defer admCl.Close()
	var layout *layout
	for backoff := retryMin; ; backoff = min(2*backoff, retryMax) {
		layout, err = r.prepareTopics(ctx, kadm.NewClient(admCl))
		if err == nil || ctx.Err() != nil || classify(ctx, err) != errRetry {
			break
		}
		r.log.Warn("runtime: preparing topics failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
	if err != nil {
		return stopped(err)
	}

	engine, closeEngine, err := r.openEngine()
	if err != nil {
		return err
	}
	defer closeEngine()

	ms, err := newMetrics(r.cfg.meterProvider)
	if err != nil {
		return fmt.Errorf("runtime: metrics: %w", err)
	}
	defer ms.close()

	pid, err := processID(r.cfg.stateDir)
	if err != nil {
		return err
	}
	r.log.Info("runtime: starting", "brokers", strings.Join(brokers, ","), "guarantee", r.cfg.guarantee,
		"threads", r.cfg.threads, "state_dir", r.cfg.stateDir, "process_id", pid)

	g, gctx := errgroup.WithContext(ctx)
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go r.watch.run(wctx)
	for i := range r.cfg.threads {
		th := newThread(r, i, pid, brokers, layout, engine, ms)
		g.Go(func() error { return th.run(gctx) })
	}
	stopping := context.AfterFunc(gctx, func() { r.setState(StateStopping, nil) })
	defer stopping()
	err = g.Wait()
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	r.log.Info("runtime: stopped", "err", err)
	return err
}

// brokers returns the seed brokers, starting the embedded broker if none is
// configured.
func (r *Runtime) brokers() ([]string, func(), error) {
	if len(r.cfg.brokers) > 0 {
		return r.cfg.brokers, func() {}, nil
	}
	var env []string
	for _, a := range strings.Split(os.Getenv(BrokersEnv), ",") {
		if a = strings.TrimSpace(a); a != "" {
			env = append(env, a)
		}
	}
	if len(env) > 0 {
		return env, func() {}, nil
	}
	dir := filepath.Join(r.cfg.stateDir, "broker")
	// A development broker: topics are created on first use, with 4
	// partitions, so that a program runs with nothing set up.
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(dir), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(embeddedPartitions)}
	c, err := kfake.NewCluster(append(opts, kfake.Ports(r.cfg.embeddedPort))...)
	if err != nil && r.cfg.embeddedPort != 0 {
		r.log.Warn("runtime: embedded broker port in use, choosing another", "port", r.cfg.embeddedPort, "err", err)
		c, err = kfake.NewCluster(append(opts, kfake.Ports(0))...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: start embedded broker: %w", err)
	}
	addrs := c.ListenAddrs()
	reg, regURL, err := r.startRegistry()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	r.log.Info("runtime: no brokers configured (WithBrokers or "+BrokersEnv+"): started an embedded broker and schema registry",
		"addr", strings.Join(addrs, ","), "data_dir", dir, "registry", regURL,
		"connect", "kcat -b "+addrs[0]+" -L")
	r.embedded = true
	r.infoMu.Lock()
	r.registry = regURL
	r.infoMu.Unlock()
	return addrs, func() { reg.Close(); c.Close() }, nil
}

// clientOpts are the options of every client: the runtime's defaults for
// stream processing, then the user's.
func (r *Runtime) clientOpts(brokers []string) []kgo.Opt {
	return r.clientOptsCreating(brokers, r.embedded)
}

// clientOptsCreating is clientOpts, with topics created on first use only
// if autoCreate. The admin client never does: its metadata requests for
// the internal topics would create them with the broker's defaults
// (cleanup.policy=delete) before prepareTopics creates them with their own.
func (r *Runtime) clientOptsCreating(brokers []string, autoCreate bool) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("gregor-" + r.cfg.appID),
		kgo.ProducerLinger(5 * time.Millisecond),
		// After a broker restart or a lost connection, fresh metadata
		// within a second rather than franz-go's default 5 s.
		kgo.MetadataMinAge(time.Second),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.SnappyCompression(), kgo.NoCompression()),
	}
	opts = append(opts, r.cfg.clientHooks()...)
	if autoCreate {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	opts = append(opts, r.cfg.clientOpts...)
	// Placement is the runtime's: changelog records must reach their
	// task's partition, and keys must land where streamtest puts them.
	return append(opts, kgo.RecordPartitioner(partitioner{}))
}

func (r *Runtime) openEngine() (state.Engine, func(), error) {
	if r.cfg.memoryState {
		return memory.NewEngine(), func() {}, nil
	}
	e, err := pebble.Open(filepath.Join(r.cfg.stateDir, "state"), pebble.WithLogger(r.cfg.logger))
	if err != nil {
		return nil, nil, fmt.Errorf("runtime: open state: %w", err)
	}
	return e, func() {
		if err := e.Close(); err != nil {
			r.log.Error("runtime: close state", "err", err)
		}
	}, nil
}

// processID returns the id kept in dir, creating it on first use. It names
// the process's group members (static membership) and transactional ids,
// so a restarted process takes its predecessor's place at once.
func processID(dir string) (string, error) {
	path := filepath.Join(dir, "process-id")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("runtime: read process id: %w", err)
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("runtime: process id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("runtime: write process id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("runtime: write process id: %w", err)
	}
	return id, nil
}

// claim records thread as the one running id.
func (r *Runtime) claim(id processor.TaskID, thread int) {
	r.ownersMu.Lock()
	defer r.ownersMu.Unlock()
	r.owners[id] = thread
}

// running reports whether a thread of the process runs id.
func (r *Runtime) running(id processor.TaskID) bool {
	r.ownersMu.Lock()
	defer r.ownersMu.Unlock()
	_, ok := r.owners[id]
	return ok
}

func (r *Runtime) release(id processor.TaskID, thread int) {
	r.ownersMu.Lock()
	defer r.ownersMu.Unlock()
	if r.owners[id] == thread {
		delete(r.owners, id)
	}
}

// storesOf returns the store-partitions of a task.
func (r *Runtime) storesOf(id processor.TaskID) []state.StorePartition {
	var out []state.StorePartition
	for _, store := range r.subs[id.SubTopology].Stores {
		out = append(out, state.StorePartition{Store: store, Partition: id.Partition})
	}
	return out
}

// startRegistry serves an in-memory Confluent-compatible schema registry
// (franz-go's srfake) beside the embedded broker, on 127.0.0.1:8081 or, if
// taken, a free port. Its schemas do not survive the process.
func (r *Runtime) startRegistry() (io.Closer, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, "", fmt.Errorf("runtime: start embedded schema registry: %w", err)
	}
	srv := &http.Server{Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("runtime: embedded schema registry", "err", err)
		}
	}()
	return srv, "http://" + ln.Addr().String(), nil
}

// Brokers returns the seed brokers Run uses (the embedded broker's address
// if it started one), or nil before Run has chosen them.
func (r *Runtime) Brokers() []string {
	r.infoMu.Lock()
	defer r.infoMu.Unlock()
	return slices.Clone(r.addrs)
}

// SchemaRegistryURL returns the URL of the embedded schema registry, or ""
// if Run did not start one.
func (r *Runtime) SchemaRegistryURL() string {
	r.infoMu.Lock()
	defer r.infoMu.Unlock()
	return r.registry
}
