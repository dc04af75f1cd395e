package pebble_test

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/pebble"
)

// quiet keeps pebble's messages out of the test output unless they are
// errors.
var quiet = pebble.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))

// open opens an engine in a new temporary directory, with a small memory
// budget, and closes it when the test ends.
func open(t testing.TB) *pebble.Engine {
	t.Helper()
	e, err := pebble.Open(t.TempDir(), quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEngineConformance(t *testing.T) {
	storetest.EngineConformance(t, func(t *testing.T) state.Engine { return open(t) }, storetest.Options{ExactCount: true})
}

// TestPersistence is the crash-consistency foundation of the state layer:
// what was committed, data and checkpoints, survives a close and reopen;
// what was not committed is gone.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	spA := state.StorePartition{Store: "counts", Partition: 3}
	spB := state.StorePartition{Store: "counts-by-region", Partition: 3}
	spC := state.StorePartition{Store: "dropped", Partition: 0}

	e, err := pebble.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b := e.NewBatch()
	must(t, b.Store(spA).Put([]byte("a"), []byte("1")))
	must(t, b.Store(spA).Put([]byte("b"), []byte("1")))
	must(t, b.Store(spB).Put([]byte("eu"), []byte("7")))
	must(t, b.Store(spC).Put([]byte("x"), []byte("1")))
	must(t, b.Commit(map[state.StorePartition]int64{spA: 100, spB: 200, spC: 5}))
	must(t, b.Store(spA).Delete([]byte("b")))
	must(t, b.Commit(map[state.StorePartition]int64{spA: 101}))
	must(t, e.Restore(spB, []state.RestoreRecord{{Key: []byte("us"), Value: []byte("8")}}, 201))
	must(t, e.Drop(spC))
	// Never committed: gone after the reopen.
	must(t, b.Store(spA).Put([]byte("a"), []byte("uncommitted")))
	must(t, b.Store(spA).Put([]byte("c"), []byte("uncommitted")))
	must(t, b.Close())
	b2 := e.NewBatch()
	must(t, b2.Store(spB).Put([]byte("eu"), []byte("uncommitted")))
	b2.Abort()
	must(t, b2.Close())
	must(t, e.Close())

	e, err = pebble.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for sp, want := range map[state.StorePartition]string{spA: "a=1", spB: "eu=7 us=8", spC: ""} {
		if got := dump(t, e.Reader(sp)); got != want {
			t.Errorf("%v after reopen: %s, want %s", sp, got, want)
		}
	}
	for sp, want := range map[state.StorePartition]int64{spA: 101, spB: 201} {
		off, ok, err := e.Checkpoint(sp)
		if err != nil || !ok || off != want {
			t.Errorf("Checkpoint(%v) after reopen = %d, %v, %v; want %d", sp, off, ok, err, want)
		}
	}
	if _, ok, err := e.Checkpoint(spC); ok || err != nil {
		t.Errorf("Checkpoint of a dropped store-partition after reopen: ok %v, err %v", ok, err)
	}
}

func dump(t *testing.T, s state.KeyValueBytesStore) string {
	t.Helper()
	it := s.Range(nil, nil)
	var out []string
	for it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLocked checks that a state directory is locked against a second
// Open, from this process and from another.
func TestLocked(t *testing.T) {
	if dir := os.Getenv("GREGOR_PEBBLE_LOCK_DIR"); dir != "" {
		// The second process: report what Open says.
		e, err := pebble.Open(dir, quiet)
		if errors.Is(err, pebble.ErrLocked) {
			os.Stdout.WriteString("open failed: " + err.Error() + "\n")
			os.Exit(3)
		}
		if err != nil {
			os.Stdout.WriteString("unexpected error: " + err.Error() + "\n")
			os.Exit(4)
		}
		e.Close()
		os.Exit(0)
	}
	dir := t.TempDir()
	e, err := pebble.Open(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pebble.Open(dir, quiet)
	t.Logf("this process: %v", err)
	if !errors.Is(err, pebble.ErrLocked) || !strings.HasPrefix(err.Error(), "pebble: open state directory") {
		t.Errorf("second Open in the same process: error %v, want a lock error", err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestLocked$")
	cmd.Env = append(os.Environ(), "GREGOR_PEBBLE_LOCK_DIR="+dir)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(out), "pebble: open state directory "+dir+": state directory locked") {
		t.Errorf("Open from another process: %v, output %q; want a lock error", err, out)
	} else {
		t.Logf("another process: %s", strings.TrimSpace(string(out)))
	}

	must(t, e.Close())
	e, err = pebble.Open(dir, quiet)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	must(t, e.Close())
}

func TestCloseWithOpenReaderIterator(t *testing.T) {
	e := open(t)
	must(t, e.Restore(state.StorePartition{Store: "s"}, []state.RestoreRecord{{Key: []byte("a"), Value: []byte("1")}}, 1))
	it := e.Reader(state.StorePartition{Store: "s"}).Range(nil, nil)
	if err := e.Close(); err == nil || !strings.Contains(err.Error(), "1 reader iterators still open") {
		t.Fatalf("Close with an open iterator: %v, want a refusal", err)
	}
	if !it.Next() || string(it.Key()) != "a" {
		t.Fatalf("iterator after a refused Close: %q, %v", it.Key(), it.Err())
	}
	must(t, it.Close())
	must(t, e.Close())
}

func TestNotAStateDirectory(t *testing.T) {
	// A pebble DB with keys but no layout version is not a state directory.
	dir := t.TempDir()
	db, err := pebbledb.Open(dir, &pebbledb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	must(t, db.Set([]byte("foreign"), []byte("1"), pebbledb.Sync))
	must(t, db.Close())
	if _, err := pebble.Open(dir, quiet); err == nil || !strings.Contains(err.Error(), "not a gregor state directory") {
		t.Errorf("Open of a foreign pebble DB: %v, want a refusal", err)
	}
}
