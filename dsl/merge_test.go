package dsl_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

func mergeTopology(t *testing.T) (*streamtest.Driver, *streamtest.InputTopic[string, string], *streamtest.InputTopic[string, string], *streamtest.OutputTopic[string, string]) {
	t.Helper()
	b := dsl.NewBuilder()
	left := b.Stream("left", serde.String(), serde.String())
	right := b.Stream("right", serde.String(), serde.String())
	left.Merge(right).To("merged")
	d := run(t, b)
	return d,
		d.InputTopic("left", serde.String(), serde.String()),
		d.InputTopic("right", serde.String(), serde.String()),
		d.OutputTopic("merged", serde.String(), serde.String())
}

// Within a task, Merge hands on the records of its inputs in timestamp
// order when they are all available: piped in one Batch, the left topic's
// records (all of them first) and the right topic's interleave by timestamp.
func TestMergeOrdersByTimestampInBatch(t *testing.T) {
	d, left, right, merged := mergeTopology(t)
	must(t, d.Batch(func() {
		must(t, left.PipeAt("l", "l1", at(1*time.Second)))
		must(t, left.PipeAt("l", "l3", at(3*time.Second)))
		must(t, left.PipeAt("l", "l6", at(6*time.Second)))
		must(t, right.PipeAt("r", "r2", at(2*time.Second)))
		must(t, right.PipeAt("r", "r4", at(4*time.Second)))
		must(t, right.PipeAt("r", "r5", at(5*time.Second)))
		if !merged.IsEmpty() {
			t.Errorf("records processed inside Batch before it returned")
		}
	}))
	recs := readAll(t, merged)
	var got []string
	for i, r := range recs {
		got = append(got, r.Value)
		if i > 0 && r.Timestamp.Before(recs[i-1].Timestamp) {
			t.Errorf("record %d (%s at %v) is before the one ahead of it (%v)", i, r.Value, r.Timestamp, recs[i-1].Timestamp)
		}
	}
	if diff := cmp.Diff([]string{"l1", "r2", "l3", "r4", "r5", "l6"}, got); diff != "" {
		t.Errorf("merged values (-want +got):\n%s", diff)
	}
}

// Without Batch each pipe is processed before it returns, so the merged
// output is in pipe order, whatever the timestamps.
func TestMergeWithoutBatchIsPipeOrder(t *testing.T) {
	_, left, right, merged := mergeTopology(t)
	must(t, left.PipeAt("l", "l1", at(1*time.Second)))
	must(t, left.PipeAt("l", "l3", at(3*time.Second)))
	must(t, right.PipeAt("r", "r2", at(2*time.Second)))
	must(t, right.PipeAt("r", "r4", at(4*time.Second)))
	got := readKVs(t, merged)
	want := []processor.KeyValue[string, string]{{Key: "l", Value: "l1"}, {Key: "l", Value: "l3"}, {Key: "r", Value: "r2"}, {Key: "r", Value: "r4"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
}

// Records of the two inputs keep their own origin through the merge.
func TestMergeKeepsOrigin(t *testing.T) {
	var probed []seen[string, string]
	b := dsl.NewBuilder()
	b.Stream("left", serde.String(), serde.String()).
		Merge(b.Stream("right", serde.String(), serde.String())).
		Process(probeOf(&probed))
	d := run(t, b)
	must(t, d.Batch(func() {
		must(t, d.InputTopic("left", serde.String(), serde.String()).PipeAt("l", "l", at(2*time.Second)))
		must(t, d.InputTopic("right", serde.String(), serde.String()).PipeAt("r", "r", at(time.Second)))
	}))
	var got []processor.Origin
	for _, p := range probed {
		got = append(got, p.Record.Origin)
	}
	want := []processor.Origin{{Topic: "right"}, {Topic: "left"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("origins (-want +got):\n%s", diff)
	}
}

// Merging streams of two builders is a Build error.
func TestMergeOtherBuilder(t *testing.T) {
	b := dsl.NewBuilder()
	other := dsl.NewBuilder().Stream("b", serde.String(), serde.String())
	b.Stream("a", serde.String(), serde.String()).Merge(other).To("out")
	if _, err := b.Build(); err == nil || !contains(err, "dsl: Merge: streams of different builders") {
		t.Errorf("Build = %v; want a Merge error about different builders", err)
	}
}
