package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Window and session stores keep their entries in time segments of one
// byte store, Kafka Streams style: an entry lives in the segment of its
// time (a window's start, a session's end), and when the store's observed
// stream time moves past a segment's end plus the retention, the whole
// segment goes with one DeleteRange.
//
// # Byte layout
//
// Every key of a segmented store, in the engine and in its changelog, is
//
//	segment   8 bytes, big-endian: time / segment interval (0 for times before the epoch)
//	key       the record key's bytes, escaped: each 0x00 becomes 0x00 0xFF
//	0x00 0x01 the key's terminator
//	time      8 bytes per time, big-endian with the sign bit flipped, so that
//	          byte order is time order: a window's start; a session's end, then start
//
// Within a segment, entries sort by key (in the byte order of the keys, as
// the escaping preserves it) and then by time, so fetching a key over a time
// range is one range scan per segment it spans. Segments sort in time order,
// so expiring the oldest ones is one range delete of a key prefix.
//
// Metadata lives under keys starting with eight 0xFF bytes, after every
// segment: the store's observed stream time (written at each Flush) and
// its segment interval (written once), both 8-byte big-endian integers, and
// named marks processors keep with the store (see WindowStore.Mark).

const (
	segmentBytes = 8
	timeBytes    = 8
	// minSegmentInterval is the smallest segment interval a store picks by
	// itself: Kafka Streams' default of a minute.
	minSegmentInterval = time.Minute
)

var (
	metaPrefix            = bytes.Repeat([]byte{0xFF}, segmentBytes)
	metaStreamTime        = append(append([]byte(nil), metaPrefix...), "stream-time"...)
	metaSegmentSize       = append(append([]byte(nil), metaPrefix...), "segment-interval"...)
	keyTerminator         = []byte{0x00, 0x01}
	errCorruptKey         = errors.New("state: corrupt segmented-store key")
	noTime          int64 = math.MinInt64
)

// appendTime appends ms in the layout's order-preserving form.
func appendTime(dst []byte, ms int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(ms)^(1<<63))
}

func readTime(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// appendEscaped appends key, escaped, and its terminator.
func appendEscaped(dst, key []byte) []byte {
	for {
		i := bytes.IndexByte(key, 0)
		if i < 0 {
			dst = append(dst, key...)
			break
		}
		dst = append(dst, key[:i+1]...)
		dst = append(dst, 0xFF)
		key = key[i+1:]
	}
	return append(dst, keyTerminator...)
}

// splitKey parses a segmented key with suffix bytes of times after the
// record key: it returns the record key (unescaped, in a new slice) and the
// time bytes.
func splitKey(k []byte, suffix int) (key, times []byte, err error) {
	if len(k) < segmentBytes+len(keyTerminator)+suffix {
		return nil, nil, fmt.Errorf("%w: %d bytes", errCorruptKey, len(k))
	}
	esc, times := k[segmentBytes:len(k)-suffix], k[len(k)-suffix:]
	if !bytes.HasSuffix(esc, keyTerminator) {
		return nil, nil, fmt.Errorf("%w: no key terminator in %x", errCorruptKey, k)
	}
	esc = esc[:len(esc)-len(keyTerminator)]
	key = make([]byte, 0, len(esc))
	for i := 0; i < len(esc); i++ {
		key = append(key, esc[i])
		if esc[i] == 0 {
			if i+1 >= len(esc) || esc[i+1] != 0xFF {
				return nil, nil, fmt.Errorf("%w: bad escape in %x", errCorruptKey, k)
			}
			i++
		}
	}
	return key, times, nil
}

// segmented is what window and session stores share: the byte store, the
// segments, the observed stream time and expiry.
type segmented struct {
	name      string
	bytes     KeyValueBytesStore
	retention int64 // ms
	interval  int64 // ms, the segment interval
	suffix    int   // bytes of times after the key: 8 (windows) or 16 (sessions)

	loaded    bool
	observed  int64 // the largest time put (ms), noTime before any
	dirty     bool  // observed moved since the last Flush
	firstLive int64 // segments below it are known to be deleted
	buf       []byte
	// marks holds the marks read or set; dirtyMarks those set since the
	// last Flush, which writes them.
	marks      map[string]int64
	dirtyMarks map[string]bool
}

func newSegmented(name string, bytes KeyValueBytesStore, retention, interval time.Duration, suffix int) *segmented {
	return &segmented{name: name, bytes: bytes, retention: retention.Milliseconds(),
		interval: max(interval.Milliseconds(), 1), suffix: suffix, observed: noTime}
}

func (s *segmented) errorf(op string, err error) error {
	return fmt.Errorf("state: %s in store %q: %w", op, s.name, err)
}

// load reads the metadata once: the observed stream time and the segment
// interval the store's bytes were written with, which wins over the
// configured one (the layout depends on it).
func (s *segmented) load() error {
	if s.loaded {
		return nil
	}
	v, ok, err := s.bytes.Get(metaSegmentSize)
	if err != nil {
		return s.errorf("load", err)
	}
	switch {
	case ok && len(v) == 8:
		if stored := int64(binary.BigEndian.Uint64(v)); stored != s.interval && stored > 0 {
			slog.Warn("state: segmented store keeps the segment interval its data was written with",
				"store", s.name, "configured_ms", s.interval, "stored_ms", stored)
			s.interval = stored
		}
	case !ok:
		// A read-only view (Engine.Reader) cannot write; the interval is
		// written by the task's store, before any entry.
		if err := s.bytes.Put(metaSegmentSize, binary.BigEndian.AppendUint64(nil, uint64(s.interval))); err != nil && !errors.Is(err, ErrReadOnly) {
			return s.errorf("load", err)
		}
	}
	v, ok, err = s.bytes.Get(metaStreamTime)
	if err != nil {
		return s.errorf("load", err)
	}
	if ok && len(v) == 8 {
		s.observed = int64(binary.BigEndian.Uint64(v))
	}
	s.loaded = true
	return nil
}

func (s *segmented) segment(ms int64) int64 {
	if ms < 0 {
		return 0
	}
	return ms / s.interval
}

// liveFrom is the earliest time still retained: entries before it are
// expired, whether or not their segment is gone yet.
func (s *segmented) liveFrom() int64 {
	if s.observed == noTime {
		return noTime
	}
	return s.observed - s.retention + 1
}

// expired reports whether an entry at time ms is past retention.
func (s *segmented) expired(ms int64) bool { return ms < s.liveFrom() }

// observe advances the observed stream time to ms and drops the segments
// that fall out of retention.
func (s *segmented) observe(ms int64) error {
	if ms <= s.observed {
		return nil
	}
	s.observed, s.dirty = ms, true
	live := s.segment(s.liveFrom())
	if live <= s.firstLive {
		return nil
	}
	if err := s.bytes.DeleteRange(nil, binary.BigEndian.AppendUint64(nil, uint64(live))); err != nil {
		return s.errorf("expire segments", err)
	}
	s.firstLive = live
	return nil
}

// flush persists the observed stream time and the marks set, then
// flushes the bytes.
func (s *segmented) flush() error {
	for name := range s.dirtyMarks {
		if err := s.bytes.Put(markKey(name), binary.BigEndian.AppendUint64(nil, uint64(s.marks[name]))); err != nil {
			return s.errorf("flush", err)
		}
	}
	clear(s.dirtyMarks)
	if s.dirty {
		if err := s.bytes.Put(metaStreamTime, binary.BigEndian.AppendUint64(nil, uint64(s.observed))); err != nil {
			return s.errorf("flush", err)
		}
		s.dirty = false
	}
	return s.bytes.Flush()
}

// entryKey returns the key of an entry: the segment of seg, the encoded
// record key and the times. The slice is s.buf, valid until the next call.
func (s *segmented) entryKey(seg int64, key []byte, times ...int64) []byte {
	b := binary.BigEndian.AppendUint64(s.buf[:0], uint64(s.segment(seg)))
	b = appendEscaped(b, key)
	for _, t := range times {
		b = appendTime(b, t)
	}
	if cap(b) <= maxKeptBuffer {
		s.buf = b
	}
	return b
}

func markKey(name string) []byte {
	return append(append([]byte(nil), metaPrefix...), "mark:"+name...)
}

// mark returns a named mark's value.
func (s *segmented) mark(name string) (int64, bool, error) {
	if v, ok := s.marks[name]; ok {
		return v, true, nil
	}
	v, ok, err := s.bytes.Get(markKey(name))
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, s.errorf("read mark "+name, fmt.Errorf("%w: %d bytes", errCorruptKey, len(v)))
	}
	m := int64(binary.BigEndian.Uint64(v))
	if s.marks == nil {
		s.marks = map[string]int64{}
	}
	s.marks[name] = m
	return m, true, nil
}

// setMark sets a mark; Flush writes it, so setting one per record costs
// one write per commit.
func (s *segmented) setMark(name string, v int64) error {
	if s.marks == nil {
		s.marks = map[string]int64{}
	}
	if s.dirtyMarks == nil {
		s.dirtyMarks = map[string]bool{}
	}
	if old, ok := s.marks[name]; ok && old == v {
		return nil
	}
	s.marks[name], s.dirtyMarks[name] = v, true
	return nil
}

// scan is one range scan of a segment, with a filter on each entry's key.
type scan struct {
	from, to []byte
}

// segmentIterator chains range scans, in order, over the byte store, and
// skips the entries accept rejects. The scans are created lazily, so a
// long chain costs nothing past where the reader stops.
type segmentIterator struct {
	store   KeyValueBytesStore
	scans   []scan
	reverse bool
	accept  func(k []byte) bool
	cur     Iterator
	err     error
	done    bool
}

func (it *segmentIterator) Next() bool {
	for !it.done {
		if it.cur == nil {
			if len(it.scans) == 0 {
				it.done = true
				return false
			}
			sc := it.scans[0]
			it.scans = it.scans[1:]
			if it.reverse {
				it.cur = it.store.ReverseRange(sc.from, sc.to)
			} else {
				it.cur = it.store.Range(sc.from, sc.to)
			}
		}
		for it.cur.Next() {
			if it.accept == nil || it.accept(it.cur.Key()) {
				return true
			}
		}
		if err := it.cur.Close(); err != nil {
			it.err, it.done = err, true
			return false
		}
		it.cur = nil
	}
	return false
}

func (it *segmentIterator) Key() []byte   { return it.cur.Key() }
func (it *segmentIterator) Value() []byte { return it.cur.Value() }
func (it *segmentIterator) Err() error    { return it.err }

func (it *segmentIterator) Close() error {
	it.done = true
	if it.cur != nil {
		if err := it.cur.Close(); err != nil && it.err == nil {
			it.err = err
		}
		it.cur = nil
	}
	return it.err
}

// segmentScans returns one scan per segment from the segment of fromMs to
// that of toMs (inclusive), each bounded by the keys lo and hi build for a
// segment prefix, in ascending order or, reversed, descending.
func (s *segmented) segmentScans(fromMs, toMs int64, reverse bool, bounds func(seg []byte) (lo, hi []byte)) []scan {
	if s.observed == noTime {
		// Nothing was ever put: the observed stream time is written with
		// the first entries.
		return nil
	}
	first, last := s.segment(max(fromMs, s.liveFrom())), min(s.segment(toMs), s.segment(s.observed))
	if fromMs > toMs || first > last {
		return nil
	}
	out := make([]scan, 0, last-first+1)
	for seg := first; seg <= last; seg++ {
		p := binary.BigEndian.AppendUint64(make([]byte, 0, 64), uint64(seg))
		lo, hi := bounds(p)
		out = append(out, scan{from: lo, to: hi})
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// keyBounds returns the bounds of the entries of key in the segment with
// prefix seg whose first time lies in [fromMs, toMs].
func keyBounds(seg, key []byte, fromMs, toMs int64) (lo, hi []byte) {
	p := appendEscaped(seg, key)
	lo = appendTime(append([]byte(nil), p...), fromMs)
	if toMs == math.MaxInt64 {
		return lo, PrefixEnd(p)
	}
	return lo, appendTime(p, toMs+1)
}

// isMeta reports whether k is a metadata key.
func isMeta(k []byte) bool { return bytes.HasPrefix(k, metaPrefix) }
