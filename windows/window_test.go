package windows

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func ms(n int64) time.Time { return at(n) }

func win(start, end int64) Window { return Window{Start: ms(start), End: ms(end)} }

func fmtWindows(ws []Window) string { return fmt.Sprint(ws) }

// TestTimeWindowsFor follows Kafka Streams' TimeWindows.windowsFor: window
// n is [n*advance, n*advance+size), none starts before the epoch.
func TestTimeWindowsFor(t *testing.T) {
	const M = time.Millisecond
	for _, tc := range []struct {
		w    TimeWindows
		ts   int64
		want []Window
	}{
		{Tumbling(5*M, 0), 0, []Window{win(0, 5)}},
		{Tumbling(5*M, 0), 4, []Window{win(0, 5)}},
		{Tumbling(5*M, 0), 5, []Window{win(5, 10)}},
		{Tumbling(time.Minute, 0), 90_000, []Window{win(60_000, 120_000)}},
		{Hopping(10*M, 5*M, 0), 3, []Window{win(0, 10)}}, // no window before the epoch
		{Hopping(10*M, 5*M, 0), 7, []Window{win(0, 10), win(5, 15)}},
		{Hopping(10*M, 5*M, 0), 10, []Window{win(5, 15), win(10, 20)}},
		{Hopping(10*M, 5*M, 0), 14, []Window{win(5, 15), win(10, 20)}},
		{Hopping(10*M, 3*M, 0), 10, []Window{win(3, 13), win(6, 16), win(9, 19)}},
		{Hopping(10*M, 3*M, 0), 0, []Window{win(0, 10)}},
		{Hopping(5*M, 5*M, 0), 12, []Window{win(10, 15)}},
	} {
		if err := tc.w.Validate(); err != nil {
			t.Fatalf("%v: %v", tc.w, err)
		}
		if got := tc.w.WindowsFor(ms(tc.ts)); fmtWindows(got) != fmtWindows(tc.want) {
			t.Errorf("%v: WindowsFor(%d) = %v, want %v", tc.w, tc.ts, got, tc.want)
		}
	}
}

// TestTimeWindowsCover checks, for many timestamps and specs, that a
// record falls into exactly the windows whose interval holds it.
func TestTimeWindowsCover(t *testing.T) {
	const M = time.Millisecond
	for _, w := range []TimeWindows{Tumbling(7*M, 0), Hopping(10*M, 3*M, 0), Hopping(12*M, 4*M, 0), Hopping(5*M, 1*M, 0)} {
		for ts := int64(0); ts < 100; ts++ {
			got := map[int64]bool{}
			for _, x := range w.WindowsFor(ms(ts)) {
				got[millis(x.Start)] = true
				if millis(x.End)-millis(x.Start) != w.Size().Milliseconds() {
					t.Errorf("%v: window %v of %d has the wrong size", w, x, ts)
				}
			}
			for start := int64(0); start <= ts; start += w.Advance().Milliseconds() {
				holds := start <= ts && ts < start+w.Size().Milliseconds()
				if holds != got[start] {
					t.Errorf("%v: record %d in window starting %d: %v, want %v", w, ts, start, got[start], holds)
				}
			}
		}
	}
}

func TestCloseTimes(t *testing.T) {
	const M = time.Millisecond
	if got := Tumbling(10*M, 2*M).CloseTime(win(0, 10)); !got.Equal(ms(12)) {
		t.Errorf("tumbling [0,10) grace 2 closes at %d, want 12", millis(got))
	}
	// Sliding: a record at 5 with difference 10 is late from stream time
	// 5+1+10 = 16 (grace 0), as Kafka Streams drops it.
	s := Sliding(10*M, 0)
	if got := s.RecordLateAt(ms(5)); !got.Equal(ms(16)) {
		t.Errorf("sliding: record at 5 late at %d, want 16", millis(got))
	}
	if got := s.CloseTime(win(5, 15)); !got.Equal(ms(16)) {
		t.Errorf("sliding: [5,15] closes at %d, want 16", millis(got))
	}
	// Session: closed once end < stream time - grace.
	if got := Session(5*M, 3*M).CloseTime(win(10, 20)); !got.Equal(ms(24)) {
		t.Errorf("session [10,20] grace 3 closes at %d, want 24 (20 < 24-3)", millis(got))
	}
}

func TestSlidingWindows(t *testing.T) {
	const M = time.Millisecond
	s := Sliding(10*M, 0)
	if got := s.LeftWindow(ms(15)); got != win(5, 15) {
		t.Errorf("LeftWindow(15) = %v", got)
	}
	if got := s.LeftWindow(ms(3)); got != win(0, 3) {
		t.Errorf("LeftWindow(3) = %v, want it to start at the epoch", got)
	}
	if got := s.RightWindow(ms(15)); got != win(16, 26) {
		t.Errorf("RightWindow(15) = %v", got)
	}
	w := win(5, 15)
	for ts, want := range map[int64]bool{4: false, 5: true, 10: true, 15: true, 16: false} {
		if got := s.Contains(w, ms(ts)); got != want {
			t.Errorf("[5,15] contains %d: %v, want %v (both bounds inclusive)", ts, got, want)
		}
	}
}

// TestSessionWindows: a record joins the sessions within the gap of its
// bounds, and the merged session covers them all.
func TestSessionWindows(t *testing.T) {
	const M = time.Millisecond
	w := Session(5*M, 0)
	s := win(10, 20)
	for ts, want := range map[int64]bool{4: false, 5: true, 15: true, 25: true, 26: false} {
		if got := w.Joins(s, ms(ts)); got != want {
			t.Errorf("record %d joins session [10,20] with gap 5: %v, want %v", ts, got, want)
		}
	}
	from, to := w.SearchRange(ms(30))
	if !from.Equal(ms(25)) || !to.Equal(ms(35)) {
		t.Errorf("SearchRange(30) = %d..%d", millis(from), millis(to))
	}
	// A record between two sessions bridges them.
	if got := Merge(ms(23), win(10, 20), win(26, 30)); got != win(10, 30) {
		t.Errorf("merged %v, want [10,30]", got)
	}
	if got := Merge(ms(40)); got != win(40, 40) {
		t.Errorf("a new session is %v, want [40,40]", got)
	}
}

func TestJoinWindows(t *testing.T) {
	const M = time.Millisecond
	j := Join(10*M, 0)
	if from, to := j.OtherRange(ms(100)); !from.Equal(ms(90)) || !to.Equal(ms(110)) {
		t.Errorf("symmetric OtherRange(100) = %d..%d", millis(from), millis(to))
	}
	a := JoinAsymmetric(-5*M, 10*M, 2*M) // only records 5..10 ms after
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if from, to := a.OtherRange(ms(100)); !from.Equal(ms(105)) || !to.Equal(ms(110)) {
		t.Errorf("asymmetric OtherRange(100) = %d..%d, want 105..110", millis(from), millis(to))
	}
	if from, to := a.PrimaryRange(ms(107)); !from.Equal(ms(97)) || !to.Equal(ms(102)) {
		t.Errorf("asymmetric PrimaryRange(107) = %d..%d, want 97..102", millis(from), millis(to))
	}
	if a.Size() != 5*M || a.Retention() != 7*M {
		t.Errorf("size %v retention %v", a.Size(), a.Retention())
	}
}

func TestValidate(t *testing.T) {
	const M = time.Millisecond
	for _, tc := range []struct {
		name string
		spec interface{ Validate() error }
		ok   bool
	}{
		{"tumbling", Tumbling(time.Minute, 10*time.Second), true},
		{"tumbling no grace", Tumbling(time.Minute, 0), true},
		{"tumbling size 0", Tumbling(0, 0), false},
		{"tumbling negative grace", Tumbling(time.Minute, -M), false},
		{"tumbling sub-millisecond", Tumbling(1500*time.Microsecond, 0), false},
		{"hopping", Hopping(5*time.Minute, time.Minute, 0), true},
		{"hopping advance above size", Hopping(time.Minute, 2*time.Minute, 0), false},
		{"hopping advance 0", Hopping(time.Minute, 0, 0), false},
		{"sliding", Sliding(time.Second, 0), true},
		{"sliding 0", Sliding(0, 0), false},
		{"session", Session(time.Second, time.Second), true},
		{"session gap 0", Session(0, 0), false},
		{"join", Join(time.Second, 0), true},
		{"join asymmetric", JoinAsymmetric(-M, 2*M, 0), true},
		{"join negative size", JoinAsymmetric(-2*M, M, 0), false},
		{"join negative grace", Join(M, -M), false},
	} {
		err := tc.spec.Validate()
		if tc.ok != (err == nil) {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", tc.name, err)
		}
	}
}

func TestRetention(t *testing.T) {
	if got := Hopping(5*time.Minute, time.Minute, 30*time.Second).Retention(); got != 5*time.Minute+30*time.Second {
		t.Errorf("hopping retention %v", got)
	}
	if got := Session(time.Minute, time.Second).Retention(); got != time.Minute+time.Second {
		t.Errorf("session retention %v", got)
	}
}

func ExampleTimeWindows_WindowsFor() {
	w := Hopping(10*time.Minute, 5*time.Minute, time.Minute)
	for _, x := range w.WindowsFor(time.Date(2026, 1, 1, 12, 7, 0, 0, time.UTC)) {
		fmt.Println(x.Start.Format("15:04"), "-", x.End.Format("15:04"), "closes", w.CloseTime(x).Format("15:04"))
	}
	// Output:
	// 12:00 - 12:10 closes 12:11
	// 12:05 - 12:15 closes 12:16
}
