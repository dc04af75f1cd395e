package dsl

import "github.com/gregorstream/gregor/processor"

// The stateless operators. Each takes its forwarding function once in Init,
// so a record costs one function call per operator.

type forward[K, V any] struct {
	next func(processor.Record[K, V]) error
}

func (f *forward[K, V]) Init(ctx processor.Context[K, V]) error {
	f.next = processor.Forwarder(ctx)
	return nil
}

func (f *forward[K, V]) Close() error { return nil }

type filterProc[K, V any] struct {
	forward[K, V]
	pred func(K, V) bool
	not  bool
}

func (p *filterProc[K, V]) Process(r processor.Record[K, V]) error {
	if p.pred(r.Key, r.Value) != p.not {
		return p.next(r)
	}
	return nil
}

type mapProc[K, V, K2, V2 any] struct {
	forward[K2, V2]
	f func(K, V) (K2, V2)
}

func (p *mapProc[K, V, K2, V2]) Process(r processor.Record[K, V]) error {
	k, v := p.f(r.Key, r.Value)
	return p.next(r.WithKeyValue(k, v))
}

type mapValuesProc[K, V, V2 any] struct {
	forward[K, V2]
	f func(K, V) V2
}

func (p *mapValuesProc[K, V, V2]) Process(r processor.Record[K, V]) error {
	return p.next(r.WithValue(p.f(r.Key, r.Value)))
}

type flatMapProc[K, V, K2, V2 any] struct {
	forward[K2, V2]
	f func(K, V) []KeyValue[K2, V2]
}

func (p *flatMapProc[K, V, K2, V2]) Process(r processor.Record[K, V]) error {
	for _, kv := range p.f(r.Key, r.Value) {
		if err := p.next(r.WithKeyValue(kv.Key, kv.Value)); err != nil {
			return err
		}
	}
	return nil
}

type flatMapValuesProc[K, V, V2 any] struct {
	forward[K, V2]
	f func(V) []V2
}

func (p *flatMapValuesProc[K, V, V2]) Process(r processor.Record[K, V]) error {
	for _, v := range p.f(r.Value) {
		if err := p.next(r.WithValue(v)); err != nil {
			return err
		}
	}
	return nil
}

type selectKeyProc[K, V, K2 any] struct {
	forward[K2, V]
	f func(K, V) K2
}

func (p *selectKeyProc[K, V, K2]) Process(r processor.Record[K, V]) error {
	return p.next(r.WithKey(p.f(r.Key, r.Value)))
}

type peekProc[K, V any] struct {
	forward[K, V]
	f    func(K, V)
	pass bool
}

func (p *peekProc[K, V]) Process(r processor.Record[K, V]) error {
	p.f(r.Key, r.Value)
	if p.pass {
		return p.next(r)
	}
	return nil
}

type passProc[K, V any] struct {
	forward[K, V]
}

func (p *passProc[K, V]) Process(r processor.Record[K, V]) error { return p.next(r) }
