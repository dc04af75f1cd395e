package processor_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state/memory"
)

// TestDescribe runs the scripts in testdata/describe. Commands:
//
//	build name=<topology>    builds a topology from the input, one node per line
//	                         (see buildTopology); prints "ok" or the validation errors
//	describe name=<topology> prints Describe().String()
//	mermaid name=<topology>  prints Describe().Mermaid()
//	subtopologies name=<topology> prints SubTopologies()
//
// Regenerate the expected outputs with
//
//	go test ./processor -run TestDescribe -rewrite
//
// and review the diff: the expected outputs are the specification.
func TestDescribe(t *testing.T) {
	datadriven.Walk(t, "testdata/describe", func(t *testing.T, path string) {
		topologies := map[string]*processor.Topology{}
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			var name string
			td.ScanArgs(t, "name", &name)
			if td.Cmd == "build" {
				topo, err := buildTopology(td.Input)
				if err != nil {
					td.Fatalf(t, "%v", err)
				}
				topologies[name] = topo
				if err := topo.Validate(); err != nil {
					return err.Error()
				}
				return "ok"
			}
			topo, ok := topologies[name]
			if !ok {
				td.Fatalf(t, "no topology %q built", name)
			}
			switch td.Cmd {
			case "describe", "mermaid":
				d, err := topo.Describe()
				if err != nil {
					return "error: " + err.Error()
				}
				if td.Cmd == "mermaid" {
					return d.Mermaid()
				}
				return d.String()
			case "subtopologies":
				subs, err := topo.SubTopologies()
				if err != nil {
					return "error: " + err.Error()
				}
				var b strings.Builder
				for _, s := range subs {
					var patterns []string
					for _, p := range s.Patterns {
						patterns = append(patterns, p.String())
					}
					fmt.Fprintf(&b, "%d: nodes=%v topics=%v patterns=%v sinks=%v stores=%v\n",
						s.ID, s.Nodes, s.Topics, patterns, s.SinkTopics, s.Stores)
				}
				return b.String()
			}
			td.Fatalf(t, "unknown command %q", td.Cmd)
			return ""
		})
	})
}

// buildTopology builds a topology of Record[string, string] nodes, one per line:
//
//	source <name> topics=<t1>[,<t2>...]
//	source <name> pattern=<regexp>
//	processor <name> [parents=<p1>,...]
//	sink <name> topic=<t> parents=<p1>,...
//	sink <name> dynamic parents=<p1>,...
//	store <name> [processors=<n1>,...]
//	internal <name> [partitions=<n>]
//
// Nodes and stores are added in the order of the lines.
func buildTopology(spec string) (*processor.Topology, error) {
	s := serde.String()
	topo := processor.NewTopology()
	for _, line := range strings.Split(spec, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("line %q: want <kind> <name> [args]", line)
		}
		kind, name := fields[0], fields[1]
		args := map[string]string{}
		for _, f := range fields[2:] {
			k, v, _ := strings.Cut(f, "=")
			args[k] = v
		}
		list := func(key string) []string {
			if args[key] == "" {
				return nil
			}
			return strings.Split(args[key], ",")
		}
		switch kind {
		case "source":
			if p, ok := args["pattern"]; ok {
				topo.AddSourcePattern(name, s, s, regexp.MustCompile(p))
			} else {
				topo.AddSource(name, s, s, list("topics")...)
			}
		case "processor":
			topo.AddProcessor(name, pass[string, string](), list("parents")...)
		case "sink":
			if _, ok := args["dynamic"]; ok {
				topo.AddSinkFunc(name, func(r processor.Record[string, string]) string { return r.Key }, s, s, list("parents")...)
			} else {
				topo.AddSink(name, args["topic"], s, s, list("parents")...)
			}
		case "store":
			topo.AddStore(memory.NewBuilder(name), list("processors")...)
		case "internal":
			n := 0
			if p, ok := args["partitions"]; ok {
				var err error
				if n, err = strconv.Atoi(p); err != nil {
					return nil, fmt.Errorf("line %q: %v", line, err)
				}
			}
			topo.AddInternalTopic(name, int32(n))
		default:
			return nil, fmt.Errorf("line %q: unknown kind %q", line, kind)
		}
	}
	return topo, nil
}
