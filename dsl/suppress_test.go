package dsl

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/pebble"
	"github.com/gregorstream/gregor/streamtest"
	"github.com/gregorstream/gregor/windows"
)

// The cases of Kafka Streams' SuppressScenarioTest are data files
// (testdata/suppress); these tests cover what a data file cannot show.

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// suppressedTable builds a table of topic "in" suppressed by s into topic
// "out".
func suppressedTable(s Suppression, opts ...Option) *Builder {
	b := NewBuilder()
	b.Table("in", serde.String(), serde.String(), Named("rows"), Materialized(state.WithCache(0))).
		Suppress(s, opts...).ToStream().To("out")
	return b
}

func startDriver(t *testing.T, b *Builder, opts ...streamtest.Option) *streamtest.Driver {
	t.Helper()
	topo, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	d, err := streamtest.New(topo, opts...)
	if err != nil {
		t.Fatalf("streamtest.New: %v", err)
	}
	return d
}

// outLines reads topic "out" of d as "key value @ms" lines.
func outLines(t *testing.T, d *streamtest.Driver) []string {
	t.Helper()
	recs, err := d.OutputTopic("out", serde.String(), serde.String()).ReadRecords()
	if err != nil {
		t.Fatalf("read out: %v", err)
	}
	var lines []string
	for _, r := range recs {
		v := r.Value
		if r.NullValue {
			v = "<tombstone>"
		}
		lines = append(lines, fmt.Sprintf("%s %s @%d", r.Key, v, r.Timestamp.UnixMilli()))
	}
	return lines
}

func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

func TestSuppressBuildErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Suppression
		opts []BuilderOption
		want string
	}{
		{"window closes on a plain table", UntilWindowCloses(Unbounded()), nil, "not windowed"},
		{"no records", UntilTimeLimit(time.Second, MaxRecords(0)), nil, "MaxRecords(0)"},
		{"no bytes", UntilTimeLimit(time.Second, MaxRecords(3).MaxBytes(-1)), nil, "MaxBytes(-1)"},
		{"strict buffer without records", UntilWindowCloses(MaxBytes(0).FailWhenFull()), nil, "MaxBytes(0)"},
		{"negative limit", UntilTimeLimit(-time.Second, Unbounded()), nil, "negative time limit"},
		{"unnamed", UntilTimeLimit(time.Second, Unbounded()), []BuilderOption{RequireNames()}, "Suppress: of rows: unnamed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := NewBuilder(c.opts...)
			b.Table("in", serde.String(), serde.String(), Named("rows")).Suppress(c.s).ToStream().To("out")
			_, err := b.Build()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build: %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestSuppressFailWhenFull(t *testing.T) {
	for _, c := range []struct {
		name  string
		buf   StrictBuffer
		limit string
	}{
		{"records", MaxRecords(2).FailWhenFull(), "2 records"},
		{"bytes", MaxBytes(60).FailWhenFull(), "60 bytes"},
		{"records and bytes", MaxRecords(5).MaxBytes(60).FailWhenFull(), "5 records and 60 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDriver(t, suppressedTable(UntilTimeLimit(time.Hour, c.buf), Named("held")))
			defer d.Close()
			in := d.InputTopic("in", serde.String(), serde.String())
			var err error
			for i := range 3 {
				if err = in.PipeAt(fmt.Sprint("k", i), "v", ms(int64(i))); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrBufferFull) {
				t.Fatalf("pipe: %v, want ErrBufferFull", err)
			}
			for _, s := range []string{`buffer store "held"`, c.limit} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			wantLines(t, "out", outLines(t, d))
		})
	}
}

func TestSuppressLimitsCombine(t *testing.T) {
	// Each entry here is 8 (buffer time) + 2 (key) + 1 (value) + 20 (the
	// timestamp, offset and partition) + 2 (the topic "in") = 33 bytes:
	// three fit in 130 bytes, so MaxRecords(2) is the limit that bites; in
	// 80 bytes two fit, so the bytes bite at the third key.
	for _, c := range []struct {
		name string
		buf  Buffer
		want []string
	}{
		{"records bite", MaxRecords(2).MaxBytes(130), []string{"k0 v @0"}},
		{"bytes bite", MaxRecords(5).MaxBytes(80), []string{"k0 v @0"}},
		{"neither", MaxRecords(5).MaxBytes(200), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDriver(t, suppressedTable(UntilTimeLimit(time.Hour, c.buf)))
			defer d.Close()
			in := d.InputTopic("in", serde.String(), serde.String())
			for i := range 3 {
				mustOK(t, in.PipeAt(fmt.Sprint("k", i), "v", ms(int64(i))))
			}
			wantLines(t, "out", outLines(t, d), c.want...)
		})
	}
}

func TestSuppressKeepsTheLatestRecord(t *testing.T) {
	d := startDriver(t, suppressedTable(UntilTimeLimit(10*time.Millisecond, Unbounded())))
	defer d.Close()
	in := d.InputTopic("in", serde.String(), serde.String())
	mustOK(t, in.PipeRecord(processor.Record[string, string]{Key: "a", Value: "1", Timestamp: ms(0), Headers: processor.Headers{{Key: "h", Value: []byte("first")}}}))
	mustOK(t, in.PipeRecord(processor.Record[string, string]{Key: "a", Value: "2", Timestamp: ms(3), Headers: processor.Headers{{Key: "h", Value: []byte("second")}, {Key: "nil"}}}))
	mustOK(t, in.PipeAt("b", "x", ms(10)))
	recs, err := d.OutputTopic("out", serde.String(), serde.String()).ReadRecords()
	mustOK(t, err)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Key != "a" || r.Value != "2" || r.Timestamp.UnixMilli() != 3 {
		t.Errorf("got %s %s @%d, want a 2 @3", r.Key, r.Value, r.Timestamp.UnixMilli())
	}
	if v, _ := r.Headers.Get("h"); string(v) != "second" || len(r.Headers) != 2 || r.Headers[1].Value != nil {
		t.Errorf("headers %+v, want the latest record's", r.Headers)
	}
}

func TestSuppressTombstones(t *testing.T) {
	// A table of windowed keys whose value "del" deletes the row: a
	// final result drops the tombstone, a time limit passes it on.
	build := func(s Suppression) *Builder {
		b := NewBuilder()
		w := windows.Tumbling(10*time.Millisecond, 0)
		src := b.Stream("in", serde.String(), serde.String())
		name := b.newName(&options{}, "TEST-WINDOWED-ROWS")
		b.topo.AddProcessor(name, func() processor.Processor[string, string, windows.Windowed[string], Change[string]] {
			return &funcProcessor[string, string, windows.Windowed[string], Change[string]]{f: func(r processor.Record[string, string]) processor.Record[windows.Windowed[string], Change[string]] {
				k := windows.Windowed[string]{Key: r.Key, Window: w.WindowsFor(r.Timestamp)[0]}
				if r.Value == "del" {
					return r.WithKeyValue(k, Change[string]{Old: "?", HasOld: true})
				}
				return r.WithKeyValue(k, Change[string]{New: r.Value, HasNew: true})
			}}
		}, src.node)
		keys := serde.TimeWindowed(serde.String(), w.Size())
		tbl := Table[windows.Windowed[string], string]{b: b, node: name, keys: keys, values: serde.String(),
			win: windowKeys[string](&windowInfo{closeTime: w.CloseTime})}
		tbl.Suppress(s).ToStream().To("out")
		return b
	}
	for _, c := range []struct {
		name string
		s    Suppression
		want []string
	}{
		{"final", UntilWindowCloses(Unbounded()), []string{"k@[0,10) 1 @1"}},
		{"time limit", UntilTimeLimit(0, Unbounded()), []string{"j@[0,10) 2 @2", "j@[0,10) <tombstone> @3", "k@[0,10) 1 @1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDriver(t, build(c.s))
			defer d.Close()
			in := d.InputTopic("in", serde.String(), serde.String())
			mustOK(t, in.PipeAt("j", "2", ms(2)))
			mustOK(t, in.PipeAt("j", "del", ms(3)))
			mustOK(t, in.PipeAt("k", "1", ms(1)))
			mustOK(t, in.PipeAt("z", "tick", ms(10)))
			recs, err := d.OutputTopic("out", serde.TimeWindowed(serde.String(), 10*time.Millisecond), serde.String()).ReadRecords()
			mustOK(t, err)
			var got []string
			for _, r := range recs {
				v := r.Value
				if r.NullValue {
					v = "<tombstone>"
				}
				if r.Key.Key != "z" { // the tick, emitted at once by the time limit
					got = append(got, fmt.Sprintf("%s %s @%d", r.Key, v, r.Timestamp.UnixMilli()))
				}
			}
			wantLines(t, "out", got, c.want...)
		})
	}
}

// funcProcessor maps each record with f.
type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	forward[KOut, VOut]
	f func(processor.Record[KIn, VIn]) processor.Record[KOut, VOut]
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Process(r processor.Record[KIn, VIn]) error {
	return p.next(p.f(r))
}

func TestSuppressWindowCloses(t *testing.T) {
	// Windows of 10ms with 5ms of grace: [0,10) closes at 15.
	for _, cfg := range ddConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			b := NewBuilder()
			w := windows.Tumbling(10*time.Millisecond, 5*time.Millisecond)
			counts := WindowedBy(b.Stream("in", serde.String(), serde.String()).GroupByKey(), w).Count(Named("counts"))
			counts.Suppress(UntilWindowCloses(MaxRecords(10).FailWhenFull()), Named("final")).ToStream().
				Map(func(k windows.Windowed[string], n int64) (string, string) { return k.String(), fmt.Sprint(n) }).
				WithSerdes(serde.String(), serde.String()).To("out")
			d := startDriver(t, b, cfg.opts...)
			defer d.Close()
			in := d.InputTopic("in", serde.String(), serde.String())
			mustOK(t, in.PipeAt("a", "x", ms(1)))
			mustOK(t, in.PipeAt("a", "x", ms(9)))
			mustOK(t, in.PipeAt("a", "x", ms(14)))
			wantLines(t, "before close", outLines(t, d))
			mustOK(t, in.PipeAt("a", "x", ms(15)))
			wantLines(t, "at close", outLines(t, d), "a@[0,10) 2 @9")
			mustOK(t, in.PipeAt("a", "x", ms(3))) // late: dropped by the count
			mustOK(t, in.PipeAt("a", "x", ms(40)))
			wantLines(t, "later", outLines(t, d), "a@[10,20) 2 @15")
		})
	}
}

func TestSuppressRestore(t *testing.T) {
	dir := t.TempDir()
	open := func() *pebble.Engine {
		e, err := pebble.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	b := func() *Builder {
		return suppressedTable(UntilTimeLimit(10*time.Millisecond, Unbounded()), Named("held"))
	}

	e := open()
	d := startDriver(t, b(), streamtest.Engine(e))
	in := d.InputTopic("in", serde.String(), serde.String())
	mustOK(t, in.PipeAt("a", "1", ms(1000)))
	mustOK(t, in.PipeAt("a", "2", ms(1004)))
	mustOK(t, in.PipeAt("b", "1", ms(1009)))
	wantLines(t, "before the restart", outLines(t, d))
	changelog, err := d.OutputTopic(state.ChangelogTopic("streamtest", "held"), serde.Bytes(), serde.Bytes()).ReadRecords()
	mustOK(t, err)
	if len(changelog) == 0 {
		t.Errorf("the buffer wrote no changelog")
	}
	mustOK(t, d.Close())
	mustOK(t, e.Close())

	e = open()
	defer e.Close()
	d = startDriver(t, b(), streamtest.Engine(e))
	defer d.Close()
	in = d.InputTopic("in", serde.String(), serde.String())
	// Stream time (1009) survived: a record buffered at 995 is due at once,
	// while a (buffered at 1000) and b (1009) still wait.
	mustOK(t, in.PipeAt("c", "1", ms(995)))
	wantLines(t, "after the restart", outLines(t, d), "c 1 @995")
	mustOK(t, in.PipeAt("d", "1", ms(1019)))
	wantLines(t, "at stream time 1019", outLines(t, d), "a 2 @1004", "b 1 @1009")
	mustOK(t, in.PipeAt("e", "1", ms(1100)))
	wantLines(t, "at stream time 1100", outLines(t, d), "d 1 @1019")
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func FuzzSuppressEntry(f *testing.F) {
	f.Add(encodeEntry(&bufferEntry{time: 5, ts: 7, newV: []byte("n"), oldV: []byte("o"), prior: []byte("o"), priorIsOld: true}))
	f.Add(encodeEntry(&bufferEntry{time: -1, ts: 3, oldV: []byte{}, prior: []byte("p"),
		headers: processor.Headers{{Key: "a", Value: []byte("b")}, {Key: "nil"}}, origin: processor.Origin{Topic: "t", Partition: 3, Offset: 99}}))
	f.Add(encodeEntry(&bufferEntry{noTS: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntry(b)
		if err != nil {
			return
		}
		again, err := decodeEntry(encodeEntry(&e))
		if err != nil {
			t.Fatalf("decode of a re-encoded entry: %v", err)
		}
		if fmt.Sprintf("%+v", again) != fmt.Sprintf("%+v", e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, e)
		}
	})
}
