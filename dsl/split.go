package dsl

import (
	"fmt"

	"github.com/gregorstream/gregor/processor"
)

// Splitter routes each record of a stream to the first branch whose
// predicate it satisfies; see Stream.Split.
type Splitter[K, V any] struct {
	s      Stream[K, V]
	name   string
	names  []string
	preds  []func(K, V) bool
	closed bool
}

// Split starts routing the stream into branches:
//
//	branches := s.Split(dsl.Named("route-")).
//		Branch("big", isBig).
//		Branch("small", isSmall).
//		DefaultBranch("other")
//	branches["big"].To("big-orders")
//
// A record goes to the first branch whose predicate is true, else to the
// default branch, or nowhere with NoDefaultBranch. Each branch is a node
// named the split's name followed by the branch name. Options: Named (the
// prefix of the branch nodes; generated if absent).
func (s Stream[K, V]) Split(opts ...Option) *Splitter[K, V] {
	o := s.b.options("Split", opts, optName)
	return &Splitter[K, V]{s: s, name: s.b.newName(o, "KSTREAM-BRANCH")}
}

// Branch adds a branch named name taking the records for which pred is true
// and no earlier branch's was.
func (sp *Splitter[K, V]) Branch(name string, pred func(K, V) bool) *Splitter[K, V] {
	switch {
	case sp.closed:
		sp.s.b.fail("Split", fmt.Errorf("%s: Branch %q after the split was ended", sp.name, name))
	case pred == nil:
		sp.s.b.fail("Split", fmt.Errorf("%s: branch %q: %w", sp.name, name, errNilFunc))
	default:
		sp.add(name, pred)
	}
	return sp
}

func (sp *Splitter[K, V]) add(name string, pred func(K, V) bool) {
	if name == "" {
		sp.s.b.fail("Split", fmt.Errorf("%s: branch with an empty name", sp.name))
		return
	}
	for _, n := range sp.names {
		if n == name {
			sp.s.b.fail("Split", fmt.Errorf("%s: duplicate branch %q", sp.name, name))
			return
		}
	}
	sp.names = append(sp.names, name)
	sp.preds = append(sp.preds, pred)
}

// DefaultBranch ends the split with a branch taking every record no other
// branch took, and returns the branches by name.
func (sp *Splitter[K, V]) DefaultBranch(name string) map[string]Stream[K, V] {
	if !sp.closed {
		sp.add(name, nil)
	}
	return sp.end()
}

// NoDefaultBranch ends the split; records no branch takes are dropped. It
// returns the branches by name.
func (sp *Splitter[K, V]) NoDefaultBranch() map[string]Stream[K, V] {
	return sp.end()
}

func (sp *Splitter[K, V]) end() map[string]Stream[K, V] {
	out := make(map[string]Stream[K, V], len(sp.names))
	if sp.closed {
		sp.s.b.fail("Split", fmt.Errorf("%s: ended twice", sp.name))
		return out
	}
	sp.closed = true
	b := sp.s.b
	children := make([]string, len(sp.names))
	for i, n := range sp.names {
		children[i] = sp.name + n
	}
	preds := sp.preds
	b.topo.AddProcessor(sp.name, func() processor.Processor[K, V, K, V] {
		return &branchProc[K, V]{preds: preds, children: children}
	}, sp.s.node)
	for i, n := range sp.names {
		out[n] = add(Stream[K, V]{b: b, node: sp.name, keys: sp.s.keys, values: sp.s.values, rekeyed: sp.s.rekeyed},
			children[i], func() processor.Processor[K, V, K, V] { return &passProc[K, V]{} }, sp.s.rekeyed)
	}
	return out
}

type branchProc[K, V any] struct {
	preds    []func(K, V) bool // nil for the default branch, which is last
	children []string
	next     []func(processor.Record[K, V]) error
}

func (p *branchProc[K, V]) Init(ctx processor.Context[K, V]) error {
	p.next = make([]func(processor.Record[K, V]) error, len(p.children))
	for i, c := range p.children {
		f, err := processor.ChildForwarder(ctx, c)
		if err != nil {
			return err
		}
		p.next[i] = f
	}
	return nil
}

func (p *branchProc[K, V]) Process(r processor.Record[K, V]) error {
	for i, pred := range p.preds {
		if pred == nil || pred(r.Key, r.Value) {
			return p.next[i](r)
		}
	}
	return nil
}

func (p *branchProc[K, V]) Close() error { return nil }
