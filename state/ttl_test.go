package state_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
)

// engineKinds opens a new, empty engine of each kind, closed when the test
// ends, for the tests that run on both.
var engineKinds = []struct {
	name string
	open func(t *testing.T) state.Engine
}{
	{"memory", func(t *testing.T) state.Engine {
		e := memory.NewEngine()
		t.Cleanup(func() { e.Close() })
		return e
	}},
	{"pebble", func(t *testing.T) state.Engine {
		e, err := pebble.Open(t.TempDir(), quiet, pebble.WithMemory(16<<20))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}},
}

// eachEngineAndCache runs f in a subtest for each engine kind, over a new
// engine, and each cache size given.
func eachEngineAndCache(t *testing.T, caches []int, f func(t *testing.T, e state.Engine, cache int)) {
	for _, kind := range engineKinds {
		for _, cache := range caches {
			t.Run(fmt.Sprintf("%s/cache %d", kind.name, cache), func(t *testing.T) {
				f(t, kind.open(t), cache)
			})
		}
	}
}

// ttlStore builds a store "s" with a TTL over a new batch of e, with a
// recording changelog and a hand-set clock.
type ttlStore struct {
	*state.KeyValueStore[string, string]
	batch state.Batch
	log   *storetest.Changelog
	clock *storetest.Clock
}

func newTTLStore(t *testing.T, e state.Engine, ttl time.Duration, opts ...state.Option) ttlStore {
	t.Helper()
	s := ttlStore{batch: e.NewBatch(), log: storetest.NewChangelog(), clock: storetest.NewClock(t0)}
	t.Cleanup(func() { s.batch.Close() })
	opts = append([]state.Option{state.WithTTL(ttl)}, opts...)
	var err error
	s.KeyValueStore, err = state.KeyValue("s", serde.String(), serde.String(), opts...).BuildKeyValue(
		state.BuildContext{ApplicationID: "app", Partition: 0, Batch: s.batch, Changelog: s.log, Time: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTTLExpiresByStreamTime checks when reads stop seeing an entry: once
// stream time reaches its last write plus the TTL, to the millisecond, and
// never because of the wall clock; every write restarts its clock.
func TestTTLExpiresByStreamTime(t *testing.T) {
	const ttl = 10 * time.Second
	ms := time.Millisecond
	eachEngineAndCache(t, []int{0, state.DefaultCacheBytes}, func(t *testing.T, e state.Engine, cache int) {
		s := newTTLStore(t, e, ttl, state.WithCache(cache))
		// reads renders what every kind of read sees.
		reads := func() string {
			var get string
			for _, k := range []string{"a1", "a2", "b"} {
				if v, found, err := s.Get(k); err != nil {
					t.Fatalf("Get(%q): %v", k, err)
				} else if found {
					get += k + "=" + v + " "
				}
			}
			return fmt.Sprintf("get: %s| all: %s| range: %s| reverse: %s| prefix a: %s",
				get, render(s.All()), render(s.Range("a1", "c")), render(s.ReverseAll()), render(s.PrefixScan([]byte("a"))))
		}
		at := func(d time.Duration) { s.clock.Set(t0.Add(d)) }

		// Stream time is 2001: by the wall clock everything would
		// have expired long ago.
		at(0)
		must(t, s.Put("a1", "x"))
		at(2 * time.Second)
		must(t, s.Put("a2", "y"))
		must(t, s.Put("b", "z"))
		steps := []struct {
			at   time.Duration
			do   func()
			want string
		}{
			{ttl - ms, nil, `get: a1=x a2=y b=z | all: "a1"="x" "a2"="y" "b"="z" | range: "a1"="x" "a2"="y" "b"="z" | reverse: "b"="z" "a2"="y" "a1"="x" | prefix a: "a1"="x" "a2"="y" `},
			// Exactly last write + ttl: gone from every read.
			{ttl, nil, `get: a2=y b=z | all: "a2"="y" "b"="z" | range: "a2"="y" "b"="z" | reverse: "b"="z" "a2"="y" | prefix a: "a2"="y" `},
			// An update restarts b's clock; a record time in the
			// past does not matter, stream time does.
			{ttl + time.Second, func() { s.clock.Record = t0; must(t, s.Put("b", "z2")) }, `get: a2=y b=z2 | all: "a2"="y" "b"="z2" | range: "a2"="y" "b"="z2" | reverse: "b"="z2" "a2"="y" | prefix a: "a2"="y" `},
			{2*time.Second + ttl - ms, nil, `get: a2=y b=z2 | all: "a2"="y" "b"="z2" | range: "a2"="y" "b"="z2" | reverse: "b"="z2" "a2"="y" | prefix a: "a2"="y" `},
			{2*time.Second + ttl, nil, `get: b=z2 | all: "b"="z2" | range: "b"="z2" | reverse: "b"="z2" | prefix a: `},
			{2*ttl + time.Second - ms, nil, `get: b=z2 | all: "b"="z2" | range: "b"="z2" | reverse: "b"="z2" | prefix a: `},
			{2*ttl + time.Second, nil, `get: | all: | range: | reverse: | prefix a: `},
			// A new write of an expired key makes it live again.
			{3 * ttl, func() { must(t, s.Put("a1", "again")) }, `get: a1=again | all: "a1"="again" | range: "a1"="again" | reverse: "a1"="again" | prefix a: "a1"="again" `},
		}
		for _, st := range steps {
			at(st.at)
			if st.do != nil {
				st.do()
			}
			if got := reads(); got != st.want {
				t.Errorf("at t0+%v:\n got %s\nwant %s", st.at, got, st.want)
			}
		}
	})
}

// TestTTLSweepLogsTombstones checks that the store's Flush deletes expired
// entries through the changelog, so that a store restored from the
// changelog has them gone too.
func TestTTLSweepLogsTombstones(t *testing.T) {
	const ttl = time.Minute
	eachEngineAndCache(t, []int{0, state.DefaultCacheBytes}, func(t *testing.T, e state.Engine, cache int) {
		s := newTTLStore(t, e, ttl, state.WithCache(cache))
		must(t, s.Put("old", "1"))
		must(t, s.Put("refreshed", "1"))
		s.clock.Set(t0.Add(30 * time.Second))
		must(t, s.Put("refreshed", "2"))
		must(t, s.Put("young", "1"))
		must(t, s.Flush())
		must(t, s.batch.Commit(nil))
		before := len(s.log.Records["s"])

		s.clock.Set(t0.Add(ttl)) // "old" expires
		if _, found, _ := s.Get("old"); found {
			t.Fatal("Get(old) found an expired entry")
		}
		// Reads hide it, but it is still stored until the sweep.
		raw := s.batch.Store(state.StorePartition{Store: "s"})
		if _, found, err := raw.Get([]byte("old")); !found || err != nil {
			t.Fatalf("before the sweep, the batch's Get(old) = %v, %v; want the entry, not yet deleted", found, err)
		}
		var events []string
		if cache > 0 {
			listen(t, s.KeyValueStore, &events)
		}
		must(t, s.Flush())
		// The Flush logged exactly one record: the tombstone of "old";
		// through a cache, it told the flush listener, as of a delete.
		if got := take(&events); cache > 0 && got != "old: null (was 1)" {
			t.Errorf("the sweep told the flush listener %q, want old's delete", got)
		}
		swept := s.log.Records["s"][before:]
		if len(swept) != 1 || string(swept[0].Key) != "old" || swept[0].Value != nil {
			t.Fatalf("the sweep logged %s, want one tombstone for old", records(swept))
		}
		if _, found, err := raw.Get([]byte("old")); found || err != nil {
			t.Fatalf("after the sweep, the batch's Get(old) = %v, %v; want it deleted", found, err)
		}
		s.log.CommitKafka()
		must(t, s.batch.Commit(map[state.StorePartition]int64{{Store: "s"}: s.log.End("s")}))

		// A fresh engine restored from the changelog: "old" is gone,
		// the others read back.
		fresh := memory.NewEngine()
		defer fresh.Close()
		if _, err := s.log.Restore(fresh, state.StorePartition{Store: "s"}, 2); err != nil {
			t.Fatal(err)
		}
		got, err := storetest.Contents(fresh.Reader(state.StorePartition{Store: "s"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got["old"]; ok || len(got) != 2 {
			t.Fatalf("restored store holds %q, want refreshed and young only", keysOfMap(got))
		}
		b := fresh.NewBatch()
		defer b.Close()
		restored, err := state.KeyValue("s", serde.String(), serde.String(), state.WithTTL(ttl)).BuildKeyValue(
			state.BuildContext{Batch: b, Time: s.clock})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := render(restored.All()), `"refreshed"="2" "young"="1" `; got != want {
			t.Fatalf("restored typed store: %s, want %s", got, want)
		}
		// The restored entries keep the time of their last write:
		// they expire when they would have in the first store.
		s.clock.Set(t0.Add(30*time.Second + ttl))
		if got := render(restored.All()); got != "" {
			t.Fatalf("restored typed store at t0+30s+ttl: %s, want nothing", got)
		}
	})
}

// TestTTLSweepLargeStore checks that a store larger than the sweep's bound
// per Flush is swept whole over several Flushes, each examining at most
// 10,000 entries, and that live entries survive.
func TestTTLSweepLargeStore(t *testing.T) {
	if testing.Short() {
		t.Skip("15,000 entries")
	}
	const (
		n   = 15_000
		ttl = time.Minute
	)
	for _, cache := range []int{0, state.DefaultCacheBytes} {
		t.Run(fmt.Sprintf("cache %d", cache), func(t *testing.T) {
			e := memory.NewEngine()
			defer e.Close()
			s := newTTLStore(t, e, ttl, state.WithCache(cache))
			// Every fifth key is written late and stays live.
			for i := range n {
				if i%5 != 0 {
					must(t, s.Put(fmt.Sprintf("k%05d", i), "v"))
				}
			}
			s.clock.Set(t0.Add(ttl / 2))
			for i := 0; i < n; i += 5 {
				must(t, s.Put(fmt.Sprintf("k%05d", i), "v"))
			}
			// This Flush sweeps too: it examines the first 10,000 entries,
			// none expired yet, and leaves the cursor at k10000.
			must(t, s.Flush())
			must(t, s.batch.Commit(nil))
			s.clock.Set(t0.Add(ttl)) // 12,000 entries expire

			// Each Flush examines the next 10,000 entries (4 in 5 of them
			// expired) from where the last one stopped, and starts over
			// after the end.
			for flush, want := range []struct {
				n           int
				first, last string
			}{
				{4_000, "k10001", "k14999"}, // the end: the next one starts over
				{8_000, "k00001", "k09999"},
				{0, "", ""}, // k10000 on: what is left is live
			} {
				before := len(s.log.Records["s"])
				must(t, s.Flush())
				swept := s.log.Records["s"][before:]
				var first, last string
				if len(swept) > 0 {
					first, last = string(swept[0].Key), string(swept[len(swept)-1].Key)
				}
				if len(swept) != want.n || first != want.first || last != want.last {
					t.Fatalf("flush %d logged %d records, %s to %s; want %d tombstones, %s to %s",
						flush+1, len(swept), first, last, want.n, want.first, want.last)
				}
				for _, r := range swept {
					if r.Value != nil {
						t.Fatalf("flush %d logged %q=%q, want only tombstones", flush+1, r.Key, r.Value)
					}
				}
			}
			if count, err := s.ApproximateCount(); err != nil || count != n/5 {
				t.Fatalf("ApproximateCount after the sweeps = %d, %v; want %d live entries", count, err, n/5)
			}
			it := s.All()
			for i := 0; it.Next(); i += 5 {
				if it.Key() != fmt.Sprintf("k%05d", i) {
					t.Fatalf("live entry %q, want k%05d", it.Key(), i)
				}
			}
			must(t, it.Close())
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func records(rs []storetest.Record) string {
	out := "["
	for i, r := range rs {
		if i > 0 {
			out += " "
		}
		if r.Value == nil {
			out += fmt.Sprintf("%q=nil", r.Key)
		} else {
			out += fmt.Sprintf("%q=%q", r.Key, r.Value)
		}
	}
	return out + "]"
}

func keysOfMap(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
