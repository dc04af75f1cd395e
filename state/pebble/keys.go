package pebble

import (
	"encoding/binary"

	"github.com/gregorstream/gregor/state"
)

// Key layout. Every key of the DB starts with a tag byte:
//
//	0x00 | uvarint(len(store)) | store | be32(partition)             → be64(checkpoint offset)
//	0x01 | uvarint(len(store)) | store | be32(partition) | user key  → value
//	0x02 | "layout"                                                 → layoutVersion
//
// The store-partition part is prefix-free: the length comes before the name
// and the partition has a fixed width, so no store-partition's prefix is a
// prefix of another's (store "a" partition 1 and store "ab" never share
// keys), and each store-partition's data is one contiguous key range:
// [dataPrefix(sp), state.PrefixEnd(dataPrefix(sp))). Partitions are written
// as uint32, so that a negative one is a valid, distinct partition.
const (
	tagCheckpoint byte = 0x00
	tagData       byte = 0x01
	tagMeta       byte = 0x02
)

// layoutKey holds the version of this layout, written when a DB is created
// and checked at every Open.
var layoutKey = []byte{tagMeta, 'l', 'a', 'y', 'o', 'u', 't'}

const layoutVersion = "1"

// appendStorePartition appends tag | uvarint(len(store)) | store | be32(partition).
func appendStorePartition(dst []byte, tag byte, sp state.StorePartition) []byte {
	dst = append(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(sp.Store)))
	dst = append(dst, sp.Store...)
	return binary.BigEndian.AppendUint32(dst, uint32(sp.Partition))
}

// dataPrefix returns the prefix of sp's data keys, with spare capacity for
// a short user key.
func dataPrefix(sp state.StorePartition) []byte {
	return appendStorePartition(make([]byte, 0, 1+binary.MaxVarintLen64+len(sp.Store)+4+32), tagData, sp)
}

func checkpointKey(sp state.StorePartition) []byte {
	return appendStorePartition(make([]byte, 0, 1+binary.MaxVarintLen64+len(sp.Store)+4), tagCheckpoint, sp)
}
