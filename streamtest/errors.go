package streamtest

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by a driver, or its topics, after Close.
	ErrClosed = errors.New("streamtest: driver closed")
	// ErrNoRecord is returned by an output topic's Read methods when it has
	// no unread record.
	ErrNoRecord = errors.New("streamtest: no record")
)

// PartitionError reports a record sent to a partition the topic does not have.
type PartitionError struct {
	Topic      string
	Partition  int32
	Partitions int32
}

func (e *PartitionError) Error() string {
	return fmt.Sprintf("streamtest: topic %q has %d partitions, no partition %d", e.Topic, e.Partitions, e.Partition)
}
