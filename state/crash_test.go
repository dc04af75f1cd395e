package state_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
	"github.com/gregorstream/gregor/state/pebble"
)

// TestCrashConsistency is the proof of the state layer's exactly-once
// contract (DESIGN.md, "State and exactly-once"). A task with two logged
// typed stores of random layers (cache, TTL) runs commit intervals of random
// puts, deletes and stream-time moves, committing each as the runtime does:
// flush the stores (the caches write down, the TTL sweeps), commit the Kafka
// transaction, then Batch.Commit with the changelog ends as checkpoints.
// Then comes a tail that never completes:
//   - writes left in the caches and the batch, their changelog records in
//     an open transaction;
//   - writes flushed to the batch and the changelog, then the Kafka
//     transaction aborts;
//   - writes flushed and committed to Kafka, then the crash hits before
//     Batch.Commit applies them locally.
//
// Then the process crashes: the Kafka transaction in flight aborts (its
// changelog records vanish for a read_committed restorer) and the batch is
// lost. After the restart:
//   - each store-partition's checkpoint is the one of the last Batch.Commit
//     that reached the disk, and its committed state is exactly the
//     changelog up to that checkpoint: nothing of the tail, nothing lost;
//   - restoring the committed changelog from the checkpoint, in chunks,
//     gives exactly the changelog's table, and the typed stores rebuilt on
//     it read what the application had written when Kafka last committed.
//
// Several crashes may follow one another in one run.
func TestCrashConsistency(t *testing.T) {
	base := t.TempDir()
	targets := []crashTarget{
		{
			// The task crashes; the process and its engine live on.
			name: "memory/task crash", exact: true,
			start: func(t *rapid.T) (state.Engine, func(state.Engine) state.Engine) {
				return memory.NewEngine(), func(e state.Engine) state.Engine { return e }
			},
		},
		{
			// The process restarts: memory keeps nothing, so every
			// store-partition restores from offset 0.
			name: "memory/process restart", exact: true, forgets: true,
			start: func(t *rapid.T) (state.Engine, func(state.Engine) state.Engine) {
				return memory.NewEngine(), func(e state.Engine) state.Engine {
					if err := e.Close(); err != nil {
						t.Fatalf("close engine: %v", err)
					}
					return memory.NewEngine()
				}
			},
		},
		{
			// The process stops with its batch uncommitted: the engine is
			// closed and the state directory reopened. On a real disk,
			// whose fsyncs make each run slow: fewer runs.
			name: "pebble/close and reopen", exact: true, checks: 20,
			start: func(t *rapid.T) (state.Engine, func(state.Engine) state.Engine) {
				dir, err := os.MkdirTemp(base, "crash")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				return openPebble(t, dir), func(e state.Engine) state.Engine {
					if err := e.Close(); err != nil {
						t.Fatalf("close engine: %v", err)
					}
					return openPebble(t, dir)
				}
			},
		},
		{
			// The process or the machine dies without closing anything:
			// the restarted process opens a copy of the files as a crash
			// left them, with everything synced and a random part (all of
			// it, for a process crash) of what was written but not synced.
			// Commits do not fsync, so the last ones may be lost, whole.
			// Values of kilobytes fill pebble's 32 KiB WAL blocks, so that
			// the WAL reaches the file during a run and the crash tears it
			// at random places, inside records too.
			name: "pebble/crash without close", padding: 1500, checks: 50,
			start: func(t *rapid.T) (state.Engine, func(state.Engine) state.Engine) {
				fs := vfs.NewCrashableMem()
				rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
				unsynced := rapid.SampledFrom([]int{0, 50, 100}).Draw(t, "unsynced data kept %")
				return openPebbleFS(t, fs), func(e state.Engine) state.Engine {
					clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rng})
					if err := e.Close(); err != nil { // after the crash: it cannot change the clone
						t.Fatalf("close engine: %v", err)
					}
					fs = clone
					return openPebbleFS(t, fs)
				}
			},
		},
		{
			// The crash tears the WAL at any byte: the engine is closed
			// (pebble keeps the memtable's writes in its WAL, and does not
			// flush it on Close), then the WAL it wrote is cut at a random
			// length, as a crash during its writing may leave it. Every
			// commit boundary, and every place inside a commit, is a
			// possible end.
			name: "pebble/torn WAL",
			start: func(t *rapid.T) (state.Engine, func(state.Engine) state.Engine) {
				fs := vfs.NewMem()
				rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
				return openPebbleFS(t, fs), func(e state.Engine) state.Engine {
					if err := e.Close(); err != nil {
						t.Fatalf("close engine: %v", err)
					}
					tearWAL(t, fs, rng)
					return openPebbleFS(t, fs)
				}
			},
		},
	}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			if target.checks > 0 {
				defer lowerRapidChecks(target.checks)()
			}
			var tally crashTally
			rapid.Check(t, func(t *rapid.T) { crashProperty(t, target, &tally) })
			t.Logf("%d restarts, of which %d lost commits or restored chunks", tally.restarts, tally.lossy)
		})
	}
}

// crashTally counts what the crashes of a target did, across runs.
type crashTally struct{ restarts, lossy int }

// lowerRapidChecks lowers the number of rapid checks to n, unless the
// command line set it, and returns the function that restores it: for
// properties whose every run costs real fsyncs.
func lowerRapidChecks(n int) (restore func()) {
	f := flag.Lookup("rapid.checks")
	set := false
	flag.Visit(func(g *flag.Flag) { set = set || g == f })
	if f == nil || set {
		return func() {}
	}
	old := f.Value.String()
	if cur, err := strconv.Atoi(old); err != nil || cur <= n {
		return func() {}
	}
	f.Value.Set(strconv.Itoa(n))
	return func() { f.Value.Set(old) }
}

func openPebble(t *rapid.T, dir string) state.Engine {
	e, err := pebble.Open(dir, quiet, pebble.WithMemory(16<<20))
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return e
}

func openPebbleFS(t *rapid.T, fs vfs.FS) state.Engine {
	e, err := pebble.Open("/state", quiet, pebble.WithMemory(16<<20), pebble.WithPebbleOptions(func(o *pebbledb.Options) { o.FS = fs }))
	if err != nil {
		t.Fatalf("open on a crashed file system: %v", err)
	}
	return e
}

// tearWAL cuts the newest WAL file of the state directory on fs at a
// random length.
func tearWAL(t *rapid.T, fs vfs.FS, rng *rand.Rand) {
	names, err := fs.List("/state")
	if err != nil {
		t.Fatal(err)
	}
	var wal string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") && n > wal {
			wal = n
		}
	}
	if wal == "" {
		t.Fatalf("no WAL among %q", names)
	}
	name := fs.PathJoin("/state", wal)
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	w, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:rng.IntN(len(data)+1)]); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(w.Sync(), w.Close()); err != nil {
		t.Fatal(err)
	}
}

// crashTarget is an engine and a way of crashing it.
type crashTarget struct {
	name string
	// start returns a new engine, and crash, which ends the engine as the
	// crash does (the task's batch is already closed) and returns the
	// engine the restarted task gets.
	start func(t *rapid.T) (e state.Engine, crash func(state.Engine) state.Engine)
	// exact: the restarted engine holds the last commit. Otherwise each
	// store-partition holds its state after some atomic write (Commit, or
	// Restore of a chunk) of its history: the engine's write-back may put
	// the store-partitions of a batch on disk at different commits.
	exact bool
	// forgets: the restarted engine is empty.
	forgets bool
	// checks, if not 0, lowers the number of runs.
	checks int
	// padding is added to every value written.
	padding int
}

func crashProperty(t *rapid.T, target crashTarget, tally *crashTally) {
	e, crash := target.start(t)
	var batch state.Batch // the task's current batch
	defer func() {
		if batch != nil {
			batch.Close() // a failed check left it open
		}
		if err := e.Close(); err != nil {
			t.Errorf("close engine: %v", err)
		}
	}()
	clock := storetest.NewClock(t0)
	log := storetest.NewChangelog()
	specs := []storeSpec{drawSpec(t, "a"), drawSpec(t, "b")}
	sps := make([]state.StorePartition, len(specs))
	for i, s := range specs {
		sps[i] = state.StorePartition{Store: s.name, Partition: 3}
	}

	// The application's view: its tables now, and when Kafka last
	// committed (stream time too: it is committed with the offsets).
	tables := make([]table, len(specs))
	for i, s := range specs {
		tables[i] = newTable(s.ttl)
	}
	kafkaTables, kafkaClock := cloneTables(tables), *clock

	// checkpoints: the engine's checkpoints (-1: none). history: per
	// store-partition, its checkpoints after every atomic write to the
	// engine, in order; a crash that loses writes leaves one of them.
	checkpoints := []int64{-1, -1}
	history := [][]int64{{-1}, {-1}}
	record := func() {
		for i, cp := range checkpoints {
			history[i] = append(history[i], cp)
		}
	}

	crashes := rapid.IntRange(1, 3).Draw(t, "crashes")
	for crashNo := range crashes {
		batch = e.NewBatch()
		stores := make([]*state.KeyValueStore[string, string], len(specs))
		for i, s := range specs {
			var err error
			stores[i], err = s.build(state.BuildContext{ApplicationID: "app", TaskID: "0_3", Partition: 3, Batch: batch, Changelog: log, Time: clock})
			if err != nil {
				t.Fatal(err)
			}
			checkTyped(t, fmt.Sprintf("crash %d: after restart", crashNo), stores[i], tables[i], clock.StreamTime())
		}

		// write runs random operations, as the task's processors would.
		write := func(t *rapid.T) {
			for range rapid.IntRange(0, 12).Draw(t, "operations") {
				i := rapid.IntRange(0, len(specs)-1).Draw(t, "store")
				switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
				case op < 6:
					k, v := drawKey.Draw(t, "key"), drawValue.Draw(t, "value")+strings.Repeat("~", target.padding)
					if err := stores[i].Put(k, v); err != nil {
						t.Fatalf("Put(%q, %q): %v", k, v, err)
					}
					tables[i].put(k, v, clock.StreamTime())
				case op < 8:
					k := drawKey.Draw(t, "key")
					if err := stores[i].Delete(k); err != nil {
						t.Fatalf("Delete(%q): %v", k, err)
					}
					tables[i].delete(k)
				default:
					clock.Advance(drawAdvance.Draw(t, "advance"))
				}
			}
		}
		flush := func(t *rapid.T) {
			for _, s := range stores {
				if err := s.Flush(); err != nil {
					t.Fatalf("Flush %s: %v", s.Name(), err)
				}
			}
		}
		kafkaCommit := func() {
			log.CommitKafka()
			kafkaTables, kafkaClock = cloneTables(tables), *clock
		}

		for interval := range rapid.IntRange(0, 5).Draw(t, "committed intervals") {
			write(t)
			flush(t)
			kafkaCommit()
			// As the runtime does: checkpoints for the changelogs written
			// to since the last commit, at their ends.
			cps := map[state.StorePartition]int64{}
			for i, sp := range sps {
				if end := log.End(sp.Store); end != max(checkpoints[i], 0) {
					cps[sp] = end
				}
			}
			if err := batch.Commit(cps); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			for i, sp := range sps {
				if cp, ok := cps[sp]; ok {
					checkpoints[i] = cp
				}
			}
			// Reading the committed state with an iterator flushes the
			// engine's write-back of committed writes to disk: half the
			// commits are left unread, so that crashes lose it too.
			if rapid.Bool().Draw(t, "read committed state") {
				for i, sp := range sps {
					checkCommitted(t, fmt.Sprintf("crash %d: after commit %d", crashNo, interval), e, sp, log, checkpoints[i])
				}
			}
			record()
		}

		tail := rapid.SampledFrom([]string{"unflushed", "flushed, Kafka aborted", "Kafka committed, not applied"}).Draw(t, "tail")
		write(t)
		if tail != "unflushed" {
			flush(t)
		}
		if tail == "Kafka committed, not applied" {
			kafkaCommit()
		}

		// The crash.
		log.AbortKafka()
		if err := batch.Close(); err != nil {
			t.Fatalf("close batch: %v", err)
		}
		e = crash(e)
		tally.restarts++
		tables, *clock = cloneTables(kafkaTables), kafkaClock

		// What the engine holds now.
		got := make([]int64, len(sps))
		for i, sp := range sps {
			off, ok, err := e.Checkpoint(sp)
			if err != nil {
				t.Fatalf("Checkpoint(%v): %v", sp, err)
			}
			got[i] = -1
			if ok {
				got[i] = off
			}
		}
		switch {
		case target.forgets:
			if !slices.Equal(got, []int64{-1, -1}) {
				t.Fatalf("crash %d: checkpoints %v after a restart that forgets everything", crashNo, got)
			}
			history = [][]int64{{-1}, {-1}}
		case target.exact:
			if !slices.Equal(got, checkpoints) {
				t.Fatalf("crash %d: checkpoints %v after the restart, want those of the last commit, %v", crashNo, got, checkpoints)
			}
		default:
			lossy := false
			for sp, h := range history {
				i := len(h) - 1
				for i >= 0 && h[i] != got[sp] {
					i--
				}
				if i < 0 {
					t.Fatalf("crash %d: checkpoint %d of %v after the restart is none it had: %v", crashNo, got[sp], sps[sp], h)
				}
				lossy = lossy || i < len(h)-1
				history[sp] = h[:i+1]
			}
			if lossy {
				tally.lossy++
			}
		}
		checkpoints = got
		for i, sp := range sps {
			checkCommitted(t, fmt.Sprintf("crash %d: after the restart", crashNo), e, sp, log, checkpoints[i])
		}

		// Restore every store-partition from its checkpoint to the end of
		// its committed changelog, in chunks, as the runtime's restorer does.
		chunk := rapid.IntRange(1, 5).Draw(t, "restore chunk")
		for i, sp := range sps {
			records := log.Committed(sp.Store)
			for from := int(max(checkpoints[i], 0)); from < len(records); from += chunk {
				end := min(from+chunk, len(records))
				var rs []state.RestoreRecord
				for _, r := range records[from:end] {
					rs = append(rs, state.RestoreRecord{Key: r.Key, Value: r.Value})
				}
				if err := e.Restore(sp, rs, int64(end)); err != nil {
					t.Fatalf("Restore(%v, %d records, %d): %v", sp, len(rs), end, err)
				}
				checkpoints[i] = int64(end)
				record()
			}
			checkCommitted(t, fmt.Sprintf("crash %d: after the restore", crashNo), e, sp, log, int64(len(records)))
		}
	}

	// The last restart: the typed stores read what the application wrote.
	batch = e.NewBatch()
	for i, s := range specs {
		store, err := s.build(state.BuildContext{ApplicationID: "app", TaskID: "0_3", Partition: 3, Batch: batch, Changelog: log, Time: clock})
		if err != nil {
			t.Fatal(err)
		}
		checkTyped(t, "after the last restart", store, tables[i], clock.StreamTime())
	}
}

func cloneTables(ts []table) []table {
	out := make([]table, len(ts))
	for i, t := range ts {
		out[i] = t.clone()
	}
	return out
}

// checkCommitted checks that sp's committed state in e is exactly its
// changelog up to checkpoint (-1: none, an empty state).
func checkCommitted(t *rapid.T, when string, e state.Engine, sp state.StorePartition, log *storetest.Changelog, checkpoint int64) {
	t.Helper()
	got, err := storetest.Contents(e.Reader(sp))
	if err != nil {
		t.Fatalf("%s: read %v: %v", when, sp, err)
	}
	want := storetest.Fold(log.Records[sp.Store][:max(checkpoint, 0)])
	if d := storetest.Diff(got, want); d != "" {
		t.Fatalf("%s: committed state of %v is not the changelog up to its checkpoint %d: %s", when, sp, checkpoint, d)
	}
}

// checkTyped checks every read of a typed store against the model.
func checkTyped(t *rapid.T, when string, s *state.KeyValueStore[string, string], m table, now time.Time) {
	t.Helper()
	if got, want := render(s.All()), renderMap(m.visible(now)); got != want {
		t.Fatalf("%s: %s holds\n%s\nwant\n%s", when, s.Name(), got, want)
	}
	for _, k := range modelKeys {
		v, found, err := s.Get(k)
		wv, wfound := m.get(k, now)
		if err != nil || found != wfound || v != wv {
			t.Fatalf("%s: %s: Get(%q) = %q, %v, %v; want %q, %v", when, s.Name(), k, v, found, err, wv, wfound)
		}
	}
}

// TestCrashKilledProcess kills a process that writes to a pebble state
// directory on a real file system (SIGKILL: nothing is closed, nothing
// flushed), at a random moment of a long run of commit intervals, then
// checks the directory as TestCrashConsistency does: the checkpoint is one
// the process committed, the state is the changelog up to it, and restoring
// the changelog's committed records catches up.
//
// The child process stands for Kafka too: it appends each interval's
// changelog records to a file, then commits its batch; a line written
// whole is a committed transaction.
func TestCrashKilledProcess(t *testing.T) {
	if dir := os.Getenv("GREGOR_STATE_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKilledProcess$")
	cmd.Env = append(os.Environ(), "GREGOR_STATE_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Let it commit for a while: until its changelog has some hundreds of
	// intervals (pebble's WAL blocks are 32 KiB; they hold about 30).
	want := 200 + rand.IntN(300)
	deadline := time.Now().Add(20 * time.Second)
	for {
		data, _ := os.ReadFile(filepath.Join(dir, "changelog"))
		n := bytes.Count(data, []byte{'\n'})
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child committed %d intervals in 20s", n)
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	intervals, err := readChangelogFile(filepath.Join(dir, "changelog"))
	if err != nil {
		t.Fatal(err)
	}
	var records []storetest.Record
	ends := map[int64]bool{0: true}
	for _, iv := range intervals {
		records = append(records, iv...)
		ends[int64(len(records))] = true
	}
	e, err := pebble.Open(filepath.Join(dir, "state"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cp, ok, err := e.Checkpoint(crashSP)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		cp = 0
	}
	// The child may have been killed between its Kafka commit and its
	// batch's: the checkpoint may be one interval behind the file, or
	// more, since pebble had not written its last commits to the file
	// when the process died.
	if !ends[cp] || cp > int64(len(records)) {
		t.Fatalf("checkpoint %d after the kill is no interval's end (the changelog has %d records)", cp, len(records))
	}
	t.Logf("killed after %d intervals (%d records); the state directory holds the commit up to offset %d", len(intervals), len(records), cp)
	log := storetest.NewChangelog()
	for _, r := range records {
		log.Log(crashSP.Store, r.Key, r.Value, r.Timestamp)
	}
	log.CommitKafka()
	got, err := storetest.Contents(e.Reader(crashSP))
	if err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(got, storetest.Fold(records[:cp])); d != "" {
		t.Fatalf("state after the kill is not the changelog up to checkpoint %d: %s", cp, d)
	}
	if _, err := log.Restore(e, crashSP, 100); err != nil {
		t.Fatal(err)
	}
	got, err = storetest.Contents(e.Reader(crashSP))
	if err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(got, storetest.Fold(records)); d != "" {
		t.Fatalf("state after the restore is not the changelog: %s", d)
	}
}

var crashSP = state.StorePartition{Store: "counts", Partition: 0}

// crashChild is the process TestCrashKilledProcess kills: it runs commit
// intervals of a cached, logged store until it dies.
func crashChild(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(2)
	}
	f, err := os.OpenFile(filepath.Join(dir, "changelog"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fail(err)
	}
	e, err := pebble.Open(filepath.Join(dir, "state"), quiet)
	if err != nil {
		fail(err)
	}
	batch := e.NewBatch()
	log := storetest.NewChangelog()
	clock := storetest.NewClock(t0)
	store, err := storeSpec{name: crashSP.Store, cache: 2000}.build(state.BuildContext{Partition: crashSP.Partition, Batch: batch, Changelog: log, Time: clock})
	if err != nil {
		fail(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	deadline := time.Now().Add(time.Minute)
	for logged := 0; time.Now().Before(deadline); {
		for range 20 {
			k := fmt.Sprintf("k%03d", rng.IntN(300))
			if rng.IntN(5) == 0 {
				err = store.Delete(k)
			} else {
				err = store.Put(k, strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(200)))
			}
			if err != nil {
				fail(err)
			}
			clock.Advance(time.Millisecond)
		}
		if err := store.Flush(); err != nil {
			fail(err)
		}
		// The Kafka commit: this interval's records, in one write.
		records := log.Records[crashSP.Store]
		line, err := json.Marshal(records[logged:])
		if err != nil {
			fail(err)
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			fail(err)
		}
		logged = len(records)
		if err := batch.Commit(map[state.StorePartition]int64{crashSP: int64(logged)}); err != nil {
			fail(err)
		}
	}
	os.Exit(0)
}

// readChangelogFile reads the intervals crashChild wrote whole.
func readChangelogFile(name string) ([][]storetest.Record, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out [][]storetest.Record
	for {
		line, rest, ok := bytes.Cut(data, []byte{'\n'})
		if !ok {
			return out, nil // a line being written: not committed
		}
		var rs []storetest.Record
		if err := json.Unmarshal(line, &rs); err != nil {
			return nil, err
		}
		out = append(out, rs)
		data = rest
	}
}
