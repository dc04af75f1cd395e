package state

import (
	"fmt"

	"github.com/gregorstream/gregor/serde"
)

// Option configures a store builder. Options are sealed: only this package
// defines them.
type Option interface{ apply(*options) }

type options struct {
	backend KeyValueBackend
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithBackend makes a key-value store keep its bytes in backend (for
// example memory.Backend()). By default the store uses the driver's
// BuildContext.KeyValueBackend; a nil backend keeps that default.
func WithBackend(backend KeyValueBackend) Option {
	return optionFunc(func(o *options) { o.backend = backend })
}

// KeyValueBuilder builds a *KeyValueStore[K, V] per task. It is immutable
// once made, so one builder may serve every task concurrently.
type KeyValueBuilder[K, V any] struct {
	name   string
	keys   serde.Serde[K]
	values serde.Serde[V]
	opts   options
}

var _ Builder = (*KeyValueBuilder[string, string])(nil)

// KeyValue returns a builder of typed key-value stores called name. The name
// must be stable: it names the changelog topic. Mistakes (an empty name, a
// nil serde) are reported by Build, so that a topology can be declared in
// one expression.
func KeyValue[K, V any](name string, keys serde.Serde[K], values serde.Serde[V], opts ...Option) *KeyValueBuilder[K, V] {
	b := &KeyValueBuilder[K, V]{name: name, keys: keys, values: values}
	for _, o := range opts {
		if o != nil {
			o.apply(&b.opts)
		}
	}
	return b
}

// Name returns the store's name.
func (b *KeyValueBuilder[K, V]) Name() string { return b.name }

// Build returns the task's store, a *KeyValueStore[K, V], as a Store. It
// fails, wrapping ErrInvalidBuilder, for an empty name or a nil serde, and
// wrapping ErrNoBackend when neither WithBackend nor ctx names a backend.
func (b *KeyValueBuilder[K, V]) Build(ctx BuildContext) (Store, error) {
	s, err := b.BuildKeyValue(ctx)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return s, nil
}

// BuildKeyValue is Build with the store's concrete type.
func (b *KeyValueBuilder[K, V]) BuildKeyValue(ctx BuildContext) (*KeyValueStore[K, V], error) {
	switch {
	case b.name == "":
		return nil, fmt.Errorf("state: build key-value store for task %q: empty name: %w", ctx.TaskID, ErrInvalidBuilder)
	case b.keys == nil || b.values == nil:
		return nil, fmt.Errorf("state: build key-value store %q: nil key or value serde: %w", b.name, ErrInvalidBuilder)
	}
	backend := b.opts.backend
	if backend == nil {
		backend = ctx.KeyValueBackend
	}
	if backend == nil {
		return nil, fmt.Errorf("state: build key-value store %q for task %q: %w: pass state.WithBackend or set BuildContext.KeyValueBackend (memory.Backend() for tests)",
			b.name, ctx.TaskID, ErrNoBackend)
	}
	bytes, err := backend.Open(b.name, ctx)
	if err != nil {
		return nil, fmt.Errorf("state: build key-value store %q for task %q: %w", b.name, ctx.TaskID, err)
	}
	if bytes == nil {
		return nil, fmt.Errorf("state: build key-value store %q for task %q: backend %v returned no store: %w", b.name, ctx.TaskID, backend, ErrNoBackend)
	}
	return NewKeyValueStore(bytes, ChangelogTopic(ctx.ApplicationID, b.name), b.keys, b.values)
}
