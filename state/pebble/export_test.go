package pebble

import (
	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
)

// SetOverlayBudget sets the memory the overlays of e may hold before a
// commit flushes them: 0 flushes at every commit.
func SetOverlayBudget(e *Engine, n int64) { e.overlayBudget = n }

// OverlayMem returns the memory the overlays of e hold, by estimate.
func OverlayMem(e *Engine) int {
	e.ovMu.Lock()
	defer e.ovMu.Unlock()
	n := 0
	for _, ov := range e.overlays {
		n += ov.mem()
	}
	return n
}

// Flushes returns the number of flushes that wrote overlays of e to pebble.
func Flushes(e *Engine) int64 { return e.flushes.Load() }

// DB returns the pebble DB of e.
func DB(e *Engine) *pebbledb.DB { return e.db }

// DataRange returns the bounds of sp's data keys in the DB.
func DataRange(sp state.StorePartition) (lo, hi []byte) {
	p := dataPrefix(sp)
	return p, state.PrefixEnd(p)
}
