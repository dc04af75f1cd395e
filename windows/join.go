package windows

import (
	"fmt"
	"time"
)

// JoinWindows say which records of two streams join: a record of the
// primary (left) stream at t joins the records of the other stream with
// timestamps in [t-before, t+after], both bounds inclusive, as Kafka
// Streams' JoinWindows. before or after may be negative, as long as
// before+after is not. Build them with Join or JoinAsymmetric.
type JoinWindows struct {
	before, after, grace time.Duration
}

// Join returns join windows that join records at most timeDifference
// apart, either way.
func Join(timeDifference, grace time.Duration) JoinWindows {
	return JoinWindows{before: timeDifference, after: timeDifference, grace: grace}
}

// JoinAsymmetric returns join windows that join a primary record at t with
// the other stream's records in [t-before, t+after].
func JoinAsymmetric(before, after, grace time.Duration) JoinWindows {
	return JoinWindows{before: before, after: after, grace: grace}
}

// Before returns how far before a primary record the window reaches.
func (w JoinWindows) Before() time.Duration { return w.before }

// After returns how far after a primary record the window reaches.
func (w JoinWindows) After() time.Duration { return w.after }

// Grace returns the grace period.
func (w JoinWindows) Grace() time.Duration { return w.grace }

// Size returns before+after.
func (w JoinWindows) Size() time.Duration { return w.before + w.after }

// Validate checks the specification: whole milliseconds, before+after not
// negative, a grace that is not negative.
func (w JoinWindows) Validate() error {
	for _, d := range []struct {
		what string
		d    time.Duration
	}{{"join window before", w.before}, {"join window after", w.after}} {
		if d.d%time.Millisecond != 0 {
			return fmt.Errorf("%w: %s %v is not a whole number of milliseconds", ErrInvalid, d.what, d.d)
		}
	}
	if w.before+w.after < 0 {
		return fmt.Errorf("%w: join window before %v + after %v is negative", ErrInvalid, w.before, w.after)
	}
	return validMillis("grace period", w.grace, false)
}

// OtherRange returns the interval of the other stream's timestamps that a
// primary record at ts joins: [ts-before, ts+after].
func (w JoinWindows) OtherRange(ts time.Time) (from, to time.Time) {
	return ts.Add(-w.before), ts.Add(w.after)
}

// PrimaryRange returns the interval of primary timestamps that a record of
// the other stream at ts joins: [ts-after, ts+before].
func (w JoinWindows) PrimaryRange(ts time.Time) (from, to time.Time) {
	return ts.Add(-w.after), ts.Add(w.before)
}

// Retention returns how long a join store must keep a record: before +
// after + grace.
func (w JoinWindows) Retention() time.Duration { return w.before + w.after + w.grace }

func (w JoinWindows) String() string {
	return fmt.Sprintf("join windows [-%v, +%v], grace %v", w.before, w.after, w.grace)
}
