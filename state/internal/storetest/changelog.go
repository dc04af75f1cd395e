package storetest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gregorstream/gregor/state"
)

// Record is one changelog record, as a Changelog recorded it.
type Record struct {
	Key, Value []byte // a nil Value is a tombstone
	Timestamp  time.Time
}

// Changelog is a state.ChangelogWriter that plays the changelog topics of
// one task, as a transactional producer and a read_committed restorer see
// them. Log appends to the store's record slice, whose indexes are the
// changelog offsets. CommitKafka marks everything logged so far committed
// (the Kafka transaction commits); AbortKafka drops what was logged since
// (the transaction aborts: a read_committed restorer never sees it).
//
// Log copies key and value, as the task's collector does. Set Err to make
// Log fail. A Changelog is used by one goroutine.
type Changelog struct {
	Records   map[string][]Record // by store
	committed map[string]int      // by store: the end of the committed records
	Err       error               // when set, Log records nothing and returns it
}

var _ state.ChangelogWriter = (*Changelog)(nil)

// NewChangelog returns an empty changelog.
func NewChangelog() *Changelog {
	return &Changelog{Records: map[string][]Record{}, committed: map[string]int{}}
}

// Log appends a record to store's changelog.
func (c *Changelog) Log(store string, key, value []byte, ts time.Time) error {
	if c.Err != nil {
		return c.Err
	}
	r := Record{Key: bytes.Clone(key), Timestamp: ts}
	if value != nil {
		r.Value = append([]byte{}, value...) // non-nil even when empty
	}
	c.Records[store] = append(c.Records[store], r)
	return nil
}

// CommitKafka commits every record logged so far.
func (c *Changelog) CommitKafka() {
	for store, rs := range c.Records {
		c.committed[store] = len(rs)
	}
}

// AbortKafka drops the records logged since the last CommitKafka.
func (c *Changelog) AbortKafka() {
	for store, rs := range c.Records {
		c.Records[store] = rs[:c.committed[store]]
	}
}

// End returns the offset after store's last record: what a checkpoint
// written now would say.
func (c *Changelog) End(store string) int64 { return int64(len(c.Records[store])) }

// Committed returns store's committed records.
func (c *Changelog) Committed(store string) []Record {
	return c.Records[store][:c.committed[store]]
}

// Restore restores sp from its committed changelog records, as the runtime's
// restorer does: from sp's checkpoint (or 0) to the committed end, in chunks
// of at most chunk records, each applied with its checkpoint by
// Engine.Restore. It returns the offset it started from.
func (c *Changelog) Restore(e state.Engine, sp state.StorePartition, chunk int) (int64, error) {
	from, _, err := e.Checkpoint(sp)
	if err != nil {
		return 0, err
	}
	records := c.Committed(sp.Store)
	if from > int64(len(records)) {
		return from, fmt.Errorf("storetest: restore %v: checkpoint %d is past the changelog end %d", sp, from, len(records))
	}
	for off := int(from); off < len(records); off += chunk {
		end := min(off+chunk, len(records))
		batch := make([]state.RestoreRecord, 0, end-off)
		for _, r := range records[off:end] {
			batch = append(batch, state.RestoreRecord{Key: r.Key, Value: r.Value})
		}
		if err := e.Restore(sp, batch, int64(end)); err != nil {
			return from, err
		}
	}
	return from, nil
}

// Fold applies records in order to an empty table: the state a changelog
// prefix describes.
func Fold(records []Record) map[string][]byte {
	m := map[string][]byte{}
	for _, r := range records {
		if r.Value == nil {
			delete(m, string(r.Key))
		} else {
			m[string(r.Key)] = r.Value
		}
	}
	return m
}

// Contents reads every entry of s: its whole state, as a map.
func Contents(s state.KeyValueBytesStore) (map[string][]byte, error) {
	entries, err := drain(s.Range(nil, nil))
	m := make(map[string][]byte, len(entries))
	for _, e := range entries {
		m[string(e.key)] = e.value
	}
	return m, err
}

// Diff describes how got differs from want, or returns "" when they are
// equal (an empty value and a missing one differ). Long values are cut.
func Diff(got, want map[string][]byte) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			fmt.Fprintf(&b, "missing %x=%s; ", k, cut(want[k]))
		case !bytes.Equal(g, want[k]):
			fmt.Fprintf(&b, "%x=%s, want %s; ", k, cut(g), cut(want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "extra %x=%s; ", k, cut(got[k]))
		}
	}
	return b.String()
}

// cut renders v in hex, its first 32 bytes only.
func cut(v []byte) string {
	if len(v) <= 32 {
		return fmt.Sprintf("%x", v)
	}
	return fmt.Sprintf("%x...(%d bytes)", v[:32], len(v))
}

// Clock is a state.TimeSource that tests set by hand. The zero Clock is at
// the zero time.
type Clock struct {
	Record, Stream time.Time
}

var _ state.TimeSource = (*Clock)(nil)

// NewClock returns a Clock with record and stream time at t.
func NewClock(t time.Time) *Clock { return &Clock{Record: t, Stream: t} }

func (c *Clock) RecordTime() time.Time { return c.Record }
func (c *Clock) StreamTime() time.Time { return c.Stream }

// Advance moves stream time forward by d and record time to it.
func (c *Clock) Advance(d time.Duration) {
	c.Stream = c.Stream.Add(d)
	c.Record = c.Stream
}

// Set moves record and stream time to t.
func (c *Clock) Set(t time.Time) { c.Record, c.Stream = t, t }
