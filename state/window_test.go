package state_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
	"github.com/gregorstream/gregor/windows"
)

// Keys chosen to trip a layout that does not keep key bytes apart from the
// times after them: prefixes of each other, zero bytes, the empty key.
var windowKeys = []string{"", "a", "a\x00", "a\x00b", "a\xff", "ab", "b"}

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

type wkey struct {
	key   string
	start int64
}

// windowModel is what a window store must show: per key and start a value,
// with everything older than the retention before the largest start put
// invisible.
type windowModel struct {
	entries   map[wkey]string
	observed  int64
	seen      bool
	retention int64
}

func (m *windowModel) live(start int64) bool { return !m.seen || start >= m.observed-m.retention+1 }

func (m *windowModel) put(k string, start int64, v string) {
	if !m.seen || start > m.observed {
		m.observed, m.seen = start, true
	}
	if m.live(start) {
		m.entries[wkey{k, start}] = v
	}
}

// fetch lists, in the store's order (key bytes, then start), the live
// entries accepted by keep.
func (m *windowModel) fetch(keep func(wkey) bool) []string {
	var ks []wkey
	for k := range m.entries {
		if m.live(k.start) && keep(k) {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(a, b wkey) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.start - b.start)
	})
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = fmt.Sprintf("%q@%d=%s", k.key, k.start, m.entries[k])
	}
	return out
}

func drainWindows(t *rapid.T, it *state.WindowIterator[string, string], size int64) []string {
	t.Helper()
	var out []string
	for it.Next() {
		k := it.Key()
		if got := k.Window.End.Sub(k.Window.Start); got != time.Duration(size)*time.Millisecond {
			t.Fatalf("window %v of %q has size %v, want %dms", k.Window, k.Key, got, size)
		}
		out = append(out, fmt.Sprintf("%q@%d=%s", k.Key, k.Window.Start.UnixMilli(), it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// byStart orders fetch results of one key the way a segment-crossing
// backward fetch returns them.
func reversed(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }

// TestWindowStoreModel drives a window store, on memory and pebble, with and
// without a record cache, through random puts, deletes, reads, fetches,
// commits and restarts (the store-partition dropped and restored from its
// changelog), and checks every read against a model with retention.
func TestWindowStoreModel(t *testing.T) {
	pe, err := pebble.Open(t.TempDir(), quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer pe.Close()
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		const size, retention = 10, 100
		engines := map[string]state.Engine{"memory": memory.NewEngine(), "pebble": pe}
		defer engines["memory"].Close()
		cache := rapid.SampledFrom([]int{0, 200, 1 << 20}).Draw(t, "cache")
		name := fmt.Sprintf("w%d", run)
		b := state.Window(name, serde.String(), serde.String(), size*time.Millisecond,
			state.WithRetention(retention*time.Millisecond), state.WithSegmentInterval(30*time.Millisecond), state.WithCache(cache))
		if got := b.ChangelogConfig(); got["cleanup.policy"] != "compact,delete" || got["retention.ms"] != fmt.Sprint(retention+24*3600*1000) {
			t.Fatalf("changelog config %v", got)
		}
		type side struct {
			engine state.Engine
			batch  state.Batch
			log    *storetest.Changelog
			store  *state.WindowStore[string, string]
		}
		sp := state.StorePartition{Store: name}
		clock := storetest.NewClock(ms(0))
		sides := map[string]*side{}
		for n, e := range engines {
			s := &side{engine: e, batch: e.NewBatch(), log: storetest.NewChangelog()}
			defer s.batch.Close()
			sides[n] = s
		}
		open := func(s *side) {
			st, err := b.BuildWindow(state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: s.batch, Changelog: s.log, Time: clock})
			if err != nil {
				t.Fatal(err)
			}
			s.store = st
		}
		for _, s := range sides {
			open(s)
		}
		m := &windowModel{entries: map[wkey]string{}, retention: retention}
		drawKey := rapid.SampledFrom(windowKeys)
		drawStart := rapid.Int64Range(0, 400)
		check := func(t *rapid.T, what string, want []string, f func(s *side) []string) {
			t.Helper()
			for n, s := range sides {
				if got := f(s); !slices.Equal(got, want) {
					t.Fatalf("%s on %s:\n got %q\nwant %q", what, n, got, want)
				}
			}
		}
		commit := func(t *rapid.T) {
			for n, s := range sides {
				if err := s.store.Flush(); err != nil {
					t.Fatalf("flush on %s: %v", n, err)
				}
				s.log.CommitKafka()
				if err := s.batch.Commit(map[state.StorePartition]int64{sp: s.log.End(name)}); err != nil {
					t.Fatalf("commit on %s: %v", n, err)
				}
			}
		}
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				k, st, v := drawKey.Draw(t, "key"), drawStart.Draw(t, "start"), rapid.StringMatching(`[a-z]{1,3}`).Draw(t, "value")
				clock.Set(ms(st))
				m.put(k, st, v)
				for n, s := range sides {
					if err := s.store.Put(k, v, ms(st)); err != nil {
						t.Fatalf("put on %s: %v", n, err)
					}
				}
			},
			"delete": func(t *rapid.T) {
				k, st := drawKey.Draw(t, "key"), drawStart.Draw(t, "start")
				delete(m.entries, wkey{k, st})
				for n, s := range sides {
					if err := s.store.Delete(k, ms(st)); err != nil {
						t.Fatalf("delete on %s: %v", n, err)
					}
				}
			},
			"get": func(t *rapid.T) {
				k, st := drawKey.Draw(t, "key"), drawStart.Draw(t, "start")
				want := m.fetch(func(w wkey) bool { return w == wkey{k, st} })
				check(t, fmt.Sprintf("Get(%q, %d)", k, st), want, func(s *side) []string {
					v, ok, err := s.store.Get(k, ms(st))
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						return nil
					}
					return []string{fmt.Sprintf("%q@%d=%s", k, st, v)}
				})
			},
			"fetch": func(t *rapid.T) {
				k, from, to := drawKey.Draw(t, "key"), drawStart.Draw(t, "from"), drawStart.Draw(t, "to")
				want := m.fetch(func(w wkey) bool { return w.key == k && w.start >= from && w.start <= to })
				check(t, fmt.Sprintf("Fetch(%q, %d, %d)", k, from, to), want, func(s *side) []string {
					return drainWindows(t, s.store.Fetch(k, ms(from), ms(to)), size)
				})
				check(t, fmt.Sprintf("BackwardFetch(%q, %d, %d)", k, from, to), reversed(want), func(s *side) []string {
					return drainWindows(t, s.store.BackwardFetch(k, ms(from), ms(to)), size)
				})
			},
			"fetchAll": func(t *rapid.T) {
				from, to := drawStart.Draw(t, "from"), drawStart.Draw(t, "to")
				want := m.fetch(func(w wkey) bool { return w.start >= from && w.start <= to })
				check(t, fmt.Sprintf("FetchAll(%d, %d)", from, to), want, func(s *side) []string {
					got := drainWindows(t, s.store.FetchAll(ms(from), ms(to)), size)
					// FetchAll goes segment by segment: within the time
					// range the order is by segment first. Compare as sets
					// in the model's order.
					return sortedLike(got)
				})
			},
			"fetchRange": func(t *rapid.T) {
				lo, hi := drawKey.Draw(t, "lo"), drawKey.Draw(t, "hi")
				from, to := drawStart.Draw(t, "from"), drawStart.Draw(t, "to")
				want := m.fetch(func(w wkey) bool {
					return w.key >= lo && w.key <= hi && w.start >= from && w.start <= to
				})
				check(t, fmt.Sprintf("FetchRange(%q, %q, %d, %d)", lo, hi, from, to), want, func(s *side) []string {
					return sortedLike(drainWindows(t, s.store.FetchRange(lo, hi, ms(from), ms(to)), size))
				})
			},
			"commit": commit,
			"restart": func(t *rapid.T) {
				commit(t)
				for n, s := range sides {
					if err := s.engine.Drop(sp); err != nil {
						t.Fatalf("drop on %s: %v", n, err)
					}
					if _, err := s.log.Restore(s.engine, sp, 7); err != nil {
						t.Fatalf("restore on %s: %v", n, err)
					}
					open(s)
					got, ok, err := s.store.ObservedStreamTime()
					if err != nil || ok != m.seen || ok && got.UnixMilli() != m.observed {
						t.Fatalf("restored observed stream time on %s: %v %v %v, want %d %v", n, got, ok, err, m.observed, m.seen)
					}
				}
			},
			"": func(t *rapid.T) {
				want := m.fetch(func(wkey) bool { return true })
				check(t, "All()", want, func(s *side) []string { return sortedLike(drainWindows(t, s.store.All(), size)) })
			},
		})
	})
}

// sortedLike sorts formatted entries as windowModel.fetch orders them.
func sortedLike(s []string) []string {
	type e struct {
		key   string
		start int64
		s     string
	}
	es := make([]e, len(s))
	for i, x := range s {
		at := strings.LastIndex(x, "@")
		var k string
		fmt.Sscanf(x[:at], "%q", &k)
		var st int64
		fmt.Sscanf(x[at+1:], "%d", &st)
		es[i] = e{k, st, x}
	}
	slices.SortStableFunc(es, func(a, b e) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return int(a.start - b.start)
	})
	out := make([]string, len(es))
	for i, x := range es {
		out[i] = x.s
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// TestWindowStoreExpiryDropsSegments checks that windows past retention
// leave the engine, not only the reads: after a commit, the committed state
// holds no key of a dropped segment, on both engines.
func TestWindowStoreExpiryDropsSegments(t *testing.T) {
	pe, err := pebble.Open(t.TempDir(), quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer pe.Close()
	for name, e := range map[string]state.Engine{"memory": memory.NewEngine(), "pebble": pe} {
		t.Run(name, func(t *testing.T) {
			b := state.Window("expiry", serde.String(), serde.Int64(), time.Minute,
				state.WithRetention(2*time.Minute), state.WithSegmentInterval(time.Minute))
			batch := e.NewBatch()
			defer batch.Close()
			log := storetest.NewChangelog()
			s, err := b.BuildWindow(state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: batch, Changelog: log, Time: storetest.NewClock(ms(0))})
			if err != nil {
				t.Fatal(err)
			}
			sp := state.StorePartition{Store: "expiry"}
			commit := func() {
				t.Helper()
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
				log.CommitKafka()
				if err := batch.Commit(map[state.StorePartition]int64{sp: log.End("expiry")}); err != nil {
					t.Fatal(err)
				}
			}
			for minute := int64(0); minute < 10; minute++ {
				for k := range 100 {
					if err := s.Put(fmt.Sprintf("k%03d", k), minute, ms(minute*60_000)); err != nil {
						t.Fatal(err)
					}
				}
				commit()
			}
			// Observed stream time is minute 9: minutes 8 and 9 are live
			// (retention 2m: starts after 9m - 2m). Segment 7 holds the
			// expired minute 7 but also times after it that are live, so
			// it stays, its entries invisible; segments 0..6 went.
			contents, err := storetest.Contents(e.Reader(sp))
			if err != nil {
				t.Fatal(err)
			}
			entries := 0
			for k := range contents {
				if k[0] == 0xFF { // metadata
					continue
				}
				entries++
				if seg := int64(k[7]); seg < 7 {
					t.Errorf("committed state still holds key %x of expired segment %d", k, seg)
				}
			}
			if entries != 300 {
				t.Errorf("committed state holds %d windows, want 300 (segments 7 to 9 of 100 keys)", entries)
			}
			it := s.Fetch("k007", ms(0), ms(10*60_000))
			var starts []int64
			for it.Next() {
				starts = append(starts, it.Key().Window.Start.UnixMilli()/60_000)
			}
			if err := it.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(starts, []int64{8, 9}) {
				t.Errorf("fetch of k007 over every minute: %v, want [8 9]", starts)
			}
			// The committed state reads the same through a reader view, as
			// interactive queries do.
			r, err := b.Open(e.Reader(sp), "app-expiry-changelog")
			if err != nil {
				t.Fatal(err)
			}
			v, ok, err := r.Get("k007", ms(9*60_000))
			if err != nil || !ok || v != 9 {
				t.Errorf("reader Get = %v %v %v, want 9", v, ok, err)
			}
			if _, ok, _ := r.Get("k007", ms(0)); ok {
				t.Error("reader sees an expired window")
			}
		})
	}
}

func TestWindowBuilderValidation(t *testing.T) {
	ctx := state.BuildContext{TaskID: "0_0", Batch: memory.NewEngine().NewBatch()}
	for _, tc := range []struct {
		what string
		b    *state.WindowBuilder[string, string]
	}{
		{"empty name", state.Window("", serde.String(), serde.String(), time.Second)},
		{"nil serde", state.Window[string, string]("w", nil, serde.String(), time.Second)},
		{"zero size", state.Window("w", serde.String(), serde.String(), 0)},
		{"retention below size", state.Window("w", serde.String(), serde.String(), time.Minute, state.WithRetention(time.Second))},
		{"ttl", state.Window("w", serde.String(), serde.String(), time.Minute, state.WithTTL(time.Hour))},
	} {
		if _, err := tc.b.Build(ctx); !errors.Is(err, state.ErrInvalidBuilder) {
			t.Errorf("%s: Build error %v, want ErrInvalidBuilder", tc.what, err)
		}
	}
	if _, err := state.Session("s", serde.String(), serde.String()).Build(ctx); !errors.Is(err, state.ErrInvalidBuilder) {
		t.Errorf("session store without retention: %v, want ErrInvalidBuilder", err)
	}
}

// TestSessionStore checks the session store's finds, on both engines, with
// and without a cache, and across a restore.
func TestSessionStore(t *testing.T) {
	pe, err := pebble.Open(t.TempDir(), quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer pe.Close()
	for _, cache := range []int{0, 1 << 20} {
		for name, e := range map[string]state.Engine{"memory": memory.NewEngine(), "pebble": pe} {
			t.Run(fmt.Sprintf("%s/cache=%d", name, cache), func(t *testing.T) {
				store := fmt.Sprintf("sessions-%d", cache)
				b := state.Session(store, serde.String(), serde.Int64(), state.WithRetention(100*time.Millisecond),
					state.WithSegmentInterval(20*time.Millisecond), state.WithCache(cache))
				batch := e.NewBatch()
				defer batch.Close()
				log := storetest.NewChangelog()
				ctx := state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: batch, Changelog: log, Time: storetest.NewClock(ms(0))}
				s, err := b.BuildSession(ctx)
				if err != nil {
					t.Fatal(err)
				}
				sess := func(k string, start, end int64) windows.Windowed[string] {
					return windows.Windowed[string]{Key: k, Window: windows.Window{Start: ms(start), End: ms(end)}}
				}
				for _, p := range []struct {
					k          string
					start, end int64
				}{{"a", 0, 5}, {"a", 10, 30}, {"a", 50, 50}, {"a\x00", 12, 14}, {"b", 20, 45}, {"", 1, 2}} {
					if err := s.Put(sess(p.k, p.start, p.end), p.end-p.start); err != nil {
						t.Fatal(err)
					}
				}
				find := func(it *state.SessionIterator[string, int64]) string {
					t.Helper()
					var out []string
					for it.Next() {
						out = append(out, fmt.Sprintf("%q%v=%d", it.Key().Key, it.Key().Window, it.Value()))
					}
					if err := it.Close(); err != nil {
						t.Fatal(err)
					}
					return strings.Join(out, " ")
				}
				for _, tc := range []struct {
					what string
					it   func() *state.SessionIterator[string, int64]
					want string
				}{
					// Sessions of "a" a record at 27 with a gap of 5 merges
					// with: those ending at or after 22 and starting at or
					// before 32.
					{"find a 22..32", func() *state.SessionIterator[string, int64] { return s.FindSessions("a", ms(22), ms(32)) }, `"a"[10,30)=20`},
					{"find a 0..100", func() *state.SessionIterator[string, int64] { return s.FindSessions("a", ms(0), ms(100)) }, `"a"[0,5)=5 "a"[10,30)=20 "a"[50,50)=0`},
					{"backward a", func() *state.SessionIterator[string, int64] { return s.BackwardFindSessions("a", ms(0), ms(100)) }, `"a"[50,50)=0 "a"[10,30)=20 "a"[0,5)=5`},
					{"find a\\x00", func() *state.SessionIterator[string, int64] { return s.Fetch("a\x00") }, `"a\x00"[12,14)=2`},
					{"find empty key", func() *state.SessionIterator[string, int64] { return s.Fetch("") }, `""[1,2)=1`},
					// By segment of their end (20 ms each), then key.
					{"ending 10..45", func() *state.SessionIterator[string, int64] { return s.SessionsEndingBetween(ms(10), ms(45)) }, `"a\x00"[12,14)=2 "a"[10,30)=20 "b"[20,45)=25`},
				} {
					if got := find(tc.it()); got != tc.want {
						t.Errorf("%s: %s, want %s", tc.what, got, tc.want)
					}
				}
				if err := s.Remove(sess("a", 10, 30)); err != nil {
					t.Fatal(err)
				}
				if _, ok, _ := s.FetchSession("a", ms(10), ms(30)); ok {
					t.Error("removed session still there")
				}
				if v, ok, _ := s.FetchSession("b", ms(20), ms(45)); !ok || v != 25 {
					t.Errorf("FetchSession b = %d %v", v, ok)
				}
				// A session ending at 200 moves stream time: everything that
				// ended before 101 expires.
				if err := s.Put(sess("c", 190, 200), 10); err != nil {
					t.Fatal(err)
				}
				if got := find(s.All()); got != `"c"[190,200)=10` {
					t.Errorf("after expiry: %s", got)
				}
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
				log.CommitKafka()
				sp := state.StorePartition{Store: store}
				if err := batch.Commit(map[state.StorePartition]int64{sp: log.End(store)}); err != nil {
					t.Fatal(err)
				}
				if err := e.Drop(sp); err != nil {
					t.Fatal(err)
				}
				if _, err := log.Restore(e, sp, 3); err != nil {
					t.Fatal(err)
				}
				r, err := b.BuildSession(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := find(r.All()); got != `"c"[190,200)=10` {
					t.Errorf("restored: %s", got)
				}
			})
		}
	}
}
