package processor

import (
	"fmt"
	"slices"
	"strings"
)

// Description is the map of a validated topology, as Describe returns it.
type Description struct {
	SubTopologies []SubTopologyDescription
	Stores        []string
}

// SubTopologyDescription describes one sub-topology.
type SubTopologyDescription struct {
	ID    int
	Nodes []NodeDescription
}

// NodeDescription describes one node.
type NodeDescription struct {
	Name     string
	Kind     NodeKind
	Topics   []string // source topics, or the sink's topic
	Pattern  string   // a pattern source's regular expression
	Dynamic  bool     // a sink that chooses its topic per record
	Stores   []string
	Parents  []string
	Children []string
}

// Describe returns the map of the topology. It fails if the topology is invalid.
func (t *Topology) Describe() (*Description, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	d := &Description{}
	for _, s := range t.stores {
		d.Stores = append(d.Stores, s.builder.Name())
	}
	for _, sub := range t.checked.subs {
		sd := SubTopologyDescription{ID: sub.ID}
		for _, name := range sub.Nodes {
			n := t.byName[name]
			nd := NodeDescription{Name: n.name, Kind: n.kind, Dynamic: n.dynamic, // copies: the caller may modify them
				Topics: slices.Clone(n.topics), Stores: slices.Clone(n.stores), Parents: slices.Clone(n.parents)}
			if n.pattern != nil {
				nd.Pattern = strings.TrimSuffix(strings.TrimPrefix(n.pattern.String(), "^(?:"), ")$")
			}
			for _, c := range n.children {
				nd.Children = append(nd.Children, c.name)
			}
			sd.Nodes = append(sd.Nodes, nd)
		}
		d.SubTopologies = append(d.SubTopologies, sd)
	}
	return d, nil
}

func names(ns []string) string {
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

// String formats the description as Kafka Streams' TopologyDescription does,
// down to its indentation: "Topologies:\n " and then "  Sub-topology: N" for
// each sub-topology, so the first header is indented by three spaces and the
// next ones by two, as tools that read Kafka's output expect.
func (d *Description) String() string {
	var b strings.Builder
	b.WriteString("Topologies:\n ")
	for _, sub := range d.SubTopologies {
		fmt.Fprintf(&b, "  Sub-topology: %d\n", sub.ID)
		for _, n := range sub.Nodes {
			switch n.Kind {
			case SourceNode:
				if n.Pattern != "" {
					fmt.Fprintf(&b, "    Source: %s (topics: %s)\n", n.Name, n.Pattern)
				} else {
					fmt.Fprintf(&b, "    Source: %s (topics: [%s])\n", n.Name, strings.Join(n.Topics, ", "))
				}
				fmt.Fprintf(&b, "      --> %s\n", names(n.Children))
			case ProcessorNode:
				fmt.Fprintf(&b, "    Processor: %s (stores: [%s])\n", n.Name, strings.Join(n.Stores, ", "))
				fmt.Fprintf(&b, "      --> %s\n", names(n.Children))
				fmt.Fprintf(&b, "      <-- %s\n", names(n.Parents))
			case SinkNode:
				if n.Dynamic {
					fmt.Fprintf(&b, "    Sink: %s (topic: <chosen per record>)\n", n.Name)
				} else {
					fmt.Fprintf(&b, "    Sink: %s (topic: %s)\n", n.Name, n.Topics[0])
				}
				fmt.Fprintf(&b, "      <-- %s\n", names(n.Parents))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Mermaid formats the description as a Mermaid flowchart: one subgraph per
// sub-topology, topics as parallelograms, stores as cylinders.
func (d *Description) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	ids := map[string]string{}
	id := func(prefix, name string) string {
		key := prefix + "\x00" + name
		if v, ok := ids[key]; ok {
			return v
		}
		v := fmt.Sprintf("%s%d", prefix, len(ids))
		ids[key] = v
		return v
	}
	quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, "#quot;") + `"` }
	var edges []string
	for _, sub := range d.SubTopologies {
		fmt.Fprintf(&b, "  subgraph sub%d[%s]\n", sub.ID, quote(fmt.Sprintf("Sub-topology %d", sub.ID)))
		for _, n := range sub.Nodes {
			nid := id("n", n.Name)
			fmt.Fprintf(&b, "    %s[%s]\n", nid, quote(n.Name))
			for _, p := range n.Parents {
				edges = append(edges, fmt.Sprintf("  %s --> %s", id("n", p), nid))
			}
			switch n.Kind {
			case SourceNode:
				if n.Pattern != "" {
					edges = append(edges, fmt.Sprintf("  %s[/%s/] --> %s", id("t", "pattern:"+n.Pattern), quote(n.Pattern), nid))
				}
				for _, tp := range n.Topics {
					edges = append(edges, fmt.Sprintf("  %s[/%s/] --> %s", id("t", tp), quote(tp), nid))
				}
			case SinkNode:
				if n.Dynamic { // a topic node of its own: dynamic sinks share no topic
					edges = append(edges, fmt.Sprintf("  %s --> %s[/%s/]", nid, id("t", "\x00"+n.Name), quote("chosen per record")))
				} else {
					edges = append(edges, fmt.Sprintf("  %s --> %s[/%s/]", nid, id("t", n.Topics[0]), quote(n.Topics[0])))
				}
			}
			for _, s := range n.Stores {
				edges = append(edges, fmt.Sprintf("  %s --- %s[(%s)]", nid, id("s", s), quote(s)))
			}
		}
		b.WriteString("  end\n")
	}
	for _, e := range edges {
		b.WriteString(e + "\n")
	}
	return b.String()
}
