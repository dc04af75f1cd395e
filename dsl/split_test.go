package dsl_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

func TestSplit(t *testing.T) {
	big := func(_ string, v int64) bool { return v >= 100 }
	medium := func(_ string, v int64) bool { return v >= 10 }
	// 1000 satisfies both big and medium: the first branch wins.
	inputs := []processor.KeyValue[string, int64]{{Key: "a", Value: 5}, {Key: "b", Value: 50}, {Key: "c", Value: 500}, {Key: "d", Value: 1000}, {Key: "e", Value: 0}, {Key: "f", Value: 10}}

	tests := []struct {
		name      string
		split     func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64]
		wantNodes map[string]string // branch name -> node name
		want      map[string][]processor.KeyValue[string, int64]
	}{{
		name: "named split with a default branch",
		split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
			return s.Split(dsl.Named("route-")).Branch("big", big).Branch("medium", medium).DefaultBranch("small")
		},
		wantNodes: map[string]string{"big": "route-big", "medium": "route-medium", "small": "route-small"},
		want: map[string][]processor.KeyValue[string, int64]{
			"big":    {{Key: "c", Value: 500}, {Key: "d", Value: 1000}},
			"medium": {{Key: "b", Value: 50}, {Key: "f", Value: 10}},
			"small":  {{Key: "a", Value: 5}, {Key: "e", Value: 0}},
		},
	}, {
		name: "no default branch drops unmatched records",
		split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
			return s.Split(dsl.Named("route-")).Branch("big", big).Branch("medium", medium).NoDefaultBranch()
		},
		wantNodes: map[string]string{"big": "route-big", "medium": "route-medium"},
		want: map[string][]processor.KeyValue[string, int64]{
			"big":    {{Key: "c", Value: 500}, {Key: "d", Value: 1000}},
			"medium": {{Key: "b", Value: 50}, {Key: "f", Value: 10}},
		},
	}, {
		name: "branch order decides: medium first takes the big ones too",
		split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
			return s.Split(dsl.Named("r.")).Branch("medium", medium).Branch("big", big).DefaultBranch("small")
		},
		wantNodes: map[string]string{"big": "r.big", "medium": "r.medium", "small": "r.small"},
		want: map[string][]processor.KeyValue[string, int64]{
			"big":    {},
			"medium": {{Key: "b", Value: 50}, {Key: "c", Value: 500}, {Key: "d", Value: 1000}, {Key: "f", Value: 10}},
			"small":  {{Key: "a", Value: 5}, {Key: "e", Value: 0}},
		},
	}, {
		name: "only a default branch takes everything",
		split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
			return s.Split(dsl.Named("r-")).DefaultBranch("all")
		},
		wantNodes: map[string]string{"all": "r-all"},
		want:      map[string][]processor.KeyValue[string, int64]{"all": inputs},
	}, {
		name: "generated split name prefixes the branch nodes",
		split: func(s dsl.Stream[string, int64]) map[string]dsl.Stream[string, int64] {
			return s.Split().Branch("big", big).DefaultBranch("rest")
		},
		wantNodes: map[string]string{"big": "KSTREAM-BRANCH-0000000001big", "rest": "KSTREAM-BRANCH-0000000001rest"},
		want: map[string][]processor.KeyValue[string, int64]{
			"big":  {{Key: "c", Value: 500}, {Key: "d", Value: 1000}},
			"rest": {{Key: "a", Value: 5}, {Key: "b", Value: 50}, {Key: "e", Value: 0}, {Key: "f", Value: 10}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			branches := tt.split(b.Stream("amounts", serde.String(), serde.Int64()))
			gotNodes := map[string]string{}
			for name, s := range branches {
				gotNodes[name] = s.Name()
				s.To("out-" + name)
			}
			if diff := cmp.Diff(tt.wantNodes, gotNodes); diff != "" {
				t.Fatalf("branch nodes (-want +got):\n%s", diff)
			}
			d := run(t, b)
			in := d.InputTopic("amounts", serde.String(), serde.Int64(), streamtestAutoAdvance())
			must(t, in.PipeKeyValues(inputs...))
			for name, want := range tt.want {
				got := readKVs(t, d.OutputTopic("out-"+name, serde.String(), serde.Int64()))
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("branch %s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// A branch is a stream like any other: records keep their timestamp,
// headers and origin, and operators chain on it.
func TestSplitBranchCarriesRecords(t *testing.T) {
	var probed []seen[string, int64]
	b := dsl.NewBuilder()
	branches := b.Stream("amounts", serde.String(), serde.Int64()).
		Split(dsl.Named("s-")).
		Branch("neg", func(_ string, v int64) bool { return v < 0 }).
		NoDefaultBranch()
	branches["neg"].MapValues(func(v int64) int64 { return -v }).Process(probeOf(&probed)).To("abs")
	d := run(t, b)
	abs := d.OutputTopic("abs", serde.String(), serde.Int64())
	h := processor.Headers{{Key: "h", Value: []byte("v")}}
	must(t, d.InputTopic("amounts", serde.String(), serde.Int64()).PipeRecords(
		processor.Record[string, int64]{Key: "x", Value: 3, Timestamp: at(0)},
		processor.Record[string, int64]{Key: "y", Value: -7, Timestamp: at(time.Second), Headers: h},
	))
	want := processor.Record[string, int64]{Key: "y", Value: 7, Timestamp: at(time.Second), Headers: h,
		Origin: processor.Origin{Topic: "amounts", Offset: 1}}
	if len(probed) != 1 {
		t.Fatalf("probe saw %d records, want 1: %+v", len(probed), probed)
	}
	if diff := cmp.Diff(want, probed[0].Record); diff != "" {
		t.Errorf("record on the branch (-want +got):\n%s", diff)
	}
	want.Origin = processor.Origin{Topic: "abs"}
	if diff := cmp.Diff([]processor.Record[string, int64]{want}, readAll(t, abs)); diff != "" {
		t.Errorf("topic abs (-want +got):\n%s", diff)
	}
}

func TestSplitBuildErrors(t *testing.T) {
	p := func(string, int64) bool { return true }
	tests := []struct {
		name  string
		split func(s dsl.Stream[string, int64])
		want  []string // substrings of Build's error
	}{{
		name: "duplicate branch name",
		split: func(s dsl.Stream[string, int64]) {
			s.Split(dsl.Named("r-")).Branch("x", p).Branch("x", p).NoDefaultBranch()
		},
		want: []string{"dsl: Split", `r-: duplicate branch "x"`},
	}, {
		name:  "default branch with the name of a branch",
		split: func(s dsl.Stream[string, int64]) { s.Split(dsl.Named("r-")).Branch("x", p).DefaultBranch("x") },
		want:  []string{"dsl: Split", `r-: duplicate branch "x"`},
	}, {
		name:  "empty branch name",
		split: func(s dsl.Stream[string, int64]) { s.Split(dsl.Named("r-")).Branch("", p).NoDefaultBranch() },
		want:  []string{"dsl: Split", "r-: branch with an empty name"},
	}, {
		name:  "empty default branch name",
		split: func(s dsl.Stream[string, int64]) { s.Split(dsl.Named("r-")).Branch("x", p).DefaultBranch("") },
		want:  []string{"dsl: Split", "r-: branch with an empty name"},
	}, {
		name:  "nil predicate",
		split: func(s dsl.Stream[string, int64]) { s.Split(dsl.Named("r-")).Branch("x", nil).NoDefaultBranch() },
		want:  []string{"dsl: Split", `r-: branch "x": nil function`},
	}, {
		name: "branch after the split ended",
		split: func(s dsl.Stream[string, int64]) {
			sp := s.Split(dsl.Named("r-"))
			sp.NoDefaultBranch()
			sp.Branch("late", p)
		},
		want: []string{"dsl: Split", `r-: Branch "late" after the split was ended`},
	}, {
		name: "ended twice",
		split: func(s dsl.Stream[string, int64]) {
			sp := s.Split(dsl.Named("r-")).Branch("x", p)
			sp.NoDefaultBranch()
			sp.DefaultBranch("rest")
		},
		want: []string{"dsl: Split", "r-: ended twice"},
	}, {
		name: "branch node name taken by another operator",
		split: func(s dsl.Stream[string, int64]) {
			s.Filter(p, dsl.Named("r-x"))
			s.Split(dsl.Named("r-")).Branch("x", p).NoDefaultBranch()
		},
		want: []string{`"r-x"`, "duplicate node name"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			tt.split(b.Stream("in", serde.String(), serde.Int64()))
			topo, err := b.Build()
			if err == nil {
				t.Fatalf("Build succeeded with %v; want an error", topo)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The branch map holds the branches by their names only.
func TestSplitBranchNames(t *testing.T) {
	b := dsl.NewBuilder()
	p := func(string, int64) bool { return true }
	branches := b.Stream("in", serde.String(), serde.Int64()).
		Split(dsl.Named("r-")).Branch("one", p).Branch("two", p).DefaultBranch("three")
	var names []string
	for n := range branches {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"one", "three", "two"}; !slices.Equal(names, want) {
		t.Errorf("branches %v, want %v", names, want)
	}
}
