package task_test

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
)

// mergeModel is the reference for the task's choice of the next record: the
// input partitions in the order the task first heard of them, each with its
// queued records.
type mergeModel struct {
	order  []task.TopicPartition
	queues map[task.TopicPartition][]processor.RawRecord
}

func (m *mergeModel) add(tp task.TopicPartition, recs []processor.RawRecord) {
	if _, ok := m.queues[tp]; !ok {
		m.order = append(m.order, tp)
	}
	m.queues[tp] = append(m.queues[tp], recs...)
}

// next returns the record the task must process next: the head with the
// lowest timestamp, ties to the partition added first.
func (m *mergeModel) next() (processor.RawRecord, bool) {
	var best *task.TopicPartition
	for i, tp := range m.order {
		q := m.queues[tp]
		if len(q) == 0 {
			continue
		}
		if best == nil || q[0].Timestamp.Before(m.queues[*best][0].Timestamp) {
			best = &m.order[i]
		}
	}
	if best == nil {
		return processor.RawRecord{}, false
	}
	r := m.queues[*best][0]
	m.queues[*best] = m.queues[*best][1:]
	return r, true
}

// TestMergeProperty adds random per-partition sequences (offsets increasing,
// timestamps arbitrary, interleaved with Process calls of random bounds) and
// checks that each record processed is the one the model picks at that
// moment, that every partition is processed in offset order, that every
// record is processed exactly once, and what Offsets and StreamTime report.
func TestMergeProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		partitions := rapid.SliceOfNDistinct(rapid.Custom(func(rt *rapid.T) task.TopicPartition {
			return task.TopicPartition{
				Topic:     rapid.SampledFrom([]string{"a", "b", "p-x"}).Draw(rt, "topic"),
				Partition: rapid.Int32Range(0, 2).Draw(rt, "partition"),
			}
		}), 1, 5, func(tp task.TopicPartition) task.TopicPartition { return tp }).Draw(rt, "partitions")

		model := &mergeModel{queues: map[task.TopicPartition][]processor.RawRecord{}}
		var violations []string
		processed := map[task.TopicPartition][]int64{}
		var maxTS time.Time
		p := &probe{process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
			want, ok := model.next()
			switch {
			case !ok:
				violations = append(violations, fmt.Sprintf("processed %v, the model has nothing queued", r.Origin))
			case want.Origin != r.Origin:
				violations = append(violations, fmt.Sprintf("processed %v (ts %d), want %v (ts %d)",
					r.Origin, r.Timestamp.UnixMilli(), want.Origin, want.Timestamp.UnixMilli()))
			}
			tp := task.TopicPartition{Topic: r.Origin.Topic, Partition: r.Origin.Partition}
			processed[tp] = append(processed[tp], r.Origin.Offset)
			if r.Timestamp.After(maxTS) {
				maxTS = r.Timestamp
			}
			if !ctx.CurrentStreamTime().Equal(maxTS) {
				violations = append(violations, fmt.Sprintf("stream time %d while processing %v, want %d",
					ctx.CurrentStreamTime().UnixMilli(), r.Origin, maxTS.UnixMilli()))
			}
			return nil
		}}
		tk, err := task.New(task.Config{ApplicationID: "app", Topology: probeTopology(p), Collector: &collector{}})
		if err != nil {
			rt.Fatal(err)
		}
		defer tk.Close()
		if err := tk.Init(); err != nil {
			rt.Fatal(err)
		}

		nextOffset := map[task.TopicPartition]int64{}
		added := map[task.TopicPartition][]int64{}
		total := 0
		steps := rapid.IntRange(1, 30).Draw(rt, "steps")
		for range steps {
			if rapid.Bool().Draw(rt, "add") {
				tp := rapid.SampledFrom(partitions).Draw(rt, "tp")
				n := rapid.IntRange(0, 6).Draw(rt, "n")
				recs := make([]processor.RawRecord, n)
				for i := range recs {
					nextOffset[tp] += rapid.Int64Range(1, 3).Draw(rt, "gap") // compacted topics have gaps
					off := nextOffset[tp]
					ts := rapid.Int64Range(0, 20).Draw(rt, "ts") // a small range makes ties common
					recs[i] = rec(tp, off, ts)
					added[tp] = append(added[tp], off)
				}
				if err := tk.Add(tp, recs...); err != nil {
					rt.Fatalf("Add(%v): %v", tp, err)
				}
				model.add(tp, recs)
				total += n
			} else {
				max := rapid.IntRange(0, 5).Draw(rt, "max")
				before := tk.Buffered()
				n, err := tk.Process(max)
				if err != nil {
					rt.Fatalf("Process(%d): %v", max, err)
				}
				if want := min(max, before); n != want {
					rt.Fatalf("Process(%d) with %d buffered = %d, want %d", max, before, n, want)
				}
			}
		}
		for tk.Buffered() > 0 {
			if _, err := tk.Process(3); err != nil {
				rt.Fatal(err)
			}
		}
		for _, v := range violations {
			rt.Error(v)
		}
		if _, ok := model.next(); ok {
			rt.Error("records left in the model after the task drained its queues")
		}

		done := 0
		wantOffsets := map[task.TopicPartition]int64{}
		for tp, offs := range added {
			got := processed[tp]
			done += len(got)
			if fmt.Sprint(got) != fmt.Sprint(offs) {
				rt.Errorf("%v: processed offsets %v, want %v (each once, in offset order)", tp, got, offs)
			}
			if len(offs) > 0 {
				wantOffsets[tp] = offs[len(offs)-1] + 1
			}
		}
		if done != total {
			rt.Errorf("processed %d records, added %d", done, total)
		}
		gotOffsets := map[task.TopicPartition]int64{}
		tk.Offsets(gotOffsets)
		if !maps.Equal(gotOffsets, wantOffsets) {
			rt.Errorf("Offsets() = %v, want %v", gotOffsets, wantOffsets)
		}
		if !tk.StreamTime().Equal(maxTS) {
			rt.Errorf("StreamTime() = %v, want %v", tk.StreamTime(), maxTS)
		}
	})
}
