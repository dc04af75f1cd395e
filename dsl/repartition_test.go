package dsl_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/internal/murmur2"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// orders are keyed by order id; the value is the customer, the key
// SelectKey moves them to.
func orders(n int) []processor.KeyValue[string, string] {
	out := make([]processor.KeyValue[string, string], n)
	for i := range out {
		out[i] = processor.Pair(fmt.Sprintf("order-%d", i), fmt.Sprintf("customer-%d", i*7%13))
	}
	return out
}

// keysByPartition groups keys by the partition Kafka's default partitioner
// gives them among n.
func keysByPartition(keys []string, n int32) map[int32][]string {
	out := map[int32][]string{}
	for _, k := range keys {
		p := murmur2.Partition([]byte(k), n)
		if !slices.Contains(out[p], k) {
			out[p] = append(out[p], k)
		}
	}
	for p := range out {
		slices.Sort(out[p])
	}
	return out
}

// SelectKey then Repartition: each record reaches the task of its new key's
// partition, whichever task read it.
func TestRepartitionRoutesByNewKey(t *testing.T) {
	tests := []struct {
		name      string
		opts      []dsl.Option
		drvOpts   []streamtest.Option
		wantParts int32 // of the repartition topic and the downstream tasks
	}{
		{"partitions of the input", nil, nil, 4},
		{"NumPartitions", []dsl.Option{dsl.NumPartitions(3)}, nil, 3},
		{"TopicPartitions of the driver", nil, []streamtest.Option{streamtest.TopicPartitions("shop-by-customer-repartition", 2)}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after []seen[string, string]
			b := dsl.NewBuilder()
			b.Stream("orders", serde.String(), serde.String()).
				Process(probeOf(&before)).
				SelectKey(func(_, customer string) string { return customer }).
				Repartition(append([]dsl.Option{dsl.Named("by-customer")}, tt.opts...)...).
				Process(probeOf(&after)).
				To("by-customer")
			d := run(t, b, append([]streamtest.Option{streamtest.Partitions(4), streamtest.ApplicationID("shop")}, tt.drvOpts...)...)
			rp := d.OutputTopic("shop-by-customer-repartition", serde.String(), serde.String())
			out := d.OutputTopic("by-customer", serde.String(), serde.String())

			in := orders(40)
			must(t, d.InputTopic("orders", serde.String(), serde.String()).PipeKeyValues(in...))

			// The downstream sub-topology has one task per partition of the
			// repartition topic.
			var downstream []int32
			for _, id := range d.Tasks() {
				if id.SubTopology == 1 {
					downstream = append(downstream, id.Partition)
				}
			}
			if want := seq(tt.wantParts); !slices.Equal(downstream, want) {
				t.Errorf("tasks of sub-topology 1: partitions %v, want %v", downstream, want)
			}

			var newKeys []string
			for _, kv := range in {
				newKeys = append(newKeys, kv.Value)
			}
			want := keysByPartition(newKeys, tt.wantParts)
			if len(want) != int(tt.wantParts) {
				t.Fatalf("test data: new keys fill %d of %d partitions; want them all", len(want), tt.wantParts)
			}

			// Before the repartition, records are on the partition of their
			// old key: not the new key's, for some of them at least.
			moved := 0
			for _, s := range before {
				if s.Task.Partition != murmur2.Partition([]byte(s.Record.Key), 4) {
					t.Errorf("record %q read by task %v, want partition %d", s.Record.Key, s.Task, murmur2.Partition([]byte(s.Record.Key), 4))
				}
				if s.Task.Partition != murmur2.Partition([]byte(s.Record.Value), tt.wantParts) {
					moved++
				}
			}
			if moved == 0 {
				t.Fatalf("test data: no record changes partition with its new key")
			}

			// After it, each task sees exactly the keys of its partition, read
			// from the repartition topic.
			got := map[int32][]string{}
			for _, s := range after {
				if s.Task.SubTopology != 1 {
					t.Errorf("record %q processed by task %v, want sub-topology 1", s.Record.Key, s.Task)
				}
				wantMD := processor.RecordMetadata{Topic: "shop-by-customer-repartition", Partition: s.Task.Partition, Offset: s.Meta.Offset}
				if !s.HasMD || s.Meta != wantMD || s.Record.Origin != s.Meta {
					t.Errorf("record %q in task %v: metadata %+v (known %v), origin %+v; want %+v",
						s.Record.Key, s.Task, s.Meta, s.HasMD, s.Record.Origin, wantMD)
				}
				if !slices.Contains(got[s.Task.Partition], s.Record.Key) {
					got[s.Task.Partition] = append(got[s.Task.Partition], s.Record.Key)
				}
			}
			for p := range got {
				slices.Sort(got[p])
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("keys per downstream partition (-want +got):\n%s", diff)
			}
			if len(after) != len(in) {
				t.Errorf("downstream saw %d records, want %d", len(after), len(in))
			}

			// The repartition topic is readable like any output topic, each
			// record on its key's partition.
			rpRecs := readAll(t, rp)
			if len(rpRecs) != len(in) {
				t.Errorf("repartition topic holds %d records, want %d", len(rpRecs), len(in))
			}
			for _, r := range rpRecs {
				if r.Origin.Topic != "shop-by-customer-repartition" || r.Origin.Partition != murmur2.Partition([]byte(r.Key), tt.wantParts) {
					t.Errorf("repartition record %q at %+v, want partition %d", r.Key, r.Origin, murmur2.Partition([]byte(r.Key), tt.wantParts))
				}
			}
			if got := len(readAll(t, out)); got != len(in) {
				t.Errorf("topic by-customer: %d records, want %d", got, len(in))
			}
		})
	}
}

func seq(n int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// Records of one key stay in order through a repartition.
func TestRepartitionKeepsOrderPerKey(t *testing.T) {
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.Int64()).
		SelectKey(func(_ string, v int64) string { return fmt.Sprint(v % 3) }).
		Repartition(dsl.Named("mod3")).
		To("out")
	d := run(t, b, streamtest.Partitions(4))
	out := d.OutputTopic("out", serde.String(), serde.Int64())
	in := d.InputTopic("in", serde.String(), serde.Int64(), streamtestAutoAdvance())
	for i := range int64(30) {
		must(t, in.Pipe(fmt.Sprint("k", i), i))
	}
	last := map[string]int64{}
	n := 0
	for _, kv := range readKVs(t, out) {
		n++
		if prev, ok := last[kv.Key]; ok && kv.Value <= prev {
			t.Errorf("key %s: %d after %d", kv.Key, kv.Value, prev)
		}
		last[kv.Key] = kv.Value
	}
	if n != 30 {
		t.Errorf("got %d records, want 30", n)
	}
}

// The repartition topic is named "<application id>-<name>-repartition", with
// a generated name when Named is absent.
func TestRepartitionTopicName(t *testing.T) {
	for _, tt := range []struct {
		name      string
		opts      []dsl.Option
		wantTopic string
	}{
		{"named", []dsl.Option{dsl.Named("rekeyed")}, "app-rekeyed-repartition"},
		{"generated", nil, "app-KSTREAM-REPARTITION-0000000002-repartition"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder()
			b.Stream("in", serde.String(), serde.String()).
				SelectKey(func(_, v string) string { return v }).
				Repartition(tt.opts...).
				To("out")
			topo := build(t, b)
			var internal []string
			for _, it := range topo.InternalTopics() {
				internal = append(internal, topo.TopicName("app", it.Name))
			}
			if diff := cmp.Diff([]string{tt.wantTopic}, internal); diff != "" {
				t.Errorf("internal topics (-want +got):\n%s", diff)
			}
			d, err := streamtest.New(topo, streamtest.ApplicationID("app"))
			must(t, err)
			defer d.Close()
			must(t, d.InputTopic("in", serde.String(), serde.String()).Pipe("k", "v"))
			got := readKVs(t, d.OutputTopic(tt.wantTopic, serde.String(), serde.String()))
			if diff := cmp.Diff([]processor.KeyValue[string, string]{{Key: "v", Value: "v"}}, got); diff != "" {
				t.Errorf("topic %s (-want +got):\n%s", tt.wantTopic, diff)
			}
		})
	}
}

func TestRepartitionBuildErrors(t *testing.T) {
	tests := []struct {
		name  string
		bopts []dsl.BuilderOption
		opts  []dsl.Option
		want  string // substring of Build's error; "" for no error
	}{
		{"unnamed under RequireNames", []dsl.BuilderOption{dsl.RequireNames()}, nil,
			"dsl: Repartition: of KSTREAM-KEY-SELECT-0000000001: unnamed, and the builder requires names"},
		{"named under RequireNames", []dsl.BuilderOption{dsl.RequireNames()}, []dsl.Option{dsl.Named("r")}, ""},
		{"unnamed without RequireNames", nil, nil, ""},
		{"NumPartitions(0)", nil, []dsl.Option{dsl.NumPartitions(0)}, "dsl: Repartition: NumPartitions(0): want 1 to 2147483647"},
		{"NumPartitions(-2)", nil, []dsl.Option{dsl.NumPartitions(-2)}, "dsl: Repartition: NumPartitions(-2): want 1 to 2147483647"},
		{"WithStores", nil, []dsl.Option{dsl.WithStores("s")}, "dsl: Repartition: option WithStores does not apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dsl.NewBuilder(tt.bopts...)
			b.Stream("in", serde.String(), serde.String()).
				SelectKey(func(_, v string) string { return v }).
				Repartition(tt.opts...).
				To("out")
			_, err := b.Build()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Build: %v", err)
			case tt.want != "" && !contains(err, tt.want):
				t.Errorf("Build = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// A repartition needs serdes: after a type change, WithSerdes provides them.
func TestRepartitionNeedsSerdes(t *testing.T) {
	b := dsl.NewBuilder()
	lengths := b.Stream("in", serde.String(), serde.String()).MapValues(func(v string) int64 { return int64(len(v)) })
	lengths.Repartition(dsl.Named("r1")).To("out1")
	_, err := b.Build()
	if want := "dsl: Repartition: no value serde for KSTREAM-MAPVALUES-0000000001; set one with WithSerdes"; !contains(err, want) {
		t.Fatalf("Build = %v; want an error containing %q", err, want)
	}

	b = dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).
		MapValues(func(v string) int64 { return int64(len(v)) }).
		WithSerdes(serde.String(), serde.Int64()).
		Repartition(dsl.Named("r1")).
		To("out")
	d := run(t, b)
	must(t, d.InputTopic("in", serde.String(), serde.String()).Pipe("k", "four"))
	if diff := cmp.Diff([]processor.KeyValue[string, int64]{{Key: "k", Value: 4}}, readKVs(t, d.OutputTopic("out", serde.String(), serde.Int64()))); diff != "" {
		t.Errorf("out (-want +got):\n%s", diff)
	}
}

// A partition count that does not fit an int32 is an error, not truncated:
// 1<<32 + 2 would otherwise become 2.
func TestNumPartitionsOverInt32(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("int is 32 bits")
	}
	wide := int64(1<<32 + 2)
	n := int(wide)
	b := dsl.NewBuilder()
	b.Stream("in", serde.String(), serde.String()).Repartition(dsl.NumPartitions(n)).To("out")
	if _, err := b.Build(); !contains(err, "dsl: Repartition: NumPartitions(4294967298): want 1 to 2147483647") {
		t.Errorf("Build = %v; want an error about NumPartitions(4294967298)", err)
	}
}
