package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
)

// ErrCopartition is returned by Run when the input topics of a
// sub-topology have different partition counts: its tasks could not be
// formed, since partition p of every input of a task must hold the same
// keys.
var ErrCopartition = errors.New("input topics are not co-partitioned")

// ErrMissingTopic is returned by Run when a source topic does not exist.
var ErrMissingTopic = errors.New("source topic does not exist")

// ErrChangelogConfig is returned by Run when an existing changelog topic has
// a cleanup.policy other than the one its store declares (see
// state.ChangelogConfig): a compacted key-value changelog with delete
// would lose keys, a window changelog without delete would grow forever.
// The message names the topic and says how to fix it.
var ErrChangelogConfig = errors.New("changelog topic has the wrong cleanup.policy")

// embeddedPartitions is the partition count of source topics the runtime
// creates on its embedded broker.
const embeddedPartitions = 4

// layout is the topics of a running topology, by Kafka name.
type layout struct {
	partitions map[string]int32 // every source, internal and changelog topic
	topicSub   map[string]int   // source topic -> its sub-topology
	subTopics  [][]string       // sub-topology -> its source topics
	tasks      []int32          // sub-topology -> its task count
	changelogs map[string]bool  // the changelog topics
}

// prepareTopics reads the partition counts of the source topics, sizes and
// creates the internal topics (repartition and changelog), and checks
// co-partitioning, before any member joins the group.
func (r *Runtime) prepareTopics(ctx context.Context, adm *kadm.Client) (*layout, error) {
	app := r.cfg.appID
	l := &layout{partitions: map[string]int32{}, topicSub: map[string]int{}, subTopics: make([][]string, len(r.subs)),
		tasks: make([]int32, len(r.subs)), changelogs: map[string]bool{}}
	internal := map[string]processor.InternalTopic{} // Kafka name -> declaration
	for _, it := range r.topo.InternalTopics() {
		internal[r.topo.TopicName(app, it.Name)] = it
	}
	var names []string
	for i, s := range r.subs {
		for _, t := range s.Topics {
			name := r.topo.TopicName(app, t)
			l.subTopics[i] = append(l.subTopics[i], name)
			l.topicSub[name] = i
			names = append(names, name)
		}
	}
	for name := range internal {
		names = append(names, name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("runtime: list topics: %w", err)
	}
	for _, name := range names {
		d, ok := existing[name]
		if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			if _, isInternal := internal[name]; isInternal {
				continue
			}
			if r.embedded {
				// A development broker: create the input topic, so that
				// a program runs with nothing set up.
				resp, err := adm.CreateTopic(ctx, embeddedPartitions, -1, nil, name)
				if err == nil {
					err = resp.Err
				}
				if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
					return nil, fmt.Errorf("runtime: create source topic %q on the embedded broker: %w", name, err)
				}
				r.log.Info("runtime: created a missing source topic on the embedded broker", "topic", name, "partitions", embeddedPartitions)
				l.partitions[name] = embeddedPartitions
				continue
			}
			return nil, fmt.Errorf("runtime: %q: %w (create it first; gregor creates only its internal topics)", name, ErrMissingTopic)
		}
		if d.Err != nil {
			return nil, fmt.Errorf("runtime: topic %q: %w", name, d.Err)
		}
		l.partitions[name] = int32(len(d.Partitions))
	}

	// Size the internal topics not yet in Kafka: a declared count, or the
	// largest input count of the sub-topologies that write to it.
	sized := map[string]int32{}
	for name, it := range internal {
		if _, ok := l.partitions[name]; !ok && it.Partitions > 0 {
			sized[name] = it.Partitions
		}
	}
	count := func(name string) (int32, bool) {
		if n, ok := l.partitions[name]; ok {
			return n, true
		}
		n, ok := sized[name]
		return n, ok
	}
	for range len(r.subs) + 1 {
		changed := false
		for name, it := range internal {
			if _, ok := count(name); ok {
				continue
			}
			n, known := int32(0), true
			for i, s := range r.subs {
				if !slices.Contains(s.SinkTopics, it.Name) {
					continue
				}
				for _, in := range l.subTopics[i] {
					c, ok := count(in)
					known = known && ok
					n = max(n, c)
				}
			}
			if known && n > 0 {
				sized[name] = n
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for name := range internal {
		if _, ok := count(name); !ok {
			return nil, fmt.Errorf("runtime: cannot size internal topic %q: no sub-topology with sized inputs writes to it", name)
		}
	}

	// Co-partitioning: every input of a sub-topology has the same count.
	var problems []string
	for i, topics := range l.subTopics {
		counts := map[int32][]string{}
		for _, name := range topics {
			n, _ := count(name)
			counts[n] = append(counts[n], name)
			l.tasks[i] = max(l.tasks[i], n)
		}
		if len(counts) > 1 {
			var parts []string
			for _, name := range topics {
				n, _ := count(name)
				parts = append(parts, fmt.Sprintf("%s (%d partitions)", name, n))
			}
			problems = append(problems, fmt.Sprintf("sub-topology %d reads %s", i, strings.Join(parts, ", ")))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("runtime: %w: %s; repartition the topics to equal partition counts", ErrCopartition, strings.Join(problems, "; "))
	}

	// Changelog topics: one partition per task of the sub-topology, with
	// the configuration their store declares.
	changelogs := map[string]int32{}
	configs := map[string]map[string]string{}
	for i := range r.subs {
		for _, store := range r.loggedStores(i) {
			name := state.ChangelogTopic(app, store)
			b, _ := r.topo.StoreBuilder(store)
			changelogs[name] = l.tasks[i]
			configs[name] = state.ChangelogConfig(b)
			l.changelogs[name] = true
		}
	}
	var clNames []string
	for name := range changelogs {
		clNames = append(clNames, name)
	}
	sort.Strings(clNames)
	clExisting, err := adm.ListTopics(ctx, clNames...)
	if err != nil {
		return nil, fmt.Errorf("runtime: list changelog topics: %w", err)
	}
	create := func(name string, n int32, configs map[string]string) error {
		kc := make(map[string]*string, len(configs))
		for k, v := range configs {
			kc[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, n, -1, kc, name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists): // another instance created it
		case err != nil:
			return fmt.Errorf("runtime: create topic %q with %d partitions: %w", name, n, err)
		default:
			r.log.Info("runtime: created internal topic", "topic", name, "partitions", n, "config", configs)
		}
		return nil
	}
	var present []string
	for _, name := range clNames {
		want := changelogs[name]
		if d, ok := clExisting[name]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != want {
				return nil, fmt.Errorf("runtime: changelog topic %q has %d partitions, its sub-topology has %d tasks", name, got, want)
			}
			present = append(present, name)
		} else if err := create(name, want, configs[name]); err != nil {
			return nil, err
		}
		l.partitions[name] = want
	}
	if err := r.checkChangelogConfigs(ctx, adm, present, configs); err != nil {
		return nil, err
	}
	var inNames []string
	for name := range sized {
		inNames = append(inNames, name)
	}
	sort.Strings(inNames)
	for _, name := range inNames {
		if err := create(name, sized[name], map[string]string{"cleanup.policy": "delete"}); err != nil {
			return nil, err
		}
		l.partitions[name] = sized[name]
	}
	return l, nil
}

// checkChangelogConfigs describes the configuration of the changelog topics
// that already exist and refuses, with ErrChangelogConfig, those whose
// cleanup.policy differs from their store's. A retention.ms shorter than
// the store's is a warning: restore may miss windows the store still keeps.
func (r *Runtime) checkChangelogConfigs(ctx context.Context, adm *kadm.Client, names []string, want map[string]map[string]string) error {
	if len(names) == 0 {
		return nil
	}
	described, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("runtime: describe changelog topic configs: %w", err)
	}
	var errs []error
	for _, rc := range described {
		w, ok := want[rc.Name]
		if !ok {
			continue
		}
		if rc.Err != nil {
			return fmt.Errorf("runtime: describe config of changelog topic %q: %w", rc.Name, rc.Err)
		}
		found := map[string]string{}
		for _, c := range rc.Configs {
			found[c.Key] = c.MaybeValue()
		}
		if err := checkChangelogConfig(rc.Name, found, w); err != nil {
			errs = append(errs, err)
		}
		if gotMS, wantMS, short := shortRetention(found, w); short {
			r.log.Warn("runtime: changelog topic keeps records for less time than its store: a restore may miss what the store still holds",
				"topic", rc.Name, "retention.ms", gotMS, "want_retention.ms", wantMS)
		}
	}
	return errors.Join(errs...)
}

// checkChangelogConfig compares the cleanup.policy of a changelog topic
// with its store's, as sets ("compact,delete" is "delete,compact").
func checkChangelogConfig(topic string, found, want map[string]string) error {
	w := policySet(want["cleanup.policy"])
	if w == "" {
		return nil
	}
	if f := policySet(found["cleanup.policy"]); f != w {
		return fmt.Errorf("runtime: %q has cleanup.policy=%q, its store needs %q: %w (fix it with "+
			"`kafka-configs --bootstrap-server <broker> --alter --entity-type topics --entity-name %s --add-config cleanup.policy=[%s]`, "+
			"or delete the topic to have it created again: the store then restores from the new, empty changelog, so its state is lost unless the input is reprocessed)",
			topic, found["cleanup.policy"], want["cleanup.policy"], ErrChangelogConfig, topic, w)
	}
	return nil
}

// policySet returns a cleanup.policy list sorted and without duplicates or
// blanks, so that two lists compare as sets.
func policySet(p string) string {
	var parts []string
	for _, s := range strings.Split(p, ",") {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}

// shortRetention reports whether a topic's retention.ms is shorter than
// the one wanted (-1, keep forever, is never shorter).
func shortRetention(found, want map[string]string) (got, wanted int64, short bool) {
	w, err := strconv.ParseInt(want["retention.ms"], 10, 64)
	if err != nil || w < 0 {
		return 0, 0, false
	}
	g, err := strconv.ParseInt(found["retention.ms"], 10, 64)
	if err != nil || g < 0 {
		return 0, 0, false
	}
	return g, w, g < w
}
