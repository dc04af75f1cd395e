package state

import (
	"fmt"
	"maps"
	"time"

	"github.com/gregorstream/gregor/serde"
)

// Option configures a store builder. Options are sealed: only this package
// defines them.
type Option interface{ apply(*options) }

type options struct {
	cache     int
	noLogging bool
	ttl       time.Duration
	// retention and segmentInterval configure window and session stores.
	retention       time.Duration
	segmentInterval time.Duration
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithCache sets the size in bytes of the store's record cache, per task;
// 0 turns it off. The default is DefaultCacheBytes. The cache serves reads
// from memory and holds writes until the task commits, so repeated updates
// of a key between commits reach the changelog and downstream once.
func WithCache(bytes int) Option {
	return optionFunc(func(o *options) { o.cache = max(bytes, 0) })
}

// WithoutLogging turns the changelog off: the store is not restored when its
// task moves or its process restarts. For caches of data kept elsewhere.
func WithoutLogging() Option {
	return optionFunc(func(o *options) { o.noLogging = true })
}

// WithTTL expires entries not written for ttl of stream time: reads stop
// seeing them at once, and commits delete them (a bounded sweep per commit),
// so the deletes reach the changelog and a restored store has them gone too.
func WithTTL(ttl time.Duration) Option {
	return optionFunc(func(o *options) { o.ttl = ttl })
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
	b := &KeyValueBuilder[K, V]{name: name, keys: keys, values: values, opts: options{cache: DefaultCacheBytes}}
	for _, o := range opts {
		if o != nil {
			o.apply(&b.opts)
		}
	}
	return b
}

// Name returns the store's name.
func (b *KeyValueBuilder[K, V]) Name() string { return b.name }

// Logged reports whether the store has a changelog.
func (b *KeyValueBuilder[K, V]) Logged() bool { return !b.opts.noLogging }

// CacheBytes returns the size of the record cache opts give a store: the
// default, DefaultCacheBytes, unless WithCache changes it.
func CacheBytes(opts ...Option) int {
	o := options{cache: DefaultCacheBytes}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	return o.cache
}

// Logged reports whether the stores b builds write a changelog: b has a
// Logged method that says so. Drivers read it to know which changelog
// topics to create and restore.
func Logged(b Builder) bool {
	l, ok := b.(interface{ Logged() bool })
	return ok && l.Logged()
}

// ChangelogConfig returns the topic configuration of the store's changelog:
// cleanup.policy=compact, since a key-value store needs only the latest
// value of each key.
func (b *KeyValueBuilder[K, V]) ChangelogConfig() map[string]string {
	return map[string]string{"cleanup.policy": "compact"}
}

// ChangelogConfig returns the topic configuration of the changelog of the
// stores b builds: b's own when it has a method ChangelogConfig() returning
// a non-nil map (a copy of it), else {"cleanup.policy": "compact"}. Drivers
// create changelog topics with it and check existing ones against its
// cleanup.policy.
func ChangelogConfig(b Builder) map[string]string {
	if c, ok := b.(interface{ ChangelogConfig() map[string]string }); ok {
		if cfg := c.ChangelogConfig(); cfg != nil {
			return maps.Clone(cfg)
		}
	}
	return map[string]string{"cleanup.policy": "compact"}
}

// Build returns the task's store, a *KeyValueStore[K, V], as a Store. It
// fails, wrapping ErrInvalidBuilder, for an empty name, a nil serde, a
// negative TTL or a context without a batch.
func (b *KeyValueBuilder[K, V]) Build(ctx BuildContext) (Store, error) {
	s, err := b.BuildKeyValue(ctx)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return s, nil
}

// BuildKeyValue is Build with the store's concrete type. The layers, from
// the top: the typed store, time-to-live, the record cache, changelogging,
// and the task's batch.
func (b *KeyValueBuilder[K, V]) BuildKeyValue(ctx BuildContext) (*KeyValueStore[K, V], error) {
	switch {
	case b.name == "":
		return nil, fmt.Errorf("state: build key-value store for task %q: empty name: %w", ctx.TaskID, ErrInvalidBuilder)
	case b.keys == nil || b.values == nil:
		return nil, fmt.Errorf("state: build key-value store %q: nil key or value serde: %w", b.name, ErrInvalidBuilder)
	case b.opts.ttl < 0:
		return nil, fmt.Errorf("state: build key-value store %q: negative TTL %v: %w", b.name, b.opts.ttl, ErrInvalidBuilder)
	case ctx.Batch == nil:
		return nil, fmt.Errorf("state: build key-value store %q for task %q: no batch in the build context: %w", b.name, ctx.TaskID, ErrInvalidBuilder)
	case b.opts.ttl > 0 && ctx.Time == nil:
		return nil, fmt.Errorf("state: build key-value store %q for task %q: a TTL needs the build context's Time: %w", b.name, ctx.TaskID, ErrInvalidBuilder)
	}
	var bytes KeyValueBytesStore = &view{inner: ctx.Batch.Store(StorePartition{Store: b.name, Partition: ctx.Partition}), name: b.name}
	clock := &storeClock{src: ctx.Time}
	if clock.src == nil {
		clock.src = zeroTime{}
	}
	if !b.opts.noLogging && ctx.Changelog != nil {
		bytes = &changelogging{KeyValueBytesStore: bytes, w: ctx.Changelog, clock: clock}
	}
	if b.opts.cache > 0 {
		bytes = newCaching(bytes, b.opts.cache, clock)
	}
	if b.opts.ttl > 0 {
		bytes = &expiring{inner: bytes, ttl: b.opts.ttl, clock: ctx.Time}
	}
	return NewKeyValueStore(bytes, ChangelogTopic(ctx.ApplicationID, b.name), b.keys, b.values)
}

type zeroTime struct{}

func (zeroTime) RecordTime() time.Time { return time.Time{} }
func (zeroTime) StreamTime() time.Time { return time.Time{} }
