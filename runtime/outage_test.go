package runtime_test

// The outage test: Run must ride out a broker that goes away for a few
// seconds and comes back, by itself: no worker exit, no restart by an
// operator, and outputs still exact.

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// outageRate is the input records produced per second, before, during and
// after the outages: the worker runs under load when the broker goes, and
// finds a backlog when it comes back.
const outageRate = 3000

// TestOutageBrokerRestart stops the broker (a child process) twice while
// one exactly-once worker processes input produced in the background,
// keeps it down for 1 s (then, in the second subtest, 5 s) and starts it
// again on the same port and data dir. The first stop is a SIGTERM at a
// random moment; the second comes in the middle of a commit of the
// worker: the broker stops at its next EndTxn, without handling it (see
// brokerStopAtCommit), a moment a random stop rarely hits, since the
// worker mostly waits in a poll or in a flush, whose produce requests
// franz-go retries until the broker is back. The worker must never exit:
// it must retry, rejoin its group and go on processing, and commit again
// after each outage; at the end a clean stop and the checks of the crash
// tests (read_committed outputs exact, also with kcat; counts that only
// grow; stores at the expected counts).
//
// The broker is stopped as on SIGTERM, never SIGKILL: on reload after a
// SIGKILL, kfake aborts a transaction that was open without writing an
// abort marker, and every later batch of that producer id then stays
// invisible to read_committed readers, forever (shared/KFAKE.md, gotcha
// 1). A closed kfake persists its open transactions, as a Kafka broker
// keeps them.
//
// The background producer is a plain franz-go client: it retries a
// produce without limit by default, here up to a record delivery timeout
// of a minute, so it waits out the outages; the test fails, naming the
// producer, if it gives up.
func TestOutageBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test: child processes, tens of seconds")
	}
	for _, down := range []time.Duration{time.Second, 5 * time.Second} {
		t.Run(down.String(), func(t *testing.T) { outageBrokerRestart(t, down) })
	}
}

func outageBrokerRestart(t *testing.T, down time.Duration) {
	begin := time.Now()
	rng := crashRand(t)
	b := startBroker(t)
	ct := newCrashTest(t, b.addr)
	// Input for 16 s of the producer's time (it waits out an outage,
	// then goes on at its pace): through both outages, with some seconds
	// to spare for the worker to come back after the first.
	d := 16 * time.Second
	ct.produce(rng, int(outageRate*d/time.Second), d)

	w := ct.startWorker()
	exitedAt := watchExit(w)
	outages := []struct {
		what string
		stop func()
	}{
		{"at a random moment (SIGTERM)", func() { b.down(down) }},
		{"in the middle of a commit", func() { ct.downAtCommit(b, w, exitedAt, down) }},
	}
	ct.waitProgress(w)
	for i, o := range outages {
		n := i + 1
		// A random moment: the worker commits every 100 ms, so a
		// transaction is open, or being committed, nearly always.
		time.Sleep(time.Duration(50+rng.IntN(951)) * time.Millisecond)
		ct.requireRunning(w, exitedAt, "before outage %d", n)
		ct.requireInput(n)
		produced, consumed := ct.produced.Load(), ct.consumed()
		stop := time.Now()
		o.stop()
		back := time.Now()
		ct.requireRunning(w, exitedAt, "during outage %d (broker stopped %s at +%v, back at +%v)",
			n, o.what, stop.Sub(w.started).Round(time.Millisecond), back.Sub(w.started).Round(time.Millisecond))
		ct.requireProducer()
		t.Logf("outage %d: broker down %v, stopped %s, under %s; when it went, %d of %d records produced, %d committed as consumed",
			n, down, o.what, w.name, produced, ct.total, consumed)
		// The worker must process again, on its own: it reconnects,
		// rejoins its group and commits.
		ct.waitCommitted(w, exitedAt, n)
		t.Logf("outage %d: %s committed again %v after the broker came back", n, w.name, time.Since(back).Round(time.Millisecond))
	}
	ct.requireRunning(w, exitedAt, "after the outages")
	ct.finishWith(w)
	ct.check()
	t.Logf("total %v", time.Since(begin).Round(time.Millisecond))
}

// downAtCommit stops the broker like broker.down, but in the middle of a
// commit of the worker w: SIGUSR1 arms it to stop at the next EndTxn that
// commits (see brokerStopAtCommit). It is kept down for d from its exit,
// then started again on the same port and data dir.
func (ct *crashTest) downAtCommit(b *broker, w *child, exitedAt <-chan time.Time, d time.Duration) {
	t := ct.t
	t.Helper()
	start := time.Now()
	if err := b.cur.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatalf("arm %s: %v", b.cur.name, err)
	}
	deadline := time.Now().Add(crashDeadline)
	for !b.cur.exited() {
		ct.requireRunning(w, exitedAt, "while the broker waited for its commit")
		if time.Now().After(deadline) {
			t.Fatalf("%s armed to stop at a commit: no commit came in %v (%d of %d records produced)",
				b.cur.name, crashDeadline, ct.produced.Load(), ct.total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b.cur.err != nil {
		t.Fatalf("%s did not stop cleanly at a commit: %v", b.cur.name, b.cur.err)
	}
	stopped := time.Now()
	time.Sleep(d)
	b.start()
	t.Logf("broker down at a commit: stopped %v after it was armed, kept down %v, answering again %v after that",
		stopped.Sub(start).Round(time.Millisecond), d, time.Since(stopped).Round(time.Millisecond))
}

// watchExit returns a channel that receives the moment the child w exits.
func watchExit(w *child) <-chan time.Time {
	at := make(chan time.Time, 1)
	go func() {
		<-w.done
		at <- time.Now()
	}()
	return at
}

// requireRunning fails the test if the worker w has exited; when is
// where the test stands, for the message.
func (ct *crashTest) requireRunning(w *child, exitedAt <-chan time.Time, when string, args ...any) {
	t := ct.t
	t.Helper()
	if !w.exited() {
		return
	}
	at := <-exitedAt
	t.Fatalf("%s exited %s, at +%v: %v (its log, below, has Run's error)",
		w.name, fmt.Sprintf(when, args...), at.Sub(w.started).Round(time.Millisecond), w.err)
}

// requireInput fails the test if the input is all produced before
// outage n: the worker then took too long to come back from the one
// before, and the outage would come without load (and a stop at a
// commit would wait for a commit that no input brings).
func (ct *crashTest) requireInput(n int) {
	t := ct.t
	t.Helper()
	select {
	case <-ct.prodDone:
		t.Fatalf("input all produced (%d records) before outage %d: the worker took too long to process again", ct.total, n)
	default:
	}
}

// requireProducer fails the test if the background producer gave up:
// a fault of the test's client, not of the worker.
func (ct *crashTest) requireProducer() {
	t := ct.t
	t.Helper()
	select {
	case <-ct.prodDone:
		if ct.prodErr != nil {
			t.Fatalf("the test's input producer failed (%d of %d records written): %v", ct.produced.Load(), ct.total, ct.prodErr)
		}
	default:
	}
}

// waitCommitted waits until the worker w commits input offsets past where
// the group stood when the broker came back from outage n. The committed
// offsets of crash-in move only with a committed transaction (as in
// waitProgress).
func (ct *crashTest) waitCommitted(w *child, exitedAt <-chan time.Time, n int) {
	ct.t.Helper()
	ct.awaitCommit(func() {
		ct.requireRunning(w, exitedAt, "after outage %d, before it committed again", n)
		ct.requireProducer()
	}, func(base int64) string {
		return fmt.Sprintf("%s committed nothing in the %v after outage %d (input offsets committed: %d; %d of %d records produced)",
			w.name, crashDeadline, n, base, ct.produced.Load(), ct.total)
	})
}
