package dsl

// The data-file harness: every file under testdata/windows and
// testdata/suppress is a cockroachdb/datadriven script that picks a
// topology from ddTopologies, pipes records through it and states the
// exact records it writes. Adding a case is adding a file; adding a kind of
// topology is adding an entry to ddTopologies.
//
// Directives:
//
//	topology name=<entry> [arg=value ...]
//	----
//
// builds the entry's topology, with its arguments, on every configuration
// (memory and pebble stores, topics of 1 and of 4 partitions) and starts a
// driver on each. Its output is empty, or the build error.
//
//	input [partitions=1|4]
//	<topic> <key> <value> @<ms>
//	...
//	----
//	<topic> <key> <value> @<ms>
//	...
//
// pipes the records, one by one in order ("<tombstone>" as a value pipes a
// null value), into the drivers of the given partition count (both by
// default), then prints what each output topic of the entry received, topic
// by topic in the entry's order, each topic's records in the order they
// were written; a processing error prints as "error: <message>". The
// expected block is the output of the first configuration run; the others
// must agree: exactly, at the same partition count, and key by key (the
// same records of each key, in the same order) across partition counts,
// since keys on different partitions interleave differently. Where stream
// time differs between partition counts (each task has its own), a case
// gives the input twice, once with partitions=1 and once with
// partitions=4, each with its expected block.
//
// Run with -rewrite to regenerate the expected blocks.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/streamtest"
)

// ddOutput is an output topic of a data-file topology and how its records
// print: the key and value formatting hook of that topology.
type ddOutput struct {
	topic string
	read  func(d *streamtest.Driver) ([]ddRecord, error)
}

// ddRecord is an output record as a data file prints it.
type ddRecord struct{ topic, key, value string }

func (r ddRecord) String() string { return r.topic + " " + r.key + " " + r.value }

// ddTopology builds a kind of topology on b from a data file's arguments
// and returns its output topics. Every input topic has string keys and
// values.
type ddTopology func(b *Builder, args *ddArgs) ([]ddOutput, error)

// ddTopologies are the topologies data files name.
var ddTopologies = map[string]ddTopology{}

// registerDD adds a topology kind; each file of topologies registers its own.
func registerDD(name string, t ddTopology) {
	if _, dup := ddTopologies[name]; dup {
		panic("data-file topology " + name + " registered twice")
	}
	ddTopologies[name] = t
}

// ddOut returns an output read with the given serdes, each record printed
// by the formatting hooks as "<topic> <key> <value> @<ms>".
func ddOut[K, V any](topic string, keys serde.Serde[K], values serde.Serde[V], key func(K) string, value func(V) string) ddOutput {
	return ddOutput{topic: topic, read: func(d *streamtest.Driver) ([]ddRecord, error) {
		recs, err := d.OutputTopic(topic, keys, values).ReadRecords()
		out := make([]ddRecord, 0, len(recs))
		for _, r := range recs {
			k, v := "<null>", "<tombstone>"
			if !r.NullKey {
				k = key(r.Key)
			}
			if !r.NullValue {
				v = value(r.Value)
			}
			out = append(out, ddRecord{topic, k, v + " @" + strconv.FormatInt(r.Timestamp.UnixMilli(), 10)})
		}
		return out, err
	}}
}

// ddArgs are a topology directive's arguments; the harness fails the
// directive for any the topology did not read.
type ddArgs struct {
	vals map[string]string
	used map[string]bool
	err  error
}

func (a *ddArgs) str(key, def string) string {
	a.used[key] = true
	if v, ok := a.vals[key]; ok {
		return v
	}
	return def
}

func (a *ddArgs) has(key string) bool { _, ok := a.vals[key]; return ok }

func (a *ddArgs) dur(key string, def time.Duration) time.Duration {
	s := a.str(key, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil && a.err == nil {
		a.err = fmt.Errorf("%s=%s: %w", key, s, err)
	}
	return d
}

func (a *ddArgs) int(key string, def int64) int64 {
	s := a.str(key, "")
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && a.err == nil {
		a.err = fmt.Errorf("%s=%s: %w", key, s, err)
	}
	return n
}

// ddConfig is one configuration every case runs on.
type ddConfig struct {
	name       string
	partitions int
	opts       []streamtest.Option
}

var ddConfigs = []ddConfig{
	{"memory/1", 1, []streamtest.Option{streamtest.Partitions(1)}},
	{"pebble/1", 1, []streamtest.Option{streamtest.Pebble(), streamtest.Partitions(1)}},
	{"memory/4", 4, []streamtest.Option{streamtest.Partitions(4)}},
	{"pebble/4", 4, []streamtest.Option{streamtest.Pebble(), streamtest.Partitions(4)}},
}

func TestDataDriven(t *testing.T) {
	for _, dir := range []string{"testdata/windows", "testdata/suppress"} {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.IsDir() || strings.HasSuffix(f.Name(), ".md") {
				continue
			}
			path := filepath.Join(dir, f.Name())
			t.Run(path, func(t *testing.T) { runDDFile(t, path) })
		}
	}
}

// ddRun is a configuration's driver and its topology's outputs.
type ddRun struct {
	cfg     ddConfig
	d       *streamtest.Driver
	outputs []ddOutput
}

func runDDFile(t *testing.T, path string) {
	var runs []*ddRun
	closeAll := func() {
		for _, r := range runs {
			if err := r.d.Close(); err != nil {
				t.Errorf("%s: close: %v", r.cfg.name, err)
			}
		}
		runs = nil
	}
	defer closeAll()
	datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
		switch td.Cmd {
		case "topology":
			closeAll()
			var err error
			runs, err = ddStart(td)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return ""
		case "input":
			if runs == nil {
				t.Fatalf("%s: input before topology", td.Pos)
			}
			return ddInput(t, td, runs)
		}
		t.Fatalf("%s: unknown directive %q", td.Pos, td.Cmd)
		return ""
	})
}

func ddStart(td *datadriven.TestData) ([]*ddRun, error) {
	args := &ddArgs{vals: map[string]string{}, used: map[string]bool{}}
	for _, a := range td.CmdArgs {
		args.vals[a.Key] = strings.Join(a.Vals, ",")
	}
	name := args.str("name", "")
	build, ok := ddTopologies[name]
	if !ok {
		return nil, fmt.Errorf("no topology %q", name)
	}
	var runs []*ddRun
	for _, cfg := range ddConfigs {
		b := NewBuilder()
		outputs, err := build(b, args)
		if err == nil {
			err = args.err
		}
		for k := range args.vals {
			if !args.used[k] && err == nil {
				err = fmt.Errorf("topology %s takes no argument %q", name, k)
			}
		}
		var topo *processor.Topology
		if err == nil {
			topo, err = b.Build()
		}
		var d *streamtest.Driver
		if err == nil {
			d, err = streamtest.New(topo, cfg.opts...)
		}
		if err != nil {
			for _, r := range runs {
				r.d.Close()
			}
			return nil, err
		}
		runs = append(runs, &ddRun{cfg: cfg, d: d, outputs: outputs})
	}
	return runs, nil
}

func ddInput(t *testing.T, td *datadriven.TestData, runs []*ddRun) string {
	parts := 0
	if td.HasArg("partitions") {
		td.ScanArgs(t, "partitions", &parts)
	}
	type in struct {
		topic, key, value string
		null              bool
		ts                time.Time
	}
	var ins []in
	for _, line := range strings.Split(td.Input, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 4 || !strings.HasPrefix(f[3], "@") {
			t.Fatalf("%s: want \"<topic> <key> <value> @<ms>\", got %q", td.Pos, line)
		}
		ms, err := strconv.ParseInt(f[3][1:], 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", td.Pos, line, err)
		}
		ins = append(ins, in{topic: f[0], key: f[1], value: f[2], null: f[2] == "<tombstone>", ts: time.UnixMilli(ms).UTC()})
	}
	var first []ddRecord
	var firstRun *ddRun
	for _, r := range runs {
		if parts != 0 && r.cfg.partitions != parts {
			continue
		}
		var got []ddRecord
		for _, x := range ins {
			rec := processor.Record[string, string]{Key: x.key, Value: x.value, NullValue: x.null, Timestamp: x.ts}
			if x.null {
				rec.Value = ""
			}
			if err := r.d.InputTopic(x.topic, serde.String(), serde.String()).PipeRecord(rec); err != nil {
				got = append(got, ddRecord{topic: "error:", key: err.Error()})
				break
			}
		}
		for _, o := range r.outputs {
			recs, err := o.read(r.d)
			if err != nil {
				t.Fatalf("%s: %s: read %s: %v", td.Pos, r.cfg.name, o.topic, err)
			}
			got = append(got, recs...)
		}
		if firstRun == nil {
			first, firstRun = got, r
			continue
		}
		if diff := ddCompare(first, got, firstRun.cfg.partitions == r.cfg.partitions); diff != "" {
			t.Errorf("%s: %s and %s disagree: %s\n%s:\n%s%s:\n%s", td.Pos, firstRun.cfg.name, r.cfg.name, diff,
				firstRun.cfg.name, ddPrint(first), r.cfg.name, ddPrint(got))
		}
	}
	if firstRun == nil {
		t.Fatalf("%s: no configuration has %d partitions", td.Pos, parts)
	}
	return ddPrint(first)
}

func ddPrint(recs []ddRecord) string {
	var sb strings.Builder
	for _, r := range recs {
		sb.WriteString(strings.TrimSpace(r.String()))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// ddCompare says how b differs from a: as a whole when exact, else in the
// sequence of records of each topic and key.
func ddCompare(a, b []ddRecord, exact bool) string {
	if exact {
		if !slices.Equal(a, b) {
			return "different records"
		}
		return ""
	}
	group := func(recs []ddRecord) map[string][]ddRecord {
		m := map[string][]ddRecord{}
		for _, r := range recs {
			k := r.topic + " " + r.key
			m[k] = append(m[k], r)
		}
		return m
	}
	ga, gb := group(a), group(b)
	var bad []string
	for k, ra := range ga {
		if !slices.Equal(ra, gb[k]) {
			bad = append(bad, k)
		}
	}
	for k := range gb {
		if _, ok := ga[k]; !ok {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	slices.Sort(bad)
	return "the records of " + strings.Join(bad, ", ")
}
