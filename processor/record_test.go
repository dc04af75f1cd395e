package processor_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
)

func TestRecordWith(t *testing.T) {
	ts := time.UnixMilli(42)
	h := processor.Headers{{Key: "a", Value: []byte("1")}}
	o := processor.Origin{Topic: "in", Partition: 2, Offset: 7}
	r := processor.Record[string, int]{Key: "k", Value: 1, Timestamp: ts, Headers: h, Origin: o}

	k := r.WithKey(int64(9))
	v := r.WithValue("one")
	kv := r.WithKeyValue(true, 2.5)
	later := r.WithTimestamp(ts.Add(time.Second))
	if k.Key != 9 || k.Value != 1 || v.Key != "k" || v.Value != "one" || kv.Key != true || kv.Value != 2.5 {
		t.Errorf("With* changed the wrong field: %+v %+v %+v", k, v, kv)
	}
	for _, got := range []struct {
		ts time.Time
		h  processor.Headers
		o  processor.Origin
	}{{k.Timestamp, k.Headers, k.Origin}, {v.Timestamp, v.Headers, v.Origin}, {kv.Timestamp, kv.Headers, kv.Origin}} {
		if !got.ts.Equal(ts) || len(got.h) != 1 || got.o != o {
			t.Errorf("With* lost the timestamp, headers or origin: %+v", got)
		}
	}
	if !later.Timestamp.Equal(ts.Add(time.Second)) || !r.Timestamp.Equal(ts) || later.Key != "k" {
		t.Errorf("WithTimestamp: got %+v, original %+v", later, r)
	}
	if !o.Known() || (processor.Origin{}).Known() {
		t.Error("Origin.Known is wrong")
	}
}

func TestHeaders(t *testing.T) {
	h := processor.Headers{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}
	if v, ok := h.Get("a"); !ok || string(v) != "3" {
		t.Errorf("Get(a) = %q, %v; want the last one, 3", v, ok)
	}
	if _, ok := h.Get("z"); ok {
		t.Error("Get(z) found a header")
	}
	orig := slices.Clone(h)
	with := h[:2].With("c", []byte("4")) // h[:2] has spare capacity: With must not write into h[2]
	if !slices.EqualFunc(h, orig, func(x, y processor.Header) bool { return x.Key == y.Key && string(x.Value) == string(y.Value) }) {
		t.Errorf("With modified the original headers: %v", h)
	}
	if len(with) != 3 || with[2].Key != "c" {
		t.Errorf("With = %v", with)
	}
	without := h.Without("a")
	if len(without) != 1 || without[0].Key != "b" || len(h) != 3 || h[0].Key != "a" {
		t.Errorf("Without(a) = %v, original now %v", without, h)
	}
}

func TestStrings(t *testing.T) {
	for got, want := range map[string]string{
		processor.TaskID{SubTopology: 2, Partition: 11}.String(): "2_11",
		processor.StreamTime.String():                            "stream-time",
		processor.WallClockTime.String():                         "wall-clock",
		processor.PunctuationType(7).String():                    "PunctuationType(7)",
		processor.SourceNode.String():                            "Source",
		processor.ProcessorNode.String():                         "Processor",
		processor.SinkNode.String():                              "Sink",
		processor.NodeKind(0).String():                           "NodeKind(0)",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
