package state_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
)

// TestLayersAgree is a metamorphic test of the whole layered store: the
// same typed store (random layers: cache of various sizes, TTL, logging)
// runs over the memory engine and over pebble, side by side, through
// random puts, deletes, reads, scans, stream-time moves, flushes, commits
// and task failures (the batch aborted, the Kafka transaction too, the
// store rebuilt). Every read must agree between the engines and with a
// model of the table; the changelogs recorded and the flush listener calls
// must be the same on both; each flush listener call's old value must be
// the last new value told for its key; and at every commit, the committed
// state must be exactly the changelog's table, and the table the flush
// listener calls describe. (state/pebble's TestAgreesWithMemory does
// the same for the engines' byte stores, without the layers.)
func TestLayersAgree(t *testing.T) {
	pe, err := pebble.Open(t.TempDir(), quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer pe.Close()
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++ // each run has a store-partition of its own in the shared pebble DB
		spec := drawSpec(t, fmt.Sprintf("s%d", run))
		spec.unlogged = rapid.IntRange(0, 3).Draw(t, "unlogged") == 0
		sp := state.StorePartition{Store: spec.name, Partition: 0}
		clock := storetest.NewClock(t0)
		me := memory.NewEngine()
		defer me.Close()
		sides := [2]*side{{name: "memory", engine: me}, {name: "pebble", engine: pe}}
		for _, s := range sides {
			s.downstream, s.downstreamCommitted = map[string]string{}, map[string]string{}
			s.batch = s.engine.NewBatch()
			defer s.batch.Close()
			s.log = storetest.NewChangelog()
			s.build(t, spec, clock)
		}
		model, committed := newTable(spec.ttl), newTable(spec.ttl)

		// read checks that a read gives the same answer on both sides, and
		// the model's.
		read := func(t *rapid.T, what string, f func(s *side) string, want string) {
			t.Helper()
			m, p := f(sides[0]), f(sides[1])
			if m != p {
				t.Fatalf("%s:\nmemory %s\npebble %s", what, m, p)
			}
			if m != want {
				t.Fatalf("%s:\n got %s\nwant %s", what, m, want)
			}
		}
		both := func(t *rapid.T, what string, f func(s *side) error) {
			t.Helper()
			for _, s := range sides {
				if err := f(s); err != nil {
					t.Fatalf("%s on %s: %v", what, s.name, err)
				}
			}
		}
		flush := func(t *rapid.T) { both(t, "Flush", func(s *side) error { return s.store.Flush() }) }

		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				k, v := drawKey.Draw(t, "key"), drawValue.Draw(t, "value")
				both(t, fmt.Sprintf("Put(%q, %q)", k, v), func(s *side) error { return s.store.Put(k, v) })
				model.put(k, v, clock.StreamTime())
			},
			"delete": func(t *rapid.T) {
				k := drawKey.Draw(t, "key")
				both(t, fmt.Sprintf("Delete(%q)", k), func(s *side) error { return s.store.Delete(k) })
				model.delete(k)
			},
			"get": func(t *rapid.T) {
				k := drawKey.Draw(t, "key")
				v, found := model.get(k, clock.StreamTime())
				read(t, fmt.Sprintf("Get(%q)", k), func(s *side) string {
					v, found, err := s.store.Get(k)
					return fmt.Sprintf("%q %v %v", v, found, err)
				}, fmt.Sprintf("%q %v <nil>", v, found))
			},
			"range": func(t *rapid.T) {
				from, to := drawBound.Draw(t, "from"), drawBound.Draw(t, "to")
				reverse := rapid.Bool().Draw(t, "reverse")
				read(t, fmt.Sprintf("Range(%q, %q), reverse %v", from, to, reverse), func(s *side) string {
					if reverse {
						return render(s.store.ReverseRange(from, to))
					}
					return render(s.store.Range(from, to))
				}, model.scan(clock.StreamTime(), func(k string) bool { return from <= k && k < to }, reverse))
			},
			"all": func(t *rapid.T) {
				reverse := rapid.Bool().Draw(t, "reverse")
				read(t, fmt.Sprintf("All, reverse %v", reverse), func(s *side) string {
					if reverse {
						return render(s.store.ReverseAll())
					}
					return render(s.store.All())
				}, model.scan(clock.StreamTime(), func(string) bool { return true }, reverse))
			},
			"prefix scan": func(t *rapid.T) {
				p := drawBound.Draw(t, "prefix")
				read(t, fmt.Sprintf("PrefixScan(%q)", p), func(s *side) string {
					return render(s.store.PrefixScan([]byte(p)))
				}, model.scan(clock.StreamTime(), func(k string) bool { return strings.HasPrefix(k, p) }, false))
			},
			"count": func(t *rapid.T) {
				// Expired entries count until swept: compare the engines only.
				counts := [2]string{}
				for i, s := range sides {
					n, err := s.store.ApproximateCount()
					counts[i] = fmt.Sprint(n, err)
				}
				if counts[0] != counts[1] {
					t.Fatalf("ApproximateCount: memory %s, pebble %s", counts[0], counts[1])
				}
			},
			"advance stream time": func(t *rapid.T) {
				clock.Advance(drawAdvance.Draw(t, "advance"))
			},
			"flush": flush,
			"commit": func(t *rapid.T) {
				flush(t)
				both(t, "Commit", func(s *side) error {
					s.log.CommitKafka()
					cps := map[state.StorePartition]int64{}
					if !spec.unlogged {
						cps[sp] = s.log.End(sp.Store)
					}
					return s.batch.Commit(cps)
				})
				committed = model.clone()
				var states [2]map[string][]byte
				for i, s := range sides {
					var err error
					if states[i], err = storetest.Contents(s.engine.Reader(sp)); err != nil {
						t.Fatalf("read the committed state on %s: %v", s.name, err)
					}
					// The changelog sees exactly what the batch applies.
					if d := storetest.Diff(states[i], storetest.Fold(s.log.Records[sp.Store])); !spec.unlogged && d != "" {
						t.Fatalf("the committed state on %s is not the changelog's table: %s", s.name, d)
					}
				}
				if d := storetest.Diff(states[1], states[0]); d != "" {
					t.Fatalf("committed states differ, pebble against memory: %s", d)
				}
				// Downstream holds the committed table, expired rows
				// included until swept.
				for i, s := range sides {
					if spec.cache == 0 {
						break
					}
					want := map[string][]byte{}
					for k, v := range states[i] {
						if spec.ttl > 0 {
							v = v[8:] // the TTL layer's time header
						}
						want[k] = v
					}
					got := map[string][]byte{}
					for k, v := range s.downstream {
						got[k] = []byte(v)
					}
					if d := storetest.Diff(got, want); d != "" {
						t.Fatalf("on %s, the flush listener calls describe another table than the committed one: %s", s.name, d)
					}
					s.downstreamCommitted = maps.Clone(s.downstream)
				}
			},
			"task failure": func(t *rapid.T) {
				// The Kafka transaction aborts, the task closes its stores
				// and is rebuilt over its batch, emptied.
				for _, s := range sides {
					s.log.AbortKafka()
					s.batch.Abort()
					s.downstream = maps.Clone(s.downstreamCommitted) // its output aborted too
					if err := s.store.Close(); err != nil {
						t.Fatalf("Close on %s: %v", s.name, err)
					}
					s.build(t, spec, clock)
				}
				model = committed.clone()
			},
			"": func(t *rapid.T) {
				// After every action: the same changelog and the same
				// flush listener calls on both sides.
				for i, what := range []func(s *side) string{
					func(s *side) string { return changelogString(s.log.Records[sp.Store]) },
					func(s *side) string { return strings.Join(s.events, ", ") },
				} {
					if m, p := what(sides[0]), what(sides[1]); m != p {
						t.Fatalf("%s differ:\nmemory %s\npebble %s", []string{"changelogs", "flush listener calls"}[i], m, p)
					}
				}
			},
		})
	})
}

// side is one engine of TestLayersAgree, with its batch, its changelog and
// the typed store.
type side struct {
	name   string
	engine state.Engine
	batch  state.Batch
	log    *storetest.Changelog
	store  *state.KeyValueStore[string, string]
	events []string // flush listener calls
	// downstream is the table the flush listener calls describe, as a
	// downstream processor sees it; downstreamCommitted, as of the last
	// commit.
	downstream, downstreamCommitted map[string]string
}

func (s *side) build(t *rapid.T, spec storeSpec, clock state.TimeSource) {
	var err error
	s.store, err = spec.build(state.BuildContext{ApplicationID: "app", TaskID: "0_0", Batch: s.batch, Changelog: s.log, Time: clock})
	if err != nil {
		t.Fatal(err)
	}
	listening := s.store.SetFlushListener(func(k, nv, ov string, newNull, oldNull bool, _ time.Time) error {
		s.events = append(s.events, fmt.Sprintf("%q: %q %v (was %q %v)", k, nv, newNull, ov, oldNull))
		// The old value is the last new value told for the key: what
		// downstream holds (a table's subtractor relies on it).
		if prev, ok := s.downstream[k]; ok != !oldNull || prev != ov {
			return fmt.Errorf("flush of %q: old value %q (null %v), but downstream holds %q (present %v)", k, ov, oldNull, prev, ok)
		}
		if newNull {
			delete(s.downstream, k)
		} else {
			s.downstream[k] = nv
		}
		return nil
	})
	if listening != (spec.cache > 0) {
		t.Fatalf("SetFlushListener = %v with a cache of %d", listening, spec.cache)
	}
}

func changelogString(rs []storetest.Record) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%x=%x(nil %v)@%d ", r.Key, r.Value, r.Value == nil, r.Timestamp.UnixMilli())
	}
	return b.String()
}
