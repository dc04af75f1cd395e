package state_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
)

// TestChangelogEveryWrite checks that an uncached logged store sends each
// write to the ChangelogWriter at once, with the store's name, the key, the
// value (nil for a delete, empty for an empty value) and the record time.
func TestChangelogEveryWrite(t *testing.T) {
	k := newTask(t)
	s, err := state.KeyValue("s", serde.String(), serde.Bytes(), state.WithCache(0)).BuildKeyValue(k.ctx())
	if err != nil {
		t.Fatal(err)
	}
	at := func(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	writes := []struct {
		record time.Time
		do     func() error
		want   storetest.Record
	}{
		{at(1), func() error { return s.Put("a", []byte("1")) }, storetest.Record{Key: []byte("a"), Value: []byte("1"), Timestamp: at(1)}},
		// Record time, not stream time, stamps the record: a late record.
		{at(-5), func() error { return s.Put("b", []byte("2")) }, storetest.Record{Key: []byte("b"), Value: []byte("2"), Timestamp: at(-5)}},
		{at(2), func() error { return s.Put("a", []byte("3")) }, storetest.Record{Key: []byte("a"), Value: []byte("3"), Timestamp: at(2)}},
		{at(3), func() error { return s.Delete("a") }, storetest.Record{Key: []byte("a"), Timestamp: at(3)}},
		// A value the serde encodes as null is a delete.
		{at(4), func() error { return s.Put("b", nil) }, storetest.Record{Key: []byte("b"), Timestamp: at(4)}},
		// An empty value is a value.
		{at(5), func() error { return s.Put("e", []byte{}) }, storetest.Record{Key: []byte("e"), Value: []byte{}, Timestamp: at(5)}},
		// So is the empty key; deleting an absent key logs a tombstone.
		{at(6), func() error { return s.Delete("") }, storetest.Record{Key: []byte{}, Timestamp: at(6)}},
	}
	for i, w := range writes {
		k.clock.Record, k.clock.Stream = w.record, at(100)
		must(t, w.do())
		rs := k.log.Records["s"]
		if len(rs) != i+1 {
			t.Fatalf("write %d: %d records logged, want %d", i, len(rs), i+1)
		}
		got := rs[i]
		if string(got.Key) != string(w.want.Key) || (got.Key == nil) ||
			string(got.Value) != string(w.want.Value) || (got.Value == nil) != (w.want.Value == nil) ||
			!got.Timestamp.Equal(w.want.Timestamp) {
			t.Errorf("write %d logged %q=%q (nil %v) at %v, want %q=%q (nil %v) at %v", i,
				got.Key, got.Value, got.Value == nil, got.Timestamp, w.want.Key, w.want.Value, w.want.Value == nil, w.want.Timestamp)
		}
	}
	if len(k.log.Records) != 1 {
		t.Errorf("records logged for stores %v, want only s", k.log.Records)
	}
	// The writes reached the batch too, as the changelog says.
	got, err := storetest.Contents(k.batch.Store(state.StorePartition{Store: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(got, storetest.Fold(k.log.Records["s"])); d != "" {
		t.Errorf("the batch differs from the changelog: %s", d)
	}
}

// TestChangelogOff checks that WithoutLogging, or a build context without a
// ChangelogWriter, logs nothing, and that the store works all the same.
func TestChangelogOff(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     []state.Option
		noWriter bool
		logged   bool // the builder's Logged
	}{
		{name: "WithoutLogging", opts: []state.Option{state.WithoutLogging(), state.WithCache(0)}},
		{name: "WithoutLogging, cached", opts: []state.Option{state.WithoutLogging()}},
		{name: "WithoutLogging, TTL", opts: []state.Option{state.WithoutLogging(), state.WithTTL(time.Hour)}},
		{name: "no writer", opts: []state.Option{state.WithCache(0)}, noWriter: true, logged: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := newTask(t)
			ctx := k.ctx()
			if tt.noWriter {
				ctx.Changelog = nil
			}
			b := state.KeyValue("s", serde.String(), serde.String(), tt.opts...)
			if b.Logged() != tt.logged {
				t.Errorf("Logged = %v, want %v", b.Logged(), tt.logged)
			}
			s, err := b.BuildKeyValue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			must(t, s.Put("a", "1"))
			must(t, s.Put("b", "2"))
			must(t, s.Delete("b"))
			must(t, s.Flush())
			if got := render(s.All()); got != `"a"="1" ` {
				t.Errorf("All = %s", got)
			}
			if len(k.log.Records) != 0 {
				t.Errorf("logged %v", k.log.Records)
			}
		})
	}
}

// TestChangelogError checks that a failing ChangelogWriter fails the write
// (or the Flush that writes down a cached one), with an error that names
// the store and wraps the writer's.
func TestChangelogError(t *testing.T) {
	boom := errors.New("producer fenced")
	check := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, boom) {
			t.Fatalf("%s: error %v, want the writer's", what, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "state: ") || !strings.Contains(msg, `"counts"`) {
			t.Errorf("%s: error %q does not name the package and the store", what, msg)
		}
	}
	t.Run("uncached", func(t *testing.T) {
		k := newTask(t)
		s, err := state.KeyValue("counts", serde.String(), serde.String(), state.WithCache(0)).BuildKeyValue(k.ctx())
		if err != nil {
			t.Fatal(err)
		}
		k.log.Err = boom
		check(t, "Put", s.Put("a", "1"))
		check(t, "Delete", s.Delete("a"))
	})
	t.Run("cached", func(t *testing.T) {
		k := newTask(t)
		s, err := state.KeyValue("counts", serde.String(), serde.String()).BuildKeyValue(k.ctx())
		if err != nil {
			t.Fatal(err)
		}
		k.log.Err = boom
		must(t, s.Put("a", "1")) // held in the cache
		check(t, "Flush", s.Flush())
	})
	t.Run("TTL sweep", func(t *testing.T) {
		k := newTask(t)
		s, err := state.KeyValue("counts", serde.String(), serde.String(), state.WithCache(0), state.WithTTL(time.Second)).BuildKeyValue(k.ctx())
		if err != nil {
			t.Fatal(err)
		}
		must(t, s.Put("a", "1"))
		k.clock.Advance(time.Second)
		k.log.Err = boom
		check(t, "Flush that sweeps", s.Flush())
	})
}

// TestChangelogWithoutTime checks that a logged store built without a
// TimeSource stamps its records with the zero time rather than failing.
func TestChangelogWithoutTime(t *testing.T) {
	k := newTask(t)
	ctx := k.ctx()
	ctx.Time = nil
	s, err := state.KeyValue("s", serde.String(), serde.String(), state.WithCache(0)).BuildKeyValue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.Put("a", "1"))
	if rs := k.log.Records["s"]; len(rs) != 1 || !rs[0].Timestamp.IsZero() {
		t.Errorf("logged %v, want one record at the zero time", rs)
	}
}
