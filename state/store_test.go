package state_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
)

func TestChangelogTopic(t *testing.T) {
	if got := state.ChangelogTopic("app", "counts"); got != "app-counts-changelog" {
		t.Errorf("ChangelogTopic = %q", got)
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ prefix, want []byte }{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte("a"), []byte("b")},
		{[]byte("ab"), []byte("ac")},
		{[]byte{'a', 0xFF}, []byte("b")},
		{[]byte{'a', 0xFF, 0xFF}, []byte("b")},
		{[]byte{0xFE}, []byte{0xFF}},
		{[]byte{0xFF}, nil},
		{[]byte{0xFF, 0xFF}, nil},
		{[]byte{0x00}, []byte{0x01}},
	}
	for _, tt := range tests {
		in := bytes.Clone(tt.prefix)
		got := state.PrefixEnd(in)
		if !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", tt.prefix, got, tt.want)
		}
		if !bytes.Equal(in, tt.prefix) {
			t.Errorf("PrefixEnd(%x) modified its argument to %x", tt.prefix, in)
		}
	}
}

func TestLookup(t *testing.T) {
	kv, err := state.KeyValue("counts", serde.String(), serde.Int64()).BuildKeyValue(testCtx())
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	stores := map[string]state.Store{"counts": kv, "raw": memory.New("raw")}
	get := func(name string) (state.Store, bool) { s, ok := stores[name]; return s, ok }

	got, err := state.Lookup[*state.KeyValueStore[string, int64]](get, "counts")
	if err != nil || got != kv {
		t.Fatalf("Lookup(counts) = %v, %v", got, err)
	}
	if _, err := state.Lookup[state.KeyValueBytesStore](get, "raw"); err != nil {
		t.Fatalf("Lookup of an interface type: %v", err)
	}

	tests := []struct {
		name   string
		lookup func() error
		target error
		words  []string // the message must name these
	}{
		{"absent", func() error {
			_, err := state.Lookup[*state.KeyValueStore[string, int64]](get, "nope")
			return err
		}, state.ErrUnknownStore, []string{`"nope"`}},
		{"wrong value type", func() error {
			_, err := state.Lookup[*state.KeyValueStore[string, string]](get, "counts")
			return err
		}, state.ErrWrongStoreType, []string{`"counts"`, "KeyValueStore[string,int64]", "KeyValueStore[string,string]"}},
		{"not a typed store", func() error {
			_, err := state.Lookup[*state.KeyValueStore[string, int64]](get, "raw")
			return err
		}, state.ErrWrongStoreType, []string{`"raw"`, "*memory.Store"}},
		{"nil lookup", func() error {
			_, err := state.Lookup[state.Store](nil, "x")
			return err
		}, state.ErrUnknownStore, []string{`"x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.lookup()
			if !errors.Is(err, tt.target) {
				t.Fatalf("error %v, want %v", err, tt.target)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "state: ") {
				t.Errorf("error %q does not start with \"state: \"", msg)
			}
			for _, w := range tt.words {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %s", msg, w)
				}
			}
		})
	}
}

func TestKeyValueBuilder(t *testing.T) {
	// Build returns the typed store as a Store.
	st, err := state.KeyValue("s", serde.String(), serde.String()).Build(testCtx())
	if _, ok := st.(*state.KeyValueStore[string, string]); !ok || err != nil {
		t.Fatalf("Build = %T, %v", st, err)
	}
	st.Close()

	noBatch := testCtx()
	noBatch.Batch = nil
	tests := []struct {
		name    string
		builder state.Builder
		ctx     state.BuildContext
		target  error
	}{
		{"no batch", state.KeyValue("s", serde.String(), serde.String()), noBatch, state.ErrInvalidBuilder},
		{"empty name", state.KeyValue("", serde.String(), serde.String()), testCtx(), state.ErrInvalidBuilder},
		{"nil key serde", state.KeyValue[string, string]("s", nil, serde.String()), testCtx(), state.ErrInvalidBuilder},
		{"nil value serde", state.KeyValue[string, string]("s", serde.String(), nil), testCtx(), state.ErrInvalidBuilder},
		{"negative TTL", state.KeyValue("s", serde.String(), serde.String(), state.WithTTL(-time.Second)), testCtx(), state.ErrInvalidBuilder},
		{"TTL without time", state.KeyValue("s", serde.String(), serde.String(), state.WithTTL(time.Second)), testCtx(), state.ErrInvalidBuilder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.builder.Build(tt.ctx)
			if !errors.Is(err, tt.target) || s != nil {
				t.Fatalf("Build = %v, %v; want nil, %v", s, err, tt.target)
			}
			if !strings.HasPrefix(err.Error(), "state: ") {
				t.Errorf("error %q does not start with \"state: \"", err)
			}
		})
	}
}

func TestErrIterator(t *testing.T) {
	boom := errors.New("boom")
	it := state.ErrIterator(boom)
	if it.Next() || it.Key() != nil || it.Value() != nil || it.Err() != boom || it.Close() != boom {
		t.Error("ErrIterator does not report its error")
	}
}

func Example() {
	ctx := state.BuildContext{
		ApplicationID: "shop",
		TaskID:        "0_0",
		Batch:         memory.NewEngine().NewBatch(), // what a driver sets
	}
	store, err := state.KeyValue("orders-per-user", serde.String(), serde.Int64()).BuildKeyValue(ctx)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	for _, user := range []string{"bob", "alice", "bob"} {
		n, _, err := store.Get(user)
		if err != nil {
			panic(err)
		}
		if err := store.Put(user, n+1); err != nil {
			panic(err)
		}
	}

	it := store.All()
	defer it.Close()
	for it.Next() {
		fmt.Println(it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		panic(err)
	}
	fmt.Println(store.Topic())
	// Output:
	// alice 1
	// bob 2
	// shop-orders-per-user-changelog
}
