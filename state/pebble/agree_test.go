package pebble_test

import (
	"bytes"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
)

// TestAgreesWithMemory is a metamorphic test: random puts, deletes, reads,
// scans, commits with checkpoints, aborts, restores and drops run on the
// memory engine and on pebble, over three store-partitions (two of them in
// stores whose names share a prefix), and every answer must agree. It runs
// with committed writes kept in the overlays until the engine closes, and
// with the overlays flushed to pebble at every commit.
func TestAgreesWithMemory(t *testing.T) {
	for _, budget := range []struct {
		name  string
		bytes int64
	}{{"write-back", 1 << 30}, {"flush every commit", 0}} {
		t.Run(budget.name, func(t *testing.T) {
			pe := open(t) // one DB; each run uses store-partitions of its own
			pebble.SetOverlayBudget(pe, budget.bytes)
			agreesWithMemory(t, pe)
		})
	}
}

func agreesWithMemory(t *testing.T, pe *pebble.Engine) {
	run := 0
	rapid.Check(t, func(t *rapid.T) {
		run++
		me := memory.NewEngine()
		defer me.Close()
		name := fmt.Sprintf("r%d", run)
		sps := []state.StorePartition{{Store: name, Partition: 0}, {Store: name, Partition: 1}, {Store: name + "x", Partition: 0}}
		engines := [2]state.Engine{me, pe}
		batches := [2]state.Batch{me.NewBatch(), pe.NewBatch()}
		defer func() { batches[0].Close() }()
		defer func() { batches[1].Close() }()

		sp := rapid.SampledFrom(sps)
		bound := rapid.OneOf(rapid.Just[[]byte](nil), storetest.Key(), storetest.Key())
		// view picks the batch view or the Reader of sp in each engine.
		view := func(t *rapid.T, sp state.StorePartition) [2]state.KeyValueBytesStore {
			if rapid.Bool().Draw(t, "reader") {
				return [2]state.KeyValueBytesStore{me.Reader(sp), pe.Reader(sp)}
			}
			return [2]state.KeyValueBytesStore{batches[0].Store(sp), batches[1].Store(sp)}
		}
		agree := func(t *rapid.T, what string, f func(i int) string) {
			t.Helper()
			if m, p := f(0), f(1); m != p {
				t.Fatalf("%s:\nmemory %s\npebble %s", what, m, p)
			}
		}
		scan := func(t *rapid.T, what string, open func(s state.KeyValueBytesStore) state.Iterator) {
			v := view(t, sp.Draw(t, "sp"))
			agree(t, what, func(i int) string { return drain(open(v[i])) })
		}

		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				s, k, v := sp.Draw(t, "sp"), storetest.Key().Draw(t, "key"), storetest.Value().Draw(t, "value")
				agree(t, fmt.Sprintf("Put(%x, %x)", k, v), func(i int) string { return errString(batches[i].Store(s).Put(k, v)) })
			},
			"delete": func(t *rapid.T) {
				s, k := sp.Draw(t, "sp"), storetest.Key().Draw(t, "key")
				agree(t, fmt.Sprintf("Delete(%x)", k), func(i int) string { return errString(batches[i].Store(s).Delete(k)) })
			},
			"get": func(t *rapid.T) {
				v, k := view(t, sp.Draw(t, "sp")), storetest.Key().Draw(t, "key")
				agree(t, fmt.Sprintf("Get(%x)", k), func(i int) string {
					val, found, err := v[i].Get(k)
					return fmt.Sprintf("%x %v %v %v", val, val == nil, found, err != nil)
				})
			},
			"range": func(t *rapid.T) {
				from, to := bound.Draw(t, "from"), bound.Draw(t, "to")
				scan(t, fmt.Sprintf("Range(%x, %x)", from, to), func(s state.KeyValueBytesStore) state.Iterator { return s.Range(from, to) })
			},
			"reverse range": func(t *rapid.T) {
				from, to := bound.Draw(t, "from"), bound.Draw(t, "to")
				scan(t, fmt.Sprintf("ReverseRange(%x, %x)", from, to), func(s state.KeyValueBytesStore) state.Iterator { return s.ReverseRange(from, to) })
			},
			"prefix scan": func(t *rapid.T) {
				p := storetest.Key().Draw(t, "prefix")
				scan(t, fmt.Sprintf("PrefixScan(%x)", p), func(s state.KeyValueBytesStore) state.Iterator { return s.PrefixScan(p) })
			},
			"count": func(t *rapid.T) {
				v := view(t, sp.Draw(t, "sp"))
				agree(t, "ApproximateCount", func(i int) string {
					n, err := v[i].ApproximateCount()
					return fmt.Sprint(n, err)
				})
			},
			"commit": func(t *rapid.T) {
				cps := map[state.StorePartition]int64{}
				for _, s := range rapid.SliceOfNDistinct(sp, 0, 3, func(s state.StorePartition) state.StorePartition { return s }).Draw(t, "checkpointed") {
					cps[s] = rapid.Int64Range(0, 1000).Draw(t, "offset")
				}
				agree(t, "Commit", func(i int) string { return errString(batches[i].Commit(cps)) })
			},
			"abort": func(t *rapid.T) {
				batches[0].Abort()
				batches[1].Abort()
			},
			"new batch": func(t *rapid.T) {
				// The task is recreated (a rebalance, an aborted
				// transaction): pending writes go, committed ones stay.
				agree(t, "Close", func(i int) string { return errString(batches[i].Close()) })
				batches = [2]state.Batch{me.NewBatch(), pe.NewBatch()}
			},
			"restore": func(t *rapid.T) {
				s := sp.Draw(t, "sp")
				var records []state.RestoreRecord
				for range rapid.IntRange(0, 5).Draw(t, "records") {
					records = append(records, state.RestoreRecord{Key: storetest.Key().Draw(t, "key"), Value: storetest.Value().Draw(t, "value")})
				}
				next := rapid.Int64Range(0, 1000).Draw(t, "next")
				agree(t, "Restore", func(i int) string { return errString(engines[i].Restore(s, records, next)) })
			},
			"drop": func(t *rapid.T) {
				s := sp.Draw(t, "sp")
				agree(t, "Drop", func(i int) string { return errString(engines[i].Drop(s)) })
			},
			"snapshot": func(t *rapid.T) {
				// An iterator opened before writes and a commit sees none of them.
				s, reverse := sp.Draw(t, "sp"), rapid.Bool().Draw(t, "reverse")
				var its [2]state.Iterator
				for i := range its {
					if reverse {
						its[i] = batches[i].Store(s).ReverseRange(nil, nil)
					} else {
						its[i] = batches[i].Store(s).Range(nil, nil)
					}
				}
				k, v := storetest.Key().Draw(t, "key"), storetest.Value().Draw(t, "value")
				commit := rapid.Bool().Draw(t, "commit")
				for i := range its {
					if err := batches[i].Store(s).Put(k, v); err != nil {
						t.Fatal(err)
					}
					if commit {
						if err := batches[i].Commit(nil); err != nil {
							t.Fatal(err)
						}
					}
				}
				agree(t, "iterator opened before a write", func(i int) string { return drain(its[i]) })
			},
			"": func(t *rapid.T) {
				agree(t, "Len", func(i int) string { return fmt.Sprint(batches[i].Len()) })
				for _, s := range sps {
					agree(t, fmt.Sprintf("Checkpoint(%v)", s), func(i int) string {
						off, ok, err := engines[i].Checkpoint(s)
						return fmt.Sprint(off, ok, err)
					})
				}
			},
		})
		// Finally, every store-partition, through the batch and committed.
		for _, s := range sps {
			agree(t, fmt.Sprintf("final %v", s), func(i int) string { return drain(batches[i].Store(s).Range(nil, nil)) })
			agree(t, fmt.Sprintf("final committed %v", s), func(i int) string { return drain(engines[i].Reader(s).Range(nil, nil)) })
		}
	})
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return "error"
}

// drain renders every entry of it, marking nil values, then its error.
func drain(it state.Iterator) string {
	var b bytes.Buffer
	for it.Next() {
		fmt.Fprintf(&b, "%x=%x", it.Key(), it.Value())
		if it.Value() == nil {
			b.WriteString("(nil)")
		}
		b.WriteByte(' ')
	}
	if err := it.Close(); err != nil {
		fmt.Fprintf(&b, "error %v", err != nil)
	}
	return b.String()
}
