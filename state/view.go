package state

import (
	"fmt"
	"sync/atomic"
)

// view is the bottom layer of a built store: its store-partition's view in
// the task's batch, with the store's name and a lifecycle of its own. The
// batch owns the bytes and outlives the store, so the view's Close only
// marks the store closed; afterwards every method but Name and Close fails
// with ErrClosed, as Store requires, whichever layers are above, and an
// iterator opened before fails at its next Next.
type view struct {
	inner  KeyValueBytesStore
	name   string
	closed atomic.Bool // read by the task and by concurrent readers
}

func (v *view) Name() string { return v.name }

func (v *view) closedError(op string) error {
	return fmt.Errorf("state: store %q: %s: %w", v.name, op, ErrClosed)
}

func (v *view) Get(key []byte) ([]byte, bool, error) {
	if v.closed.Load() {
		return nil, false, v.closedError("get")
	}
	return v.inner.Get(key)
}

func (v *view) Put(key, value []byte) error {
	if v.closed.Load() {
		return v.closedError("put")
	}
	return v.inner.Put(key, value)
}

func (v *view) Delete(key []byte) error {
	if v.closed.Load() {
		return v.closedError("delete")
	}
	return v.inner.Delete(key)
}

func (v *view) Range(from, to []byte) Iterator {
	if v.closed.Load() {
		return ErrIterator(v.closedError("range"))
	}
	return &viewIterator{Iterator: v.inner.Range(from, to), v: v}
}

func (v *view) ReverseRange(from, to []byte) Iterator {
	if v.closed.Load() {
		return ErrIterator(v.closedError("reverse range"))
	}
	return &viewIterator{Iterator: v.inner.ReverseRange(from, to), v: v}
}

func (v *view) PrefixScan(prefix []byte) Iterator {
	if v.closed.Load() {
		return ErrIterator(v.closedError("prefix scan"))
	}
	return &viewIterator{Iterator: v.inner.PrefixScan(prefix), v: v}
}

func (v *view) ApproximateCount() (int64, error) {
	if v.closed.Load() {
		return 0, v.closedError("count")
	}
	return v.inner.ApproximateCount()
}

func (v *view) Flush() error {
	if v.closed.Load() {
		return v.closedError("flush")
	}
	return v.inner.Flush()
}

// Close marks the store closed. The batch's view needs no closing.
func (v *view) Close() error {
	v.closed.Store(true)
	return nil
}

// viewIterator ends its iteration with ErrClosed once its store is closed.
type viewIterator struct {
	Iterator
	v   *view
	err error
}

func (it *viewIterator) Next() bool {
	if it.err != nil {
		return false
	}
	if it.v.closed.Load() {
		it.err = it.v.closedError("iterate")
		it.Iterator.Close()
		return false
	}
	return it.Iterator.Next()
}

func (it *viewIterator) Err() error {
	if it.err != nil {
		return it.err
	}
	return it.Iterator.Err()
}

func (it *viewIterator) Close() error {
	err := it.Iterator.Close()
	if it.err != nil {
		return it.err
	}
	return err
}

func (v *view) DeleteRange(from, to []byte) error {
	if v.closed.Load() {
		return v.closedError("delete range")
	}
	return v.inner.DeleteRange(from, to)
}
