package windows

import (
	"fmt"
	"time"
)

// TimeWindows are fixed-size windows aligned to the epoch: window n covers
// [n*advance, n*advance+size). With advance == size they are tumbling
// (gap-less, non-overlapping); with advance < size, hopping (a record falls
// into size/advance windows). Build them with Tumbling or Hopping.
type TimeWindows struct {
	size, advance, grace time.Duration
}

// Tumbling returns tumbling windows of the given size: each record falls
// into exactly one, [n*size, (n+1)*size). grace is how long after a
// window's end its late records are still admitted (0: none).
func Tumbling(size, grace time.Duration) TimeWindows {
	return TimeWindows{size: size, advance: size, grace: grace}
}

// Hopping returns hopping windows of the given size, starting every
// advance (0 < advance <= size): a record falls into every window whose
// interval holds it. grace is as for Tumbling.
func Hopping(size, advance, grace time.Duration) TimeWindows {
	return TimeWindows{size: size, advance: advance, grace: grace}
}

// Size returns the windows' size.
func (w TimeWindows) Size() time.Duration { return w.size }

// Advance returns how far apart windows start (the size for tumbling ones).
func (w TimeWindows) Advance() time.Duration { return w.advance }

// Grace returns the grace period.
func (w TimeWindows) Grace() time.Duration { return w.grace }

// Tumbles reports whether the windows are tumbling (advance == size).
func (w TimeWindows) Tumbles() bool { return w.advance == w.size }

// Validate checks the specification: a positive size, 0 < advance <= size,
// a grace that is not negative, all in whole milliseconds.
func (w TimeWindows) Validate() error {
	if err := validMillis("window size", w.size, true); err != nil {
		return err
	}
	if err := validMillis("window advance", w.advance, true); err != nil {
		return err
	}
	if w.advance > w.size {
		return fmt.Errorf("%w: window advance %v is larger than the size %v", ErrInvalid, w.advance, w.size)
	}
	return validMillis("grace period", w.grace, false)
}

// WindowsFor returns the windows a record at ts falls into, by start time,
// as Kafka Streams' TimeWindows.windowsFor: no window starts before the
// epoch, so a record in the first size of time falls into fewer windows.
//
// REQUIRES: w is valid.
func (w TimeWindows) WindowsFor(ts time.Time) []Window {
	t, size, adv := millis(ts), w.size.Milliseconds(), w.advance.Milliseconds()
	start := max(0, t-size+adv) / adv * adv
	out := make([]Window, 0, (size+adv-1)/adv)
	for ; start <= t; start += adv {
		out = append(out, Window{Start: at(start), End: at(start + size)})
	}
	return out
}

// CloseTime returns when a window closes: its end plus the grace. Once
// stream time reaches it, the window's result is final and records for it
// are late, as in Kafka Streams' window aggregation (a record updates a
// window while window end > stream time - grace).
func (w TimeWindows) CloseTime(win Window) time.Time { return win.End.Add(w.grace) }

// Retention returns the shortest time a window store must keep a window
// for these windows: size plus grace.
func (w TimeWindows) Retention() time.Duration { return w.size + w.grace }

func (w TimeWindows) String() string {
	if w.Tumbles() {
		return fmt.Sprintf("tumbling windows of %v, grace %v", w.size, w.grace)
	}
	return fmt.Sprintf("hopping windows of %v advancing by %v, grace %v", w.size, w.advance, w.grace)
}
