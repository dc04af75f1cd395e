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
}
