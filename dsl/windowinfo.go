package dsl

import (
	"time"

	"github.com/gregorstream/gregor/windows"
)

// windowInfo describes the windows of a windowed table (one whose keys are
// windows.Windowed or a session-windowed key): what Suppress's
// UntilWindowCloses and the emit-final strategy need to know of them.
type windowInfo struct {
	// closeTime returns when a window's result is final: stream time at or
	// past it makes the window's records late (window end plus grace, as
	// the windows define it).
	closeTime func(w windows.Window) time.Time
	// session reports session windows (keys windows.Windowed[K] whose
	// window bounds are both inclusive, serialized key, end, start).
	session bool
	// window is a func(windows.Windowed[K]) windows.Window for the
	// table's record key type K, as windowKeys sets it: UntilWindowCloses
	// asserts it to func(KT) windows.Window, KT being the table's key type,
	// once when the topology is built, so no record is boxed.
	window any
	// suppressAfter is how long after a window's end, in stream time,
	// UntilWindowCloses emits the window's result: the grace for time and
	// sliding windows, the inactivity gap plus the grace for session
	// windows (Kafka Streams' suppression duration for each kind).
	suppressAfter time.Duration
}

// windowKeys records in w that the table's keys are windows.Windowed[K],
// so that UntilWindowCloses can read a key's window, and returns w.
func windowKeys[K any](w *windowInfo) *windowInfo {
	w.window = func(k windows.Windowed[K]) windows.Window { return k.Window }
	return w
}
