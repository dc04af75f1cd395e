package runtime

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/internal/assign"
	"github.com/gregorstream/gregor/runtime/task"
)

func (t *thread) onAssigned(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	t.r.setThreadState(t.id, StateRebalancing, nil)
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range parts {
		if t.assigned[topic] == nil {
			t.assigned[topic] = map[int32]bool{}
		}
		for _, p := range ps {
			t.assigned[topic][p] = true
		}
	}
	t.changed = true
}

// onRevoked records a revocation. With AtLeastOnce it runs while the loop
// waits in a poll (rebalances are blocked otherwise) and commits first, so
// the next owner starts where this one stopped. With ExactlyOnce it may run
// at any time: the session aborts the open transaction at its next End,
// and the loop resets its tasks.
func (t *thread) onRevoked(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	if t.r.cfg.guarantee == AtLeastOnce && len(parts) > 0 {
		if err := t.commit(ctx); err != nil {
			t.log.Error("runtime: commit on revocation failed; records since the last commit will be processed again", "err", err)
			t.closeTasks(false)
		}
	}
	t.remove(parts, false)
}

// onLost records that the group forgot this member (its session expired,
// or its generation is gone): its partitions may already be another's.
func (t *thread) onLost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	t.log.Warn("runtime: the group took this member's partitions away (session expired or fenced); uncommitted work is dropped and the member rejoins")
	t.remove(parts, true)
}

func (t *thread) remove(parts map[string][]int32, lost bool) {
	t.r.setThreadState(t.id, StateRebalancing, nil)
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(t.assigned[topic], p)
		}
	}
	t.changed = true
	t.lost = t.lost || lost
}

// reconcile acts on a rebalance recorded by the callbacks: it closes the
// tasks that left and creates (restoring their stores) the tasks that came.
// It reports whether the records of the current poll must be dropped (an
// aborted transaction rewound the consumer).
func (t *thread) reconcile(ctx context.Context) (discard bool, err error) {
	t.mu.Lock()
	changed, lost := t.changed, t.lost
	t.changed, t.lost = false, false
	want := map[processor.TaskID]bool{}
	for topic, ps := range t.assigned {
		sub, ok := t.layout.topicSub[topic]
		if !ok {
			continue
		}
		for p := range ps {
			want[processor.TaskID{SubTopology: sub, Partition: p}] = true
		}
	}
	t.mu.Unlock()
	if !changed {
		return false, nil
	}
	t.r.setThreadState(t.id, StateRebalancing, nil)
	if t.sess != nil {
		// The session aborts a transaction a rebalance interrupted, and
		// rewinds the consumer to the committed offsets: this interval's
		// work is gone, and so must be the tasks' uncommitted state.
		// Ending also clears the session's revoked flag when no
		// transaction is open. The records of this poll come again.
		hadTxn := t.inTxn
		if err := t.abort(ctx, shutdownTimeout); err != nil {
			return false, fmt.Errorf("abort transaction after rebalance: %w", err)
		}
		discard = true
		if hadTxn {
			t.log.Info("runtime: rebalance during a transaction: aborted it, tasks restart from the last commit")
			t.closeTasks(false)
		}
	} else if lost {
		t.closeTasks(false)
	}
	for id := range t.tasks {
		if !want[id] {
			t.closeTask(id)
			t.departed[id] = time.Now()
		}
	}
	for id := range t.paused {
		if !want[id] {
			// A failed task that moved away: its next owner meets the
			// record again, and reports it.
			t.resume(id)
			t.r.forgetFailure(id)
			t.r.release(id, t.id)
			t.departed[id] = time.Now()
		}
	}
	for id := range want {
		delete(t.departed, id)
		t.r.claim(id, t.id)
	}
	var ids []processor.TaskID
	for id := range want {
		if t.tasks[id] != nil {
			continue
		}
		if _, failed := t.r.failure(id); failed {
			t.pause(id)
			continue
		}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareTaskIDs)
	if len(ids) > 0 {
		t.r.setThreadState(t.id, StateRestoring, nil)
		if err := t.restore(ctx, ids); err != nil {
			return discard, err
		}
		for _, id := range ids {
			tk, err := task.New(task.Config{ApplicationID: t.r.cfg.appID, Topology: t.r.topo, ID: id, Collector: t, Engine: t.engine,
				OnLate: t.lateRecord(id)})
			if err != nil {
				return discard, err
			}
			if err := tk.Init(); err != nil {
				tk.Close()
				return discard, err
			}
			t.tasks[id] = tk
		}
	}
	owned := make([]assign.TaskID, 0, len(want))
	for id := range want {
		owned = append(owned, assign.TaskID{SubTopology: id.SubTopology, Partition: id.Partition})
	}
	t.owned.Store(&owned)
	t.m.rebalances.Add(context.Background(), 1)
	t.r.setThreadState(t.id, StateRunning, t.taskIDs())
	t.log.Info("runtime: assignment", "tasks", taskList(t.tasks), "failed", len(t.paused))
	return discard, nil
}

// pause stops fetching the input partitions of a failed task.
func (t *thread) pause(id processor.TaskID) {
	t.paused[id] = true
	t.cl.PauseFetchPartitions(t.partitionsOf(id))
}

// resume fetches a failed task's partitions again, once it moved away.
func (t *thread) resume(id processor.TaskID) {
	delete(t.paused, id)
	t.cl.ResumeFetchPartitions(t.partitionsOf(id))
}

// partitionsOf returns the input partitions of a task.
func (t *thread) partitionsOf(id processor.TaskID) map[string][]int32 {
	out := map[string][]int32{}
	for _, topic := range t.layout.subTopics[id.SubTopology] {
		out[topic] = []int32{id.Partition}
	}
	return out
}

// forget drops a closed task's lag gauges.
func (t *thread) forget(id processor.TaskID) {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	for _, topic := range t.layout.subTopics[id.SubTopology] {
		delete(t.m.lag, task.TopicPartition{Topic: topic, Partition: id.Partition})
	}
}

// closeTasks closes every task. Without clean, their uncommitted state is
// dropped: the stores stay at their last commit, and the tasks are created
// again, from it, at the next reconcile.
func (t *thread) closeTasks(clean bool) {
	for id := range t.tasks {
		t.closeTask(id)
	}
	if !clean {
		t.mu.Lock()
		t.changed = true
		t.mu.Unlock()
	}
}

// closeTask closes a task, dropping what it has not committed, and
// forgets it.
func (t *thread) closeTask(id processor.TaskID) {
	if err := t.tasks[id].Close(); err != nil {
		t.log.Warn("runtime: close task", "task", id, "err", err)
	}
	delete(t.tasks, id)
	t.forget(id)
	t.r.release(id, t.id)
}

func compareTaskIDs(a, b processor.TaskID) int {
	if a.SubTopology != b.SubTopology {
		return a.SubTopology - b.SubTopology
	}
	return int(a.Partition - b.Partition)
}

// taskIDs returns the ids of the thread's tasks, in order.
func (t *thread) taskIDs() []processor.TaskID {
	return slices.SortedFunc(maps.Keys(t.tasks), compareTaskIDs)
}

func taskList(m map[processor.TaskID]*task.Task) []string {
	var out []string
	for id := range m {
		out = append(out, id.String())
	}
	slices.Sort(out)
	return out
}
