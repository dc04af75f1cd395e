package dsl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/state"
)

// suppressBuffer is the time-ordered buffer of a Suppress (Kafka Streams'
// InMemoryTimeOrderedKeyValueChangeBuffer) kept in one key-value byte store
// of the task, so that every change to it reaches the store's changelog in
// the task's commit and a restored store is the buffer as committed.
//
// Byte layout of the store's keys (be64: 8 bytes, big-endian):
//
//	0x00                            the stream time: be64 milliseconds
//	0x01 be64(time^1<<63) key       the time index: an empty value
//	0x02 key                        the key index: the entry (encodeEntry)
//
// The time index sorts entries by buffer time (the sign bit flipped, so
// negative times sort first), then by key bytes, the order Kafka Streams
// evicts in. The key index finds a key's entry and its buffer time.
//
// INVARIANT: a key has a time-index key exactly when it has a key-index
// key, with the entry's time.
type suppressBuffer struct {
	store state.KeyValueBytesStore
	name  string
	// changelog is the store's changelog topic, the topic the serdes of
	// buffered keys and values are told about.
	changelog string
	// count and bytes are the buffer's entries and their estimated size,
	// computed by load and kept up to date by put and evictWhile.
	count, bytes int64
	streamTime   int64
	// minTime is the smallest buffer time in the buffer (math.MaxInt64
	// when empty), so that a record that makes nothing due opens no
	// iterator, as Kafka Streams' minTimestamp.
	minTime int64
}

const (
	suppressMeta    = 0x00
	suppressByTime  = 0x01
	suppressByKey   = 0x02
	suppressKeysEnd = 0x03
)

// bufferEntry is one buffered key's latest update.
type bufferEntry struct {
	time  int64 // buffer time, ms: kept from the key's first update
	ts    int64 // the latest update's timestamp, ms
	noTS  bool  // the latest update had no timestamp
	newV  []byte
	oldV  []byte // the value the latest update replaced
	prior []byte // the value the first buffered update replaced
	// priorIsOld: prior is oldV (the key was buffered once), stored once.
	priorIsOld bool
	headers    processor.Headers
	origin     processor.Origin
}

// size estimates an entry's memory as Kafka Streams' computeRecordSize.
func (e *bufferEntry) size(key []byte) int64 {
	n := 8 + len(key) + len(e.prior) + len(e.newV) + 8 + 8 + 4 + len(e.origin.Topic)
	if !e.priorIsOld {
		n += len(e.oldV)
	}
	for _, h := range e.headers {
		n += len(h.Key) + len(h.Value)
	}
	return int64(n)
}

func (b *suppressBuffer) topic() string { return b.changelog }

func (b *suppressBuffer) errorf(op string, err error) error {
	return fmt.Errorf("buffer store %q: %s: %w", b.name, op, err)
}

// load reads the stream time and counts the entries.
func (b *suppressBuffer) load() error {
	b.count, b.bytes, b.streamTime, b.minTime = 0, 0, math.MinInt64, math.MaxInt64
	v, found, err := b.store.Get([]byte{suppressMeta})
	if err != nil {
		return b.errorf("read stream time", err)
	}
	if found {
		if len(v) != 8 {
			return b.errorf("read stream time", errBadEntry)
		}
		b.streamTime = int64(binary.BigEndian.Uint64(v))
	}
	it := b.store.Range([]byte{suppressByKey}, []byte{suppressKeysEnd})
	for it.Next() {
		e, err := decodeEntry(it.Value())
		if err != nil {
			it.Close()
			return b.errorf("load", err)
		}
		b.count++
		b.bytes += e.size(it.Key()[1:])
	}
	if err := it.Close(); err != nil {
		return b.errorf("load", err)
	}
	it = b.store.Range([]byte{suppressByTime}, []byte{suppressByKey})
	if it.Next() {
		if len(it.Key()) < 9 {
			it.Close()
			return b.errorf("load", errBadEntry)
		}
		b.minTime = int64(binary.BigEndian.Uint64(it.Key()[1:9]) ^ 1<<63)
	}
	if err := it.Close(); err != nil {
		return b.errorf("load", err)
	}
	return nil
}

func (b *suppressBuffer) putStreamTime(ms int64) error {
	b.streamTime = ms
	if err := b.store.Put([]byte{suppressMeta}, binary.BigEndian.AppendUint64(nil, uint64(ms))); err != nil {
		return b.errorf("write stream time", err)
	}
	return nil
}

func timeKey(time int64, key []byte) []byte {
	k := make([]byte, 0, 9+len(key))
	k = append(k, suppressByTime)
	k = binary.BigEndian.AppendUint64(k, uint64(time)^1<<63)
	return append(k, key...)
}

func indexKey(key []byte) []byte {
	return append([]byte{suppressByKey}, key...)
}

// put buffers e under key. A key already buffered keeps its buffer time and
// the value its first update replaced (Kafka Streams' non-resetting rule).
func (b *suppressBuffer) put(key []byte, e bufferEntry) error {
	ik := indexKey(key)
	v, found, err := b.store.Get(ik)
	if err != nil {
		return b.errorf("read", err)
	}
	if found {
		prev, err := decodeEntry(v)
		if err != nil {
			return b.errorf("read", err)
		}
		e.time, e.prior, e.priorIsOld = prev.time, prev.prior, false
		b.bytes -= prev.size(key)
	} else {
		e.prior, e.priorIsOld = e.oldV, true
		if err := b.store.Put(timeKey(e.time, key), []byte{}); err != nil {
			return b.errorf("write", err)
		}
		b.count++
		b.minTime = min(b.minTime, e.time)
	}
	if err := b.store.Put(ik, encodeEntry(&e)); err != nil {
		return b.errorf("write", err)
	}
	b.bytes += e.size(key)
	return nil
}

// evictWhile removes the entries in buffer-time order, handing each to emit,
// while due says the oldest one's time has come.
func (b *suppressBuffer) evictWhile(due func(time int64) bool, emit func(key []byte, e bufferEntry) error) (err error) {
	if b.count == 0 || !due(b.minTime) {
		return nil
	}
	defer func() {
		if err != nil { // the smallest time is unknown: the next call scans
			b.minTime = math.MinInt64
		}
	}()
	it := b.store.Range([]byte{suppressByTime}, []byte{suppressByKey})
	defer it.Close()
	b.minTime = math.MaxInt64
	for it.Next() {
		tk := it.Key()
		if len(tk) < 9 {
			return b.errorf("evict", errBadEntry)
		}
		time := int64(binary.BigEndian.Uint64(tk[1:9]) ^ 1<<63)
		if !due(time) {
			b.minTime = time
			break
		}
		key := bytes.Clone(tk[9:])
		ik := indexKey(key)
		v, found, err := b.store.Get(ik)
		if err != nil {
			return b.errorf("evict", err)
		}
		if !found {
			return b.errorf("evict", fmt.Errorf("key %q in the time index only: %w", key, errBadEntry))
		}
		e, err := decodeEntry(v)
		if err != nil {
			return b.errorf("evict", err)
		}
		if err := emit(key, e); err != nil {
			return err
		}
		if err := b.store.Delete(ik); err != nil {
			return b.errorf("evict", err)
		}
		if err := b.store.Delete(timeKey(time, key)); err != nil {
			return b.errorf("evict", err)
		}
		b.count--
		b.bytes -= e.size(key)
	}
	if err := it.Close(); err != nil {
		return b.errorf("evict", err)
	}
	return nil
}

var errBadEntry = errors.New("malformed entry")

const (
	entryNew = 1 << iota
	entryOld
	entryPrior
	entryPriorIsOld
	entryNoTS
)

// encodeEntry: be64 time, be64 timestamp, a flags byte, then each present
// value of new, old and prior (unless prior is old) as a uvarint length and
// its bytes; the origin's topic (length, bytes), partition and offset
// (varints); the headers' count, then each header's key (length, bytes) and
// value (length plus one, 0 for a nil value, then its bytes).
func encodeEntry(e *bufferEntry) []byte {
	out := make([]byte, 0, 32+len(e.newV)+len(e.oldV)+len(e.prior)+len(e.origin.Topic))
	out = binary.BigEndian.AppendUint64(out, uint64(e.time))
	out = binary.BigEndian.AppendUint64(out, uint64(e.ts))
	var flags byte
	if e.newV != nil {
		flags |= entryNew
	}
	if e.oldV != nil {
		flags |= entryOld
	}
	if e.priorIsOld {
		flags |= entryPriorIsOld
	} else if e.prior != nil {
		flags |= entryPrior
	}
	if e.noTS {
		flags |= entryNoTS
	}
	out = append(out, flags)
	for _, v := range [][]byte{e.newV, e.oldV} {
		if v != nil {
			out = binary.AppendUvarint(out, uint64(len(v)))
			out = append(out, v...)
		}
	}
	if flags&entryPrior != 0 {
		out = binary.AppendUvarint(out, uint64(len(e.prior)))
		out = append(out, e.prior...)
	}
	out = binary.AppendUvarint(out, uint64(len(e.origin.Topic)))
	out = append(out, e.origin.Topic...)
	out = binary.AppendVarint(out, int64(e.origin.Partition))
	out = binary.AppendVarint(out, e.origin.Offset)
	out = binary.AppendUvarint(out, uint64(len(e.headers)))
	for _, h := range e.headers {
		out = binary.AppendUvarint(out, uint64(len(h.Key)))
		out = append(out, h.Key...)
		if h.Value == nil {
			out = binary.AppendUvarint(out, 0)
			continue
		}
		out = binary.AppendUvarint(out, uint64(len(h.Value))+1)
		out = append(out, h.Value...)
	}
	return out
}

// decodeEntry decodes what encodeEntry made. The entry's byte slices are
// copies: the store's value is read-only and may not outlive the call.
func decodeEntry(b []byte) (bufferEntry, error) {
	var e bufferEntry
	if len(b) < 17 {
		return e, errBadEntry
	}
	e.time = int64(binary.BigEndian.Uint64(b))
	e.ts = int64(binary.BigEndian.Uint64(b[8:]))
	flags := b[16]
	rest := b[17:]
	bad := false
	uvarint := func() uint64 {
		n, w := binary.Uvarint(rest)
		if w <= 0 {
			bad = true
			return 0
		}
		rest = rest[w:]
		return n
	}
	varint := func() int64 {
		n, w := binary.Varint(rest)
		if w <= 0 {
			bad = true
			return 0
		}
		rest = rest[w:]
		return n
	}
	take := func(n uint64) []byte {
		if bad || uint64(len(rest)) < n {
			bad = true
			return nil
		}
		v := bytes.Clone(rest[:n])
		if v == nil {
			v = []byte{}
		}
		rest = rest[n:]
		return v
	}
	if flags&entryNew != 0 {
		e.newV = take(uvarint())
	}
	if flags&entryOld != 0 {
		e.oldV = take(uvarint())
	}
	switch {
	case flags&entryPriorIsOld != 0:
		e.prior, e.priorIsOld = e.oldV, true
	case flags&entryPrior != 0:
		e.prior = take(uvarint())
	}
	e.noTS = flags&entryNoTS != 0
	e.origin.Topic = string(take(uvarint()))
	e.origin.Partition = int32(varint())
	e.origin.Offset = varint()
	if n := uvarint(); !bad && n > 0 {
		if n > uint64(len(rest)) {
			return bufferEntry{}, errBadEntry
		}
		e.headers = make(processor.Headers, 0, n)
		for range n {
			k := string(take(uvarint()))
			var v []byte
			if l := uvarint(); l > 0 {
				v = take(l - 1)
			}
			e.headers = append(e.headers, processor.Header{Key: k, Value: v})
		}
	}
	if bad || len(rest) != 0 {
		return bufferEntry{}, errBadEntry
	}
	return e, nil
}
