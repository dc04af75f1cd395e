package windows

import (
	"fmt"
	"time"
)

// SessionWindows group a key's records into sessions of activity: a record
// joins every session of its key that ends no more than the inactivity gap
// before it or starts no more than the gap after it, merging them; a
// record that joins none starts a session of its own, [ts, ts]. Session
// windows are inclusive at both ends. Build them with Session.
type SessionWindows struct {
	gap, grace time.Duration
}

// Session returns session windows with the given inactivity gap. grace is
// how long after a session's end its late records are still admitted.
func Session(inactivityGap, grace time.Duration) SessionWindows {
	return SessionWindows{gap: inactivityGap, grace: grace}
}

// InactivityGap returns the gap that ends a session.
func (w SessionWindows) InactivityGap() time.Duration { return w.gap }

// Grace returns the grace period.
func (w SessionWindows) Grace() time.Duration { return w.grace }

// Validate checks the specification: a positive gap and a grace that is
// not negative, in whole milliseconds.
func (w SessionWindows) Validate() error {
	if err := validMillis("inactivity gap", w.gap, true); err != nil {
		return err
	}
	return validMillis("grace period", w.grace, false)
}

// Joins reports whether a record at ts belongs to session s (it lies
// within the gap of the session's bounds, both inclusive), so that adding
// it extends or merges s.
func (w SessionWindows) Joins(s Window, ts time.Time) bool {
	return !ts.Before(s.Start.Add(-w.gap)) && !ts.After(s.End.Add(w.gap))
}

// SearchRange returns the interval of session ends and starts to search
// for the sessions a record at ts joins: sessions ending at or after
// from and starting at or before to.
func (w SessionWindows) SearchRange(ts time.Time) (from, to time.Time) {
	return ts.Add(-w.gap), ts.Add(w.gap)
}

// Merge returns the session that covers a record at ts and the sessions
// it joins.
func Merge(ts time.Time, sessions ...Window) Window {
	out := Window{Start: ts, End: ts}
	for _, s := range sessions {
		if s.Start.Before(out.Start) {
			out.Start = s.Start
		}
		if s.End.After(out.End) {
			out.End = s.End
		}
	}
	return out
}

// CloseTime returns when a session closes: once stream time is past its
// (inclusive) end plus the grace, that is, at end + grace + 1 ms. A record
// whose merged session is closed is late, as in Kafka Streams'
// session aggregation (session end < stream time - grace).
func (w SessionWindows) CloseTime(s Window) time.Time { return s.End.Add(w.grace + time.Millisecond) }

// Retention returns the shortest time a session store must keep a
// session after its end: the gap plus the grace.
func (w SessionWindows) Retention() time.Duration { return w.gap + w.grace }

func (w SessionWindows) String() string {
	return fmt.Sprintf("session windows with inactivity gap %v, grace %v", w.gap, w.grace)
}
