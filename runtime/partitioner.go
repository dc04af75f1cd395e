package runtime

import (
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/internal/murmur2"
)

// partitioner keeps a partition the runtime chose (changelog records go to
// their task's partition, sinks may name one) and otherwise places keyed
// records as Kafka's default partitioner does (murmur2), the same placement
// as streamtest's; records without a key go to a random partition.
type partitioner struct{}

// choose marks a record whose partition the partitioner picks.
const choose = -1

func (partitioner) ForTopic(string) kgo.TopicPartitioner { return topicPartitioner{} }

type topicPartitioner struct{}

func (topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (topicPartitioner) Partition(r *kgo.Record, n int) int {
	switch {
	case r.Partition >= 0:
		return int(r.Partition)
	case r.Key != nil:
		return int(murmur2.Partition(r.Key, int32(n)))
	default:
		return rand.IntN(n)
	}
}
