package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
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

	// Changelog topics: one partition per task of the sub-topology.
	changelogs := map[string]int32{}
	for i := range r.subs {
		for _, store := range r.loggedStores(i) {
			changelogs[state.ChangelogTopic(app, store)] = l.tasks[i]
			l.changelogs[state.ChangelogTopic(app, store)] = true
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
	create := func(name string, n int32, configs map[string]*string) error {
		resp, err := adm.CreateTopic(ctx, n, -1, configs, name)
		if err == nil {
			err = resp.Err
		}
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists): // another instance created it
		case err != nil:
			return fmt.Errorf("runtime: create topic %q with %d partitions: %w", name, n, err)
		default:
			r.log.Info("runtime: created internal topic", "topic", name, "partitions", n)
		}
		return nil
	}
	for _, name := range clNames {
		want := changelogs[name]
		if d, ok := clExisting[name]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != want {
				return nil, fmt.Errorf("runtime: changelog topic %q has %d partitions, its sub-topology has %d tasks", name, got, want)
			}
		} else if err := create(name, want, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}); err != nil {
			return nil, err
		}
		l.partitions[name] = want
	}
	var inNames []string
	for name := range sized {
		inNames = append(inNames, name)
	}
	sort.Strings(inNames)
	for _, name := range inNames {
		if err := create(name, sized[name], map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}); err != nil {
			return nil, err
		}
		l.partitions[name] = sized[name]
	}
	return l, nil
}
