package streamtest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/streamtest"
)

// The counting benchmarks: b.N records over 100,000 distinct keys, one per
// iteration, counted by key into a table with the record cache at its
// default size and a commit every 10,000 records, as a worker with a commit
// interval would.

const (
	countKeys  = 100_000
	countEvery = 10_000
)

func BenchmarkCountMemory(b *testing.B) { benchmarkCount(b) }

func BenchmarkCountPebble(b *testing.B) { benchmarkCount(b, streamtest.Pebble()) }

func benchmarkCount(b *testing.B, opts ...streamtest.Option) {
	inputs := make([]processor.RawRecord, countKeys)
	for i := range inputs {
		// Keys in a shuffled order, so consecutive records rarely share a key.
		k := (i * 7919) % countKeys
		inputs[i] = processor.RawRecord{Key: fmt.Appendf(nil, "user-%06d", k), Value: []byte("click")}
	}
	bld := dsl.NewBuilder()
	bld.Stream("clicks", serde.String(), serde.String()).
		GroupByKey().
		Count(dsl.Named("clicks-per-user"))
	topo, err := bld.Build()
	if err != nil {
		b.Fatal(err)
	}
	d, err := streamtest.New(topo, append(opts, streamtest.CommitEvery(countEvery))...)
	if err != nil {
		b.Fatal(err)
	}
	changelog := d.OutputTopic("streamtest-clicks-per-user-changelog", serde.String(), serde.Int64())
	ts := streamtest.DefaultStartTime
	logged := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := inputs[i%countKeys]
		rec.Timestamp = ts.Add(time.Duration(i) * time.Millisecond)
		if err := d.PipeRaw("clicks", -1, rec); err != nil {
			b.Fatal(err)
		}
		if i%countEvery == countEvery-1 {
			for _, ok := changelog.ReadRaw(); ok; _, ok = changelog.ReadRaw() {
				logged++
			}
		}
	}
	if err := d.Commit(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	for _, ok := changelog.ReadRaw(); ok; _, ok = changelog.ReadRaw() {
		logged++
	}
	if logged == 0 || logged > b.N {
		b.Fatalf("%d changelog records for %d inputs", logged, b.N)
	}
	// Every count is in the store: the total is b.N.
	s, err := d.Store("clicks-per-user", 0)
	if err != nil {
		b.Fatal(err)
	}
	it := s.(*state.TimestampedKeyValueStore[string, int64]).All()
	total := int64(0)
	for it.Next() {
		total += it.Value().Value
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	if total != int64(b.N) {
		b.Fatalf("counted %d records, piped %d", total, b.N)
	}
	if err := d.Close(); err != nil {
		b.Fatal(err)
	}
}
