package runtime

import (
	"testing"
	"time"
)

// TestWatchdog drives the stall watchdog with a fake clock: ticks closer
// than the bound are no stall; a gap longer than the bound is one, seen by
// every mark taken before it, and a stall in progress (no tick since the
// process resumed) is seen before the watchdog ticks again.
func TestWatchdog(t *testing.T) {
	var clock time.Duration
	w := &watchdog{bound: time.Second, now: func() time.Duration { return clock }}
	advance := func(d time.Duration) { clock += d }
	mark := w.epoch()
	for range 50 {
		advance(watchdogTick)
		w.tick()
	}
	if w.stalledSince(mark) {
		t.Fatal("stall reported for ticks every 100 ms")
	}
	advance(900 * time.Millisecond) // slow, but within the bound
	w.tick()
	if w.stalledSince(mark) {
		t.Fatal("stall reported for a 900 ms gap, bound 1 s")
	}
	advance(3 * time.Second) // the process stands still: no tick
	if !w.stalledSince(mark) {
		t.Fatal("a stall in progress (no tick for 3 s) not reported")
	}
	w.tick() // the watchdog runs again
	if !w.stalledSince(mark) {
		t.Fatal("a stall before the last tick not reported to a mark taken before it")
	}
	after := w.epoch()
	advance(watchdogTick)
	w.tick()
	if w.stalledSince(after) {
		t.Fatal("a mark taken after the stall sees it")
	}
}

func TestStallBound(t *testing.T) {
	for _, tc := range []struct{ session, txn, want time.Duration }{
		{45 * time.Second, 10 * time.Second, 5 * time.Second},
		{6 * time.Second, 2 * time.Second, time.Second},
		{3 * time.Second, 6 * time.Second, 1500 * time.Millisecond},
		{time.Second, 500 * time.Millisecond, time.Second}, // the floor
	} {
		if got := stallBound(tc.session, tc.txn); got != tc.want {
			t.Errorf("stallBound(%v, %v) = %v, want %v", tc.session, tc.txn, got, tc.want)
		}
	}
}
