package dsl_test

import (
	"testing"
	"time"

	"github.com/gregorstream/gregor/internal/murmur2"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// Helpers of the tests of tables and aggregations.

// upd is one record of a key in a topic: its value and timestamp, or a
// tombstone (Null).
type upd[V any] struct {
	Value V
	Null  bool
	TS    time.Time
}

// val is an update of value v at ts; del a tombstone at ts.
func val[V any](v V, ts time.Time) upd[V] { return upd[V]{Value: v, TS: ts} }
func del[V any](ts time.Time) upd[V]      { return upd[V]{Null: true, TS: ts} }

// vat is a table row: a value with its timestamp.
func vat[V any](v V, ts time.Time) state.ValueAndTimestamp[V] {
	return state.ValueAndTimestamp[V]{Value: v, Timestamp: ts}
}

// backends are the configurations every end-to-end aggregation test runs
// on: each store engine, with one partition per topic and with four.
var backends = []struct {
	name       string
	partitions int
	opts       []streamtest.Option
}{
	{"memory/1", 1, []streamtest.Option{streamtest.Partitions(1)}},
	{"memory/4", 4, []streamtest.Option{streamtest.Partitions(4)}},
	{"pebble/1", 1, []streamtest.Option{streamtest.Pebble(), streamtest.Partitions(1)}},
	{"pebble/4", 4, []streamtest.Option{streamtest.Pebble(), streamtest.Partitions(4)}},
}

// byKey reads every unread record of out and groups them by key, in the
// order they were written.
func byKey[K comparable, V any](t *testing.T, out *streamtest.OutputTopic[K, V]) map[K][]upd[V] {
	t.Helper()
	got := map[K][]upd[V]{}
	for _, r := range readAll(t, out) {
		if r.NullKey {
			t.Errorf("record with a null key in %s: %+v", r.Origin.Topic, r)
			continue
		}
		got[r.Key] = append(got[r.Key], upd[V]{Value: r.Value, Null: r.NullValue, TS: r.Timestamp})
	}
	return got
}

// latest is the table a changelog of updates describes: the last value of
// each key, without the keys whose last update is a tombstone.
func latest[K comparable, V any](updates map[K][]upd[V]) map[K]V {
	out := map[K]V{}
	for k, us := range updates {
		if last := us[len(us)-1]; !last.Null {
			out[k] = last.Value
		}
	}
	return out
}

// changelog reads every unread record of the changelog of a timestamped
// key-value store (application id "streamtest"), grouped by key. It checks
// that each key's records are on the partition Kafka's default partitioner
// gives the key among partitions, the partition of the task that owns it.
func changelog[K comparable, V any](t *testing.T, d *streamtest.Driver, store string, partitions int, keys serde.Serde[K], values serde.Serde[V]) map[K][]upd[state.ValueAndTimestamp[V]] {
	t.Helper()
	topic := state.ChangelogTopic("streamtest", store)
	out := d.OutputTopic(topic, keys, state.TimestampedSerde(values))
	got := map[K][]upd[state.ValueAndTimestamp[V]]{}
	for _, r := range readAll(t, out) {
		if want := partitionOf(t, keys, r.Key, partitions); r.Origin.Partition != want {
			t.Errorf("%s: key %v on partition %d, want %d", topic, r.Key, r.Origin.Partition, want)
		}
		// A changelog record's timestamp is the store's business; the
		// row's own timestamp is in the value.
		got[r.Key] = append(got[r.Key], upd[state.ValueAndTimestamp[V]]{Value: r.Value, Null: r.NullValue})
	}
	return got
}

// logged is what changelog returns for a sequence of rows and tombstones:
// rows as vat values, nil for a tombstone.
func logged[V any](rows ...*state.ValueAndTimestamp[V]) []upd[state.ValueAndTimestamp[V]] {
	out := make([]upd[state.ValueAndTimestamp[V]], len(rows))
	for i, r := range rows {
		if r == nil {
			out[i].Null = true
		} else {
			out[i].Value = *r
		}
	}
	return out
}

// asLogged is what changelog returns for the changelog of a store whose
// updates are want: each update's value and timestamp as the row's.
func asLogged[K comparable, V any](want map[K][]upd[V]) map[K][]upd[state.ValueAndTimestamp[V]] {
	out := map[K][]upd[state.ValueAndTimestamp[V]]{}
	for k, us := range want {
		for _, u := range us {
			out[k] = append(out[k], upd[state.ValueAndTimestamp[V]]{Value: vat(u.Value, u.TS), Null: u.Null})
		}
	}
	return out
}

func row[V any](v V, ts time.Time) *state.ValueAndTimestamp[V] {
	r := vat(v, ts)
	return &r
}

func partitionOf[K any](t *testing.T, keys serde.Serde[K], k K, partitions int) int32 {
	t.Helper()
	kb, err := keys.Serialize("", k)
	if err != nil {
		t.Fatalf("serialize key %v: %v", k, err)
	}
	return murmur2.Partition(kb, int32(partitions))
}

// storeRows reads the rows of a timestamped key-value store from the task
// of every partition, checking that each key lives in the partition its
// key hashes to, and only there.
func storeRows[K comparable, V any](t *testing.T, d *streamtest.Driver, store string, partitions int, keys serde.Serde[K]) map[K]state.ValueAndTimestamp[V] {
	t.Helper()
	rows := map[K]state.ValueAndTimestamp[V]{}
	for p := range partitions {
		s, err := d.Store(store, p)
		if err != nil {
			t.Fatalf("Store(%q, %d): %v", store, p, err)
		}
		kv, ok := s.(*state.TimestampedKeyValueStore[K, V])
		if !ok {
			t.Fatalf("Store(%q, %d) is a %T, not a *state.TimestampedKeyValueStore", store, p, s)
		}
		it := kv.All()
		for it.Next() {
			k := it.Key()
			if _, dup := rows[k]; dup {
				t.Errorf("store %q: key %v in more than one partition", store, k)
			}
			if want := partitionOf(t, keys, k, partitions); int(want) != p {
				t.Errorf("store %q: key %v in partition %d, want %d", store, k, p, want)
			}
			rows[k] = it.Value()
		}
		if err := it.Close(); err != nil {
			t.Fatalf("store %q partition %d: %v", store, p, err)
		}
	}
	return rows
}

// values returns the values of rows, without their timestamps.
func values[K comparable, V any](rows map[K]state.ValueAndTimestamp[V]) map[K]V {
	out := make(map[K]V, len(rows))
	for k, r := range rows {
		out[k] = r.Value
	}
	return out
}

// tombstone is a record with a null value, to pipe to a table.
func tombstone[K, V any](key K, ts time.Time) processor.Record[K, V] {
	return processor.Record[K, V]{Key: key, NullValue: true, Timestamp: ts}
}

// sec is t0 plus n seconds.
func sec(n int) time.Time { return at(time.Duration(n) * time.Second) }
