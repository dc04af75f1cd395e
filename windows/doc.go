// Package windows describes windows over event time, as Kafka Streams
// defines them: time windows (tumbling and hopping), sliding windows,
// session windows and join windows. It is pure: specifications, window
// assignment and the rules of closing, with no state.
//
// Every specification takes its grace period explicitly (0 for none), as
// Kafka Streams 3.0's OfSizeWithNoGrace / OfSizeAndGrace do: there is no
// hidden 24-hour default. A record is late, and dropped by a windowed
// operator, once stream time has reached its window's end plus the grace.
//
// Times are those of Kafka: milliseconds since the Unix epoch. A
// specification's durations must be whole milliseconds; Validate says so,
// and the DSL calls it when the topology is built.
package windows

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalid is wrapped by every error of Validate.
var ErrInvalid = errors.New("windows: invalid specification")

// validMillis checks that d is a whole, non-negative number of
// milliseconds (positive if positive is set).
func validMillis(what string, d time.Duration, positive bool) error {
	switch {
	case d < 0 || positive && d == 0:
		cond := "must not be negative"
		if positive {
			cond = "must be positive"
		}
		return fmt.Errorf("%w: %s %v %s", ErrInvalid, what, d, cond)
	case d%time.Millisecond != 0:
		return fmt.Errorf("%w: %s %v is not a whole number of milliseconds (Kafka timestamps are milliseconds)", ErrInvalid, what, d)
	}
	return nil
}

// millis returns t in milliseconds since the epoch.
func millis(t time.Time) int64 { return t.UnixMilli() }

// at returns the time of ms milliseconds since the epoch, in UTC.
func at(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
