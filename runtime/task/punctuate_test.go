package task_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
)

// punctuations records the times a punctuator was called with, in ms.
type punctuations struct{ fired []int64 }

func (p *punctuations) fn(ts time.Time) error {
	p.fired = append(p.fired, ts.UnixMilli())
	return nil
}

// scheduling returns a probe that schedules fn in Init.
func scheduling(interval time.Duration, typ processor.PunctuationType, fn processor.Punctuator, c *processor.Cancellable) *probe {
	return &probe{init: func(ctx processor.Context[string, string]) error {
		cancel, err := ctx.Schedule(interval, typ, fn)
		if c != nil {
			*c = cancel
		}
		return err
	}}
}

// TestStreamTimePunctuation follows Kafka Streams' PunctuationSchedule: a
// stream-time schedule starts at the epoch, so it fires at the first record,
// with the stream time; then at multiples of the interval; after a gap it
// fires once and moves to start + (missed+1)*interval.
func TestStreamTimePunctuation(t *testing.T) {
	var got punctuations
	tk := newTask(t, probeTopology(scheduling(10*time.Millisecond, processor.StreamTime, got.fn, nil)), &collector{}, nil)

	steps := []struct {
		ts   int64
		want []int64 // fired by this record
	}{
		{3, []int64{3}}, // first record: the schedule (at 0) is due
		{7, nil},        // next is 10
		{10, []int64{10}},
		{15, nil},
		{19, nil},
		{20, []int64{20}},
		{55, []int64{55}}, // missed 30, 40, 50: fires once; next = 30 + 3*10 = 60
		{56, nil},
		{60, []int64{60}},
		{45, nil}, // out of order: stream time stays 60
		{69, nil},
		{70, []int64{70}},
	}
	for i, s := range steps {
		before := len(got.fired)
		add(t, tk, a0, rec(a0, int64(i), s.ts))
		process(t, tk, 1)
		if fired := got.fired[before:]; !slices.Equal(fired, s.want) {
			t.Errorf("record at %d fired %v, want %v", s.ts, fired, s.want)
		}
	}
	// Wall-clock punctuation does not fire stream-time schedules.
	if err := tk.Punctuate(time.UnixMilli(1_000_000)); err != nil || len(got.fired) != 6 {
		t.Errorf("Punctuate fired stream-time schedules: %v, %v", got.fired, err)
	}
}

// TestStreamTimePunctuationAligned checks the alignment with real
// timestamps: a one-minute schedule fires at the first record, then on the
// minute, whatever the first record's second.
func TestStreamTimePunctuationAligned(t *testing.T) {
	var got punctuations
	tk := newTask(t, probeTopology(scheduling(time.Minute, processor.StreamTime, got.fn, nil)), &collector{}, nil)
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	for i, d := range []time.Duration{30 * time.Second, 59 * time.Second, time.Minute, 3*time.Minute + 10*time.Second,
		3*time.Minute + 59*time.Second, 4 * time.Minute} {
		add(t, tk, a0, rec(a0, int64(i), at(d)))
	}
	process(t, tk, 10)
	want := []int64{at(30 * time.Second), at(time.Minute), at(3*time.Minute + 10*time.Second), at(4 * time.Minute)}
	if !slices.Equal(got.fired, want) {
		t.Errorf("fired at %v, want %v", got.fired, want)
	}
}

func TestStreamTimePunctuationBeforeRecords(t *testing.T) {
	var got punctuations
	tk := newTask(t, probeTopology(scheduling(time.Millisecond, processor.StreamTime, got.fn, nil)), &collector{}, nil)
	if n := process(t, tk, 10); n != 0 || len(got.fired) != 0 {
		t.Errorf("with no record: processed %d, fired %v; want nothing", n, got.fired)
	}
}

// TestWallClockPunctuation: a wall-clock schedule first fires interval after
// it was made, when the driver calls Punctuate(now); a gap fires once.
func TestWallClockPunctuation(t *testing.T) {
	var got punctuations
	clk := &clock{now: time.UnixMilli(1000)}
	tk := newTask(t, probeTopology(scheduling(100*time.Millisecond, processor.WallClockTime, got.fn, nil)), &collector{}, clk)

	steps := []struct {
		now  int64
		want []int64
	}{
		{1099, nil},
		{1100, []int64{1100}}, // made at 1000: first at 1100
		{1150, nil},
		{1199, nil},
		{1450, []int64{1450}}, // missed 1200, 1300, 1400: once; next = 1200 + 3*100 = 1500
		{1499, nil},
		{1500, []int64{1500}},
		{1500, nil},
		{1600, []int64{1600}},
	}
	for _, s := range steps {
		before := len(got.fired)
		if err := tk.Punctuate(time.UnixMilli(s.now)); err != nil {
			t.Fatal(err)
		}
		if fired := got.fired[before:]; !slices.Equal(fired, s.want) {
			t.Errorf("Punctuate(%d) fired %v, want %v", s.now, fired, s.want)
		}
	}
	// Processing records does not fire wall-clock schedules.
	add(t, tk, a0, rec(a0, 0, 5000))
	process(t, tk, 1)
	if len(got.fired) != 4 {
		t.Errorf("processing fired wall-clock punctuation: %v", got.fired)
	}
}

// TestWallClockScheduleStartsAtTheCall checks that a schedule made while
// processing starts from the wall clock at that moment.
func TestWallClockScheduleStartsAtTheCall(t *testing.T) {
	var got punctuations
	clk := &clock{now: time.UnixMilli(1000)}
	p := &probe{process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		_, err := ctx.Schedule(50*time.Millisecond, processor.WallClockTime, got.fn)
		return err
	}}
	tk := newTask(t, probeTopology(p), &collector{}, clk)
	clk.now = time.UnixMilli(2000)
	add(t, tk, a0, rec(a0, 0, 1))
	process(t, tk, 1)
	for _, now := range []int64{2049, 2050} {
		if err := tk.Punctuate(time.UnixMilli(now)); err != nil {
			t.Fatal(err)
		}
	}
	if want := []int64{2050}; !slices.Equal(got.fired, want) {
		t.Errorf("fired %v, want %v", got.fired, want)
	}
}

func TestScheduleEarliestFirst(t *testing.T) {
	var order []string
	clk := &clock{now: time.UnixMilli(0)}
	p := &probe{init: func(ctx processor.Context[string, string]) error {
		for _, s := range []struct {
			name     string
			interval time.Duration
		}{{"slow", 30 * time.Millisecond}, {"fast", 10 * time.Millisecond}} {
			if _, err := ctx.Schedule(s.interval, processor.WallClockTime, func(time.Time) error {
				order = append(order, s.name)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}}
	tk := newTask(t, probeTopology(p), &collector{}, clk)
	if err := tk.Punctuate(time.UnixMilli(30)); err != nil {
		t.Fatal(err)
	}
	// fast was due at 10, slow at 30: fast first, each once.
	if want := []string{"fast", "slow"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
}

func TestCancelOutsidePunctuator(t *testing.T) {
	var got punctuations
	var c processor.Cancellable
	tk := newTask(t, probeTopology(scheduling(10*time.Millisecond, processor.StreamTime, got.fn, &c)), &collector{}, nil)
	add(t, tk, a0, rec(a0, 0, 5))
	process(t, tk, 1)
	c.Cancel()
	c.Cancel() // idempotent
	add(t, tk, a0, rec(a0, 1, 10), rec(a0, 2, 100))
	process(t, tk, 10)
	if want := []int64{5}; !slices.Equal(got.fired, want) {
		t.Errorf("fired %v, want %v (nothing after Cancel)", got.fired, want)
	}
}

func TestCancelInsidePunctuator(t *testing.T) {
	var fired []int64
	var c processor.Cancellable
	p := scheduling(10*time.Millisecond, processor.StreamTime, func(ts time.Time) error {
		fired = append(fired, ts.UnixMilli())
		if len(fired) == 2 {
			c.Cancel()
		}
		return nil
	}, &c)
	tk := newTask(t, probeTopology(p), &collector{}, nil)
	for i, ts := range []int64{1, 10, 20, 30} {
		add(t, tk, a0, rec(a0, int64(i), ts))
	}
	process(t, tk, 10)
	if want := []int64{1, 10}; !slices.Equal(fired, want) {
		t.Errorf("fired %v, want %v (cancelled by itself on the second call)", fired, want)
	}
}

// TestCancelAnotherInsidePunctuator: a schedule cancelled by a punctuator
// does not fire, even when it was due in the same call.
func TestCancelAnotherInsidePunctuator(t *testing.T) {
	var order []string
	var second processor.Cancellable
	clk := &clock{now: time.UnixMilli(0)}
	p := &probe{init: func(ctx processor.Context[string, string]) error {
		_, err := ctx.Schedule(10*time.Millisecond, processor.WallClockTime, func(time.Time) error {
			order = append(order, "first")
			second.Cancel()
			return nil
		})
		if err != nil {
			return err
		}
		second, err = ctx.Schedule(10*time.Millisecond, processor.WallClockTime, func(time.Time) error {
			order = append(order, "second")
			return nil
		})
		return err
	}}
	tk := newTask(t, probeTopology(p), &collector{}, clk)
	for _, now := range []int64{10, 20} {
		if err := tk.Punctuate(time.UnixMilli(now)); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"first", "first"}; !slices.Equal(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
}

// TestScheduleInsidePunctuator: a schedule made by a punctuator is kept and
// waits for the next round of punctuation.
func TestScheduleInsidePunctuator(t *testing.T) {
	var order []string
	clk := &clock{now: time.UnixMilli(0)}
	p := &probe{}
	p.init = func(ctx processor.Context[string, string]) error {
		made := false
		_, err := ctx.Schedule(10*time.Millisecond, processor.StreamTime, func(ts time.Time) error {
			order = append(order, "outer")
			if made {
				return nil
			}
			made = true
			_, err := ctx.Schedule(10*time.Millisecond, processor.StreamTime, func(ts time.Time) error {
				order = append(order, "nested")
				return nil
			})
			return err
		})
		return err
	}
	tk := newTask(t, probeTopology(p), &collector{}, clk)
	add(t, tk, a0, rec(a0, 0, 5), rec(a0, 1, 6), rec(a0, 2, 10))
	process(t, tk, 1) // outer fires at 5 and makes "nested", due at 0
	if want := []string{"outer"}; !slices.Equal(order, want) {
		t.Errorf("after the first record: %v, want %v (a new schedule waits for the next round)", order, want)
	}
	process(t, tk, 1) // at 6: only nested is due
	if want := []string{"outer", "nested"}; !slices.Equal(order, want) {
		t.Errorf("after the second record: %v, want %v", order, want)
	}
	process(t, tk, 1) // at 10: both
	if want := []string{"outer", "nested", "outer", "nested"}; !slices.Equal(order, want) {
		t.Errorf("after the third record: %v, want %v", order, want)
	}
}

func TestScheduleIntervalTooSmall(t *testing.T) {
	var errs []error
	p := &probe{init: func(ctx processor.Context[string, string]) error {
		for _, d := range []time.Duration{0, -time.Second, time.Millisecond - 1} {
			c, err := ctx.Schedule(d, processor.StreamTime, func(time.Time) error { return nil })
			if c != nil {
				errs = append(errs, errors.New("got a Cancellable"))
			}
			errs = append(errs, err)
		}
		return nil
	}}
	newTask(t, probeTopology(p), &collector{}, nil)
	for i, err := range errs {
		if !errors.Is(err, processor.ErrBadInterval) {
			t.Errorf("schedule %d: error = %v, want ErrBadInterval", i, err)
		}
	}
}

func TestPunctuatorError(t *testing.T) {
	errStream, errWall := errors.New("stream punctuator failed"), errors.New("wall punctuator failed")
	clk := &clock{now: time.UnixMilli(0)}
	p := &probe{init: func(ctx processor.Context[string, string]) error {
		if _, err := ctx.Schedule(time.Second, processor.StreamTime, func(time.Time) error { return errStream }); err != nil {
			return err
		}
		_, err := ctx.Schedule(time.Second, processor.WallClockTime, func(time.Time) error { panic(errWall) })
		return err
	}}
	col := &collector{}
	tk := newTask(t, probeTopology(p), col, clk)
	add(t, tk, a0, rec(a0, 0, 1500), rec(a0, 1, 1600))

	n, err := tk.Process(10)
	var pe *task.PunctuationError
	if n != 1 || !errors.As(err, &pe) || !errors.Is(err, errStream) {
		t.Fatalf("Process() = %d, %v; want 1 and a PunctuationError wrapping the punctuator's error", n, err)
	}
	if pe.Node != "probe" || pe.Type != processor.StreamTime || pe.Task != tk.ID() || pe.Time.UnixMilli() != 1500 {
		t.Errorf("PunctuationError = %+v", pe)
	}
	var re *task.RecordError
	if errors.As(err, &re) {
		t.Errorf("a punctuation error is reported as a RecordError: %v", err)
	}
	if got := col.values("out"); len(got) != 1 {
		t.Errorf("the record before the punctuation was not processed: sent %v", got)
	}

	err = tk.Punctuate(time.UnixMilli(1000))
	var panicErr *task.PanicError
	if !errors.As(err, &pe) || !errors.As(err, &panicErr) || !errors.Is(err, errWall) || pe.Type != processor.WallClockTime {
		t.Errorf("Punctuate() = %v, want a wall-clock PunctuationError wrapping the panic", err)
	}
	// The task goes on: the next record is processed.
	if n := process(t, tk, 10); n != 1 {
		t.Errorf("after the punctuation errors: processed %d, want 1", n)
	}
}
