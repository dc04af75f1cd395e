package memory_test

import (
	"testing"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
)

func TestEngineConformance(t *testing.T) {
	storetest.EngineConformance(t, func(*testing.T) state.Engine {
		return memory.NewEngine()
	}, storetest.Options{ExactCount: true})
}
