package state

import "bytes"

// KeyValueBytesStore is the byte-level key-value contract: what a backend
// (state/memory, state/pebble) implements and what every decorator
// (changelogging, caching, metering) both implements and wraps. Keys are
// ordered by bytes.Compare.
//
// Null: a nil key is invalid (ErrNullKey) while an empty key is a key; a nil
// value is null, so Put(k, nil) deletes k, like a tombstone on the changelog,
// while an empty non-nil value is stored and read back as empty and non-nil.
//
// Threading: a store built for a task (over its batch, with a cache) is used
// from the task's goroutine only. Backends' own stores (memory.Store, the
// views of Engine.Reader) also allow reads concurrent with writes.
type KeyValueBytesStore interface {
	Store

	// Get returns the value stored under key. found is false, with a nil
	// value and a nil error, when key is absent. The value is read-only: the
	// caller must not modify it, but may keep it; later writes to the store
	// do not change it.
	Get(key []byte) (value []byte, found bool, err error)
	// Put stores value under key, replacing any previous value; a nil value
	// deletes key. The store copies both: the caller may reuse its buffers
	// once Put returns.
	Put(key, value []byte) error
	// Delete removes key. Deleting an absent key is not an error.
	Delete(key []byte) error
	// DeleteRange removes every key in [from, to), with Range's rules for
	// nil bounds. It is local: a changelogging layer does not write it to
	// the changelog, so only stores whose changelog drops the same records
	// by retention (window and session stores, cleanup.policy
	// compact,delete) use it, to expire old segments in one call.
	DeleteRange(from, to []byte) error

	// Range iterates the keys in [from, to) in ascending order. A nil from
	// starts at the first key, a nil to runs to the last one; an empty
	// non-nil to is an empty range, and so is from >= to.
	Range(from, to []byte) Iterator
	// ReverseRange iterates the same keys as Range, in descending order.
	ReverseRange(from, to []byte) Iterator
	// PrefixScan iterates, in ascending order, the keys that start with
	// prefix; an empty prefix iterates every key.
	PrefixScan(prefix []byte) Iterator

	// ApproximateCount estimates the number of keys. Memory is exact; disk
	// backends may be off, so never use it for correctness.
	ApproximateCount() (int64, error)
}

// Iterator walks a range of a KeyValueBytesStore, pebble style:
//
//	it := s.Range(from, to)
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Close(); err != nil { ... } // Close returns Err()
//
// An iterator sees a snapshot of the store taken when it was created: writes
// made while it is open, by the task or anyone else, are not visible to it.
// The task may therefore write (even to the keys it visits) while iterating.
//
// An iterator is used by one goroutine. Errors, including one in creating the
// iterator, end the iteration: Next returns false and Err reports why. Close
// the iterator before its store; advancing it after the store was closed
// fails with ErrClosed.
type Iterator interface {
	// Next advances to the next entry and reports whether there is one. The
	// first call moves to the first entry.
	Next() bool
	// Key returns the current key. It is read-only and valid until the next
	// call to Next or Close: copy it to keep it.
	Key() []byte
	// Value returns the current value, with the same rules as Key.
	Value() []byte
	// Err returns the error that ended the iteration, or nil.
	Err() error
	// Close releases the iterator and returns Err(). It is idempotent.
	Close() error
}

// PrefixEnd returns the smallest key greater than every key that starts with
// prefix: the exclusive upper bound of a prefix scan. It returns nil (no upper
// bound) when prefix is empty or all 0xFF bytes. prefix is not modified.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}

// errIterator is an iterator that is over before it starts, carrying err.
type errIterator struct{ err error }

// ErrIterator returns an Iterator with no entries whose Err and Close return
// err. Backends and decorators use it to report an error in creating an
// iterator.
func ErrIterator(err error) Iterator { return errIterator{err} }

func (errIterator) Next() bool     { return false }
func (errIterator) Key() []byte    { return nil }
func (errIterator) Value() []byte  { return nil }
func (e errIterator) Err() error   { return e.err }
func (e errIterator) Close() error { return e.err }

// DeleteEach removes the keys of s in [from, to) one by one: it collects
// them with a Range, then deletes each. Backends without a range tombstone
// of their own implement DeleteRange with it; it costs a scan of the range.
func DeleteEach(s KeyValueBytesStore, from, to []byte) error {
	it := s.Range(from, to)
	var keys [][]byte
	for it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// InRange reports whether key lies in [from, to), with Range's rules for
// nil bounds.
func InRange(key, from, to []byte) bool {
	if from != nil && bytes.Compare(key, from) < 0 {
		return false
	}
	return to == nil || bytes.Compare(key, to) < 0
}
