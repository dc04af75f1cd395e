package state

import (
	"errors"
	"fmt"
	"time"

	"github.com/gregorstream/gregor/serde"
)

// KeyValueStore is a typed key-value store: it encodes keys and values with
// its serdes and keeps the bytes in a KeyValueBytesStore. Build one with
// KeyValue(...).Build, or over any byte store with NewKeyValueStore.
//
// Key order is the byte order of the encoded keys, not the order of K: Range
// and the iterators walk keys as bytes.Compare sorts their encodings. For
// strings that is byte-wise order. For serde.Int64 (big-endian two's
// complement) non-negative numbers sort in numeric order but every negative
// number sorts after every non-negative one (-1 is 0xFF...FF, the largest).
//
// Values decoded by a serde that returns its input as is (serde.Bytes) share
// memory with the store: treat them as read-only.
//
// The threading contract is the byte store's: writes from the owning task,
// reads from anywhere.
type KeyValueStore[K, V any] struct {
	bytes  KeyValueBytesStore
	topic  string // passed to the serdes
	keys   serde.Serde[K]
	values serde.Serde[V]
	// The serdes as appenders, resolved once (see serde.AppenderOf).
	keyApp   serde.Appender[K]
	valueApp serde.Appender[V]

	// buf is reused to encode the key (and value) of Get, Put and Delete:
	// byte stores do not keep what they are given. busy marks it taken, as
	// a flush listener may call back into the store during a Put.
	buf  []byte
	busy bool
}

var errNotInitialized = errors.New("store not initialized: use NewKeyValueStore or a builder")

// NewKeyValueStore returns a typed store over bytes. topic is the topic the
// serdes are told about, normally ChangelogTopic(applicationID, bytes.Name()).
// The typed store owns bytes: closing it closes bytes.
func NewKeyValueStore[K, V any](bytes KeyValueBytesStore, topic string, keys serde.Serde[K], values serde.Serde[V]) (*KeyValueStore[K, V], error) {
	if bytes == nil || keys == nil || values == nil {
		return nil, fmt.Errorf("state: new key-value store: nil byte store or serde: %w", ErrInvalidBuilder)
	}
	return &KeyValueStore[K, V]{bytes: bytes, topic: topic, keys: keys, values: values,
		keyApp: serde.AppenderOf(keys), valueApp: serde.AppenderOf(values)}, nil
}

// Name returns the store's name.
func (s *KeyValueStore[K, V]) Name() string {
	if s.bytes == nil {
		return ""
	}
	return s.bytes.Name()
}

// Topic returns the topic given to the serdes: the store's changelog topic.
func (s *KeyValueStore[K, V]) Topic() string { return s.topic }

// Bytes returns the byte store underneath, for inspection and for the
// runtime (restoring, interactive queries on raw bytes). Writing to it
// bypasses the serdes.
func (s *KeyValueStore[K, V]) Bytes() KeyValueBytesStore { return s.bytes }

// Flush flushes the byte store.
func (s *KeyValueStore[K, V]) Flush() error {
	if s.bytes == nil {
		return s.errorf("flush", errNotInitialized)
	}
	return s.bytes.Flush()
}

// Close closes the byte store.
func (s *KeyValueStore[K, V]) Close() error {
	if s.bytes == nil {
		return nil
	}
	return s.bytes.Close()
}

func (s *KeyValueStore[K, V]) errorf(op string, err error) error {
	return fmt.Errorf("state: %s in store %q: %w", op, s.Name(), err)
}

// encodeKey encodes k, rejecting a null encoding.
func (s *KeyValueStore[K, V]) encodeKey(op string, k K) ([]byte, error) {
	if s.bytes == nil {
		return nil, s.errorf(op, errNotInitialized)
	}
	b, err := s.keys.Serialize(s.topic, k)
	if err != nil {
		return nil, s.errorf(op, fmt.Errorf("encode key: %w", err))
	}
	if b == nil {
		return nil, s.errorf(op, ErrNullKey)
	}
	return b, nil
}

// take returns the encoding buffer, or a new one while it is busy.
func (s *KeyValueStore[K, V]) take() (buf []byte, own bool) {
	if s.busy {
		return make([]byte, 0, 64), false
	}
	s.busy = true
	if s.buf == nil {
		s.buf = make([]byte, 0, 64)
	}
	return s.buf[:0], true
}

// give returns the buffer take gave, possibly grown.
func (s *KeyValueStore[K, V]) give(buf []byte, own bool) {
	if own {
		if cap(buf) <= maxKeptBuffer {
			s.buf = buf[:0]
		}
		s.busy = false
	}
}

// maxKeptBuffer bounds the encoding buffer a store keeps between calls.
const maxKeptBuffer = 64 << 10

// appendKey appends k's encoding to buf, rejecting a null encoding.
func (s *KeyValueStore[K, V]) appendKey(op string, buf []byte, k K) ([]byte, error) {
	if s.bytes == nil {
		return nil, s.errorf(op, errNotInitialized)
	}
	b, err := s.keyApp.AppendSerialize(buf, s.topic, k)
	if err != nil {
		return nil, s.errorf(op, fmt.Errorf("encode key: %w", err))
	}
	if b == nil {
		return nil, s.errorf(op, ErrNullKey)
	}
	return b, nil
}

// Get returns the value stored under key; found is false when there is none.
func (s *KeyValueStore[K, V]) Get(key K) (value V, found bool, err error) {
	buf, own := s.take()
	k, err := s.appendKey("get", buf, key)
	if err != nil {
		s.give(buf, own)
		return value, false, err
	}
	b, found, err := s.bytes.Get(k)
	s.give(k, own)
	if err != nil || !found {
		return value, false, err
	}
	value, err = s.values.Deserialize(s.topic, b)
	if err != nil {
		return value, false, s.errorf("get", fmt.Errorf("decode value: %w", err))
	}
	return value, true, nil
}

// Put stores value under key. A value that its serde encodes as null (nil
// bytes: a nil pointer, slice or map with serde.JSON, a nil []byte with
// serde.Bytes) deletes key, as a tombstone does on a table.
func (s *KeyValueStore[K, V]) Put(key K, value V) error {
	buf, own := s.take()
	defer func() { s.give(buf, own) }()
	k, err := s.appendKey("put", buf, key)
	if err != nil {
		return err
	}
	buf = k
	n := len(k)
	kv, err := s.valueApp.AppendSerialize(k, s.topic, value)
	if err != nil {
		return s.errorf("put", fmt.Errorf("encode value: %w", err))
	}
	if kv == nil { // null: a delete
		return s.bytes.Put(k[:n:n], nil)
	}
	buf = kv
	return s.bytes.Put(kv[:n:n], kv[n:])
}

// Delete removes key. Deleting an absent key is not an error.
func (s *KeyValueStore[K, V]) Delete(key K) error {
	buf, own := s.take()
	defer func() { s.give(buf, own) }()
	k, err := s.appendKey("delete", buf, key)
	if err != nil {
		return err
	}
	buf = k
	return s.bytes.Delete(k)
}

// ApproximateCount estimates the number of keys (see KeyValueBytesStore).
func (s *KeyValueStore[K, V]) ApproximateCount() (int64, error) {
	if s.bytes == nil {
		return 0, s.errorf("count", errNotInitialized)
	}
	return s.bytes.ApproximateCount()
}

// Range iterates the keys whose encodings lie in [enc(from), enc(to)), in
// ascending byte order. Unlike Kafka Streams' range, to is exclusive. See
// KeyValueStore for what byte order means for numbers.
func (s *KeyValueStore[K, V]) Range(from, to K) *KeyValueIterator[K, V] {
	return s.rangeOf("range", from, to, false)
}

// ReverseRange iterates the same keys as Range in descending order.
func (s *KeyValueStore[K, V]) ReverseRange(from, to K) *KeyValueIterator[K, V] {
	return s.rangeOf("reverse range", from, to, true)
}

// All iterates every key in ascending byte order.
func (s *KeyValueStore[K, V]) All() *KeyValueIterator[K, V] {
	if s.bytes == nil {
		return s.failed(s.errorf("all", errNotInitialized))
	}
	return s.iterator(s.bytes.Range(nil, nil))
}

// ReverseAll iterates every key in descending byte order.
func (s *KeyValueStore[K, V]) ReverseAll() *KeyValueIterator[K, V] {
	if s.bytes == nil {
		return s.failed(s.errorf("reverse all", errNotInitialized))
	}
	return s.iterator(s.bytes.ReverseRange(nil, nil))
}

// PrefixScan iterates, in ascending order, the keys whose encoding starts
// with prefix. The prefix is raw bytes: build it with the key serde, or by
// hand for composite keys.
func (s *KeyValueStore[K, V]) PrefixScan(prefix []byte) *KeyValueIterator[K, V] {
	if s.bytes == nil {
		return s.failed(s.errorf("prefix scan", errNotInitialized))
	}
	return s.iterator(s.bytes.PrefixScan(prefix))
}

func (s *KeyValueStore[K, V]) rangeOf(op string, from, to K, reverse bool) *KeyValueIterator[K, V] {
	lo, err := s.encodeKey(op, from)
	if err != nil {
		return s.failed(err)
	}
	hi, err := s.encodeKey(op, to)
	if err != nil {
		return s.failed(err)
	}
	if reverse {
		return s.iterator(s.bytes.ReverseRange(lo, hi))
	}
	return s.iterator(s.bytes.Range(lo, hi))
}

func (s *KeyValueStore[K, V]) iterator(it Iterator) *KeyValueIterator[K, V] {
	return &KeyValueIterator[K, V]{it: it, s: s}
}

func (s *KeyValueStore[K, V]) failed(err error) *KeyValueIterator[K, V] {
	return &KeyValueIterator[K, V]{it: ErrIterator(err), s: s}
}

// KeyValueIterator walks a range of a KeyValueStore, decoding as it goes:
//
//	it := store.Range(from, to)
//	defer it.Close()
//	for it.Next() {
//		use(it.Key(), it.Value())
//	}
//	if err := it.Err(); err != nil { ... }
//
// It has the snapshot semantics of Iterator. Unlike a byte Iterator's, its
// keys and values may be kept after Next: each entry is decoded from its own
// copy of the bytes. A decoding error ends the iteration and is reported by
// Err and Close.
type KeyValueIterator[K, V any] struct {
	it    Iterator
	s     *KeyValueStore[K, V]
	key   K
	value V
	err   error // a decoding error; the byte iterator reports its own
}

// Next advances to the next entry and decodes it.
func (it *KeyValueIterator[K, V]) Next() bool {
	var zk K
	var zv V
	it.key, it.value = zk, zv
	if it.err != nil || it.it == nil || !it.it.Next() {
		return false
	}
	// The serde contract lets Deserialize keep its input, while the byte
	// iterator may reuse its buffers: hand over a private copy. One
	// allocation for both; capped so neither can grow into the other.
	k, v := it.it.Key(), it.it.Value()
	buf := make([]byte, len(k)+len(v))
	n := copy(buf, k)
	copy(buf[n:], v)

	key, err := it.s.keys.Deserialize(it.s.topic, buf[:n:n])
	if err != nil {
		it.err = it.s.errorf("iterate", fmt.Errorf("decode key: %w", err))
		return false
	}
	value, err := it.s.values.Deserialize(it.s.topic, buf[n:])
	if err != nil {
		it.err = it.s.errorf("iterate", fmt.Errorf("decode value of key %x: %w", k, err))
		return false
	}
	it.key, it.value = key, value
	return true
}

// Key returns the current, decoded key.
func (it *KeyValueIterator[K, V]) Key() K { return it.key }

// Value returns the current, decoded value.
func (it *KeyValueIterator[K, V]) Value() V { return it.value }

// Err returns the error that ended the iteration, or nil.
func (it *KeyValueIterator[K, V]) Err() error {
	if it.err != nil || it.it == nil {
		return it.err
	}
	return it.it.Err()
}

// Close releases the iterator and returns Err(). It is idempotent.
func (it *KeyValueIterator[K, V]) Close() error {
	if it.it == nil {
		return it.err
	}
	err := it.it.Close()
	if it.err != nil {
		return it.err
	}
	return err
}

// SetFlushListener asks to be told of the writes the record cache passes
// down, when the task commits or the cache evicts: fn receives the key, the
// new value (null for a delete), the value it replaces (null if none) and
// the timestamp of the record that made the write.
// It returns false when the store has no cache, in which case every write
// passes down at once and the caller must forward it itself, as Kafka
// Streams' TimestampedTupleForwarder does.
func (s *KeyValueStore[K, V]) SetFlushListener(fn func(key K, newValue, oldValue V, newNull, oldNull bool, ts time.Time) error) bool {
	fl, ok := s.bytes.(flushListener)
	if !ok {
		return false
	}
	return fl.setFlushListener(func(kb, nb, ob []byte, ts time.Time) error {
		k, err := s.keys.Deserialize(s.topic, kb)
		if err != nil {
			return s.errorf("flush", fmt.Errorf("decode key: %w", err))
		}
		var nv, ov V
		if nb != nil {
			if nv, err = s.values.Deserialize(s.topic, nb); err != nil {
				return s.errorf("flush", fmt.Errorf("decode value: %w", err))
			}
		}
		if ob != nil {
			if ov, err = s.values.Deserialize(s.topic, ob); err != nil {
				return s.errorf("flush", fmt.Errorf("decode old value: %w", err))
			}
		}
		return fn(k, nv, ov, nb == nil, ob == nil, ts)
	})
}
