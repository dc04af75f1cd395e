package dsl_test

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// eventTime reads a record's event time from its value: milliseconds since
// the epoch, as text; "bad" fails and "negative" gives a time before 1970.
func eventTime(_ string, v string, _ time.Time) (time.Time, error) {
	if v == "negative" {
		return time.UnixMilli(-5), nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// streamTimes forwards every record with its value replaced by the stream
// time its processor sees.
func streamTimes() processor.Supplier[string, string, string, int64] {
	return func() processor.Processor[string, string, string, int64] {
		return &funcProc[string, string, string, int64]{process: func(ctx processor.Context[string, int64], r processor.Record[string, string]) error {
			return ctx.Forward(processor.Record[string, int64]{Key: r.Key, Value: ctx.CurrentStreamTime().UnixMilli(), Timestamp: r.Timestamp})
		}}
	}
}

func TestTimestampFunc(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String(), dsl.WithTimestamps(dsl.TimestampFunc(eventTime))).
		Process(streamTimes()).
		WithSerdes(serde.String(), serde.Int64()).
		To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String(), streamtest.StartAt(t0))
	out := d.OutputTopic("out", serde.String(), serde.Int64())
	// The Kafka timestamps (t0, t0+1s, ...) are not the event times.
	for _, v := range []string{"5000", "3000", "9000", "7000"} {
		must(t, in.Pipe("k", v))
	}
	var got []string
	for _, r := range readAll(t, out) {
		got = append(got, strconv.FormatInt(r.Timestamp.UnixMilli(), 10)+"@"+strconv.FormatInt(r.Value, 10))
	}
	// Each output carries the extracted time; stream time is the largest
	// extracted so far.
	want := []string{"5000@5000", "3000@5000", "9000@9000", "7000@9000"}
	if !slices.Equal(got, want) {
		t.Errorf("timestamp@stream time = %v, want %v", got, want)
	}
}

func TestWallClockTime(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String(), dsl.WithTimestamps(dsl.WallClockTime())).
		Process(streamTimes()).
		WithSerdes(serde.String(), serde.Int64()).
		To("out")
	start := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	d := run(t, b, streamtest.StartTime(start))
	in := d.InputTopic("in", serde.String(), serde.String(), streamtest.StartAt(t0))
	out := d.OutputTopic("out", serde.String(), serde.Int64())
	must(t, in.Pipe("k", "a"))
	must(t, d.AdvanceWallClock(90*time.Second))
	must(t, in.Pipe("k", "b"))
	recs := readAll(t, out)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	for i, want := range []time.Time{start, start.Add(90 * time.Second)} {
		if !recs[i].Timestamp.Equal(want) || recs[i].Value != want.UnixMilli() {
			t.Errorf("record %d: timestamp %v, stream time %d, want %v for both", i, recs[i].Timestamp, recs[i].Value, want)
		}
	}
}

func TestRecordTimeIsDefault(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String(), dsl.WithTimestamps(dsl.RecordTime())).To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String())
	out := d.OutputTopic("out", serde.String(), serde.String())
	must(t, in.PipeAt("k", "v", t0))
	if recs := readAll(t, out); len(recs) != 1 || !recs[0].Timestamp.Equal(t0) {
		t.Errorf("output %v, want one record at %v", recs, t0)
	}
}

func TestTimestampFuncFails(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  string
	}{
		{"bad", `parsing "bad"`},
		{"negative", "before the Unix epoch"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Stream("in", serde.String(), serde.String(), dsl.WithTimestamps(dsl.TimestampFunc(eventTime))).To("out")
			d, err := streamtest.New(build(t, b), streamtest.TopicPartitions("in", 2))
			if err != nil {
				t.Fatal(err)
			}
			out := d.OutputTopic("out", serde.String(), serde.String())
			must(t, d.PipeRaw("in", 1, processor.RawRecord{Key: []byte("k"), Value: []byte("1000"), Timestamp: t0}))
			err = d.PipeRaw("in", 1, processor.RawRecord{Key: []byte("k"), Value: []byte(tc.value), Timestamp: t0})
			var te *processor.TimestampError
			if !errors.As(err, &te) {
				t.Fatalf("pipe = %v, want a *processor.TimestampError", err)
			}
			if te.Origin.Topic != "in" || te.Origin.Partition != 1 || te.Origin.Offset != 1 {
				t.Errorf("error origin %+v, want in/1 at offset 1", te.Origin)
			}
			for _, s := range []string{`topic "in" partition 1 offset 1`, tc.want} {
				if !contains(err, s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if n := len(readAll(t, out)); n != 1 {
				t.Errorf("%d records out, want the first only", n)
			}
			d.Close()
		})
	}
}

func TestTimestampsOptionChecked(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String(), dsl.WithTimestamps(dsl.TimestampFunc(func(int, string, time.Time) (time.Time, error) {
		return time.Time{}, nil
	})))
	if _, err := b.Build(); !contains(err, "does not fit a source of string keys and string values") {
		t.Errorf("Build = %v, want a type mismatch", err)
	}
	b = dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String(), dsl.WithTimestamps(dsl.TimestampFunc[string, string](nil)))
	if _, err := b.Build(); !contains(err, "nil function") {
		t.Errorf("Build = %v, want nil function", err)
	}
	b = dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).Filter(func(string, string) bool { return true }, dsl.WithTimestamps(dsl.WallClockTime()))
	if _, err := b.Build(); !contains(err, "option WithTimestamps does not apply") {
		t.Errorf("Build = %v, want WithTimestamps refused on Filter", err)
	}
}

func TestTableTimestamps(t *testing.T) {
	b := dsl.NewBuilder()
	b.Table("in", serde.String(), serde.String(), dsl.Named("t"), dsl.WithTimestamps(dsl.TimestampFunc(eventTime))).
		ToStream().
		To("out")
	d := run(t, b)
	in := d.InputTopic("in", serde.String(), serde.String(), streamtest.StartAt(t0))
	out := d.OutputTopic("out", serde.String(), serde.String())
	must(t, in.Pipe("a", "4000"))
	must(t, in.Pipe("b", "2000"))
	var got []int64
	for _, r := range readAll(t, out) {
		got = append(got, r.Timestamp.UnixMilli())
	}
	if !slices.Equal(got, []int64{4000, 2000}) {
		t.Errorf("table output timestamps %v, want [4000 2000]", got)
	}
}
