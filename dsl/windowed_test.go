package dsl_test

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
	"github.com/gregorstream/gregor/windows"
)

const msec = time.Millisecond

func epochMs(n int64) time.Time { return time.UnixMilli(n).UTC() }

type keyAt struct {
	key string
	ts  int64
}

// windowedCount builds in -> per-key windowed count -> out.
func windowedCount(build func(g dsl.GroupedStream[string, string]) dsl.Table[windows.Windowed[string], int64]) *dsl.Builder {
	b := dsl.NewBuilder()
	in := b.Stream("in", serde.String(), serde.String())
	build(in.GroupByKey()).ToStream().To("out")
	return b
}

func pipeAll(t *testing.T, d *streamtest.Driver, recs []keyAt) {
	t.Helper()
	in := d.InputTopic("in", serde.String(), serde.String())
	for _, r := range recs {
		must(t, in.PipeAt(r.key, "v", epochMs(r.ts)))
	}
}

// formatWindowed prints records as key@[start,end)=value @ts, in order.
func formatWindowed(t *testing.T, recs []processor.Record[windows.Windowed[string], int64]) []string {
	t.Helper()
	out := make([]string, len(recs))
	for i, r := range recs {
		v := fmt.Sprint(r.Value)
		if r.NullValue {
			v = "<tombstone>"
		}
		out[i] = fmt.Sprintf("%s@%v=%s @%d", r.Key.Key, r.Key.Window, v, r.Timestamp.UnixMilli())
	}
	return out
}

func TestTumblingCountEmitStrategies(t *testing.T) {
	recs := []keyAt{{"A", 0}, {"A", 5}, {"B", 3}, {"A", 12}, {"A", 8}, {"A", 20}, {"A", 9}}
	for _, tc := range []struct {
		emit dsl.EmitStrategy
		want []string
	}{
		{dsl.OnWindowUpdate, []string{
			"A@[0,10)=1 @0", "A@[0,10)=2 @5", "B@[0,10)=1 @3", "A@[10,20)=1 @12",
			"A@[0,10)=3 @8", // within grace: stream time 12, window closes at 15
			"A@[20,30)=1 @20",
			// A@9 is late: stream time 20 is past 10 + 5.
		}},
		{dsl.OnWindowClose, []string{"A@[0,10)=3 @8", "B@[0,10)=1 @3"}},
	} {
		for _, be := range backends {
			if be.partitions != 1 {
				continue // stream time is per partition: A's and B's may differ
			}
			t.Run(fmt.Sprintf("%v/%s", tc.emit, be.name), func(t *testing.T) {
				b := windowedCount(func(g dsl.GroupedStream[string, string]) dsl.Table[windows.Windowed[string], int64] {
					return dsl.WindowedBy(g, windows.Tumbling(10*msec, 5*msec)).Emit(tc.emit).Count(dsl.Named("counts"))
				})
				d := run(t, b, be.opts...)
				pipeAll(t, d, recs)
				out := d.OutputTopic("out", serde.TimeWindowed(serde.String(), 10*msec), serde.Int64())
				if got := formatWindowed(t, readAll(t, out)); !slices.Equal(got, tc.want) {
					t.Errorf("output:\n got %q\nwant %q", got, tc.want)
				}
				if late := d.Late(); late["counts"] != 1 {
					t.Errorf("late records %v, want 1 for counts", late)
				}
			})
		}
	}
}

func TestSessionCountMergesAndRetracts(t *testing.T) {
	// Gap 10: A@0 and A@30 are sessions of their own; A@15 is within 10 of
	// neither ([0,0] ends 15 before; [30,30] starts 15 after); A@20 joins
	// [15,15] and [30,30] into [15,30].
	recs := []keyAt{{"A", 0}, {"A", 30}, {"A", 15}, {"A", 22}}
	want := []string{
		"A@[0,0)=1 @0",
		"A@[30,30)=1 @30",
		"A@[15,15)=1 @15",
		"A@[15,15)=<tombstone> @15", "A@[30,30)=<tombstone> @30", "A@[15,30)=3 @30",
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			b := windowedCount(func(g dsl.GroupedStream[string, string]) dsl.Table[windows.Windowed[string], int64] {
				return dsl.SessionWindowedBy(g, windows.Session(10*msec, 100*msec)).Count(dsl.Named("sessions"))
			})
			d := run(t, b, be.opts...)
			pipeAll(t, d, recs)
			out := d.OutputTopic("out", serde.SessionWindowed(serde.String()), serde.Int64())
			if got := formatWindowed(t, readAll(t, out)); !slices.Equal(got, want) {
				t.Errorf("output:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestSlidingWindowsAgreeWithDefinition checks sliding-window counts
// against their definition (KIP-450): for random records of one key, in
// any order within grace, the table ends up with exactly the windows
// [t-d, t] of each record t >= d, [0, d] when some record is before d,
// and [t+1, t+1+d] of each record t that has a later record within d,
// each counting the records within its bounds (both inclusive).
func TestSlidingWindowsAgreeWithDefinition(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const d = 10
		n := rapid.IntRange(1, 25).Draw(rt, "n")
		var ts []int64
		for i := range n {
			ts = append(ts, rapid.Int64Range(0, 60).Draw(rt, fmt.Sprint("ts", i)))
		}
		want := map[[2]int64]int64{}
		count := func(lo, hi int64) int64 {
			c := int64(0)
			for _, x := range ts {
				if x >= lo && x <= hi {
					c++
				}
			}
			return c
		}
		for _, x := range ts {
			if x < d {
				want[[2]int64{0, d}] = count(0, d)
			} else {
				want[[2]int64{x - d, x}] = count(x-d, x)
			}
			if c := count(x+1, x+1+d); c > 0 {
				want[[2]int64{x + 1, x + 1 + d}] = c
			}
		}
		b := windowedCount(func(g dsl.GroupedStream[string, string]) dsl.Table[windows.Windowed[string], int64] {
			return dsl.SlidingWindowedBy(g, windows.Sliding(d*msec, time.Hour)).Count(dsl.Named("sliding"), dsl.Materialized(state.WithCache(0)))
		})
		topo, err := b.Build()
		if err != nil {
			rt.Fatal(err)
		}
		dr, err := streamtest.New(topo)
		if err != nil {
			rt.Fatal(err)
		}
		defer dr.Close()
		in := dr.InputTopic("in", serde.String(), serde.String())
		for _, x := range ts {
			if err := in.PipeAt("k", "v", epochMs(x)); err != nil {
				rt.Fatal(err)
			}
		}
		out := dr.OutputTopic("out", serde.TimeWindowed(serde.String(), d*msec), serde.Int64())
		recs, err := out.ReadRecords()
		if err != nil {
			rt.Fatal(err)
		}
		got := map[[2]int64]int64{}
		for _, r := range recs {
			got[[2]int64{r.Key.Window.Start.UnixMilli(), r.Key.Window.End.UnixMilli()}] = r.Value
		}
		if !maps.Equal(got, want) {
			rt.Fatalf("records %v:\n got %v\nwant %v", ts, sortedWindows(got), sortedWindows(want))
		}
	})
}

func sortedWindows(m map[[2]int64]int64) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool { return keys[i][0] < keys[j][0] })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "[%d,%d]=%d ", k[0], k[1], m[k])
	}
	return b.String()
}

// TestSessionsAgreeWithDefinition: for random records of one key within
// grace, the final session table holds exactly the runs of records no
// more than the gap apart, each with its count, and emit-final gives each
// run once, after it closes.
func TestSessionsAgreeWithDefinition(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const gap = 5
		n := rapid.IntRange(1, 25).Draw(rt, "n")
		var ts []int64
		for i := range n {
			ts = append(ts, rapid.Int64Range(0, 100).Draw(rt, fmt.Sprint("ts", i)))
		}
		sorted := slices.Sorted(slices.Values(ts))
		want := map[[2]int64]int64{}
		start, end, c := sorted[0], sorted[0], int64(1)
		for _, x := range sorted[1:] {
			if x-end <= gap {
				end, c = x, c+1
				continue
			}
			want[[2]int64{start, end}] = c
			start, end, c = x, x, 1
		}
		want[[2]int64{start, end}] = c
		for _, emit := range []dsl.EmitStrategy{dsl.OnWindowUpdate, dsl.OnWindowClose} {
			b := windowedCount(func(g dsl.GroupedStream[string, string]) dsl.Table[windows.Windowed[string], int64] {
				return dsl.SessionWindowedBy(g, windows.Session(gap*msec, time.Hour)).Emit(emit).Count(dsl.Named("s"))
			})
			topo, err := b.Build()
			if err != nil {
				rt.Fatal(err)
			}
			dr, err := streamtest.New(topo)
			if err != nil {
				rt.Fatal(err)
			}
			in := dr.InputTopic("in", serde.String(), serde.String())
			for _, x := range ts {
				if err := in.PipeAt("k", "v", epochMs(x)); err != nil {
					rt.Fatal(err)
				}
			}
			// A record far later closes every session.
			if err := in.PipeAt("z", "v", epochMs(100+gap+1+3600_000)); err != nil {
				rt.Fatal(err)
			}
			out := dr.OutputTopic("out", serde.SessionWindowed(serde.String()), serde.Int64())
			recs, err := out.ReadRecords()
			if err != nil {
				rt.Fatal(err)
			}
			got := map[[2]int64]int64{}
			for _, r := range recs {
				if r.Key.Key != "k" {
					continue
				}
				w := [2]int64{r.Key.Window.Start.UnixMilli(), r.Key.Window.End.UnixMilli()}
				if emit == dsl.OnWindowClose {
					if _, dup := got[w]; dup {
						rt.Fatalf("emit-final gave session %v twice", w)
					}
					if r.NullValue {
						rt.Fatalf("emit-final gave a tombstone for %v", w)
					}
				}
				if r.NullValue {
					delete(got, w)
				} else {
					got[w] = r.Value
				}
			}
			dr.Close()
			if !maps.Equal(got, want) {
				rt.Fatalf("%v, records %v:\n got %v\nwant %v", emit, ts, sortedWindows(got), sortedWindows(want))
			}
		}
	})
}
