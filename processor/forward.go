package processor

import (
	"fmt"

	"github.com/gregorstream/gregor/state"
)

// Forwarder returns the function that hands a record to every child of the
// node ctx belongs to. Calling it is what ctx.Forward does, with one call
// less per record: operators take it once in Init.
func Forwarder[K, V any](ctx Context[K, V]) func(Record[K, V]) error {
	if c, ok := ctx.(*nodeContext[K, V]); ok {
		return c.forward
	}
	return ctx.Forward
}

// ChildForwarder returns the function that hands a record to one named child,
// resolved once instead of per record as ForwardTo does.
func ChildForwarder[K, V any](ctx Context[K, V], child string) (func(Record[K, V]) error, error) {
	if c, ok := ctx.(*nodeContext[K, V]); ok {
		for i, n := range c.node.children {
			if n.name == child {
				return c.children[i], nil
			}
		}
		return nil, fmt.Errorf("processor: %q forward to %q: %w", c.node.name, child, ErrUnknownChild)
	}
	return func(r Record[K, V]) error { return ctx.ForwardTo(child, r) }, nil
}

// StoreOf returns the store called name from ctx as type S, e.g.
//
//	counts, err := processor.StoreOf[*state.KeyValueStore[string, int64]](ctx, "counts")
//
// The error names the store when it is not connected to the node or has another type.
func StoreOf[S state.Store, K, V any](ctx Context[K, V], name string) (S, error) {
	var zero S
	s, err := ctx.Store(name)
	if err != nil {
		return zero, err
	}
	return state.Lookup[S](func(string) (state.Store, bool) { return s, true }, name)
}
