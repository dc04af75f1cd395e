package processor_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
)

func TestSourceTimestamps(t *testing.T) {
	var seen []processor.Record[string, string]
	var streamTimes []time.Time
	topo := processor.NewTopology()
	topo.AddSource("src", serde.String(), serde.String(), "in")
	topo.SetSourceTimestamps("src", func(r processor.Record[string, string], wallClock func() time.Time) (time.Time, error) {
		switch r.Value {
		case "wall":
			return wallClock(), nil
		case "fail":
			return time.Time{}, errBoom
		case "zero":
			return time.Time{}, nil
		}
		return r.Timestamp.Add(time.Hour + time.Microsecond), nil
	})
	topo.AddProcessor("p", supplierOf(funcProc[string, string, string, string]{
		process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
			seen = append(seen, r)
			streamTimes = append(streamTimes, ctx.CurrentStreamTime())
			return nil
		},
	}), "src")
	env := newFakeEnv()
	env.systemTime = time.UnixMilli(50_000)
	inst := instantiate(t, topo, env)
	if err := feed(t, inst, "in", raw("in", 0, "a", "v"), raw("in", 1, "b", "wall")); err != nil {
		t.Fatal(err)
	}
	if want := time.UnixMilli(1000).Add(time.Hour); len(seen) != 2 || !seen[0].Timestamp.Equal(want) {
		t.Fatalf("seen %v, want the first at %v (truncated to milliseconds)", seen, want)
	}
	if !seen[1].Timestamp.Equal(env.systemTime) {
		t.Errorf("wall-clock record at %v, want %v", seen[1].Timestamp, env.systemTime)
	}
	// Stream time follows the extracted timestamps: the second record's
	// wall clock is earlier than the first's extracted time.
	if first := time.UnixMilli(1000).Add(time.Hour); !streamTimes[0].Equal(first) || !streamTimes[1].Equal(first) {
		t.Errorf("stream times %v, want %v twice", streamTimes, first)
	}
	for _, tc := range []struct {
		value string
		want  error
	}{{"fail", errBoom}, {"zero", processor.ErrNegativeTimestamp}} {
		err := feed(t, inst, "in", raw("in", 7, "c", tc.value))
		var te *processor.TimestampError
		if !errors.As(err, &te) || !errors.Is(err, tc.want) || te.Node != "src" || te.Origin.Offset != 7 {
			t.Errorf("%s: feed = %v, want a TimestampError of src at offset 7 wrapping %v", tc.value, err, tc.want)
		}
		if err == nil || !strings.Contains(err.Error(), `topic "in" partition 3 offset 7`) {
			t.Errorf("%s: error %q does not name the record", tc.value, err)
		}
	}
	if len(seen) != 2 {
		t.Errorf("%d records reached the processor, want 2: failed ones must not", len(seen))
	}
}

func TestSetSourceTimestampsChecked(t *testing.T) {
	ext := func(processor.Record[string, int64], func() time.Time) (time.Time, error) { return time.Time{}, nil }
	topo := processor.NewTopology()
	topo.AddSource("src", serde.String(), serde.String(), "in")
	topo.AddProcessor("p", pass[string, string](), "src")
	topo.SetSourceTimestamps("src", ext)
	topo.SetSourceTimestamps("p", ext)
	err := topo.Validate()
	if !errors.Is(err, processor.ErrTypeMismatch) || !errors.Is(err, processor.ErrUnknownNode) {
		t.Errorf("Validate = %v, want a type mismatch and an unknown source", err)
	}
}
