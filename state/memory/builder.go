package memory

import (
	"fmt"

	"github.com/gregorstream/gregor/state"
)

// Builder builds an in-memory byte store per task. Its zero value is not
// usable: call NewBuilder.
type Builder struct {
	name string
}

var _ state.Builder = (*Builder)(nil)

// NewBuilder returns a Builder of plain in-memory byte stores called name,
// outside any engine: no batch, no changelog, nothing to restore. Stores of
// a topology normally come from state.KeyValue, whose bytes live in the
// driver's engine.
func NewBuilder(name string) *Builder { return &Builder{name: name} }

// Name returns the store's name.
func (b *Builder) Name() string { return b.name }

// Build returns a new, empty *Store. It fails only for an empty name.
func (b *Builder) Build(ctx state.BuildContext) (state.Store, error) {
	return open(b.name, ctx)
}

func open(name string, ctx state.BuildContext) (*Store, error) {
	if name == "" {
		return nil, fmt.Errorf("memory: build store for task %q: empty name: %w", ctx.TaskID, state.ErrInvalidBuilder)
	}
	return New(name), nil
}
