package runtime

import (
	"context"
	"sync/atomic"
	"time"
)

// watchdogTick is how often the stall watchdog looks at the clock.
const watchdogTick = 100 * time.Millisecond

// watchdog detects stalls of the whole process: a SIGSTOP, a frozen VM or
// container, a host that starved the process. While the process stands
// still, so does every goroutine, including franz-go's heartbeats: the
// group may have given its tasks to another member, and the broker may
// have aborted its transaction. A thread that sees a stall since its
// transaction began must not commit (or even flush its caches into that
// transaction): it aborts, drops its tasks' uncommitted state and rejoins.
//
// The monotonic clock keeps counting while a process is stopped, so a gap
// between two ticks longer than bound is a stall. A thread that is merely
// slow (a long processing batch) does not stall the watchdog's goroutine.
type watchdog struct {
	bound  time.Duration
	stalls atomic.Int64 // stalls seen so far
	last   atomic.Int64 // the last tick, in nanoseconds of now
	now    func() time.Duration
}

// newWatchdog returns a watchdog that counts gaps longer than bound.
func newWatchdog(bound time.Duration) *watchdog {
	start := time.Now()
	w := &watchdog{bound: bound, now: func() time.Duration { return time.Since(start) }}
	w.last.Store(int64(w.now()))
	return w
}

// run ticks until ctx ends.
func (w *watchdog) run(ctx context.Context) {
	w.last.Store(int64(w.now())) // New may have been long before Run
	tick := time.NewTicker(watchdogTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.tick()
	}
}

// tick takes the time, and counts a stall if the last tick is more than
// bound ago.
func (w *watchdog) tick() {
	now := int64(w.now())
	if gap := time.Duration(now - w.last.Swap(now)); gap > w.bound {
		w.stalls.Add(1)
	}
}

// epoch returns a mark to pass to stalledSince later.
func (w *watchdog) epoch() int64 { return w.stalls.Load() }

// stalledSince reports whether the process stalled since epoch was taken,
// or stands in a stall now (the watchdog has not ticked for longer than
// bound: it has not yet run since the process resumed).
func (w *watchdog) stalledSince(epoch int64) bool {
	if w.stalls.Load() != epoch {
		return true
	}
	return time.Duration(int64(w.now())-w.last.Load()) > w.bound
}

// stallBound is the longest gap the runtime takes for no stall: half the
// shorter of the session timeout (past it, the group gives the member's
// tasks away) and the transaction timeout (past it, the broker aborts the
// open transaction). A heartbeat comes at least every third of a session,
// so half a session without one leaves the membership intact.
func stallBound(session, txn time.Duration) time.Duration {
	b := session
	if txn > 0 {
		b = min(b, txn)
	}
	return max(b/2, time.Second)
}
