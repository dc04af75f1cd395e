package windows

import (
	"fmt"
	"time"
)

// SlidingWindows are fixed-size windows aligned to the records, as Kafka
// Streams' SlidingWindows (KIP-450): two records fall into a common window
// when their timestamps are at most the time difference apart, and the
// windows an aggregation keeps are those that start or end at a record,
// both bounds inclusive: [t-difference, t] and [t+1, t+1+difference].
// Build them with Sliding.
type SlidingWindows struct {
	diff, grace time.Duration
}

// Sliding returns sliding windows of the given time difference. grace is
// how long after a window's end its late records are still admitted.
func Sliding(timeDifference, grace time.Duration) SlidingWindows {
	return SlidingWindows{diff: timeDifference, grace: grace}
}

// TimeDifference returns the largest distance between two records of one
// window.
func (w SlidingWindows) TimeDifference() time.Duration { return w.diff }

// Grace returns the grace period.
func (w SlidingWindows) Grace() time.Duration { return w.grace }

// Validate checks the specification: a positive time difference and a
// grace that is not negative, in whole milliseconds.
func (w SlidingWindows) Validate() error {
	if err := validMillis("time difference", w.diff, true); err != nil {
		return err
	}
	return validMillis("grace period", w.grace, false)
}

// LeftWindow returns the window that ends at a record at ts:
// [ts-difference, ts]. It starts no earlier than the epoch.
func (w SlidingWindows) LeftWindow(ts time.Time) Window {
	t := millis(ts)
	return Window{Start: at(max(0, t-w.diff.Milliseconds())), End: at(t)}
}

// RightWindow returns the window that starts just after a record at ts:
// [ts+1ms, ts+1ms+difference]. An aggregation creates it once a later
// record falls into it.
func (w SlidingWindows) RightWindow(ts time.Time) Window {
	t := millis(ts) + 1
	return Window{Start: at(t), End: at(t + w.diff.Milliseconds())}
}

// Contains reports whether a record at ts falls into win (both bounds
// inclusive).
func (w SlidingWindows) Contains(win Window, ts time.Time) bool {
	return !ts.Before(win.Start) && !ts.After(win.End)
}

// CloseTime returns when a window closes: its (inclusive) end plus a
// millisecond plus the grace.
func (w SlidingWindows) CloseTime(win Window) time.Time {
	return win.End.Add(w.grace + time.Millisecond)
}

// RecordLateAt returns the stream time from which a record at ts is late:
// every window that could hold it, the last being [ts, ts+difference], has
// closed. This is Kafka Streams' rule: ts + 1 + difference <= stream time -
// grace.
func (w SlidingWindows) RecordLateAt(ts time.Time) time.Time {
	return ts.Add(w.diff + time.Millisecond + w.grace)
}

// Retention returns the shortest time a window store must keep a window:
// the time difference plus the grace.
func (w SlidingWindows) Retention() time.Duration { return w.diff + w.grace }

func (w SlidingWindows) String() string {
	return fmt.Sprintf("sliding windows of time difference %v, grace %v", w.diff, w.grace)
}
