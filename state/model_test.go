package state_test

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/pebble"
)

// Helpers shared by the property tests of the layered stores: a spec that
// builds a typed store with chosen layers, and a model of what its reads
// must return.

// quiet keeps pebble's messages out of the test output unless they are errors.
var quiet = pebble.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

// t0 is the stream time tests start at: far from the wall clock, so that a
// store that expired by the wall clock would expire everything at once.
var t0 = time.UnixMilli(1_000_000_000_000) // 2001-09-09

// storeSpec chooses the layers of a typed KeyValueStore[string, string].
type storeSpec struct {
	name     string
	cache    int // WithCache; 0: no cache
	ttl      time.Duration
	unlogged bool
}

func (s storeSpec) String() string {
	return fmt.Sprintf("%s(cache %d, ttl %v, logged %v)", s.name, s.cache, s.ttl, !s.unlogged)
}

func (s storeSpec) options() []state.Option {
	opts := []state.Option{state.WithCache(s.cache)}
	if s.ttl > 0 {
		opts = append(opts, state.WithTTL(s.ttl))
	}
	if s.unlogged {
		opts = append(opts, state.WithoutLogging())
	}
	return opts
}

func (s storeSpec) build(ctx state.BuildContext) (*state.KeyValueStore[string, string], error) {
	return state.KeyValue(s.name, serde.String(), serde.String(), s.options()...).BuildKeyValue(ctx)
}

// drawSpec draws the layers of a store called name: no cache, a cache of
// one or two entries (evictions at almost every write), or a large one;
// with or without a TTL.
func drawSpec(t *rapid.T, name string) storeSpec {
	return storeSpec{
		name:  name,
		cache: rapid.SampledFrom([]int{0, 200, 1 << 20}).Draw(t, name+" cache"),
		ttl:   rapid.SampledFrom([]time.Duration{0, 5 * time.Second}).Draw(t, name+" ttl"),
	}
}

// Keys share prefixes, and include the empty key and a 0xFF byte.
var (
	modelKeys = []string{"", "a", "ab", "abc", "b", "ba", "c", "c\xff"}
	drawKey   = rapid.SampledFrom(modelKeys)
	drawValue = rapid.StringOfN(rapid.RuneFrom([]rune("xyz")), 0, 24, -1)
	drawBound = rapid.SampledFrom(append(slices.Clone(modelKeys), "aa", "bb", "d"))
	// drawAdvance moves stream time by steps that often land exactly on
	// an entry's expiry (the TTLs are 5s).
	drawAdvance = rapid.SampledFrom([]time.Duration{time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second})
)

// row is a key's value in a table, with the stream time of its last write.
type row struct {
	value   string
	written time.Time
}

// table models a typed KeyValueStore[string, string] with an optional TTL.
type table struct {
	rows map[string]row
	ttl  time.Duration
}

func newTable(ttl time.Duration) table { return table{rows: map[string]row{}, ttl: ttl} }

func (m table) put(k, v string, now time.Time) { m.rows[k] = row{v, now} }
func (m table) delete(k string)                { delete(m.rows, k) }
func (m table) clone() table                   { return table{rows: maps.Clone(m.rows), ttl: m.ttl} }

// visible returns the entries a read at stream time now sees: an entry
// expires once now >= its last write + ttl.
func (m table) visible(now time.Time) map[string]string {
	out := map[string]string{}
	for k, r := range m.rows {
		if m.ttl == 0 || now.Sub(r.written) < m.ttl {
			out[k] = r.value
		}
	}
	return out
}

// get returns what Get(k) must return at stream time now.
func (m table) get(k string, now time.Time) (string, bool) {
	v, ok := m.visible(now)[k]
	return v, ok
}

// scan returns the visible entries whose keys satisfy in, in byte order,
// rendered as "k=v k=v"; reverse renders them in descending order.
func (m table) scan(now time.Time, in func(k string) bool, reverse bool) string {
	vis := m.visible(now)
	keys := slices.Sorted(maps.Keys(vis)) // Go sorts strings by bytes
	if reverse {
		slices.Reverse(keys)
	}
	var b strings.Builder
	for _, k := range keys {
		if in(k) {
			fmt.Fprintf(&b, "%q=%q ", k, vis[k])
		}
	}
	return b.String()
}

// render drains a typed iterator as "k=v k=v", then its error, if any.
func render(it *state.KeyValueIterator[string, string]) string {
	var b strings.Builder
	for it.Next() {
		fmt.Fprintf(&b, "%q=%q ", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		fmt.Fprintf(&b, "error: %v", err)
	}
	return b.String()
}

// renderMap renders m as render does an ascending iterator.
func renderMap(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%q=%q ", k, m[k])
	}
	return b.String()
}
