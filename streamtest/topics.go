package streamtest

import (
	"fmt"
	"maps"
	"time"

	"github.com/gregorstream/gregor/internal/murmur2"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
)

// topic is an in-memory Kafka topic: a log per partition, plus the order in
// which records were appended across partitions so that tests read them back
// in that order.
type topic struct {
	name     string
	parts    []*partLog
	captured bool  // written by a sink: kept until the test reads it
	rr       int32 // next partition for a null key
	// conflict is set when two sub-topologies would read the topic (a
	// pattern matching a topic another source reads): Kafka Streams refuses
	// that, and so does every write to it here.
	conflict error
}

type partLog struct {
	base int64 // offset of recs[0]
	recs []processor.RawRecord
	seqs []uint64           // append sequence of each record, across the driver
	read int64              // next offset the test reads
	cons map[*taskRun]int64 // next offset each consuming task fetches
}

func (p *partLog) end() int64 { return p.base + int64(len(p.recs)) }

func (p *partLog) at(off int64) (processor.RawRecord, uint64) {
	i := off - p.base
	return p.recs[i], p.seqs[i]
}

// trim drops records that every reader is past, once they are half the log:
// the tasks that consume the topic and, for a topic written by a sink, the test.
func (t *topic) trim(p *partLog) {
	keep := p.end()
	for _, off := range p.cons {
		keep = min(keep, off)
	}
	if t.captured && p.read < keep {
		keep = p.read
	}
	drop := int(keep - p.base)
	if drop <= 0 || drop < len(p.recs)/2 {
		return
	}
	n := copy(p.recs, p.recs[drop:])
	clear(p.recs[n:])
	p.recs = p.recs[:n]
	p.seqs = p.seqs[:copy(p.seqs, p.seqs[drop:])]
	p.base = keep
}

func (d *Driver) topic(name string) *topic {
	if t, ok := d.topics[name]; ok {
		return t
	}
	n := d.partitionsOf(name)
	t := &topic{name: name, parts: make([]*partLog, n)}
	for i := range t.parts {
		t.parts[i] = &partLog{cons: map[*taskRun]int64{}}
	}
	var readers []int
	for i := range d.subs {
		if d.reads(&d.subs[i], name) {
			readers = append(readers, d.subs[i].ID)
		}
	}
	if len(readers) > 1 {
		t.conflict = fmt.Errorf("streamtest: topic %q is read by sub-topologies %v: a pattern matches a topic another source reads", name, readers)
	}
	d.topics[name] = t
	d.order = append(d.order, t)
	return t
}

// append adds a record to a partition of t, -1 choosing by key as Kafka's
// default partitioner does (murmur2; round robin for a null key).
func (d *Driver) append(t *topic, partition int32, rec processor.RawRecord) (processor.Origin, error) {
	n := int32(len(t.parts))
	switch {
	case partition >= n:
		return processor.Origin{}, &PartitionError{Topic: t.name, Partition: partition, Partitions: n}
	case partition >= 0:
	case rec.Key == nil:
		partition = t.rr % n
		t.rr++
	default:
		partition = murmur2.Partition(rec.Key, n)
	}
	p := t.parts[partition]
	if !rec.Timestamp.IsZero() {
		rec.Timestamp = rec.Timestamp.Truncate(time.Millisecond)
	}
	rec.Origin = processor.Origin{Topic: t.name, Partition: partition, Offset: p.end()}
	p.recs = append(p.recs, rec)
	d.seq++
	p.seqs = append(p.seqs, d.seq)
	return rec.Origin, nil
}

// next returns the earliest-appended unread record of t, for test readers.
func (t *topic) next(consume bool) (processor.RawRecord, bool) {
	var best *partLog
	var bestSeq uint64
	for _, p := range t.parts {
		if p.read < p.base {
			p.read = p.base
		}
		if p.read >= p.end() {
			continue
		}
		if _, seq := p.at(p.read); best == nil || seq < bestSeq {
			best, bestSeq = p, seq
		}
	}
	if best == nil {
		return processor.RawRecord{}, false
	}
	rec, _ := best.at(best.read)
	if consume {
		best.read++
		t.trim(best)
	}
	return rec, true
}

func (t *topic) unread() int {
	n := 0
	for _, p := range t.parts {
		if p.read < p.end() {
			n += int(p.end() - max(p.read, p.base))
		}
	}
	return n
}

// describeInternalTopics records the configuration of the internal topics
// as the runtime creates them: each changelog with its store's
// (state.ChangelogConfig) and one partition per task of its sub-topology,
// each repartition topic with cleanup.policy=delete.
func (d *Driver) describeInternalTopics() {
	d.configs = map[string]map[string]string{}
	for _, it := range d.topo.InternalTopics() {
		d.configs[d.topo.TopicName(d.cfg.appID, it.Name)] = map[string]string{"cleanup.policy": "delete"}
	}
	for i := range d.subs {
		sub := &d.subs[i]
		for _, store := range sub.Stores {
			b, _ := d.topo.StoreBuilder(store)
			if !state.Logged(b) {
				continue
			}
			name := state.ChangelogTopic(d.cfg.appID, store)
			d.configs[name] = state.ChangelogConfig(b)
			if _, set := d.cfg.perTopic[name]; !set {
				d.cfg.perTopic[name] = d.taskCount(sub)
			}
		}
	}
}

// TopicConfig returns the topic configuration the runtime gives an internal
// topic (its name in Kafka): a changelog's is its store's, for instance
// {"cleanup.policy": "compact"}. It returns nil for a topic the topology
// does not create, such as a source or an output topic.
func (d *Driver) TopicConfig(name string) map[string]string {
	return maps.Clone(d.configs[name])
}
