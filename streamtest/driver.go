// Package streamtest runs a topology in memory, with no broker, the way Kafka
// Streams' TopologyTestDriver does, through the same task engine the Kafka
// runtime uses.
//
// Unlike TopologyTestDriver it is multi-partition: a topic may have several
// partitions, records land on the partition Kafka's default partitioner would
// give their key (murmur2 of the key bytes), every (sub-topology, partition)
// is its own task, and repartition topics carry records between tasks in
// memory. One partition per topic is the default.
//
// Piping a record processes it, and everything it causes downstream, before
// the call returns. Batch pipes several records, possibly to several topics,
// before any is processed, so that a task sees them all and picks them in
// timestamp order as it would on Kafka.
package streamtest

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
)

// DefaultStartTime is where the driver's wall clock starts unless StartTime
// says otherwise: a fixed instant, so tests are reproducible.
var DefaultStartTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// maxRounds bounds the rounds of one run: a topology whose sub-topologies
// feed each other forever is reported instead of looping.
const maxRounds = 100_000

// Driver runs a topology in memory. It is not safe for concurrent use.
type Driver struct {
	topo    *processor.Topology
	cfg     config
	subs    []processor.SubTopology
	topics  map[string]*topic
	order   []*topic   // topics by creation
	tasks   []*taskRun // by sub-topology, then partition
	clock   time.Time
	seq     uint64
	holding int
	closed  bool
	cleanup func() error
	// ends holds, for each partition written since the last commit, the
	// offset after its last record: the changelog offsets a commit reaches.
	ends      map[task.TopicPartition]int64
	processed int  // records processed since the last commit
	dirty     bool // punctuation ran since the last commit
	// configs holds the topic configuration of the internal topics, by
	// name in Kafka, as the runtime would create them.
	configs map[string]map[string]string
}

type taskRun struct {
	t      *task.Task
	sub    *processor.SubTopology
	part   int32
	inputs []*topic // input topics known so far
	known  int      // len(Driver.order) when inputs were last looked for
}

// Option configures a Driver.
type Option func(*config)

type config struct {
	appID      string
	partitions int32
	perTopic   map[string]int32
	start      time.Time
	engine     state.Engine
	pebble     bool
	every      int
}

// ApplicationID sets the application id, the prefix of internal topic names.
// The default is "streamtest".
func ApplicationID(id string) Option { return func(c *config) { c.appID = id } }

// Partitions sets the partition count of every topic not set by
// TopicPartitions. The default is 1.
func Partitions(n int) Option { return func(c *config) { c.partitions = int32(n) } }

// TopicPartitions sets the partition count of one topic (its name in Kafka,
// "<application id>-<name>" for an internal topic).
func TopicPartitions(topic string, n int) Option {
	return func(c *config) { c.perTopic[topic] = int32(n) }
}

// StartTime sets where the wall clock starts. The default is DefaultStartTime.
func StartTime(t time.Time) Option { return func(c *config) { c.start = t } }

// Pebble keeps the stores on pebble, in a temporary directory removed by
// Close, instead of in memory: the same engine a worker runs.
func Pebble() Option { return func(c *config) { c.pebble = true } }

// Engine keeps the stores in the given engine, which the driver does not
// close.
func Engine(e state.Engine) Option { return func(c *config) { c.engine = e } }

// CommitEvery commits once n records have been processed since the last
// commit, the way a worker commits at an interval, so that record caches
// coalesce updates across records. Close and Commit commit whatever is left.
// By default (n = 0) the driver commits after each pipe, once everything it
// caused is processed, as Kafka Streams' TopologyTestDriver does.
func CommitEvery(n int) Option { return func(c *config) { c.every = n } }

// New starts a driver over a valid topology: it creates every task and
// initializes its processors.
func New(topo *processor.Topology, opts ...Option) (*Driver, error) {
	cfg := config{appID: "streamtest", partitions: 1, perTopic: map[string]int32{}, start: DefaultStartTime}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.partitions < 1 {
		return nil, fmt.Errorf("streamtest: Partitions(%d): want at least 1", cfg.partitions)
	}
	for tp, n := range cfg.perTopic {
		if n < 1 {
			return nil, fmt.Errorf("streamtest: TopicPartitions(%q, %d): want at least 1", tp, n)
		}
	}
	if topo == nil {
		return nil, errors.New("streamtest: nil topology")
	}
	var cleanup func() error
	switch {
	case cfg.engine != nil:
	case cfg.pebble:
		dir, err := os.MkdirTemp("", "streamtest-pebble-")
		if err != nil {
			return nil, fmt.Errorf("streamtest: %w", err)
		}
		e, err := pebble.Open(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("streamtest: %w", err)
		}
		cfg.engine = e
		cleanup = func() error { return errors.Join(e.Close(), os.RemoveAll(dir)) }
	default:
		cfg.engine = memory.NewEngine()
		cleanup = cfg.engine.Close
	}
	subs, err := topo.SubTopologies()
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, fmt.Errorf("streamtest: %w", err)
	}
	d := &Driver{topo: topo, cfg: cfg, subs: subs, topics: map[string]*topic{}, clock: cfg.start,
		cleanup: cleanup, ends: map[task.TopicPartition]int64{}}
	if err := d.sizeInternalTopics(); err != nil {
		return nil, err
	}
	d.describeInternalTopics()
	for i := range d.subs {
		sub := &d.subs[i]
		for p := range d.taskCount(sub) {
			t, err := task.New(task.Config{
				ApplicationID: cfg.appID,
				Topology:      topo,
				ID:            processor.TaskID{SubTopology: sub.ID, Partition: p},
				Collector:     collector{d},
				Clock:         func() time.Time { return d.clock },
				Engine:        cfg.engine,
			})
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("streamtest: %w", err)
			}
			d.tasks = append(d.tasks, &taskRun{t: t, sub: sub, part: p})
			if err := t.Init(); err != nil {
				d.Close()
				return nil, fmt.Errorf("streamtest: %w", err)
			}
		}
	}
	return d, nil
}

// sizeInternalTopics gives each internal topic without a partition count
// the largest partition count among the inputs of the sub-topologies that
// write to it, as Kafka Streams does.
func (d *Driver) sizeInternalTopics() error {
	for _, it := range d.topo.InternalTopics() {
		name := d.topo.TopicName(d.cfg.appID, it.Name)
		if _, set := d.cfg.perTopic[name]; set {
			continue
		}
		if it.Partitions > 0 {
			d.cfg.perTopic[name] = it.Partitions
		}
	}
	for range len(d.subs) + 1 { // a chain of n sub-topologies settles in n passes
		changed := false
		for _, it := range d.topo.InternalTopics() {
			name := d.topo.TopicName(d.cfg.appID, it.Name)
			if _, set := d.cfg.perTopic[name]; set {
				continue
			}
			n, known := int32(0), true
			for i := range d.subs {
				if slices.Contains(d.subs[i].SinkTopics, it.Name) {
					c, ok := d.inputPartitions(&d.subs[i])
					known = known && ok
					n = max(n, c)
				}
			}
			if known && n > 0 {
				d.cfg.perTopic[name] = n
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for _, it := range d.topo.InternalTopics() {
		name := d.topo.TopicName(d.cfg.appID, it.Name)
		if _, set := d.cfg.perTopic[name]; !set {
			d.cfg.perTopic[name] = d.cfg.partitions
		}
	}
	return nil
}

// inputPartitions is the largest partition count of sub's input topics;
// false if one is an internal topic not yet sized.
func (d *Driver) inputPartitions(sub *processor.SubTopology) (int32, bool) {
	n := int32(0)
	for _, tp := range sub.Topics {
		name := d.topo.TopicName(d.cfg.appID, tp)
		c, ok := d.cfg.perTopic[name]
		if !ok {
			if name != tp { // internal, not sized yet
				return 0, false
			}
			c = d.cfg.partitions
		}
		n = max(n, c)
	}
	for _, p := range sub.Patterns {
		n = max(n, d.patternPartitions(p))
	}
	return n, true
}

func (d *Driver) patternPartitions(p *regexp.Regexp) int32 {
	n := d.cfg.partitions
	for tp, c := range d.cfg.perTopic {
		if p.MatchString(tp) {
			n = max(n, c)
		}
	}
	return n
}

func (d *Driver) taskCount(sub *processor.SubTopology) int32 {
	n, _ := d.inputPartitions(sub)
	return max(n, 1)
}

func (d *Driver) partitionsOf(name string) int32 {
	if n, ok := d.cfg.perTopic[name]; ok {
		return n
	}
	return d.cfg.partitions
}

// reads reports whether sub reads topic (its name in Kafka).
func (d *Driver) reads(sub *processor.SubTopology, name string) bool {
	for _, tp := range sub.Topics {
		if d.topo.TopicName(d.cfg.appID, tp) == name {
			return true
		}
	}
	for _, p := range sub.Patterns {
		if p.MatchString(name) {
			return true
		}
	}
	return false
}

// Batch runs fn, which pipes records, and processes them only when it
// returns, so that tasks choose among all of them by timestamp. Errors of
// pipes inside fn are reported there; Batch returns the processing error.
func (d *Driver) Batch(fn func()) error {
	d.holding++
	fn()
	d.holding--
	return d.run()
}

// run processes until no task has anything left to do, committing as
// CommitEvery says.
func (d *Driver) run() error {
	if d.holding > 0 {
		return nil
	}
	if d.closed {
		return ErrClosed
	}
	for range maxRounds {
		progressed := false
		for _, tr := range d.tasks {
			if err := d.fetch(tr); err != nil {
				return err
			}
			if tr.t.Buffered() == 0 {
				continue
			}
			progressed = true
			n, err := tr.t.Process(tr.t.Buffered())
			d.processed += n
			if err != nil {
				return err
			}
			if tr.t.CommitRequested() || (d.cfg.every > 0 && d.processed >= d.cfg.every) {
				if err := d.commit(); err != nil {
					return err
				}
			}
		}
		if progressed {
			continue
		}
		if d.cfg.every > 0 || (d.processed == 0 && !d.dirty) {
			return nil
		}
		// A commit flushes record caches, which may feed other tasks.
		if err := d.commit(); err != nil {
			return err
		}
	}
	return fmt.Errorf("streamtest: still processing after %d rounds: do sub-topologies feed each other in a loop?", maxRounds)
}

// fetch hands a task the records appended to its input partitions since
// the last fetch.
func (d *Driver) fetch(tr *taskRun) error {
	for ; tr.known < len(d.order); tr.known++ {
		if t := d.order[tr.known]; t.conflict == nil && d.reads(tr.sub, t.name) {
			tr.inputs = append(tr.inputs, t)
		}
	}
	for _, t := range tr.inputs {
		if int(tr.part) >= len(t.parts) {
			continue
		}
		p := t.parts[tr.part]
		from, ok := p.cons[tr]
		if !ok {
			from = p.base
		}
		if from >= p.end() {
			p.cons[tr] = from
			continue
		}
		recs := p.recs[from-p.base:]
		if err := tr.t.Add(task.TopicPartition{Topic: t.name, Partition: tr.part}, recs...); err != nil {
			return fmt.Errorf("streamtest: %w", err)
		}
		p.cons[tr] = p.end()
		t.trim(p)
	}
	return nil
}

// commit commits every task, as a worker would at its commit interval: all
// flush their caches first, then all apply their batches with the
// changelog offsets reached.
func (d *Driver) commit() error {
	d.processed, d.dirty = 0, false
	for _, tr := range d.tasks {
		if err := tr.t.PrepareCommit(nil); err != nil {
			return err
		}
	}
	for _, tr := range d.tasks {
		if err := tr.t.CompleteCommit(d.ends); err != nil {
			return err
		}
	}
	clear(d.ends)
	return nil
}

// Commit commits every task now and processes what the flushed record
// caches forwarded, committing again until a commit causes nothing more:
// every stage of a repartitioned topology is flushed.
func (d *Driver) Commit() error {
	if d.closed {
		return ErrClosed
	}
	return d.commitAll()
}

func (d *Driver) commitAll() error {
	for range maxRounds {
		if err := d.commit(); err != nil {
			return err
		}
		if err := d.run(); err != nil {
			return err
		}
		if d.processed == 0 && !d.dirty {
			return nil
		}
	}
	return fmt.Errorf("streamtest: commits still cause processing after %d rounds", maxRounds)
}

// Dropped counts the records processors dropped, by reason, across tasks.
func (d *Driver) Dropped() map[string]int64 {
	out := map[string]int64{}
	for _, tr := range d.tasks {
		for reason, n := range tr.t.Dropped() {
			out[reason] += n
		}
	}
	return out
}

// Late counts the records processors dropped as too late for their windows
// (after window end plus grace), by operator, across tasks.
func (d *Driver) Late() map[string]int64 {
	out := map[string]int64{}
	for _, tr := range d.tasks {
		for node, n := range tr.t.Late() {
			out[node] += n
		}
	}
	return out
}

// AdvanceWallClock moves the wall clock forward by by, fires the wall-clock
// punctuation that falls due, and processes what it produced.
func (d *Driver) AdvanceWallClock(by time.Duration) error {
	if d.closed {
		return ErrClosed
	}
	if by < 0 {
		return fmt.Errorf("streamtest: advance wall clock by %v: negative", by)
	}
	d.clock = d.clock.Add(by)
	d.dirty = true
	for _, tr := range d.tasks {
		if err := tr.t.Punctuate(d.clock); err != nil {
			return err
		}
	}
	return d.run()
}

// WallClock returns the driver's wall-clock time.
func (d *Driver) WallClock() time.Time { return d.clock }

// Tasks returns the ids of the driver's tasks.
func (d *Driver) Tasks() []processor.TaskID {
	out := make([]processor.TaskID, len(d.tasks))
	for i, tr := range d.tasks {
		out[i] = tr.t.ID()
	}
	return out
}

// Store returns a task's instance of a store: the one of the given partition
// of the sub-topology the store belongs to.
func (d *Driver) Store(name string, partition int) (state.Store, error) {
	for _, tr := range d.tasks {
		if int(tr.part) == partition {
			if s, ok := tr.t.Store(name); ok {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("streamtest: no store %q for partition %d", name, partition)
}

// Close commits what is pending, then closes every task, its processors
// and stores, and the driver's own engine.
func (d *Driver) Close() error {
	if d.closed {
		return nil
	}
	var errs []error
	if len(d.tasks) > 0 {
		errs = append(errs, d.commitAll())
	}
	d.closed = true
	for _, tr := range d.tasks {
		errs = append(errs, tr.t.Close())
	}
	if d.cleanup != nil {
		errs = append(errs, d.cleanup())
	}
	return errors.Join(errs...)
}

type collector struct{ d *Driver }

func (c collector) Send(topic string, partition int32, rec processor.RawRecord) error {
	t := c.d.topic(topic)
	if t.conflict != nil {
		return t.conflict
	}
	t.captured = true
	o, err := c.d.append(t, partition, rec)
	if err == nil {
		c.d.ends[task.TopicPartition{Topic: topic, Partition: o.Partition}] = o.Offset + 1
	}
	return err
}
