package state

// StorePartition names one store's state for one task: the unit a changelog
// partition restores, a checkpoint records and Engine.Drop deletes.
type StorePartition struct {
	Store     string
	Partition int32
}

// Engine keeps the bytes of every store-partition of one worker process and
// application: one pebble DB (state/pebble) or memory (state/memory). Each
// store-partition is a key range of its own.
//
// Writes reach an Engine only through a Batch, which a task fills during a
// commit interval and commits once Kafka has committed, atomically with the
// changelog offsets it reaches (its checkpoints). The committed state is
// therefore never ahead of what Kafka committed, and a crash before Commit
// leaves every store-partition exactly at its last commit.
//
// Threading: an Engine is shared by every task of the process. Each Batch is
// used by one goroutine; Commit, Restore and Drop of different
// store-partitions may run concurrently; Reader views may be read from any
// goroutine.
type Engine interface {
	// NewBatch returns an empty pending batch.
	NewBatch() Batch
	// Restore applies changelog records to a store-partition's committed
	// state (a nil Value deletes the key) and records next as its
	// checkpoint, all atomically. The restorer calls it once per large
	// chunk of changelog records.
	Restore(sp StorePartition, records []RestoreRecord, next int64) error
	// Checkpoint returns the changelog offset recorded for sp by the last
	// Commit or Restore that named it: the offset restoring resumes from.
	Checkpoint(sp StorePartition) (offset int64, ok bool, err error)
	// Reader returns a read-only view of sp's committed state (interactive
	// queries, tests); its writes fail.
	Reader(sp StorePartition) KeyValueBytesStore
	// Drop deletes sp's data and checkpoint (a range delete on disk). No
	// open batch may hold writes for sp: a later Commit would bring them back.
	Drop(sp StorePartition) error
	// Close releases the engine. Batches and readers must be done first.
	Close() error
}

// Batch is a pending set of writes to any number of store-partitions, with
// reads that see the writes over the committed state.
// One task owns a Batch and uses it from its goroutine only.
type Batch interface {
	// Store returns the byte store of sp within this batch: reads see the
	// batch over the committed state, writes go to the batch. Its Flush and
	// Close do nothing; the Batch owns the writes. Like the batch, it is
	// used from the owner's goroutine only.
	Store(sp StorePartition) KeyValueBytesStore
	// Len is the number of writes pending.
	Len() int
	// Commit applies every pending write and the given checkpoints atomically,
	// then empties the batch for the next interval. If it fails, the batch is
	// emptied all the same and no checkpoint moved: restoring from the
	// changelog makes up for the lost writes.
	Commit(checkpoints map[StorePartition]int64) error
	// Abort drops every pending write; the batch stays usable.
	Abort()
	// Close releases the batch, dropping pending writes.
	Close() error
}

// RestoreRecord is one changelog record to restore: a nil Value is a tombstone.
type RestoreRecord struct {
	Key, Value []byte
}
