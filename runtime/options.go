package runtime

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Guarantee is a processing guarantee.
type Guarantee int

const (
	// ExactlyOnce commits outputs, changelog writes and input offsets in one
	// Kafka transaction per commit interval: a record's effects are seen by
	// read_committed readers once, whatever crashes. The default.
	ExactlyOnce Guarantee = iota
	// AtLeastOnce produces outputs as they come and commits input offsets
	// once they are written: after a crash, the records since the last
	// commit are processed again.
	AtLeastOnce
)

func (g Guarantee) String() string {
	if g == AtLeastOnce {
		return "at-least-once"
	}
	return "exactly-once"
}

// Default commit intervals, as Kafka Streams has them.
const (
	DefaultCommitIntervalExactlyOnce = 100 * time.Millisecond
	DefaultCommitIntervalAtLeastOnce = 30 * time.Second
)

// BrokersEnv is the environment variable read for the brokers when no
// WithBrokers option is given: a comma-separated list of host:port.
const BrokersEnv = "GREGOR_BROKERS"

// Option configures a Runtime.
type Option func(*config)

type config struct {
	appID          string
	brokers        []string
	stateDir       string
	guarantee      Guarantee
	commitInterval time.Duration
	threads        int
	clientOpts     []kgo.Opt
	logger         *slog.Logger
	embeddedPort   int
	endpoint       string
	maxPoll        int
	restoreBatch   int
	memoryState    bool
	txnTimeout     time.Duration
	noSignals      bool
	cleanupDelay   time.Duration
	meterProvider  metric.MeterProvider
	tracerProvider trace.TracerProvider
	onDeserialize  ErrorHandler
	onProcess      ErrorHandler
	onProduce      ErrorHandler
	// dynamicMembership turns static membership off.
	dynamicMembership bool
	// txnTimeoutSet: WithTransactionTimeout was given.
	txnTimeoutSet bool
	// sessionTimeout is the group session timeout of the clients (set
	// with kgo.SessionTimeout in WithClientOptions), read by New.
	sessionTimeout time.Duration
	// allowTxnAboveSession lets tests run a transaction timeout at or
	// above the session timeout, which New otherwise refuses.
	allowTxnAboveSession bool
	listener             func(State, Status)
}

// WithApplicationID sets the application id: the consumer group, the
// prefix of internal topics and of transactional ids. Required.
func WithApplicationID(id string) Option { return func(c *config) { c.appID = id } }

// WithBrokers sets the seed brokers. Without it, the GREGOR_BROKERS
// environment variable is read; without both, Run starts an embedded
// broker (see WithEmbeddedBrokerPort).
func WithBrokers(addrs ...string) Option { return func(c *config) { c.brokers = addrs } }

// WithStateDir sets the directory of local state: the pebble DB of every
// store, the process id, and the embedded broker's data. The default is
// "<os temp dir>/gregor/<application id>".
func WithStateDir(dir string) Option { return func(c *config) { c.stateDir = dir } }

// WithGuarantee sets the processing guarantee; the default is ExactlyOnce.
func WithGuarantee(g Guarantee) Option { return func(c *config) { c.guarantee = g } }

// WithCommitInterval sets how often tasks commit. The default is 100 ms
// with ExactlyOnce and 30 s with AtLeastOnce, as in Kafka Streams.
func WithCommitInterval(d time.Duration) Option { return func(c *config) { c.commitInterval = d } }

// WithNumStreamThreads sets the number of processing threads, each a group
// member with its own client; the default is 1.
func WithNumStreamThreads(n int) Option { return func(c *config) { c.threads = n } }

// WithClientOptions passes options to every franz-go client the runtime
// creates (TLS, SASL, compression, linger, batch and fetch sizes...). They
// come after the runtime's own, so they override its defaults; options
// the runtime owns (group, transactional id, balancers, consumed topics,
// isolation level, partitioner) are set again after them.
//
// The defaults: lz4 compression (snappy and none as fallbacks for old
// brokers), a 5 ms linger, a metadata minimum age of 1 s (so that a client
// sees a restarted broker soon), franz-go's defaults otherwise.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.clientOpts = append(c.clientOpts, opts...) }
}

// WithLogger sets the logger; the default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithEmbeddedBrokerPort sets the port the embedded broker listens on, on
// 127.0.0.1, when no broker is configured; 0 picks a free port. The
// default is 9092.
func WithEmbeddedBrokerPort(port int) Option { return func(c *config) { c.embeddedPort = port } }

// WithEndpoint sets the host:port this instance advertises to the group,
// for interactive queries.
func WithEndpoint(hostPort string) Option { return func(c *config) { c.endpoint = hostPort } }

// WithMemoryState keeps state in memory instead of pebble: nothing survives
// the process, and every start restores from the changelogs.
func WithMemoryState() Option { return func(c *config) { c.memoryState = true } }

// WithDynamicMembership turns static group membership off. By default each
// thread is a static member named after the process id kept in the state
// directory: a restarted process takes its place back at once, without a
// rebalance, but a process that stops for good holds its tasks until the
// session timeout. Dynamic members leave the group when they stop.
func WithDynamicMembership() Option { return func(c *config) { c.dynamicMembership = true } }

// WithTransactionTimeout sets the transaction timeout of ExactlyOnce
// producers; the default is 10 s, as in Kafka Streams. A crashed or
// stalled producer's open transaction holds read_committed readers of its
// partitions (and the restore of its tasks elsewhere) for up to this long,
// unless the same process restarts first and aborts it.
//
// It must be below the group session timeout (kgo.SessionTimeout through
// WithClientOptions; 45 s by default), so that the broker aborts a stalled
// member's transaction before the group gives its tasks to another
// member: New refuses a transaction timeout at or above it. When the
// transaction timeout is not set and a lowered session timeout is at or
// below the default 10 s, New lowers the transaction timeout to half the
// session timeout, and logs it.
func WithTransactionTimeout(d time.Duration) Option {
	return func(c *config) { c.txnTimeout, c.txnTimeoutSet = d, true }
}

// WithoutSignalHandler stops Run from handling SIGTERM and SIGINT itself;
// cancel Run's context to stop it.
func WithoutSignalHandler() Option { return func(c *config) { c.noSignals = true } }

// DefaultStateCleanupDelay is how long the local state of a task that moved
// to another instance is kept, as Kafka Streams' state.cleanup.delay.ms.
const DefaultStateCleanupDelay = 10 * time.Minute

// WithStateCleanupDelay sets how long the local state of a task that moved
// away is kept: if the task comes back within it, only the changelog's tail
// is restored; after it, the state is deleted. The default is
// DefaultStateCleanupDelay.
func WithStateCleanupDelay(d time.Duration) Option { return func(c *config) { c.cleanupDelay = d } }
