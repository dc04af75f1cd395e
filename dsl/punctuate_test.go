package dsl_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// ticker passes records on and, on each punctuation, forwards a record
// "tick" whose value counts the punctuations and whose timestamp is the
// punctuation's time. A record of value "cancel" cancels the schedule.
type ticker struct {
	typ      processor.PunctuationType
	interval time.Duration
	log      *[]tick

	ctx   processor.Context[string, string]
	sched processor.Cancellable
	n     int
}

// tick is what a punctuator saw.
type tick struct {
	At         time.Time // the time it was called with
	StreamTime time.Time
	HasMeta    bool // RecordMetadata's ok: false in a punctuator
}

func (p *ticker) Init(ctx processor.Context[string, string]) error {
	p.ctx = ctx
	s, err := ctx.Schedule(p.interval, p.typ, func(ts time.Time) error {
		_, hasMeta := ctx.RecordMetadata()
		*p.log = append(*p.log, tick{At: ts, StreamTime: ctx.CurrentStreamTime(), HasMeta: hasMeta})
		p.n++
		return ctx.Forward(processor.Record[string, string]{Key: "tick", Value: string(rune('0' + p.n)), Timestamp: ts})
	})
	p.sched = s
	return err
}

func (p *ticker) Process(r processor.Record[string, string]) error {
	if r.Value == "cancel" {
		p.sched.Cancel()
	}
	return p.ctx.Forward(r)
}

func (p *ticker) Close() error { return nil }

func tickerTopology(t *testing.T, typ processor.PunctuationType, interval time.Duration, log *[]tick, opts ...streamtest.Option) (
	*streamtest.Driver, *streamtest.InputTopic[string, string], *streamtest.OutputTopic[string, string]) {
	t.Helper()
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] {
			return &ticker{typ: typ, interval: interval, log: log}
		}, dsl.Named("ticker")).
		To("out")
	d := run(t, b, opts...)
	return d, d.InputTopic("in", serde.String(), serde.String()), d.OutputTopic("out", serde.String(), serde.String())
}

type tsKV struct {
	Key, Value string
	At         time.Time
}

func readTS(t *testing.T, out *streamtest.OutputTopic[string, string]) []tsKV {
	t.Helper()
	var got []tsKV
	for _, r := range readAll(t, out) {
		got = append(got, tsKV{r.Key, r.Value, r.Timestamp})
	}
	return got
}

// Stream-time punctuation follows Kafka Streams' PunctuationSchedule: the
// schedule starts at the epoch and fires at the first record (with stream
// time, not an interval boundary), then at the first record at or past
// each next multiple of the interval. A gap of several intervals fires once.
// A record behind stream time fires nothing. The punctuation runs after the
// record that advanced stream time, and what it forwards reaches the sink.
func TestStreamTimePunctuation(t *testing.T) {
	var ticks []tick
	d, in, out := tickerTopology(t, processor.StreamTime, 10*time.Second, &ticks)

	steps := []struct {
		value string
		ts    time.Duration // after t0, itself a multiple of the interval
	}{
		{"r1", 3 * time.Second},          // first record: fires at stream time
		{"r2", 7 * time.Second},          //
		{"r3", 10 * time.Second},         // reaches t0+10s: fires
		{"r4", 5 * time.Second},          // late: stream time stays t0+10s
		{"r5", 19999 * time.Millisecond}, // just short of t0+20s
		{"r6", 45 * time.Second},         // skips t0+20s, +30s, +40s: fires once
		{"r7", 49 * time.Second},         //
		{"r8", 50 * time.Second},         // next multiple after the gap: fires
	}
	for _, s := range steps {
		must(t, in.PipeAt("k", s.value, at(s.ts)))
	}
	wantTicks := []tick{
		{At: at(3 * time.Second), StreamTime: at(3 * time.Second)},
		{At: at(10 * time.Second), StreamTime: at(10 * time.Second)},
		{At: at(45 * time.Second), StreamTime: at(45 * time.Second)},
		{At: at(50 * time.Second), StreamTime: at(50 * time.Second)},
	}
	if diff := cmp.Diff(wantTicks, ticks); diff != "" {
		t.Errorf("punctuations (-want +got):\n%s", diff)
	}
	want := []tsKV{
		{"k", "r1", at(3 * time.Second)}, {"tick", "1", at(3 * time.Second)},
		{"k", "r2", at(7 * time.Second)},
		{"k", "r3", at(10 * time.Second)}, {"tick", "2", at(10 * time.Second)},
		{"k", "r4", at(5 * time.Second)},
		{"k", "r5", at(19999 * time.Millisecond)},
		{"k", "r6", at(45 * time.Second)}, {"tick", "3", at(45 * time.Second)},
		{"k", "r7", at(49 * time.Second)},
		{"k", "r8", at(50 * time.Second)}, {"tick", "4", at(50 * time.Second)},
	}
	if diff := cmp.Diff(want, readTS(t, out)); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}

	// The wall clock does not drive stream-time punctuation.
	must(t, d.AdvanceWallClock(time.Hour))
	if len(ticks) != 4 {
		t.Errorf("advancing the wall clock fired stream-time punctuation: %v", ticks[4:])
	}
}

// Stream-time punctuation is aligned to multiples of the interval since the
// epoch, not to the first record.
func TestStreamTimePunctuationAlignment(t *testing.T) {
	var ticks []tick
	_, in, _ := tickerTopology(t, processor.StreamTime, time.Minute, &ticks)
	base := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC) // a whole minute
	for _, ts := range []time.Duration{
		59 * time.Second,                       // first record: fires
		60 * time.Second,                       // 10:01: fires
		61 * time.Second,                       //
		119*time.Second + 999*time.Millisecond, //
		120 * time.Second,                      // 10:02: fires
		150 * time.Second,                      //
	} {
		must(t, in.PipeAt("k", "v", base.Add(ts)))
	}
	var got []time.Time
	for _, tk := range ticks {
		got = append(got, tk.At)
	}
	want := []time.Time{base.Add(59 * time.Second), base.Add(60 * time.Second), base.Add(120 * time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("punctuation times (-want +got):\n%s", diff)
	}
}

// Within a batch, stream-time punctuation fires as each record advances
// stream time, between the records, not once at the end.
func TestStreamTimePunctuationInBatch(t *testing.T) {
	var ticks []tick
	d, in, out := tickerTopology(t, processor.StreamTime, 10*time.Second, &ticks)
	must(t, d.Batch(func() {
		must(t, in.PipeAt("k", "a", at(0)))
		must(t, in.PipeAt("k", "b", at(10*time.Second)))
		must(t, in.PipeAt("k", "c", at(20*time.Second)))
	}))
	want := []tsKV{
		{"k", "a", at(0)}, {"tick", "1", at(0)},
		{"k", "b", at(10 * time.Second)}, {"tick", "2", at(10 * time.Second)},
		{"k", "c", at(20 * time.Second)}, {"tick", "3", at(20 * time.Second)},
	}
	if diff := cmp.Diff(want, readTS(t, out)); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}

func TestStreamTimePunctuationCancel(t *testing.T) {
	var ticks []tick
	_, in, _ := tickerTopology(t, processor.StreamTime, 10*time.Second, &ticks)
	must(t, in.PipeAt("k", "v", at(0)))
	must(t, in.PipeAt("k", "v", at(10*time.Second)))
	must(t, in.PipeAt("k", "cancel", at(15*time.Second)))
	must(t, in.PipeAt("k", "v", at(20*time.Second)))
	must(t, in.PipeAt("k", "v", at(90*time.Second)))
	if len(ticks) != 2 {
		t.Errorf("got %d punctuations, want 2 (none after Cancel): %+v", len(ticks), ticks)
	}
}

// Wall-clock punctuation first fires one interval after Schedule (the
// driver's start), then every interval; an advance over several intervals
// fires once and keeps the schedule on its grid. It is called with the wall
// clock's time, outside any record.
func TestWallClockPunctuation(t *testing.T) {
	var ticks []tick
	start := streamtest.DefaultStartTime
	d, in, out := tickerTopology(t, processor.WallClockTime, time.Minute, &ticks)

	steps := []struct {
		advance time.Duration
		fires   bool
	}{
		{30 * time.Second, false}, // start+30s
		{30 * time.Second, true},  // start+1m: first interval
		{59 * time.Second, false}, // start+1m59s
		{time.Second, true},       // start+2m
		{5 * time.Minute, true},   // start+7m: 3m..7m missed, fires once
		{30 * time.Second, false}, // start+7m30s
		{30 * time.Second, true},  // start+8m: still on the minute grid
	}
	for i, s := range steps {
		before := len(ticks)
		must(t, d.AdvanceWallClock(s.advance))
		if fired := len(ticks) - before; fired != map[bool]int{false: 0, true: 1}[s.fires] {
			t.Errorf("step %d (+%v, clock %v): fired %d times, want fires=%v", i, s.advance, d.WallClock().Sub(start), fired, s.fires)
		}
	}
	var got []time.Duration
	for _, tk := range ticks {
		got = append(got, tk.At.Sub(start))
		if tk.HasMeta {
			t.Errorf("punctuation at %v: RecordMetadata reported a record", tk.At)
		}
	}
	if diff := cmp.Diff([]time.Duration{time.Minute, 2 * time.Minute, 7 * time.Minute, 8 * time.Minute}, got); diff != "" {
		t.Errorf("punctuation times after start (-want +got):\n%s", diff)
	}
	// What the punctuator forwards reaches the output topic.
	want := []tsKV{
		{"tick", "1", start.Add(time.Minute)},
		{"tick", "2", start.Add(2 * time.Minute)},
		{"tick", "3", start.Add(7 * time.Minute)},
		{"tick", "4", start.Add(8 * time.Minute)},
	}
	if diff := cmp.Diff(want, readTS(t, out)); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}

	// Records, however late their timestamps, do not drive the wall clock.
	must(t, in.PipeAt("k", "v", start.Add(24*time.Hour)))
	if len(ticks) != 4 {
		t.Errorf("a record fired wall-clock punctuation: %+v", ticks[4:])
	}

	// Cancel stops it.
	must(t, in.Pipe("k", "cancel"))
	must(t, d.AdvanceWallClock(time.Hour))
	if len(ticks) != 4 {
		t.Errorf("punctuation after Cancel: %+v", ticks[4:])
	}
}

// A punctuator's error stops processing with a PunctuationError naming the
// node, the type and the time.
func TestPunctuationError(t *testing.T) {
	boom := errors.New("boom")
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] {
			return &funcProc[string, string, string, string]{
				init: func(ctx processor.Context[string, string]) error {
					_, err := ctx.Schedule(time.Second, processor.WallClockTime, func(time.Time) error { return boom })
					return err
				},
				process: func(processor.Context[string, string], processor.Record[string, string]) error { return nil },
			}
		}, dsl.Named("failing"))
	d := run(t, b)
	err := d.AdvanceWallClock(time.Second)
	var pe *task.PunctuationError
	if !errors.As(err, &pe) || !errors.Is(err, boom) {
		t.Fatalf("AdvanceWallClock = %v; want a PunctuationError wrapping boom", err)
	}
	if pe.Node != "failing" || pe.Type != processor.WallClockTime || !pe.Time.Equal(streamtest.DefaultStartTime.Add(time.Second)) {
		t.Errorf("PunctuationError %+v: want node failing, wall-clock, at start+1s", pe)
	}
	for _, w := range []string{`"failing"`, "wall-clock", "boom"} {
		if !contains(err, w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// Schedule rejects an interval under a millisecond.
func TestScheduleBadInterval(t *testing.T) {
	var ticks []tick
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		Process(func() processor.Processor[string, string, string, string] {
			return &ticker{typ: processor.StreamTime, interval: time.Microsecond, log: &ticks}
		}, dsl.Named("fast"))
	_, err := streamtest.New(build(t, b))
	if !errors.Is(err, processor.ErrBadInterval) || !contains(err, `"fast"`) {
		t.Errorf("streamtest.New = %v; want ErrBadInterval naming node fast", err)
	}
}
