package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/runtime"
)

// TestTransactionTimeoutBelowSession: a transaction timeout at or above
// the session timeout is refused; a default one is lowered below a short
// session timeout, and the runtime says so.
func TestTransactionTimeoutBelowSession(t *testing.T) {
	topo := wordCountTopology(t)
	base := []runtime.Option{runtime.WithApplicationID("timeouts"), runtime.WithBrokers("127.0.0.1:1")}
	for _, tc := range []struct {
		name    string
		opts    []runtime.Option
		refused bool
		lowered string
	}{
		{"defaults", nil, false, ""},
		{"explicit above", []runtime.Option{runtime.WithClientOptions(kgo.SessionTimeout(6 * time.Second)), runtime.WithTransactionTimeout(6 * time.Second)}, true, ""},
		{"explicit above the default session", []runtime.Option{runtime.WithTransactionTimeout(time.Minute)}, true, ""},
		{"explicit below", []runtime.Option{runtime.WithClientOptions(kgo.SessionTimeout(6 * time.Second)), runtime.WithTransactionTimeout(2 * time.Second)}, false, ""},
		{"default lowered", []runtime.Option{runtime.WithClientOptions(kgo.SessionTimeout(8 * time.Second))}, false, "transaction_timeout=4s"},
		{"at-least-once ignores it", []runtime.Option{runtime.WithGuarantee(runtime.AtLeastOnce), runtime.WithTransactionTimeout(time.Minute)}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := append(slices.Clone(base), runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			_, err := runtime.New(topo, append(opts, tc.opts...)...)
			if tc.refused {
				if !errors.Is(err, runtime.ErrConfig) || !strings.Contains(err.Error(), "session timeout") {
					t.Fatalf("New = %v, want ErrConfig naming the session timeout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			if tc.lowered != "" && !strings.Contains(logs.String(), tc.lowered) {
				t.Errorf("log does not say %s:\n%s", tc.lowered, logs.String())
			}
		})
	}
}

// TestStopDuringStartup: a context that ends while Run cannot reach the
// brokers, or before Run starts, is a clean stop.
func TestStopDuringStartup(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, name := range []string{"unreachable", "cancelled before"} {
		t.Run(name, func(t *testing.T) {
			rt, err := runtime.New(wordCountTopology(t), runtime.WithApplicationID("startup"), runtime.WithBrokers(addr),
				runtime.WithStateDir(t.TempDir()), runtime.WithLogger(testLogger(t)), runtime.WithoutSignalHandler())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if name == "cancelled before" {
				cancel()
			} else {
				time.AfterFunc(500*time.Millisecond, cancel)
			}
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- rt.Run(ctx) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("Run did not return after its context ended")
			}
			if s := rt.Status(); s.State != runtime.StateStopped {
				t.Errorf("state %v, want stopped", s.State)
			}
		})
	}
}

// TestStatusStates: the state listener sees a run go from starting through
// rebalancing to running, then stopping and stopped, and Status lists the
// tasks.
func TestStatusStates(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "lines"), kfake.SeedTopics(2, "word-counts"))
	addrs := c.ListenAddrs()
	want := produceLines(t, addrs, 100, 10)
	var mu sync.Mutex
	var seen []runtime.State
	rt, err := runtime.New(wordCountTopology(t), runtime.WithApplicationID("states"), runtime.WithBrokers(addrs...),
		runtime.WithStateDir(t.TempDir()), runtime.WithLogger(testLogger(t)), runtime.WithDynamicMembership(),
		runtime.WithStateListener(func(_ runtime.State, s runtime.Status) {
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 || seen[len(seen)-1] != s.State {
				seen = append(seen, s.State)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if s := rt.Status(); s.State != runtime.StateCreated {
		t.Fatalf("state before Run: %v", s.State)
	}
	stop := runAsync(t, rt)
	readCounts(t, addrs, want)
	s := awaitStatus(t, rt, func(s runtime.Status) bool { return s.State == runtime.StateRunning && len(s.Tasks) == 4 })
	if len(s.Failed) != 0 || s.Err != nil {
		t.Errorf("status %+v", s)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Rebalancing (and restoring) may come more than once before
	// running; the rest is fixed.
	ok := len(seen) >= 5 && seen[0] == runtime.StateStarting && seen[1] == runtime.StateRebalancing &&
		seen[len(seen)-3] == runtime.StateRunning && seen[len(seen)-2] == runtime.StateStopping && seen[len(seen)-1] == runtime.StateStopped
	for _, st := range seen {
		ok = ok && st != runtime.StateFailed && st != runtime.StateCreated
	}
	if !ok {
		t.Errorf("states %v, want starting, rebalancing, ..., running, stopping, stopped", seen)
	}
}

// TestFencedByNewerInstance: a second process with the same process id (a
// copied state directory) takes the first one's static member instance id
// and transactional id. The two fence each other until the group fences
// one's instance id: that one stops with ErrFenced instead of fighting on
// (which of the two depends on who rejoined last), and the other runs on.
func TestFencedByNewerInstance(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(2, "lines"), kfake.SeedTopics(2, "word-counts"))
	addrs := c.ListenAddrs()
	want := produceLines(t, addrs, 100, 10)
	dirs := []string{t.TempDir(), t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rts := make([]*runtime.Runtime, 2)
	errs := make(chan int, 2)
	runErr := make([]error, 2)
	for i, dir := range dirs {
		if i == 1 {
			awaitStatus(t, rts[0], func(s runtime.Status) bool { return s.State == runtime.StateRunning && len(s.Tasks) == 4 })
			pid, err := os.ReadFile(filepath.Join(dirs[0], "process-id"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "process-id"), pid, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		rt, err := runtime.New(wordCountTopology(t), runtime.WithApplicationID("fenced"), runtime.WithBrokers(addrs...),
			runtime.WithStateDir(dir), runtime.WithLogger(testLogger(t).With("instance", i)), runtime.WithoutSignalHandler())
		if err != nil {
			t.Fatal(err)
		}
		rts[i] = rt
		go func() { runErr[i] = rt.Run(ctx); errs <- i }()
	}
	var fenced int
	select {
	case fenced = <-errs:
		if !errors.Is(runErr[fenced], runtime.ErrFenced) {
			t.Fatalf("instance %d: Run = %v, want ErrFenced", fenced, runErr[fenced])
		}
		if s := rts[fenced].Status(); s.State != runtime.StateFailed || !errors.Is(s.Err, runtime.ErrFenced) {
			t.Errorf("fenced instance's status %+v", s)
		}
	case <-ctx.Done():
		t.Fatal("neither instance stopped with the same instance id taken by the other")
	}
	other := rts[1-fenced]
	awaitStatus(t, other, func(s runtime.Status) bool { return s.State == runtime.StateRunning && len(s.Tasks) == 4 })
	// The survivor processes new input.
	produceWords(t, addrs, 100, 1, want, func(int) string { return "w0 w1" })
	readCounts(t, addrs, want)
	cancel()
	if i := <-errs; runErr[i] != nil {
		t.Errorf("instance %d: Run = %v after its context ended", i, runErr[i])
	}
}
