package processor_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state/memory"
)

// base adds a valid chain: source "src" (topic "in") -> processor "p" -> sink
// "out" (topic "out"). Cases add one problem to it.
func base(t *processor.Topology) {
	s := serde.String()
	t.AddSource("src", s, s, "in")
	t.AddProcessor("p", pass[string, string](), "src")
	t.AddSink("out", "out", s, s, "p")
}

// topologyErrors returns the *TopologyErrors joined in err.
func topologyErrors(t *testing.T, err error) []*processor.TopologyError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*processor.TopologyError
	for _, e := range errs {
		var te *processor.TopologyError
		if !errors.As(e, &te) {
			t.Fatalf("error %v (%T) is not a *processor.TopologyError", e, e)
		}
		out = append(out, te)
	}
	return out
}

func TestValidateErrors(t *testing.T) {
	s := serde.String()
	var nilString serde.Serde[string]
	tests := []struct {
		name  string
		build func(*processor.Topology)
		want  []processor.TopologyError
	}{
		{
			name:  "empty processor name",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("", pass[string, string](), "src") },
			want:  []processor.TopologyError{{Kind: processor.ProcessorNode, Err: processor.ErrEmptyName}},
		},
		{
			name:  "empty source name",
			build: func(t *processor.Topology) { base(t); t.AddSource("", s, s, "other") },
			want:  []processor.TopologyError{{Kind: processor.SourceNode, Err: processor.ErrEmptyName}},
		},
		{
			name:  "duplicate name",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("p", pass[string, string](), "src") },
			want:  []processor.TopologyError{{Node: "p", Kind: processor.ProcessorNode, Err: processor.ErrDuplicateName}},
		},
		{
			name:  "duplicate name of another kind",
			build: func(t *processor.Topology) { base(t); t.AddSink("p", "x", s, s, "src") },
			want:  []processor.TopologyError{{Node: "p", Kind: processor.SinkNode, Err: processor.ErrDuplicateName}},
		},
		{
			name:  "unknown parent",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("q", pass[string, string](), "src", "ghost") },
			want: []processor.TopologyError{
				{Node: "q", Kind: processor.ProcessorNode, Parent: "ghost", Err: processor.ErrUnknownParent}},
		},
		{
			name:  "processor without parent",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("q", pass[string, string]()) },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.ProcessorNode, Err: processor.ErrNoParent}},
		},
		{
			name:  "sink without parent",
			build: func(t *processor.Topology) { base(t); t.AddSink("q", "x", s, s) },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SinkNode, Err: processor.ErrNoParent}},
		},
		{
			name:  "sink as parent",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("q", pass[string, string](), "out") },
			want: []processor.TopologyError{
				{Node: "q", Kind: processor.ProcessorNode, Parent: "out", Err: processor.ErrSinkParent}},
		},
		{
			// Parents may be named before they are added, so A <- B <- A
			// can be built; the detail is the cycle along the edges.
			name: "cycle of two",
			build: func(t *processor.Topology) {
				base(t)
				t.AddProcessor("A", pass[string, string](), "B")
				t.AddProcessor("B", pass[string, string](), "A")
			},
			want: []processor.TopologyError{{Node: "B", Err: processor.ErrCycle, Detail: "B -> A -> B"}},
		},
		{
			name: "cycle below a source",
			build: func(t *processor.Topology) {
				base(t)
				t.AddProcessor("x", pass[string, string](), "p", "z")
				t.AddProcessor("y", pass[string, string](), "x")
				t.AddProcessor("z", pass[string, string](), "y")
			},
			want: []processor.TopologyError{{Node: "y", Err: processor.ErrCycle, Detail: "y -> z -> x -> y"}},
		},
		{
			name:  "self loop",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("q", pass[string, string](), "q") },
			want:  []processor.TopologyError{{Node: "q", Err: processor.ErrCycle, Detail: "q -> q"}},
		},
		{
			name: "type mismatch on an edge",
			build: func(t *processor.Topology) {
				base(t)
				t.AddSource("nums", s, serde.JSON[int](), "nums")
				t.AddProcessor("q", pass[string, string](), "nums")
			},
			want: []processor.TopologyError{{Node: "q", Kind: processor.ProcessorNode, Parent: "nums",
				Detail: "parent forwards processor.Record[string,int], node takes processor.Record[string,string]",
				Err:    processor.ErrTypeMismatch}},
		},
		{
			name: "type mismatch into a sink",
			build: func(t *processor.Topology) {
				base(t)
				t.AddSink("ints", "ints", s, serde.JSON[int](), "p")
			},
			want: []processor.TopologyError{{Node: "ints", Kind: processor.SinkNode, Parent: "p",
				Detail: "parent forwards processor.Record[string,string], node takes processor.Record[string,int]",
				Err:    processor.ErrTypeMismatch}},
		},
		{
			name:  "source without topic",
			build: func(t *processor.Topology) { base(t); t.AddSource("q", s, s) },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SourceNode, Err: processor.ErrNoTopic}},
		},
		{
			name:  "source with an empty topic",
			build: func(t *processor.Topology) { base(t); t.AddSource("q", s, s, "x", "") },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SourceNode, Err: processor.ErrNoTopic}},
		},
		{
			name:  "pattern source without pattern",
			build: func(t *processor.Topology) { base(t); t.AddSourcePattern("q", s, s, nil) },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SourceNode, Err: processor.ErrNoTopic}},
		},
		{
			name:  "sink without topic",
			build: func(t *processor.Topology) { base(t); t.AddSink("q", "", s, s, "p") },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SinkNode, Err: processor.ErrNoTopic}},
		},
		{
			name:  "dynamic sink without topic function",
			build: func(t *processor.Topology) { base(t); t.AddSinkFunc("q", nil, s, s, "p") },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SinkNode, Err: processor.ErrNoTopic}},
		},
		{
			name:  "internal topic without name",
			build: func(t *processor.Topology) { base(t); t.AddInternalTopic("", 0) },
			want:  []processor.TopologyError{{Err: processor.ErrNoTopic}},
		},
		{
			name:  "topic read by two sources",
			build: func(t *processor.Topology) { base(t); t.AddSource("src2", s, s, "other", "in") },
			want: []processor.TopologyError{{Node: "src2", Kind: processor.SourceNode, Topic: "in",
				Detail: "read by src", Err: processor.ErrDuplicateTopic}},
		},
		{
			name:  "internal topic declared twice",
			build: func(t *processor.Topology) { base(t); t.AddInternalTopic("rep", 0); t.AddInternalTopic("rep", 4) },
			want:  []processor.TopologyError{{Topic: "rep", Err: processor.ErrDuplicateTopic}},
		},
		{
			name:  "source with nil key serde",
			build: func(t *processor.Topology) { base(t); t.AddSource("q", nilString, s, "x") },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SourceNode, Err: processor.ErrNoSerde}},
		},
		{
			name:  "pattern source with nil value serde",
			build: func(t *processor.Topology) { base(t); t.AddSourcePattern("q", s, nilString, regexp.MustCompile("x.*")) },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SourceNode, Err: processor.ErrNoSerde}},
		},
		{
			name:  "sink with nil value serde",
			build: func(t *processor.Topology) { base(t); t.AddSink("q", "x", s, nilString, "p") },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.SinkNode, Err: processor.ErrNoSerde}},
		},
		{
			name: "dynamic sink with nil key serde",
			build: func(t *processor.Topology) {
				base(t)
				t.AddSinkFunc("q", func(processor.Record[string, string]) string { return "x" }, nilString, s, "p")
			},
			want: []processor.TopologyError{{Node: "q", Kind: processor.SinkNode, Err: processor.ErrNoSerde}},
		},
		{
			name:  "nil supplier",
			build: func(t *processor.Topology) { base(t); t.AddProcessor[string, string, string, string]("q", nil, "src") },
			want:  []processor.TopologyError{{Node: "q", Kind: processor.ProcessorNode, Err: processor.ErrNoSupplier}},
		},
		{
			name: "duplicate store",
			build: func(t *processor.Topology) {
				base(t)
				t.AddStore(memory.NewBuilder("st"), "p")
				t.AddStore(memory.NewBuilder("st"), "p")
			},
			want: []processor.TopologyError{{Store: "st", Err: processor.ErrDuplicateStore}},
		},
		{
			name:  "store without a name",
			build: func(t *processor.Topology) { base(t); t.AddStore(memory.NewBuilder(""), "p") },
			want:  []processor.TopologyError{{Err: processor.ErrNoStoreName}},
		},
		{
			name:  "nil store builder",
			build: func(t *processor.Topology) { base(t); t.AddStore(nil, "p") },
			want:  []processor.TopologyError{{Err: processor.ErrNoStoreName}},
		},
		{
			name:  "connect an unknown store",
			build: func(t *processor.Topology) { base(t); t.ConnectStore("ghost", "p") },
			want:  []processor.TopologyError{{Store: "ghost", Err: processor.ErrUnknownStore}},
		},
		{
			name:  "store connected to an unknown node",
			build: func(t *processor.Topology) { base(t); t.AddStore(memory.NewBuilder("st"), "p", "nobody") },
			want:  []processor.TopologyError{{Node: "nobody", Store: "st", Err: processor.ErrUnknownNode}},
		},
		{
			name:  "parent named twice",
			build: func(t *processor.Topology) { base(t); t.AddProcessor("q", pass[string, string](), "p", "p") },
			want: []processor.TopologyError{{Node: "q", Kind: processor.ProcessorNode, Parent: "p",
				Err: processor.ErrDuplicateParent}},
		},
		{
			name:  "store connected to a source",
			build: func(t *processor.Topology) { base(t); t.AddStore(memory.NewBuilder("st"), "src") },
			want: []processor.TopologyError{{Node: "src", Kind: processor.SourceNode, Store: "st",
				Err: processor.ErrStoreOnSource}},
		},
		{
			name:  "store connected to a sink",
			build: func(t *processor.Topology) { base(t); t.AddStore(memory.NewBuilder("st")); t.ConnectStore("st", "out") },
			want: []processor.TopologyError{{Node: "out", Kind: processor.SinkNode, Store: "st",
				Err: processor.ErrStoreOnSource}},
		},
		{
			name:  "sink writes to a source topic of its own sub-topology",
			build: func(t *processor.Topology) { base(t); t.AddSink("back", "in", s, s, "p") },
			want: []processor.TopologyError{{Node: "back", Kind: processor.SinkNode, Topic: "in",
				Err: processor.ErrSinkToOwnSource}},
		},
		{
			name: "sink writes to a topic its sub-topology reads by pattern",
			build: func(t *processor.Topology) {
				base(t)
				t.AddSourcePattern("events", s, s, regexp.MustCompile(`events-.*`))
				t.AddProcessor("retry", pass[string, string](), "events")
				t.AddSink("retry-out", "events-retry", s, s, "retry")
			},
			want: []processor.TopologyError{{Node: "retry-out", Kind: processor.SinkNode, Topic: "events-retry",
				Err: processor.ErrSinkToOwnSource}},
		},
		{
			// A store shared with the chain reading "in" puts the sink's
			// chain in the same sub-topology, so its output would be read
			// back by the task that wrote it.
			name: "sink feeds its own sub-topology through a shared store",
			build: func(t *processor.Topology) {
				base(t)
				t.AddSource("src2", s, s, "in2")
				t.AddProcessor("q", pass[string, string](), "src2")
				t.AddSink("to-in", "in", s, s, "q")
				t.AddStore(memory.NewBuilder("st"), "p", "q")
			},
			want: []processor.TopologyError{{Node: "to-in", Kind: processor.SinkNode, Topic: "in",
				Err: processor.ErrSinkToOwnSource}},
		},
		{
			name:  "empty topology",
			build: func(*processor.Topology) {},
			want:  []processor.TopologyError{{Err: processor.ErrEmptyTopology}},
		},
		{
			// Without a source every other node lacks a parent or sits on
			// a cycle; both problems are reported.
			name: "no source",
			build: func(t *processor.Topology) {
				t.AddProcessor("a", pass[string, string](), "b")
				t.AddProcessor("b", pass[string, string](), "a")
			},
			want: []processor.TopologyError{
				{Err: processor.ErrEmptyTopology},
				{Node: "b", Err: processor.ErrCycle, Detail: "b -> a -> b"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topo := processor.NewTopology()
			tc.build(topo)
			err := topo.Validate()
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w.Err) {
					t.Errorf("errors.Is(err, %v) = false; err:\n%v", w.Err, err)
				}
			}
			got := topologyErrors(t, err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if *got[i] != w {
					t.Errorf("error %d = %#v\nwant        %#v", i, *got[i], w)
				}
				if msg := got[i].Error(); !strings.HasPrefix(msg, "processor: topology: ") || !strings.Contains(msg, w.Err.Error()) {
					t.Errorf("error %d message %q does not start with the package and name the problem", i, msg)
				}
			}
			// Every entry point that needs a valid topology reports the same.
			if _, derr := topo.Describe(); derr == nil || derr.Error() != err.Error() {
				t.Errorf("Describe() error = %v, want %v", derr, err)
			}
			if _, serr := topo.SubTopologies(); serr == nil || serr.Error() != err.Error() {
				t.Errorf("SubTopologies() error = %v, want %v", serr, err)
			}
			if _, ierr := topo.Instantiate(0, newFakeEnv()); ierr == nil || ierr.Error() != err.Error() {
				t.Errorf("Instantiate() error = %v, want %v", ierr, err)
			}
			// Validating again reports the same problems, not twice as many.
			if again := topo.Validate(); again == nil || again.Error() != err.Error() {
				t.Errorf("second Validate() = %v, want %v", again, err)
			}
		})
	}
}

func TestValidateErrorMessages(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	base(topo)
	topo.AddProcessor("q", pass[string, string](), "ghost")
	topo.AddSource("src2", s, s, "in")
	topo.AddStore(memory.NewBuilder("st"), "src")
	want := []string{
		`processor: topology: processor "q": parent "ghost": unknown parent`,
		`processor: topology: source "src2": topic "in": topic already registered (read by src)`,
		`processor: topology: source "src": store "st": stores connect to processors only`,
	}
	err := topo.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestValidateReportsEveryProblem checks that one Validate call reports the
// problems recorded by the Add methods and those found on the whole graph,
// joined.
func TestValidateReportsEveryProblem(t *testing.T) {
	s := serde.String()
	var nilString serde.Serde[string]
	topo := processor.NewTopology()
	base(topo)
	topo.AddProcessor("", pass[string, string](), "src")                       // empty name
	topo.AddSource("bad-serde", nilString, s, "x")                             // nil serde
	topo.AddProcessor("orphan", pass[string, string](), "ghost")               // unknown parent
	topo.AddSource("nums", s, serde.JSON[int](), "nums")                       //
	topo.AddProcessor("mismatch", pass[string, string](), "nums")              // type mismatch
	topo.AddStore(memory.NewBuilder("st"), "p")                                //
	topo.AddStore(memory.NewBuilder("st"), "p")                                // duplicate store
	topo.AddSource("again", s, s, "in")                                        // duplicate topic
	topo.AddProcessor("loop-a", pass[string, string](), "loop-b")              //
	topo.AddProcessor("loop-b", pass[string, string](), "loop-a")              // cycle
	topo.AddProcessor[string, string, string, string]("no-supplier", nil, "p") // nil supplier

	err := topo.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	sentinels := []error{processor.ErrEmptyName, processor.ErrNoSerde, processor.ErrUnknownParent,
		processor.ErrTypeMismatch, processor.ErrDuplicateStore, processor.ErrDuplicateTopic,
		processor.ErrCycle, processor.ErrNoSupplier}
	for _, want := range sentinels {
		if !errors.Is(err, want) {
			t.Errorf("errors.Is(err, %v) = false", want)
		}
	}
	got := topologyErrors(t, err)
	if len(got) != len(sentinels) {
		t.Errorf("got %d problems, want %d:\n%v", len(got), len(sentinels), err)
	}
	for _, e := range got {
		if !slices.Contains(sentinels, e.Err) {
			t.Errorf("unexpected problem %v", e)
		}
	}
}

func TestValidateSinkToTopicOfAnotherSubTopology(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	base(topo)
	topo.AddSink("to-rep", "rep", s, s, "p")
	topo.AddSource("from-rep", s, s, "rep")
	topo.AddProcessor("q", pass[string, string](), "from-rep")
	topo.AddSink("back-to-in", "in", s, s, "q") // "in" is read by sub-topology 0, not by this one
	topo.AddInternalTopic("rep", 0)
	if err := topo.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil: a sink may write to a topic another sub-topology reads", err)
	}
	subs, err := topo.SubTopologies()
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 {
		t.Fatalf("got %d sub-topologies, want 2", len(subs))
	}
}

func TestValidateAfterAdd(t *testing.T) {
	topo := processor.NewTopology()
	base(topo)
	if err := topo.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	// Adding to a validated topology unfreezes it: the next Validate sees
	// the new node.
	topo.AddProcessor("q", pass[string, string](), "ghost")
	err := topo.Validate()
	if !errors.Is(err, processor.ErrUnknownParent) {
		t.Fatalf("Validate() after adding a node with an unknown parent = %v, want ErrUnknownParent", err)
	}
	topo.AddProcessor("ghost", pass[string, string](), "p")
	if err := topo.Validate(); err != nil {
		t.Fatalf("Validate() once the parent is added = %v, want nil", err)
	}
	d, err := topo.Describe()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, n := range d.SubTopologies[0].Nodes {
		nodes = append(nodes, n.Name)
	}
	if want := []string{"src", "p", "out", "ghost", "q"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes = %v, want %v", nodes, want)
	}
}

func TestTopologyErrorFormat(t *testing.T) {
	cause := fmt.Errorf("wrapped: %w", processor.ErrCycle)
	e := &processor.TopologyError{Node: "n", Kind: processor.ProcessorNode, Parent: "p", Store: "s", Topic: "t", Detail: "d", Err: cause}
	want := `processor: topology: processor "n": parent "p": store "s": topic "t": wrapped: cycle (d)`
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, processor.ErrCycle) {
		t.Error("errors.Is does not see through TopologyError.Unwrap")
	}
}
