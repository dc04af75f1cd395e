package processor

import (
	"errors"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// SubTopology is a connected part of a topology: nodes linked by parent edges
// or by a shared store. Each partition of its input topics is one task.
type SubTopology struct {
	ID     int
	Nodes  []string // in topological order
	Topics []string // source topics, short names for internal topics
	// Patterns are the anchored patterns of pattern sources.
	Patterns []*regexp.Regexp
	// SinkTopics are the fixed topics its sinks write to.
	SinkTopics []string
	Stores     []string
}

type graph struct {
	subs   []SubTopology
	subOf  map[string]int // node name -> sub-topology
	sorted []*node        // all nodes, topologically
}

// Validate checks the whole topology and returns every problem found, joined;
// each is a *TopologyError. A valid topology is frozen until the next Add.
func (t *Topology) Validate() error {
	t.validating.Lock()
	defer t.validating.Unlock()
	if t.checked != nil {
		return nil
	}
	problems := slices.Clone(t.problems)
	bad := func(e *TopologyError) { problems = append(problems, e) }

	// Edges.
	for _, n := range t.nodes {
		n.children = nil
	}
	sources := 0
	topicOwner := map[string]string{}
	for _, n := range t.nodes {
		switch n.kind {
		case SourceNode:
			sources++
			for _, tp := range n.topics {
				if owner, dup := topicOwner[tp]; dup {
					bad(&TopologyError{Node: n.name, Kind: n.kind, Topic: tp, Detail: "read by " + owner, Err: ErrDuplicateTopic})
					continue
				}
				topicOwner[tp] = n.name
			}
		default:
			if len(n.parents) == 0 {
				bad(&TopologyError{Node: n.name, Kind: n.kind, Err: ErrNoParent})
			}
		}
		for i, pn := range n.parents {
			p, ok := t.byName[pn]
			switch {
			case slices.Contains(n.parents[:i], pn):
				bad(&TopologyError{Node: n.name, Kind: n.kind, Parent: pn, Err: ErrDuplicateParent})
			case !ok:
				bad(&TopologyError{Node: n.name, Kind: n.kind, Parent: pn, Err: ErrUnknownParent})
			case p.kind == SinkNode:
				bad(&TopologyError{Node: n.name, Kind: n.kind, Parent: pn, Err: ErrSinkParent})
			case p.out != n.in:
				bad(&TopologyError{Node: n.name, Kind: n.kind, Parent: pn,
					Detail: "parent forwards " + p.out.String() + ", node takes " + n.in.String(), Err: ErrTypeMismatch})
			default:
				p.children = append(p.children, n)
			}
		}
	}
	if sources == 0 {
		bad(&TopologyError{Err: ErrEmptyTopology})
	}

	// Stores.
	for _, s := range t.stores {
		for _, nn := range s.nodes {
			n, ok := t.byName[nn]
			switch {
			case !ok:
				bad(&TopologyError{Node: nn, Store: s.builder.Name(), Err: ErrUnknownNode})
			case n.kind != ProcessorNode:
				bad(&TopologyError{Node: nn, Kind: n.kind, Store: s.builder.Name(), Err: ErrStoreOnSource})
			default:
				if !slices.Contains(n.stores, s.builder.Name()) {
					n.stores = append(n.stores, s.builder.Name())
				}
			}
		}
	}

	sorted, cycle := t.topoSort()
	if cycle != nil {
		bad(&TopologyError{Node: cycle[0], Err: ErrCycle, Detail: strings.Join(cycle, " -> ")})
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}

	g := t.group(sorted)
	for _, sub := range g.subs {
		for _, sink := range sub.SinkTopics {
			if slices.Contains(sub.Topics, sink) || matchesAny(sub.Patterns, sink) {
				for _, nn := range sub.Nodes {
					n := t.byName[nn]
					if n.kind == SinkNode && !n.dynamic && n.topics[0] == sink {
						bad(&TopologyError{Node: nn, Kind: SinkNode, Topic: sink, Err: ErrSinkToOwnSource})
					}
				}
			}
		}
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	t.checked = g
	return nil
}

func matchesAny(ps []*regexp.Regexp, s string) bool {
	for _, p := range ps {
		if p.MatchString(s) {
			return true
		}
	}
	return false
}

// topoSort orders the nodes parents first, ties by insertion order. It
// returns the nodes of a cycle if there is one.
func (t *Topology) topoSort() ([]*node, []string) {
	indeg := map[*node]int{}
	for _, n := range t.nodes {
		for _, pn := range n.parents {
			if _, ok := t.byName[pn]; ok {
				indeg[n]++
			}
		}
	}
	var ready, out []*node
	for _, n := range t.nodes {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return ready[i].order < ready[j].order })
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		for _, c := range t.nodes {
			for _, pn := range c.parents {
				if pn == n.name {
					indeg[c]--
					if indeg[c] == 0 {
						ready = append(ready, c)
					}
				}
			}
		}
	}
	if len(out) == len(t.nodes) {
		return out, nil
	}
	// Walk parents from a node left over until one repeats: that is a cycle.
	left := map[string]bool{}
	for _, n := range t.nodes {
		if indeg[n] > 0 {
			left[n.name] = true
		}
	}
	var start *node
	for _, n := range t.nodes {
		if left[n.name] {
			start = n
			break
		}
	}
	seen := map[string]int{}
	var path []string
	for n := start; ; {
		if i, ok := seen[n.name]; ok {
			cyc := slices.Clone(path[i:])
			slices.Reverse(cyc)
			return out, append(cyc, cyc[0])
		}
		seen[n.name] = len(path)
		path = append(path, n.name)
		for _, pn := range n.parents {
			if left[pn] {
				n = t.byName[pn]
				break
			}
		}
	}
}

// group splits the nodes into sub-topologies with a union-find over parent
// edges and shared stores, numbered by their first node.
func (t *Topology) group(sorted []*node) *graph {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if parent[x] == "" || parent[x] == x {
			return x
		}
		r := find(parent[x])
		parent[x] = r
		return r
	}
	union := func(a, b string) {
		ra, rb := find(a), find(b)
		if ra == rb {
			return
		}
		if t.byName[ra].order < t.byName[rb].order {
			parent[rb] = ra
		} else {
			parent[ra] = rb
		}
	}
	for _, n := range t.nodes {
		for _, pn := range n.parents {
			union(n.name, pn)
		}
	}
	for _, s := range t.stores {
		for i := 1; i < len(s.nodes); i++ {
			union(s.nodes[0], s.nodes[i])
		}
	}
	g := &graph{subOf: map[string]int{}, sorted: sorted}
	idOf := map[string]int{}
	for _, n := range t.nodes { // insertion order numbers the groups
		r := find(n.name)
		if _, ok := idOf[r]; !ok {
			idOf[r] = len(g.subs)
			g.subs = append(g.subs, SubTopology{ID: len(g.subs)})
		}
	}
	for _, n := range sorted {
		id := idOf[find(n.name)]
		g.subOf[n.name] = id
		sub := &g.subs[id]
		sub.Nodes = append(sub.Nodes, n.name)
		switch n.kind {
		case SourceNode:
			sub.Topics = append(sub.Topics, n.topics...)
			if n.pattern != nil {
				sub.Patterns = append(sub.Patterns, n.pattern)
			}
		case SinkNode:
			if !n.dynamic && !slices.Contains(sub.SinkTopics, n.topics[0]) {
				sub.SinkTopics = append(sub.SinkTopics, n.topics[0])
			}
		}
		for _, s := range n.stores {
			if !slices.Contains(sub.Stores, s) {
				sub.Stores = append(sub.Stores, s)
			}
		}
	}
	return g
}

// SubTopologies returns the validated topology's sub-topologies. They are
// copies: the caller may modify them.
func (t *Topology) SubTopologies() ([]SubTopology, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := slices.Clone(t.checked.subs)
	for i := range out {
		s := &out[i]
		s.Nodes, s.Topics, s.Patterns = slices.Clone(s.Nodes), slices.Clone(s.Topics), slices.Clone(s.Patterns)
		s.SinkTopics, s.Stores = slices.Clone(s.SinkTopics), slices.Clone(s.Stores)
	}
	return out, nil
}

func sortInternal(ts []InternalTopic) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
}
