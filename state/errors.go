package state

import "errors"

// The sentinels below are causes: stores return them wrapped in an error that
// names the package, the store and the operation. Test for them with
// errors.Is.
var (
	// ErrClosed is the cause when a store is used after Close, and when an
	// iterator is advanced after its store was closed.
	ErrClosed = errors.New("store closed")

	// ErrNullKey is the cause when a store is given a nil key, or when a
	// typed store's key serde encodes a key (or a range bound) as nil bytes,
	// the serde convention for null. Kafka tables have no null keys. An empty
	// non-nil key is a valid key.
	ErrNullKey = errors.New("null key")

	// ErrUnknownStore is the cause when Lookup is asked for a store that the
	// lookup function does not know.
	ErrUnknownStore = errors.New("unknown store")

	// ErrWrongStoreType is the cause when Lookup finds a store of another
	// type than asked for.
	ErrWrongStoreType = errors.New("wrong store type")

	// ErrInvalidBuilder is the cause when a builder is built with an empty
	// name or a nil serde.
	ErrInvalidBuilder = errors.New("invalid store builder")

	// ErrReadOnly is the cause when a read-only view of a store, such as
	// Engine.Reader, is written to.
	ErrReadOnly = errors.New("read-only store")
)
