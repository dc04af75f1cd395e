package runtime

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/gregorstream/gregor/processor"
)

// State is the state of a Runtime, as Kafka Streams' KafkaStreams.State.
type State int

const (
	// StateCreated: New returned, Run has not started.
	StateCreated State = iota
	// StateStarting: Run connects, checks and creates topics, opens
	// local state.
	StateStarting
	// StateRebalancing: a thread joins the group or takes a new
	// assignment (also after a transient error, while it rejoins).
	StateRebalancing
	// StateRestoring: a thread restores the stores of new tasks from
	// their changelogs; it processes once they are restored.
	StateRestoring
	// StateRunning: every thread has its assignment and processes.
	StateRunning
	// StateStopping: Run's context ended or a signal came; threads
	// commit and leave.
	StateStopping
	// StateStopped: Run returned nil.
	StateStopped
	// StateFailed: Run returned an error (Status.Err).
	StateFailed
)

var stateNames = [...]string{"created", "starting", "rebalancing", "restoring", "running", "stopping", "stopped", "failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// TaskFailure is a task stopped by a record that failed with the Fail
// action. The task keeps its partitions, paused: no record of them is
// processed or committed past its last commit, while the other tasks go
// on. Restart the instance once the cause is fixed (or reset the input,
// or set a handler that skips or dead-letters), and the task processes
// from its last commit again.
type TaskFailure struct {
	Task      processor.TaskID
	Topic     string // the record's
	Partition int32
	Offset    int64
	Err       error
	At        time.Time
}

// Status is a snapshot of a Runtime: its state, the tasks its threads run
// and the tasks that failed.
type Status struct {
	State  State
	Tasks  []processor.TaskID // active tasks of this instance, in order
	Failed []TaskFailure      // failed tasks of this instance, in task order
	Err    error              // Run's error, in StateFailed
}

// Status returns the runtime's current state. It is safe to call from
// any goroutine, at any time.
func (r *Runtime) Status() Status {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	return r.statusLocked()
}

// WithStateListener calls f with the previous state and the new Status at
// every change of state and at every task failure. f runs on the runtime's
// goroutines, one call at a time and in order, while the runtime holds its
// state lock: it must return quickly and must not call the Runtime's
// methods (it has the Status).
func WithStateListener(f func(old State, s Status)) Option {
	return func(c *config) { c.listener = f }
}

// statusLocked builds the Status.
//
// REQUIRES: r.stateMu held.
func (r *Runtime) statusLocked() Status {
	s := Status{State: r.state, Err: r.runErr}
	for _, ids := range r.threadTasks {
		s.Tasks = append(s.Tasks, ids...)
	}
	slices.SortFunc(s.Tasks, compareTaskIDs)
	for _, id := range slices.SortedFunc(maps.Keys(r.failed), compareTaskIDs) {
		s.Failed = append(s.Failed, r.failed[id])
	}
	return s
}

// setState moves the runtime to st (and tells the listener).
func (r *Runtime) setState(st State, err error) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	r.setStateLocked(st, err)
}

// setStateLocked moves the runtime to st.
//
// REQUIRES: r.stateMu held.
func (r *Runtime) setStateLocked(st State, err error) {
	old := r.state
	if err != nil {
		r.runErr = err
	}
	if old == st {
		return
	}
	r.state = st
	lvl := slog.LevelInfo
	if st == StateFailed {
		lvl = slog.LevelError
	}
	r.log.Log(context.Background(), lvl, "runtime: state "+st.String(), "from", old.String())
	if r.cfg.listener != nil {
		r.cfg.listener(old, r.statusLocked())
	}
}

// setThreadState records a thread's state and tasks, and derives the
// runtime's: rebalancing if a thread is, else restoring if one is, else
// running. It changes nothing once the runtime stops.
func (r *Runtime) setThreadState(thread int, st State, tasks []processor.TaskID) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	r.threadStates[thread] = st
	if tasks != nil {
		r.threadTasks[thread] = tasks
	}
	if r.state >= StateStopping || r.state < StateStarting {
		return
	}
	agg := StateRunning
	for i := range r.cfg.threads {
		switch ts, ok := r.threadStates[i]; {
		case !ok || ts == StateRebalancing:
			agg = StateRebalancing
		case ts == StateRestoring && agg == StateRunning:
			agg = StateRestoring
		}
	}
	r.setStateLocked(agg, nil)
}

// taskFailed records a failed task and tells the listener.
func (r *Runtime) taskFailed(f TaskFailure) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	r.failed[f.Task] = f
	if r.cfg.listener != nil {
		r.cfg.listener(r.state, r.statusLocked())
	}
}

// failure returns the failure of a task of this instance, if it failed.
func (r *Runtime) failure(id processor.TaskID) (TaskFailure, bool) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	f, ok := r.failed[id]
	return f, ok
}

// forgetFailure drops a failed task's record once it moved away: its next
// owner meets the record again, and reports it.
func (r *Runtime) forgetFailure(id processor.TaskID) {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	delete(r.failed, id)
}
