// Package assign is the pure task-assignment algorithm used by the Kafka
// runtime's consumer-group balancer. Assignment is by task: partition p of
// sub-topology s is one unit, and all co-partitioned inputs of that task go to
// the member that owns it.
//
// The algorithm has three phases:
//
//  1. Quotas. Every member gets floor(n_s/M) tasks of sub-topology s, and the
//     n_s mod M remaining "extra" slots of each sub-topology are spread so that
//     total task counts per member differ by at most one. Which member gets
//     which extra slot is chosen by a small min-cost flow that maximises the
//     number of previously owned tasks that can stay put.
//  2. Stickiness. Members, in ID order, keep previously owned tasks up to
//     their per-sub-topology quota (a task claimed by several members goes to
//     the lowest ID that still has room).
//  3. Fill. Remaining tasks, in (sub-topology, partition) order, go to members
//     with remaining quota, in ID order.
//
// Every step is deterministic in the sorted member IDs and the set of tasks,
// so the same input (in any order) yields the same output.
package assign

import (
	"errors"
	"fmt"
	"sort"
)

// TaskID names a task: partition Partition of sub-topology SubTopology.
type TaskID struct {
	SubTopology int
	Partition   int32
}

// Less orders tasks by sub-topology, then partition.
func (t TaskID) Less(o TaskID) bool {
	if t.SubTopology != o.SubTopology {
		return t.SubTopology < o.SubTopology
	}
	return t.Partition < o.Partition
}

// String returns "subtopology_partition", as Kafka Streams prints task ids.
func (t TaskID) String() string { return fmt.Sprintf("%d_%d", t.SubTopology, t.Partition) }

// Member is a group member: its id and the tasks it owned in the previous
// generation (for stickiness).
type Member struct {
	ID       string
	Previous []TaskID
}

// ErrNoMembers is returned by Assign when there is no member to assign to.
var ErrNoMembers = errors.New("assign: no members")

// Assign gives every task to exactly one member. Rules, in priority:
//
//  1. Every task is assigned exactly once; members are sorted by ID for
//     determinism; the same input gives the same output.
//  2. Balanced: task counts per member differ by at most one, and for each
//     sub-topology the counts per member differ by at most one too, so the
//     partitions of a heavy sub-topology are spread across members.
//  3. Sticky: a task stays with its previous owner whenever that does not
//     break balance; a task claimed by several members' Previous goes to the
//     lowest ID among those still under quota. Previous tasks that are not in
//     tasks are ignored.
//
// It returns member ID -> tasks sorted by (sub-topology, partition). With no
// members it returns ErrNoMembers; duplicate member IDs or duplicate tasks are
// errors. With zero tasks every member gets an empty (non-nil) list.
func Assign(tasks []TaskID, members []Member) (map[string][]TaskID, error) {
	if len(members) == 0 {
		return nil, ErrNoMembers
	}
	ms := make([]Member, len(members))
	copy(ms, members)
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID < ms[j].ID })
	for i := 1; i < len(ms); i++ {
		if ms[i].ID == ms[i-1].ID {
			return nil, fmt.Errorf("assign: duplicate member id %q", ms[i].ID)
		}
	}
	M := len(ms)

	ts := make([]TaskID, len(tasks))
	copy(ts, tasks)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Less(ts[j]) })
	for i := 1; i < len(ts); i++ {
		if ts[i] == ts[i-1] {
			return nil, fmt.Errorf("assign: duplicate task %v", ts[i])
		}
	}

	out := make(map[string][]TaskID, M)
	for _, m := range ms {
		out[m.ID] = []TaskID{}
	}
	if len(ts) == 0 {
		return out, nil
	}

	// Sub-topologies, in order; subIdx maps a sub-topology to its index.
	var subs []int
	subIdx := map[int]int{}
	var subTasks [][]TaskID
	for _, t := range ts {
		si, ok := subIdx[t.SubTopology]
		if !ok {
			si = len(subs)
			subIdx[t.SubTopology] = si
			subs = append(subs, t.SubTopology)
			subTasks = append(subTasks, nil)
		}
		subTasks[si] = append(subTasks[si], t)
	}
	S := len(subs)
	valid := make(map[TaskID]struct{}, len(ts))
	for _, t := range ts {
		valid[t] = struct{}{}
	}

	// prev[m][s]: the member's valid previous tasks of sub-topology s, sorted, deduplicated.
	prev := make([][][]TaskID, M)
	for mi, m := range ms {
		prev[mi] = make([][]TaskID, S)
		seen := make(map[TaskID]struct{}, len(m.Previous))
		for _, t := range m.Previous {
			if _, ok := valid[t]; !ok {
				continue
			}
			if _, dup := seen[t]; dup {
				continue
			}
			seen[t] = struct{}{}
			si := subIdx[t.SubTopology]
			prev[mi][si] = append(prev[mi][si], t)
		}
		for si := range prev[mi] {
			p := prev[mi][si]
			sort.Slice(p, func(i, j int) bool { return p[i].Less(p[j]) })
		}
	}

	// Phase 1: per-(member, sub-topology) quotas.
	quota := quotas(subTasks, prev, M)

	// Phase 2: keep previous tasks within quota, lowest member ID first.
	owner := make(map[TaskID]int, len(ts))
	for mi := range ms {
		for si := 0; si < S; si++ {
			for _, t := range prev[mi][si] {
				if quota[mi][si] == 0 {
					break
				}
				if _, taken := owner[t]; taken {
					continue
				}
				owner[t] = mi
				quota[mi][si]--
			}
		}
	}

	// Phase 3: fill the remaining quota in order.
	for si := 0; si < S; si++ {
		mi := 0
		for _, t := range subTasks[si] {
			if _, taken := owner[t]; taken {
				continue
			}
			for quota[mi][si] == 0 {
				mi++
			}
			owner[t] = mi
			quota[mi][si]--
		}
	}

	// ts is sorted, so appending in order yields sorted lists.
	for _, t := range ts {
		id := ms[owner[t]].ID
		out[id] = append(out[id], t)
	}
	return out, nil
}

// quotas returns q[m][s], the number of tasks of sub-topology s that member m
// gets. Each member gets floor(n_s/M) or that plus one of every sub-topology,
// and the totals per member differ by at most one. The "plus one" slots are
// placed to maximise how many previous tasks can be kept: giving member m the
// extra slot of s keeps one more task exactly when m previously owned more
// than floor(n_s/M) tasks of s.
func quotas(subTasks [][]TaskID, prev [][][]TaskID, M int) [][]int {
	S := len(subTasks)
	q := make([][]int, M)
	for mi := range q {
		q[mi] = make([]int, S)
	}
	extras := make([]int, S) // n_s mod M
	R := 0
	for si, st := range subTasks {
		fl := len(st) / M
		for mi := range q {
			q[mi][si] = fl
		}
		extras[si] = len(st) % M
		R += extras[si]
	}
	if R == 0 {
		return q
	}
	lo := R / M // every member gets lo or lo+1 extra slots in total

	// Min-cost flow: source -> sub-topology s (cap extras[s]) -> member m
	// (cap 1, cost -1 if the slot lets m keep a task) -> sink. Each member's
	// first lo units to the sink cost -big, which forces every member to at
	// least lo extra slots; one more unit is free, so exactly R mod M members
	// get lo+1.
	src, sink := 0, 1+S+M
	g := newGraph(sink + 1)
	for si := 0; si < S; si++ {
		if extras[si] > 0 {
			g.addEdge(src, 1+si, extras[si], 0)
		}
	}
	subMember := make([][]int, S) // edge indexes
	for si := 0; si < S; si++ {
		if extras[si] == 0 {
			continue
		}
		subMember[si] = make([]int, M)
		fl := len(subTasks[si]) / M
		for mi := 0; mi < M; mi++ {
			cost := 0
			if len(prev[mi][si]) > fl {
				cost = -1
			}
			subMember[si][mi] = g.addEdge(1+si, 1+S+mi, 1, cost)
		}
	}
	big := R + 1
	for mi := 0; mi < M; mi++ {
		if lo > 0 {
			g.addEdge(1+S+mi, sink, lo, -big)
		}
		g.addEdge(1+S+mi, sink, 1, 0)
	}
	g.minCostFlow(src, sink)
	for si := 0; si < S; si++ {
		if extras[si] == 0 {
			continue
		}
		for mi := 0; mi < M; mi++ {
			if g.edges[subMember[si][mi]].cap == 0 { // saturated: slot used
				q[mi][si]++
			}
		}
	}
	return q
}

type edge struct {
	to, cap, cost int
}

// graph is a small residual graph for successive-shortest-path min-cost flow.
// Edge i and i^1 are a forward edge and its reverse.
type graph struct {
	edges []edge
	adj   [][]int
}

func newGraph(n int) *graph { return &graph{adj: make([][]int, n)} }

func (g *graph) addEdge(from, to, cap, cost int) int {
	i := len(g.edges)
	g.edges = append(g.edges, edge{to, cap, cost}, edge{from, 0, -cost})
	g.adj[from] = append(g.adj[from], i)
	g.adj[to] = append(g.adj[to], i+1)
	return i
}

// minCostFlow pushes the maximum flow from s to t at minimum cost. The initial
// graph is acyclic, so shortest paths (Bellman-Ford/SPFA, which handles the
// negative costs) stay well defined as augmentation proceeds.
func (g *graph) minCostFlow(s, t int) {
	n := len(g.adj)
	const inf = int(^uint(0) >> 1)
	dist := make([]int, n)
	inQueue := make([]bool, n)
	prevEdge := make([]int, n)
	queue := make([]int, 0, n)
	for {
		for i := range dist {
			dist[i] = inf
			prevEdge[i] = -1
		}
		dist[s] = 0
		queue = append(queue[:0], s)
		inQueue[s] = true
		for len(queue) > 0 {
			u := queue[0]
			queue = queue[1:]
			inQueue[u] = false
			for _, ei := range g.adj[u] {
				e := g.edges[ei]
				if e.cap > 0 && dist[u]+e.cost < dist[e.to] {
					dist[e.to] = dist[u] + e.cost
					prevEdge[e.to] = ei
					if !inQueue[e.to] {
						inQueue[e.to] = true
						queue = append(queue, e.to)
					}
				}
			}
		}
		if dist[t] == inf {
			return
		}
		push := inf
		for v := t; v != s; v = g.edges[prevEdge[v]^1].to {
			if c := g.edges[prevEdge[v]].cap; c < push {
				push = c
			}
		}
		for v := t; v != s; v = g.edges[prevEdge[v]^1].to {
			g.edges[prevEdge[v]].cap -= push
			g.edges[prevEdge[v]^1].cap += push
		}
	}
}
