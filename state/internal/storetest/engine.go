package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
)

// OpenEngine returns a new, open, empty engine for one test. The suite closes
// it; closing it twice must be harmless, so open may also register a
// t.Cleanup that closes it (and removes its files).
type OpenEngine func(t *testing.T) state.Engine

// EngineConformance checks that the engines open returns keep the
// state.Engine contract:
//   - a batch's store views keep the KeyValueBytesStore contract
//     (Conformance and Check), with the batch committed never, after every
//     write, or every few writes, so that reads merge the batch with the
//     committed state;
//   - the table-driven engine cases: read-your-writes, tombstones, commit
//     atomicity with checkpoints, abort, restore, drop, read-only readers,
//     store-partition isolation, iterator snapshots, closing, range deletes;
//   - CheckBatch: random writes, range deletes, commits, aborts and
//     iterators against a model.
func EngineConformance(t *testing.T, open OpenEngine, opts Options) {
	for _, every := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("batch store/commit every %d", every), func(t *testing.T) {
			e := open(t)
			defer e.Close()
			n := 0
			Conformance(t, func(t *testing.T) state.KeyValueBytesStore {
				n++
				return NewBatchStore(e, state.StorePartition{Store: fmt.Sprintf("conformance-%d", n), Partition: 1}, every)
			}, opts)
		})
	}
	t.Run("batch store/model", func(t *testing.T) {
		e := open(t)
		defer e.Close()
		n := 0
		rapid.Check(t, func(t *rapid.T) {
			n++
			every := rapid.IntRange(0, 4).Draw(t, "commit every")
			s := NewBatchStore(e, state.StorePartition{Store: fmt.Sprintf("model-%d", n), Partition: 7}, every)
			defer s.Close()
			Check(t, s, opts)
		})
	})
	t.Run("batch model with range deletes", func(t *testing.T) {
		e := open(t)
		defer e.Close()
		n := 0
		rapid.Check(t, func(t *rapid.T) {
			n++
			CheckBatch(t, e, state.StorePartition{Store: fmt.Sprintf("batch-model-%d", n), Partition: 3})
		})
	})
	for _, c := range engineCases {
		t.Run(c.name, func(t *testing.T) {
			e := open(t)
			defer e.Close()
			c.run(t, e, opts)
		})
	}
}

// BatchStore is a store view of a batch of its own that commits the batch
// after every n-th write (never when n is 0), and closes the batch when
// closed: a state.KeyValueBytesStore that the store checkers can run on.
type BatchStore struct {
	state.KeyValueBytesStore
	Batch  state.Batch
	every  int
	writes int
}

// NewBatchStore returns a BatchStore on sp, over a new batch of e.
func NewBatchStore(e state.Engine, sp state.StorePartition, every int) *BatchStore {
	b := e.NewBatch()
	return &BatchStore{KeyValueBytesStore: b.Store(sp), Batch: b, every: every}
}

func (s *BatchStore) Put(key, value []byte) error {
	if err := s.KeyValueBytesStore.Put(key, value); err != nil {
		return err
	}
	return s.wrote()
}

func (s *BatchStore) Delete(key []byte) error {
	if err := s.KeyValueBytesStore.Delete(key); err != nil {
		return err
	}
	return s.wrote()
}

func (s *BatchStore) wrote() error {
	s.writes++
	if s.every > 0 && s.writes%s.every == 0 {
		return s.Batch.Commit(nil)
	}
	return nil
}

// Close closes the batch.
func (s *BatchStore) Close() error { return s.Batch.Close() }

// dump drains it and renders its entries as "k=v k=v", keys and values
// quoted with %q only when not plain.
func dump(t *testing.T, it state.Iterator) string {
	t.Helper()
	entries, err := drain(it)
	if err != nil {
		t.Fatalf("iterate: %v", err)
	}
	return render(entries)
}

func render(entries []kv) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(plain(e.key))
		b.WriteByte('=')
		b.WriteString(plain(e.value))
		if e.value == nil {
			b.WriteString("(nil)")
		}
	}
	return b.String()
}

func plain(b []byte) string {
	if len(b) == 0 {
		return `""`
	}
	for _, c := range b {
		if c <= ' ' || c > '~' || c == '=' {
			return fmt.Sprintf("%q", b)
		}
	}
	return string(b)
}

// put writes k=v through s, failing t on error.
func put(t *testing.T, s state.KeyValueBytesStore, kvs ...string) {
	t.Helper()
	for _, p := range kvs {
		k, v, ok := strings.Cut(p, "=")
		var value []byte
		if ok {
			value = []byte(v)
		}
		if err := s.Put([]byte(k), value); err != nil {
			t.Fatalf("Put(%q, %q): %v", k, v, err)
		}
	}
}

// get reads key through s and renders it "v", "absent" or "error: ...".
func get(s state.KeyValueBytesStore, key string) string {
	v, found, err := s.Get([]byte(key))
	switch {
	case err != nil:
		return "error: " + err.Error()
	case !found:
		return "absent"
	case v == nil:
		return "found nil"
	}
	return string(v)
}

func commit(t *testing.T, b state.Batch, checkpoints map[state.StorePartition]int64) {
	t.Helper()
	if err := b.Commit(checkpoints); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// checkpoint renders sp's checkpoint as an offset or "none".
func checkpoint(t *testing.T, e state.Engine, sp state.StorePartition) string {
	t.Helper()
	off, ok, err := e.Checkpoint(sp)
	if err != nil {
		t.Fatalf("Checkpoint(%v): %v", sp, err)
	}
	if !ok {
		return "none"
	}
	return fmt.Sprint(off)
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

func (s *BatchStore) DeleteRange(from, to []byte) error {
	if err := s.KeyValueBytesStore.DeleteRange(from, to); err != nil {
		return err
	}
	return s.wrote()
}
