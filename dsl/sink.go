package dsl

import (
	"errors"
	"fmt"

	"github.com/gregorstream/gregor/processor"
)

var errNilFunc = errors.New("nil function")

func (s Stream[K, V]) needSerdes(op string) bool {
	ok := true
	if s.keys == nil {
		s.b.fail(op, fmt.Errorf("no key serde for %s; set one with WithSerdes", s.node))
		ok = false
	}
	if s.values == nil {
		s.b.fail(op, fmt.Errorf("no value serde for %s; set one with WithSerdes", s.node))
		ok = false
	}
	return ok
}

// To writes the stream to topic with the stream's serdes (see WithSerdes).
// Options: Named.
func (s Stream[K, V]) To(topic string, opts ...Option) {
	o := s.b.options("To", opts, optName)
	if !s.needSerdes("To") {
		return
	}
	s.b.topo.AddSink(s.b.newName(o, "KSTREAM-SINK"), topic, s.keys, s.values, s.node)
}

// ToFunc writes each record to the topic topicOf returns for it. Options: Named.
func (s Stream[K, V]) ToFunc(topicOf func(processor.Record[K, V]) string, opts ...Option) {
	o := s.b.options("ToFunc", opts, optName)
	if !s.needSerdes("ToFunc") {
		return
	}
	s.b.topo.AddSinkFunc(s.b.newName(o, "KSTREAM-SINK"), topicOf, s.keys, s.values, s.node)
}

// Repartition writes the stream through an internal topic,
// "<application id>-<name>-repartition", and reads it back, so that each
// record reaches the task of its current key's partition. The name is the
// Named option's or a generated one (see RequireNames). Options: Named,
// NumPartitions.
func (s Stream[K, V]) Repartition(opts ...Option) Stream[K, V] {
	o := s.b.options("Repartition", opts, optName|optPartitions)
	if o.name == "" && s.b.requireNames {
		s.b.fail("Repartition", fmt.Errorf("of %s: unnamed, and the builder requires names", s.node))
	}
	if !s.needSerdes("Repartition") {
		return s
	}
	return s.repartitionAs(s.b.newName(o, "KSTREAM-REPARTITION"), o.partitions)
}

// repartitionAs writes the stream through the internal topic
// "<base>-repartition" and reads it back.
func (s Stream[K, V]) repartitionAs(base string, partitions int) Stream[K, V] {
	topic := base + "-repartition"
	s.b.topo.AddInternalTopic(topic, int32(partitions))
	s.b.topo.AddSink(base+"-repartition-sink", topic, s.keys, s.values, s.node)
	src := base + "-repartition-source"
	s.b.topo.AddSource(src, s.keys, s.values, topic)
	return Stream[K, V]{b: s.b, node: src, keys: s.keys, values: s.values}
}
