package dsl_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// cacheModes run a test with the tables' and aggregations' record caches
// on (the default) and off. The driver commits after each pipe, so with
// one update per key per pipe both see the same.
var cacheModes = []struct {
	name  string
	store []state.Option
}{
	{"cache", nil},
	{"no cache", []state.Option{state.WithCache(0)}},
}

// A table source keeps the latest value of each key: an update replaces
// it, a null value (a tombstone, piped as a record with NullValue or as nil
// bytes) deletes it, and ToStream passes on each change, a delete as a
// tombstone with nil bytes. Deleting a missing key changes nothing and
// emits nothing; a record with a null key is dropped and counted; an empty
// value is a value, not a delete.
func TestTableSource(t *testing.T) {
	steps := []struct {
		name string
		pipe func(d *streamtest.Driver, in *streamtest.InputTopic[string, string]) error
		want map[string][]upd[string] // what ToStream emits, by key
	}{{
		name: "insert",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeAt("ann", "east", sec(1))
		},
		want: map[string][]upd[string]{"ann": {val("east", sec(1))}},
	}, {
		name: "update",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeAt("ann", "west", sec(2))
		},
		want: map[string][]upd[string]{"ann": {val("west", sec(2))}},
	}, {
		name: "another key",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeAt("bob", "north", sec(3))
		},
		want: map[string][]upd[string]{"bob": {val("north", sec(3))}},
	}, {
		name: "tombstone record",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeRecord(tombstone[string, string]("ann", sec(4)))
		},
		want: map[string][]upd[string]{"ann": {del[string](sec(4))}},
	}, {
		name: "tombstone of a missing key",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeRecord(tombstone[string, string]("dan", sec(5)))
		},
	}, {
		name: "tombstone of a deleted key",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeRecord(tombstone[string, string]("ann", sec(5)))
		},
	}, {
		name: "empty value",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeAt("cy", "", sec(6))
		},
		want: map[string][]upd[string]{"cy": {val("", sec(6))}},
	}, {
		name: "nil bytes",
		pipe: func(d *streamtest.Driver, _ *streamtest.InputTopic[string, string]) error {
			return d.PipeRaw("users", -1, processor.RawRecord{Key: []byte("bob"), Value: nil, Timestamp: sec(7)})
		},
		want: map[string][]upd[string]{"bob": {del[string](sec(7))}},
	}, {
		name: "null key",
		pipe: func(_ *streamtest.Driver, in *streamtest.InputTopic[string, string]) error {
			return in.PipeValue("south")
		},
	}}
	wantRows := map[string]state.ValueAndTimestamp[string]{"cy": vat("", sec(6))}
	wantLog := map[string][]upd[state.ValueAndTimestamp[string]]{
		"ann": logged(row("east", sec(1)), row("west", sec(2)), nil),
		"bob": logged(row("north", sec(3)), nil),
		"cy":  logged(row("", sec(6))),
	}

	for _, cm := range cacheModes {
		t.Run(cm.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			users := b.Table("users", serde.String(), serde.String(), dsl.Named("users"), dsl.Materialized(cm.store...))
			if users.StoreName() != "users" || users.Name() != "users" {
				t.Errorf("Name() %q, StoreName() %q; want users, users", users.Name(), users.StoreName())
			}
			changes := users.ToStream()
			changes.To("users-out")
			changes.To("users-raw")
			d := run(t, b)
			in := d.InputTopic("users", serde.String(), serde.String(), streamtest.StartAt(sec(8)))
			out := d.OutputTopic("users-out", serde.String(), serde.String())
			raw := d.OutputTopic("users-raw", serde.Bytes(), serde.Bytes())
			for _, st := range steps {
				must(t, st.pipe(d, in))
				got := byKey(t, out)
				if diff := cmp.Diff(st.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("%s: ToStream (-want +got):\n%s", st.name, diff)
				}
				// On the wire a tombstone is nil bytes, an empty value
				// empty bytes.
				for raw.Len() > 0 {
					r, _ := raw.ReadRaw()
					k := string(r.Key)
					if len(st.want[k]) != 1 {
						t.Errorf("%s: raw record of key %q not expected", st.name, k)
						continue
					}
					if isNil, wantNil := r.Value == nil, st.want[k][0].Null; isNil != wantNil {
						t.Errorf("%s: raw value of %q is %q (nil: %v), want nil: %v", st.name, k, r.Value, isNil, wantNil)
					}
				}
			}
			if diff := cmp.Diff(map[string]int64{"null key": 1}, d.Dropped()); diff != "" {
				t.Errorf("Dropped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRows, storeRows[string, string](t, d, "users", 1, serde.String())); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantLog, changelog(t, d, "users", 1, serde.String(), serde.String())); diff != "" {
				t.Errorf("changelog (-want +got):\n%s", diff)
			}
		})
	}
}

// A table is the latest record of each key by offset, not by timestamp: an
// update with an older timestamp replaces the row, and the row and the
// change take the record's timestamp.
func TestTableSourceOutOfOrder(t *testing.T) {
	for _, cm := range cacheModes {
		t.Run(cm.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Table("users", serde.String(), serde.String(), dsl.Named("users"), dsl.Materialized(cm.store...)).ToStream().To("out")
			d := run(t, b)
			in := d.InputTopic("users", serde.String(), serde.String())
			must(t, in.PipeAt("ann", "east", sec(20)))
			must(t, in.PipeAt("ann", "west", sec(10)))
			want := map[string][]upd[string]{"ann": {val("east", sec(20)), val("west", sec(10))}}
			if diff := cmp.Diff(want, byKey(t, d.OutputTopic("out", serde.String(), serde.String()))); diff != "" {
				t.Errorf("ToStream (-want +got):\n%s", diff)
			}
			wantRows := map[string]state.ValueAndTimestamp[string]{"ann": vat("west", sec(10))}
			if diff := cmp.Diff(wantRows, storeRows[string, string](t, d, "users", 1, serde.String())); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
		})
	}
}

// ages are piped, in order, to the "ages" table; nil is a tombstone.
var ages = []struct {
	user string
	age  *int64
}{
	{"ann", ptr[int64](20)}, // 0
	{"bob", ptr[int64](10)}, // 1
	{"ann", ptr[int64](15)}, // 2: ann stops being an adult
	{"bob", ptr[int64](12)}, // 3
	{"bob", nil},            // 4: bob, never an adult, is deleted
	{"ann", ptr[int64](30)}, // 5: ann is an adult again
	{"ann", nil},            // 6
	{"cy", ptr[int64](40)},  // 7
	{"cy", ptr[int64](50)},  // 8
	{"dan", nil},            // 9: never existed
}

func ptr[T any](v T) *T { return &v }

// Table.Filter passes the rows that satisfy the predicate: a row that stops
// satisfying it is deleted downstream (a tombstone), and a row that never
// did emits nothing, not even on delete. FilterNot is the complement.
func TestTableFilter(t *testing.T) {
	adult := func(_ string, age int64) bool { return age >= 18 }
	type change struct {
		user string
		age  *int64 // nil: a tombstone
	}
	tests := []struct {
		name   string
		filter func(tbl dsl.Table[string, int64]) dsl.Table[string, int64]
		want   [][]change // by step of ages
	}{{
		name:   "Filter",
		filter: func(tbl dsl.Table[string, int64]) dsl.Table[string, int64] { return tbl.Filter(adult) },
		want: [][]change{
			{{"ann", ptr[int64](20)}}, nil, {{"ann", nil}}, nil, nil,
			{{"ann", ptr[int64](30)}}, {{"ann", nil}}, {{"cy", ptr[int64](40)}}, {{"cy", ptr[int64](50)}}, nil,
		},
	}, {
		name:   "FilterNot",
		filter: func(tbl dsl.Table[string, int64]) dsl.Table[string, int64] { return tbl.FilterNot(adult) },
		want: [][]change{
			nil, {{"bob", ptr[int64](10)}}, {{"ann", ptr[int64](15)}}, {{"bob", ptr[int64](12)}}, {{"bob", nil}},
			{{"ann", nil}}, nil, nil, nil, nil,
		},
	}, {
		name: "MapValues then Filter",
		filter: func(tbl dsl.Table[string, int64]) dsl.Table[string, int64] {
			return tbl.MapValues(func(years int64) int64 { return 12 * years }).
				Filter(func(_ string, months int64) bool { return months >= 18*12 })
		},
		want: [][]change{
			{{"ann", ptr[int64](240)}}, nil, {{"ann", nil}}, nil, nil,
			{{"ann", ptr[int64](360)}}, {{"ann", nil}}, {{"cy", ptr[int64](480)}}, {{"cy", ptr[int64](600)}}, nil,
		},
	}}
	for _, tt := range tests {
		for _, cm := range cacheModes {
			t.Run(tt.name+"/"+cm.name, func(t *testing.T) {
				b := dsl.NewBuilder()
				src := b.Table("ages", serde.String(), serde.Int64(), dsl.Named("ages"), dsl.Materialized(cm.store...))
				filtered := tt.filter(src)
				if filtered.StoreName() != "" {
					t.Errorf("the filtered table has store %q; want none", filtered.StoreName())
				}
				filtered.ToStream().To("out")
				d := run(t, b)
				in := d.InputTopic("ages", serde.String(), serde.Int64())
				out := d.OutputTopic("out", serde.String(), serde.Int64())
				for i, a := range ages {
					if a.age == nil {
						must(t, in.PipeRecord(tombstone[string, int64](a.user, time.Time{})))
					} else {
						must(t, in.Pipe(a.user, *a.age))
					}
					var got []change
					for _, r := range readAll(t, out) {
						c := change{user: r.Key}
						if !r.NullValue {
							c.age = &r.Value
						}
						got = append(got, c)
					}
					if diff := cmp.Diff(tt.want[i], got, cmp.AllowUnexported(change{})); diff != "" {
						t.Errorf("after %s=%v (step %d) (-want +got):\n%s", a.user, fmtAge(a.age), i, diff)
					}
				}
				// The source table holds every row, matching or not.
				wantRows := map[string]int64{"cy": 50}
				if diff := cmp.Diff(wantRows, values(storeRows[string, int64](t, d, "ages", 1, serde.String()))); diff != "" {
					t.Errorf("source store (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func fmtAge(a *int64) string {
	if a == nil {
		return "null"
	}
	return fmt.Sprint(*a)
}

// Table.MapValues maps every row, to another type too (with WithSerdes for
// the sink); a delete stays a delete, the mapper is not called for the
// missing new value.
func TestTableMapValues(t *testing.T) {
	for _, cm := range cacheModes {
		t.Run(cm.name, func(t *testing.T) {
			var mapped []int64
			b := dsl.NewBuilder()
			b.Table("ages", serde.String(), serde.Int64(), dsl.Named("ages"), dsl.Materialized(cm.store...)).
				MapValues(func(age int64) string {
					mapped = append(mapped, age)
					return fmt.Sprintf("%d years", age)
				}).
				WithSerdes(serde.String(), serde.String()).
				ToStream().
				To("out")
			d := run(t, b)
			in := d.InputTopic("ages", serde.String(), serde.Int64())
			must(t, in.PipeAt("ann", 20, sec(1)))
			must(t, in.PipeAt("ann", 21, sec(2)))
			must(t, in.PipeRecord(tombstone[string, int64]("ann", sec(3))))
			must(t, in.PipeAt("bob", 5, sec(4)))
			want := map[string][]upd[string]{
				"ann": {val("20 years", sec(1)), val("21 years", sec(2)), del[string](sec(3))},
				"bob": {val("5 years", sec(4))},
			}
			if diff := cmp.Diff(want, byKey(t, d.OutputTopic("out", serde.String(), serde.String()))); diff != "" {
				t.Errorf("ToStream (-want +got):\n%s", diff)
			}
			// Old values are mapped too (a change carries both); a
			// missing value never is, so no zero value reaches the mapper.
			if diff := cmp.Diff([]int64{20, 21, 20, 21, 5}, mapped); diff != "" {
				t.Errorf("mapper calls (-want +got):\n%s", diff)
			}
		})
	}
}

// ToStream writes a delete as a tombstone: ReadRecord reports NullValue,
// and the bytes on the topic are nil, whatever the value serde would make
// of the zero value.
func TestToStreamTombstone(t *testing.T) {
	b := dsl.NewBuilder()
	b.Table("counts", serde.String(), serde.Int64(), dsl.Named("counts")).ToStream().To("out")
	d := run(t, b)
	in := d.InputTopic("counts", serde.String(), serde.Int64())
	must(t, in.PipeAt("a", 0, sec(1)))
	must(t, in.PipeRecord(tombstone[string, int64]("a", sec(2))))
	out := d.OutputTopic("out", serde.String(), serde.Int64())

	r, err := out.ReadRecord()
	must(t, err)
	if r.Key != "a" || r.Value != 0 || r.NullValue || !r.Timestamp.Equal(sec(1)) {
		t.Errorf("first record %+v: want a=0 (not null) at %v", r, sec(1))
	}
	r, err = out.ReadRecord()
	must(t, err)
	if r.Key != "a" || !r.NullValue || r.NullKey || !r.Timestamp.Equal(sec(2)) {
		t.Errorf("second record %+v: want a tombstone of a at %v", r, sec(2))
	}
	if !out.IsEmpty() {
		t.Errorf("%d more records", out.Len())
	}

	// The same, read raw.
	must(t, in.PipeAt("a", 0, sec(3)))
	must(t, in.PipeRecord(tombstone[string, int64]("a", sec(4))))
	raw, ok := out.ReadRaw()
	if !ok || string(raw.Key) != "a" || raw.Value == nil || len(raw.Value) != 8 {
		t.Errorf("raw record %+v: want key a and the 8 bytes of 0", raw)
	}
	raw, ok = out.ReadRaw()
	if !ok || string(raw.Key) != "a" || raw.Value != nil {
		t.Errorf("raw record %+v: want key a and a nil value", raw)
	}
}

// With the record cache, a table's updates of a key between commits reach
// downstream and the changelog once, as the last value, or not at all when
// the key ends where it started; without it each passes.
func TestTableCache(t *testing.T) {
	type step struct {
		user, region string // "" region: a tombstone
	}
	steps := []step{{"ann", "a"}, {"ann", "b"}, {"bob", "x"}, {"ann", "c"}, {"cy", "z"}, {"cy", ""}, {"dan", ""}}
	tests := []struct {
		name    string
		store   []state.Option
		want    []processor.KeyValue[string, *string]
		wantLog map[string][]upd[state.ValueAndTimestamp[string]]
	}{{
		name: "cache",
		want: []processor.KeyValue[string, *string]{{Key: "ann", Value: ptr("c")}, {Key: "bob", Value: ptr("x")}},
		wantLog: map[string][]upd[state.ValueAndTimestamp[string]]{
			"ann": logged(row("c", sec(3))),
			"bob": logged(row("x", sec(2))),
		},
	}, {
		name:  "no cache",
		store: []state.Option{state.WithCache(0)},
		want: []processor.KeyValue[string, *string]{{Key: "ann", Value: ptr("a")}, {Key: "ann", Value: ptr("b")},
			{Key: "bob", Value: ptr("x")}, {Key: "ann", Value: ptr("c")}, {Key: "cy", Value: ptr("z")}, {Key: "cy", Value: nil}},
		wantLog: map[string][]upd[state.ValueAndTimestamp[string]]{
			"ann": logged(row("a", sec(0)), row("b", sec(1)), row("c", sec(3))),
			"bob": logged(row("x", sec(2))),
			"cy":  logged(row("z", sec(4)), nil),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Table("users", serde.String(), serde.String(), dsl.Named("users"), dsl.Materialized(tt.store...)).ToStream().To("out")
			d := run(t, b, streamtest.CommitEvery(100))
			in := d.InputTopic("users", serde.String(), serde.String())
			out := d.OutputTopic("out", serde.String(), serde.String())
			for i, s := range steps {
				if s.region == "" {
					must(t, in.PipeRecord(tombstone[string, string](s.user, sec(i))))
				} else {
					must(t, in.PipeAt(s.user, s.region, sec(i)))
				}
			}
			if tt.store == nil && !out.IsEmpty() {
				t.Errorf("%d records out before the commit, want none", out.Len())
			}
			must(t, d.Commit())
			var got []processor.KeyValue[string, *string]
			for _, r := range readAll(t, out) {
				kv := processor.KeyValue[string, *string]{Key: r.Key}
				if !r.NullValue {
					kv.Value = &r.Value
				}
				got = append(got, kv)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			gotLog := changelog(t, d, "users", 1, serde.String(), serde.String())
			if tt.store == nil {
				// cy, written and deleted within the interval: see
				// TestTableCacheWriteThenDelete.
				delete(gotLog, "cy")
			}
			if diff := cmp.Diff(tt.wantLog, gotLog); diff != "" {
				t.Errorf("changelog (-want +got):\n%s", diff)
			}
		})
	}
}

// A key written and deleted between two commits leaves no trace with the
// record cache: nothing downstream, nothing in the changelog, as with
// Kafka Streams' caching store, which skips an entry that is null in the
// cache and absent below.
func TestTableCacheWriteThenDelete(t *testing.T) {
	b := dsl.NewBuilder()
	b.Table("users", serde.String(), serde.String(), dsl.Named("users")).ToStream().To("out")
	d := run(t, b, streamtest.CommitEvery(100))
	in := d.InputTopic("users", serde.String(), serde.String())
	must(t, in.PipeAt("cy", "z", sec(1)))
	must(t, in.PipeRecord(tombstone[string, string]("cy", sec(2))))
	must(t, d.Commit())
	if n := d.OutputTopic("out", serde.String(), serde.String()).Len(); n != 0 {
		t.Errorf("%d records downstream, want none", n)
	}
	if got := changelog(t, d, "users", 1, serde.String(), serde.String()); len(got) != 0 {
		t.Errorf("changelog holds %+v, want nothing", got)
	}
}

// A delete that the record cache holds reaches downstream with the
// tombstone's timestamp, as Kafka Streams forwards a cached entry with the
// record context that wrote it, and as the table does without the cache.
func TestTableCacheDeleteTimestamp(t *testing.T) {
	b := dsl.NewBuilder()
	b.Table("users", serde.String(), serde.String(), dsl.Named("users")).ToStream().To("out")
	d := run(t, b, streamtest.CommitEvery(100))
	in := d.InputTopic("users", serde.String(), serde.String())
	must(t, in.PipeAt("ann", "a", sec(1)))
	must(t, d.Commit())
	must(t, in.PipeRecord(tombstone[string, string]("ann", sec(2))))
	must(t, in.PipeAt("bob", "b", sec(9))) // stream time moves on
	must(t, d.Commit())
	want := map[string][]upd[string]{"ann": {val("a", sec(1)), del[string](sec(2))}, "bob": {val("b", sec(9))}}
	if diff := cmp.Diff(want, byKey(t, d.OutputTopic("out", serde.String(), serde.String()))); diff != "" {
		t.Errorf("ToStream (-want +got):\n%s", diff)
	}
}
