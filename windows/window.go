package windows

import (
	"fmt"
	"time"
)

// Window is an interval of event time. For time windows End is exclusive,
// [Start, End), as Kafka Streams' TimeWindow; for sliding and session
// windows it is inclusive, [Start, End], as its SessionWindow and the
// windows of SlidingWindows.
type Window struct {
	Start, End time.Time
}

// String formats the window as [start,end) in milliseconds since the
// epoch; its kind decides the closing bracket only where the caller knows
// it, so String always writes the half-open form.
func (w Window) String() string {
	return fmt.Sprintf("[%d,%d)", millis(w.Start), millis(w.End))
}

// Windowed is a key of a windowed table: the record key and its window.
type Windowed[K any] struct {
	Key    K
	Window Window
}

// String formats the windowed key as key@[start,end).
func (w Windowed[K]) String() string { return fmt.Sprintf("%v@%v", w.Key, w.Window) }
