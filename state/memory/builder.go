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

// NewBuilder returns a Builder of byte stores called name. For typed stores,
// use state.KeyValue with the WithBackend(memory.Backend()) option, or let
// the driver's default backend apply.
func NewBuilder(name string) *Builder { return &Builder{name: name} }

// Name returns the store's name.
func (b *Builder) Name() string { return b.name }

// Build returns a new, empty *Store. It fails only for an empty name.
func (b *Builder) Build(ctx state.BuildContext) (state.Store, error) {
	return open(b.name, ctx)
}

// Backend returns the in-memory state.KeyValueBackend: every Open returns a
// new, empty *Store. Drivers pass it as state.BuildContext.KeyValueBackend;
// state.WithBackend(memory.Backend()) picks it for one store.
func Backend() state.KeyValueBackend { return backend{} }

type backend struct{}

func (backend) Open(name string, ctx state.BuildContext) (state.KeyValueBytesStore, error) {
	return open(name, ctx)
}

// String names the backend in descriptions and errors.
func (backend) String() string { return "memory" }

func open(name string, ctx state.BuildContext) (*Store, error) {
	if name == "" {
		return nil, fmt.Errorf("memory: build store for task %q: empty name: %w", ctx.TaskID, state.ErrInvalidBuilder)
	}
	return New(name), nil
}
