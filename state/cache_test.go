package state_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
)

// task is a store built as a task builds it: in a batch of a memory
// engine, with a recording changelog and a hand-set clock.
type task struct {
	engine state.Engine
	batch  state.Batch
	log    *storetest.Changelog
	clock  *storetest.Clock
}

func newTask(t *testing.T) *task {
	t.Helper()
	e := memory.NewEngine()
	k := &task{engine: e, batch: e.NewBatch(), log: storetest.NewChangelog(), clock: storetest.NewClock(t0)}
	t.Cleanup(func() {
		k.batch.Close()
		e.Close()
	})
	return k
}

func (k *task) ctx() state.BuildContext {
	return state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: k.batch, Changelog: k.log, Time: k.clock}
}

// take returns the changelog records of store s logged since the last
// take, rendered, and forgets them.
func (k *task) take(s string) string {
	rs := k.log.Records[s]
	k.log.Records[s] = nil
	return records(rs)
}

// listen sets a flush listener on s that renders every call into events.
func listen[V any](t *testing.T, s *state.KeyValueStore[string, V], events *[]string) {
	t.Helper()
	if !s.SetFlushListener(func(key string, nv, ov V, newNull, oldNull bool, _ time.Time) error {
		ev := key + ": "
		if newNull {
			ev += "null"
		} else {
			ev += short(nv)
		}
		if oldNull {
			ev += " (was null)"
		} else {
			ev += " (was " + short(ov) + ")"
		}
		*events = append(*events, ev)
		return nil
	}) {
		t.Fatal("SetFlushListener = false on a cached store")
	}
}

// short renders a value up to its first '.', the padding of big values.
func short(v any) string {
	s := fmt.Sprint(v)
	s, _, _ = strings.Cut(s, ".")
	return s
}

// take returns and clears the events.
func take(events *[]string) string {
	out := strings.Join(*events, ", ")
	*events = nil
	return out
}

// TestCacheCoalescesWrites checks that the writes of a key between flushes
// reach the changelog and the flush listener once, with the last value and
// the value it replaces.
func TestCacheCoalescesWrites(t *testing.T) {
	k := newTask(t)
	s, err := state.KeyValue("s", serde.String(), serde.String()).BuildKeyValue(k.ctx())
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	listen(t, s, &events)

	steps := []struct {
		name          string
		do            func()
		log, listened string // after the step's Flush
	}{
		{"first interval", func() {
			must(t, s.Put("k", "1"))
			must(t, s.Put("k", "2"))
			must(t, s.Put("j", "x"))
			must(t, s.Put("k", "3"))
		}, `["k"="3" "j"="x"]`, `k: 3 (was null), j: x (was null)`},
		{"update", func() {
			must(t, s.Put("k", "4"))
			must(t, s.Put("k", "5"))
		}, `["k"="5"]`, `k: 5 (was 3)`},
		{"delete a cached key", func() {
			must(t, s.Delete("k"))
			if _, found, err := s.Get("k"); found || err != nil {
				t.Errorf("Get(k) after Delete = %v, %v", found, err)
			}
		}, `["k"=nil]`, `k: null (was 5)`},
		{"delete then put", func() {
			must(t, s.Delete("j"))
			must(t, s.Put("j", "y"))
		}, `["j"="y"]`, `j: y (was x)`},
		{"nothing written", func() {}, `[]`, ``},
		{"only reads", func() {
			s.Get("j")
			s.Get("absent")
		}, `[]`, ``},
	}
	for _, st := range steps {
		st.do()
		if got := k.take("s"); got != "[]" {
			t.Errorf("%s: logged %s before the Flush, want nothing", st.name, got)
		}
		if got := take(&events); got != "" {
			t.Errorf("%s: flush listener got %s before the Flush, want nothing", st.name, got)
		}
		must(t, s.Flush())
		if got := k.take("s"); got != st.log {
			t.Errorf("%s: the Flush logged %s, want %s", st.name, got, st.log)
		}
		if got := take(&events); got != st.listened {
			t.Errorf("%s: the Flush told the listener %s, want %s", st.name, got, st.listened)
		}
	}

	// A key put then deleted in one interval, absent below: nothing to
	// tell downstream, and no value on the changelog.
	must(t, s.Put("n", "1"))
	must(t, s.Delete("n"))
	must(t, s.Flush())
	if got := take(&events); got != "" {
		t.Errorf("put then delete of a new key: the listener got %s, want nothing", got)
	}
	for _, r := range k.log.Records["s"] {
		if r.Value != nil {
			t.Errorf("put then delete of a new key logged %q=%q", r.Key, r.Value)
		}
	}
}

// TestCacheEviction checks that a full cache writes its dirty entries down
// in least-recently-used order, through the changelog and the flush
// listener, and drops clean ones silently.
func TestCacheEviction(t *testing.T) {
	// Values of 2,000 bytes and a cache of 7,500: three entries fit, four
	// do not, whatever the per-entry overhead (up to ~400 bytes).
	val := func(tag string) string { return tag + strings.Repeat(".", 2000-len(tag)) }
	k := newTask(t)
	s, err := state.KeyValue("s", serde.String(), serde.String(), state.WithCache(7500)).BuildKeyValue(k.ctx())
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	listen(t, s, &events)
	logged := func() string {
		var out []string
		for _, r := range k.log.Records["s"] {
			if r.Value == nil {
				out = append(out, string(r.Key)+"=nil")
			} else {
				out = append(out, string(r.Key)+"="+short(string(r.Value)))
			}
		}
		k.log.Records["s"] = nil
		return strings.Join(out, " ")
	}

	steps := []struct {
		name          string
		do            func()
		log, listened string
	}{
		{"three fit", func() {
			must(t, s.Put("k1", val("v1")))
			must(t, s.Put("k2", val("v2")))
			must(t, s.Put("k3", val("v3")))
		}, "", ""},
		{"a fourth evicts the least recently used, k1 read since", func() {
			if v, found, err := s.Get("k1"); !found || err != nil || short(v) != "v1" {
				t.Fatalf("Get(k1) = %s, %v, %v", short(v), found, err)
			}
			must(t, s.Put("k4", val("v4")))
		}, "k2=v2", "k2: v2 (was null)"},
		{"a fifth", func() { must(t, s.Put("k5", val("v5"))) }, "k3=v3", "k3: v3 (was null)"},
		{"an update of a cached key evicts nothing", func() { must(t, s.Put("k1", val("v1b"))) }, "", ""},
		{"flush: the dirty entries in the order they became dirty", func() { must(t, s.Flush()) },
			"k1=v1b k4=v4 k5=v5", "k1: v1b (was null), k4: v4 (was null), k5: v5 (was null)"},
		{"clean entries are dropped silently", func() {
			must(t, s.Put("k2", val("v2b")))
			must(t, s.Put("k3", val("v3b")))
			must(t, s.Put("k6", val("v6")))
		}, "", ""},
		{"an evicted update reports the value below", func() { must(t, s.Put("k7", val("v7"))) }, "k2=v2b", "k2: v2b (was v2)"},
		{"a delete of a cached key", func() {
			must(t, s.Delete("k3"))
			if _, found, err := s.Get("k3"); found || err != nil {
				t.Fatalf("Get(k3) after Delete = %v, %v", found, err)
			}
			must(t, s.Flush())
		}, "k3=nil k6=v6 k7=v7", "k3: null (was v3), k6: v6 (was null), k7: v7 (was null)"},
	}
	for _, st := range steps {
		st.do()
		if got := logged(); got != st.log {
			t.Errorf("%s: logged %q, want %q", st.name, got, st.log)
		}
		if got := take(&events); got != st.listened {
			t.Errorf("%s: the listener got %q, want %q", st.name, got, st.listened)
		}
	}
	// Every write reached the batch, evicted or flushed.
	must(t, k.batch.Commit(nil))
	raw, err := storetest.Contents(k.engine.Reader(state.StorePartition{Store: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, key := range slices.Sorted(maps.Keys(raw)) {
		got = append(got, key+"="+short(string(raw[key])))
	}
	if want := "k1=v1b k2=v2b k4=v4 k5=v5 k6=v6 k7=v7"; strings.Join(got, " ") != want {
		t.Errorf("committed %s, want %s", strings.Join(got, " "), want)
	}
}

// TestCacheScansSeeDirtyWrites checks that range queries of a cached store
// see its dirty writes, and a dirty delete of a key stored below, without
// flushing: a scan logs nothing, tells the flush listener nothing, and
// leaves the entries dirty for the next Flush, in the order they became
// dirty.
func TestCacheScansSeeDirtyWrites(t *testing.T) {
	scans := []struct {
		name string
		scan func(s *state.KeyValueStore[string, string]) *state.KeyValueIterator[string, string]
		want string
	}{
		{"All", (*state.KeyValueStore[string, string]).All, `"a"="1" "ab"="2" "b"="3" "c"="below" `},
		{"ReverseAll", (*state.KeyValueStore[string, string]).ReverseAll, `"c"="below" "b"="3" "ab"="2" "a"="1" `},
		{"Range", func(s *state.KeyValueStore[string, string]) *state.KeyValueIterator[string, string] {
			return s.Range("a", "b")
		}, `"a"="1" "ab"="2" `},
		{"ReverseRange", func(s *state.KeyValueStore[string, string]) *state.KeyValueIterator[string, string] {
			return s.ReverseRange("ab", "c")
		}, `"b"="3" "ab"="2" `},
		{"PrefixScan", func(s *state.KeyValueStore[string, string]) *state.KeyValueIterator[string, string] {
			return s.PrefixScan([]byte("a"))
		}, `"a"="1" "ab"="2" `},
		{"PrefixScan of everything", func(s *state.KeyValueStore[string, string]) *state.KeyValueIterator[string, string] {
			return s.PrefixScan(nil)
		}, `"a"="1" "ab"="2" "b"="3" "c"="below" `},
	}
	for _, sc := range scans {
		t.Run(sc.name, func(t *testing.T) {
			k := newTask(t)
			s, err := state.KeyValue("s", serde.String(), serde.String()).BuildKeyValue(k.ctx())
			if err != nil {
				t.Fatal(err)
			}
			must(t, s.Put("a-gone", "1"))
			must(t, s.Put("ab", "old"))
			must(t, s.Put("c", "below"))
			must(t, s.Flush())
			must(t, k.batch.Commit(nil))
			k.take("s")
			var events []string
			listen(t, s, &events)

			must(t, s.Put("b", "3"))
			must(t, s.Put("a", "1"))
			must(t, s.Put("ab", "2"))
			must(t, s.Delete("a-gone"))
			for i := range 2 { // a scan changes nothing the next one sees
				if got := render(sc.scan(s)); got != sc.want {
					t.Errorf("%s %d over dirty writes = %s, want %s", sc.name, i, got, sc.want)
				}
			}
			if n, err := s.ApproximateCount(); err != nil || n != 4 {
				t.Errorf("ApproximateCount = %d, %v; want 4: three below, a and b put, a-gone deleted", n, err)
			}
			if got := k.take("s"); got != "[]" {
				t.Errorf("the scan logged %s, want nothing", got)
			}
			if got := take(&events); got != "" {
				t.Errorf("the scan told the listener %s, want nothing", got)
			}
			// The entries are still dirty: the Flush passes them all down.
			must(t, s.Flush())
			if got := k.take("s"); got != `["b"="3" "a"="1" "ab"="2" "a-gone"=nil]` {
				t.Errorf("the Flush after the scan logged %s", got)
			}
			if got := take(&events); got != "b: 3 (was null), a: 1 (was null), ab: 2 (was old), a-gone: null (was 1)" {
				t.Errorf("the Flush after the scan told the listener %s", got)
			}
			if got := render(sc.scan(s)); got != sc.want {
				t.Errorf("%s after the Flush = %s, want %s", sc.name, got, sc.want)
			}
		})
	}
}

// TestSetFlushListener checks the typed flush listener: decoded keys and
// values, the null flags, errors, and when it is refused.
func TestSetFlushListener(t *testing.T) {
	noop := func(string, int64, int64, bool, bool, time.Time) error { return nil }
	for _, tt := range []struct {
		name string
		opts []state.Option
		want bool
	}{
		{"default cache", nil, true},
		{"no cache", []state.Option{state.WithCache(0)}, false},
		{"cache and TTL", []state.Option{state.WithTTL(time.Hour)}, true},
		{"TTL without cache", []state.Option{state.WithTTL(time.Hour), state.WithCache(0)}, false},
		{"cache, not logged", []state.Option{state.WithoutLogging()}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := newTask(t)
			s, err := state.KeyValue("s", serde.String(), serde.Int64(), tt.opts...).BuildKeyValue(k.ctx())
			if err != nil {
				t.Fatal(err)
			}
			if got := s.SetFlushListener(noop); got != tt.want {
				t.Fatalf("SetFlushListener = %v, want %v", got, tt.want)
			}
			if !tt.want {
				return
			}
			// Int64 values decode only from exactly 8 bytes: the TTL's
			// time header must not reach the listener.
			type call struct {
				key              string
				nv, ov           int64
				newNull, oldNull bool
			}
			var calls []call
			s.SetFlushListener(func(key string, nv, ov int64, newNull, oldNull bool, _ time.Time) error {
				calls = append(calls, call{key, nv, ov, newNull, oldNull})
				return nil
			})
			must(t, s.Put("x", 1))
			must(t, s.Put("y", 0)) // a zero value is not null
			must(t, s.Flush())
			must(t, s.Put("x", 2))
			must(t, s.Delete("y"))
			must(t, s.Flush())
			want := []call{
				{"x", 1, 0, false, true}, // insert: old is null
				{"y", 0, 0, false, true},
				{"x", 2, 1, false, false}, // update
				{"y", 0, 0, true, false},  // delete: new is null
			}
			if !slices.Equal(calls, want) {
				t.Errorf("listener calls %+v, want %+v", calls, want)
			}

			// The listener's error fails the Flush.
			boom := errors.New("boom")
			s.SetFlushListener(func(string, int64, int64, bool, bool, time.Time) error { return boom })
			must(t, s.Put("x", 3))
			if err := s.Flush(); !errors.Is(err, boom) {
				t.Errorf("Flush with a failing listener: %v, want boom", err)
			}
		})
	}
}

// TestClosedStore checks that a built store, with or without a cache,
// fails every operation after Close with ErrClosed, and ends iterators
// opened before.
func TestClosedStore(t *testing.T) {
	for _, opts := range [][]state.Option{
		{state.WithCache(0)},
		nil,
		{state.WithTTL(time.Hour)},
		{state.WithTTL(time.Hour), state.WithCache(0), state.WithoutLogging()},
	} {
		k := newTask(t)
		s, err := state.KeyValue("s", serde.String(), serde.String(), opts...).BuildKeyValue(k.ctx())
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%d options", len(opts))
		must(t, s.Put("a", "1"))
		must(t, s.Put("b", "2"))
		open := s.All()
		if !open.Next() {
			t.Fatalf("%s: All before Close: %v", name, open.Err())
		}
		must(t, s.Close())
		must(t, s.Close()) // idempotent
		if s.Name() != "s" {
			t.Errorf("%s: Name after Close = %q", name, s.Name())
		}
		if open.Next() || !errors.Is(open.Err(), state.ErrClosed) || !errors.Is(open.Close(), state.ErrClosed) {
			t.Errorf("%s: an iterator advanced after Close: error %v, want ErrClosed", name, open.Err())
		}
		_, _, getErr := s.Get("a")
		_, countErr := s.ApproximateCount()
		for op, err := range map[string]error{
			"Get":              getErr,
			"Put":              s.Put("c", "3"),
			"Delete":           s.Delete("a"),
			"Flush":            s.Flush(),
			"ApproximateCount": countErr,
			"All":              s.All().Close(),
			"Range":            s.Range("a", "z").Close(),
			"ReverseRange":     s.ReverseRange("a", "z").Close(),
			"PrefixScan":       s.PrefixScan([]byte("a")).Close(),
		} {
			if !errors.Is(err, state.ErrClosed) {
				t.Errorf("%s: %s after Close: error %v, want ErrClosed", name, op, err)
			} else if !strings.HasPrefix(err.Error(), "state: ") || !strings.Contains(err.Error(), `"s"`) {
				t.Errorf("%s: %s after Close: error %q does not name the package and the store", name, op, err)
			}
		}
		// Nothing written after Close reached the batch or the changelog.
		if v, found, _ := k.batch.Store(state.StorePartition{Store: "s"}).Get([]byte("c")); found {
			t.Errorf("%s: Put after Close reached the batch: %q", name, v)
		}
	}
}

// TestCacheListenerWritesToItsStore checks a flush listener that writes to
// the store it listens to (a processor downstream of a table that updates
// the table's store): the writes it makes while the cache flushes or
// evicts wait, dirty, for the next flush, and nothing is lost.
func TestCacheListenerWritesToItsStore(t *testing.T) {
	t.Run("flush", func(t *testing.T) {
		k := newTask(t)
		s, err := state.KeyValue("s", serde.String(), serde.String()).BuildKeyValue(k.ctx())
		if err != nil {
			t.Fatal(err)
		}
		s.SetFlushListener(func(key, nv, _ string, _, _ bool, _ time.Time) error {
			if key == "a" {
				return s.Put("b", "from a's flush")
			}
			return nil
		})
		must(t, s.Put("a", "1"))
		must(t, s.Flush())
		if got := k.take("s"); got != `["a"="1"]` {
			t.Errorf("flush 1 logged %s", got)
		}
		must(t, s.Flush())
		if got := k.take("s"); got != `["b"="from a's flush"]` {
			t.Errorf("flush 2 logged %s, want the listener's write", got)
		}
		must(t, s.Put("b", "2"))
		must(t, s.Flush())
		if got := k.take("s"); got != `["b"="2"]` {
			t.Errorf("flush 3 logged %s, want b's update", got)
		}
	})
	t.Run("eviction", func(t *testing.T) {
		// Three entries fit (see TestCacheEviction): almost every Put
		// evicts, and the listener's Put evicts again, inside the eviction.
		val := func(tag string) string { return tag + strings.Repeat(".", 2000-len(tag)) }
		k := newTask(t)
		s, err := state.KeyValue("s", serde.String(), serde.String(), state.WithCache(7500)).BuildKeyValue(k.ctx())
		if err != nil {
			t.Fatal(err)
		}
		// Each write of kN that reaches the store is copied to zN.
		s.SetFlushListener(func(key, nv, _ string, newNull, _ bool, _ time.Time) error {
			if strings.HasPrefix(key, "z") || newNull {
				return nil
			}
			return s.Put("z"+key, nv)
		})
		want := map[string]string{}
		for i := range 60 {
			key := fmt.Sprintf("k%d", i*7%10)
			v := val(fmt.Sprint(i))
			must(t, s.Put(key, v))
			want[key], want["z"+key] = v, v
		}
		must(t, s.Flush()) // the last writes of kN, and their copies
		must(t, s.Flush()) // the copies made during the first Flush
		got, err := storetest.Contents(k.batch.Store(state.StorePartition{Store: "s"}))
		if err != nil {
			t.Fatal(err)
		}
		gotStrings := map[string]string{}
		for key, v := range got {
			gotStrings[key] = short(string(v))
		}
		wantStrings := map[string]string{}
		for key, v := range want {
			wantStrings[key] = short(v)
		}
		if !maps.Equal(gotStrings, wantStrings) {
			t.Errorf("the batch holds %v\nwant %v", gotStrings, wantStrings)
		}
		if d := storetest.Diff(got, storetest.Fold(k.log.Records["s"])); d != "" {
			t.Errorf("the batch differs from the changelog: %s", d)
		}
		for key, v := range want {
			if got, found, err := s.Get(key); err != nil || !found || got != v {
				t.Errorf("Get(%s) = %s, %v, %v; want %s", key, short(got), found, err, short(v))
			}
		}
	})
}

// BenchmarkCacheRange measures a scan of 100 keys over a record cache
// holding 10,000 entries, 100 of them dirty (one in a hundred keys), with a
// flush listener set. Every op rewrites one of the dirty keys, then scans
// the next 100 keys; "put" is the write alone, the baseline to subtract.
func BenchmarkCacheRange(b *testing.B) {
	const entries, dirtyEvery, scan = 10_000, 100, 100
	key := func(i int) []byte { return fmt.Appendf(nil, "k%05d", i) }
	for _, bench := range []struct {
		name string
		scan bool
	}{{"put", false}, {"scan", true}} {
		b.Run(bench.name, func(b *testing.B) {
			e := memory.NewEngine()
			defer e.Close()
			batch := e.NewBatch()
			defer batch.Close()
			s, err := state.KeyValue("s", serde.Bytes(), serde.Bytes()).BuildKeyValue(
				state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: batch})
			if err != nil {
				b.Fatal(err)
			}
			s.SetFlushListener(func([]byte, []byte, []byte, bool, bool, time.Time) error { return nil })
			bs := s.Bytes()
			value := []byte("a value of 24 bytes.....")
			for i := range entries {
				if err := bs.Put(key(i), value); err != nil {
					b.Fatal(err)
				}
			}
			if err := bs.Flush(); err != nil {
				b.Fatal(err)
			}
			if err := batch.Commit(nil); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < entries; i += dirtyEvery {
				if err := bs.Put(key(i), value); err != nil {
					b.Fatal(err)
				}
			}
			n := 0
			for i := 0; b.Loop(); i++ {
				if err := bs.Put(key(i%(entries/dirtyEvery)*dirtyEvery), value); err != nil {
					b.Fatal(err)
				}
				if !bench.scan {
					continue
				}
				start := i * scan % entries
				it := bs.Range(key(start), key(start+scan))
				for it.Next() {
					n++
				}
				if err := it.Close(); err != nil {
					b.Fatal(err)
				}
			}
			if bench.scan && n == 0 {
				b.Fatal("the scans saw nothing")
			}
		})
	}
}

// readOnly wraps a cached byte store for storetest.Check: it flushes after
// every n-th write (never when n is 0), and fails the test when a read
// other than Get (which may insert, and so evict) reaches the changelog or
// the flush listener, counted in *writes.
type readOnly struct {
	state.KeyValueBytesStore
	t        *rapid.T
	writes   *int // changelog records and flush listener calls so far
	log      *storetest.Changelog
	n, puts  int
	scanning string
}

func (s *readOnly) written() int { return *s.writes + len(s.log.Records["s"]) }

func (s *readOnly) Put(key, value []byte) error {
	if err := s.KeyValueBytesStore.Put(key, value); err != nil {
		return err
	}
	s.puts++
	if s.n > 0 && s.puts%s.n == 0 {
		return s.Flush()
	}
	return nil
}

func (s *readOnly) Delete(key []byte) error { return s.Put(key, nil) }

// quiet runs a read and checks that it wrote nothing.
func (s *readOnly) quiet(what string, f func()) {
	before := s.written()
	f()
	if after := s.written(); after != before {
		s.t.Fatalf("%s wrote %d changelog records or flush listener calls", what, after-before)
	}
}

func (s *readOnly) iterator(what string, open func() state.Iterator) state.Iterator {
	var it state.Iterator
	s.quiet(what, func() { it = open() })
	return &quietIterator{Iterator: it, s: s, what: what}
}

func (s *readOnly) Range(from, to []byte) state.Iterator {
	return s.iterator("Range", func() state.Iterator { return s.KeyValueBytesStore.Range(from, to) })
}

func (s *readOnly) ReverseRange(from, to []byte) state.Iterator {
	return s.iterator("ReverseRange", func() state.Iterator { return s.KeyValueBytesStore.ReverseRange(from, to) })
}

func (s *readOnly) PrefixScan(prefix []byte) state.Iterator {
	return s.iterator("PrefixScan", func() state.Iterator { return s.KeyValueBytesStore.PrefixScan(prefix) })
}

func (s *readOnly) ApproximateCount() (n int64, err error) {
	s.quiet("ApproximateCount", func() { n, err = s.KeyValueBytesStore.ApproximateCount() })
	return n, err
}

// quietIterator checks that advancing an iterator writes nothing.
type quietIterator struct {
	state.Iterator
	s    *readOnly
	what string
}

func (it *quietIterator) Next() (ok bool) {
	it.s.quiet(it.what+" Next", func() { ok = it.Iterator.Next() })
	return ok
}

// TestCacheAgreesWithModel runs storetest.Check's random writes, reads,
// scans (Range, ReverseRange, PrefixScan, nil bounds among them) and writes
// while iterating on the byte store of a cached store, with caches small
// enough to evict at almost every write and flushes every few writes: the
// merged iterators must agree with the model and keep their snapshot, and
// no scan or count may write to the changelog or call the flush listener.
func TestCacheAgreesWithModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := memory.NewEngine()
		defer e.Close()
		batch := e.NewBatch()
		defer batch.Close()
		log := storetest.NewChangelog()
		cache := rapid.SampledFrom([]int{150, 400, 1000, 1 << 20}).Draw(t, "cache")
		s, err := state.KeyValue("s", serde.Bytes(), serde.Bytes(), state.WithCache(cache)).BuildKeyValue(
			state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: batch, Changelog: log, Time: storetest.NewClock(t0)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		calls := 0
		s.SetFlushListener(func([]byte, []byte, []byte, bool, bool, time.Time) error {
			calls++
			return nil
		})
		storetest.Check(t, &readOnly{
			KeyValueBytesStore: s.Bytes(), t: t, writes: &calls, log: log,
			n: rapid.SampledFrom([]int{0, 1, 3, 10}).Draw(t, "flush every"),
		}, storetest.Options{})
	})
}

// TestCacheIteratorSnapshot checks that cache iterators keep the snapshot
// they were made with while the task writes, deletes, flushes, evicts and
// opens more iterators: over more dirty entries than one chunk, so the
// iterators read the index's clone with the values it saw.
func TestCacheIteratorSnapshot(t *testing.T) {
	k := newTask(t)
	s, err := state.KeyValue("s", serde.String(), serde.String(), state.WithCache(40_000)).BuildKeyValue(k.ctx())
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	listen(t, s, &events)
	key := func(i int) string { return fmt.Sprintf("k%03d", i) }
	model := map[string]string{}
	put := func(k, v string) {
		must(t, s.Put(k, v))
		model[k] = v
	}
	for i := 0; i < 300; i += 2 { // clean entries, below
		put(key(i), "below")
	}
	must(t, s.Flush())
	for i := range 300 { // dirty: updates, inserts and deletes
		switch i % 3 {
		case 0:
			put(key(i), "dirty")
		case 1:
			must(t, s.Delete(key(i)))
			delete(model, key(i))
		}
	}
	events = nil
	wantOf := func(m map[string]string, reverse bool) string {
		var b strings.Builder
		keys := slices.Sorted(maps.Keys(m))
		if reverse {
			slices.Reverse(keys)
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "%q=%q ", k, m[k])
		}
		return b.String()
	}
	drain := func(it *state.KeyValueIterator[string, string], during func(i int)) string {
		var b strings.Builder
		for i := 0; it.Next(); i++ {
			fmt.Fprintf(&b, "%q=%q ", it.Key(), it.Value())
			during(i)
		}
		must(t, it.Close())
		return b.String()
	}
	for round, reverse := range []bool{false, true, false} {
		want := wantOf(model, reverse)
		it := s.All()
		if reverse {
			it = s.ReverseAll()
		}
		var nestedWant, nestedGot string
		got := drain(it, func(i int) {
			// Rewrite every key, the visited, the current and the coming.
			for j := range 300 {
				if (i+j)%5 == 0 {
					must(t, s.Delete(key(j)))
					delete(model, key(j))
				} else {
					put(key(j), fmt.Sprintf("r%d.%d", round, i))
				}
			}
			put(fmt.Sprintf("n%d.%03d", round, i), "new")
			switch i {
			case 10: // a second snapshot, taken between the writes
				nestedWant = wantOf(model, false)
				nested := s.All()
				if !nested.Next() {
					t.Fatalf("round %d: the nested iterator is empty: %v", round, nested.Err())
				}
				first := fmt.Sprintf("%q=%q ", nested.Key(), nested.Value())
				put(key(1), "after the nested snapshot")
				nestedGot = first + drain(nested, func(int) { put(key(2), "during the nested scan") })
			case 20:
				must(t, s.Flush()) // the snapshot's dirty entries become clean
			}
		})
		if got != want {
			t.Errorf("round %d (reverse %v): the iterator saw writes made after it was opened:\n got %s\nwant %s", round, reverse, got, want)
		}
		if nestedGot != nestedWant {
			t.Errorf("round %d: the nested iterator:\n got %s\nwant %s", round, nestedGot, nestedWant)
		}
		if got, want := render(s.All()), wantOf(model, false); got != want {
			t.Errorf("round %d: after the scan, All = %s, want %s", round, got, want)
		}
	}
}

// TestCacheDeleteRange checks that a range delete drops the cached entries
// in its range, dirty ones without passing them down (no changelog record,
// no flush listener call), deletes the range below, and leaves the rest.
func TestCacheDeleteRange(t *testing.T) {
	k := newTask(t)
	s, err := state.KeyValue("s", serde.String(), serde.String()).BuildKeyValue(k.ctx())
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	listen(t, s, &events)
	for _, key := range []string{"a", "b1", "b2", "c"} {
		must(t, s.Put(key, "below"))
	}
	must(t, s.Flush())
	k.take("s")
	take(&events)
	must(t, s.Put("a", "dirty"))
	must(t, s.Put("b1", "dirty"))
	must(t, s.Put("b3", "new"))
	must(t, s.Delete("b2"))
	must(t, s.Put("c", "dirty"))

	must(t, s.Bytes().DeleteRange([]byte("b"), []byte("c")))
	if got := k.take("s"); got != "[]" {
		t.Errorf("DeleteRange logged %s, want nothing", got)
	}
	if got := take(&events); got != "" {
		t.Errorf("DeleteRange told the listener %s, want nothing", got)
	}
	if got, want := render(s.All()), `"a"="dirty" "c"="dirty" `; got != want {
		t.Errorf("after DeleteRange, All = %s, want %s", got, want)
	}
	if _, found, err := s.Get("b1"); found || err != nil {
		t.Errorf("Get(b1) after DeleteRange = %v, %v; want not found", found, err)
	}
	must(t, s.Flush())
	if got := k.take("s"); got != `["a"="dirty" "c"="dirty"]` {
		t.Errorf("the Flush after DeleteRange logged %s", got)
	}
	if got := take(&events); got != "a: dirty (was below), c: dirty (was below)" {
		t.Errorf("the Flush after DeleteRange told the listener %s", got)
	}
	raw, err := storetest.Contents(k.batch.Store(state.StorePartition{Store: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(slices.Sorted(maps.Keys(raw)), " "); got != "a c" {
		t.Errorf("the batch holds %s, want a c", got)
	}
}
