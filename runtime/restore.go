package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime/task"
	"github.com/gregorstream/gregor/state"
)

// restoreTarget is one changelog partition to replay into a store-partition.
type restoreTarget struct {
	sp        state.StorePartition
	next, end int64 // next offset to apply; the end (the high watermark when the task came)
	stable    int64 // the last stable offset then
	waits     bool  // stable was below end: a transaction was open
}

// loggedStores returns the stores of a sub-topology that have a changelog.
func (r *Runtime) loggedStores(sub int) []string {
	var out []string
	for _, store := range r.subs[sub].Stores {
		if b, _ := r.topo.StoreBuilder(store); state.Logged(b) {
			out = append(out, store)
		}
	}
	return out
}

// changelogsOf returns the changelog partitions of a task's logged stores.
func (r *Runtime) changelogsOf(id processor.TaskID) map[task.TopicPartition]state.StorePartition {
	out := map[task.TopicPartition]state.StorePartition{}
	for _, store := range r.loggedStores(id.SubTopology) {
		out[task.TopicPartition{Topic: state.ChangelogTopic(r.cfg.appID, store), Partition: id.Partition}] =
			state.StorePartition{Store: store, Partition: id.Partition}
	}
	return out
}

// restore brings the stores of new tasks up to the end of their changelogs,
// read_committed, from their checkpoints: after a clean stop or a move back,
// only the tail. A store whose checkpoint lies before the changelog's start
// (compaction or retention removed records it had not seen) or after its
// end (the topic was recreated) is wiped and restored from the start.
func (t *thread) restore(ctx context.Context, ids []processor.TaskID) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
	}
	targets := map[task.TopicPartition]*restoreTarget{}
	topicSet := map[string]bool{}
	for _, id := range ids {
		for tp, sp := range t.r.changelogsOf(id) {
			targets[tp] = &restoreTarget{sp: sp}
			topicSet[tp.Topic] = true
		}
	}
	if len(targets) == 0 {
		return nil
	}
	var topics []string
	for name := range topicSet {
		topics = append(topics, name)
	}
	adm := kadm.NewClient(t.cl)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("restore: list changelog start offsets: %w", err)
	}
	// The end to restore to is the high watermark, not the last stable
	// offset: records below the high watermark may sit behind a
	// transaction still open (a stalled or dead previous owner's), and a
	// later owner may have committed above it. Restoring only to the last
	// stable offset would miss those committed records for good, since
	// the committed input offsets are already past them. A read_committed
	// consumer reaches the high watermark once every transaction open
	// below it has ended (committed, aborted, or timed out by the broker).
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("restore: list changelog end offsets: %w", err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("restore: list changelog stable offsets: %w", err)
	}
	consume := map[string]map[int32]kgo.Offset{}
	total := int64(0)
	for tp, tg := range targets {
		so, ok1 := starts.Lookup(tp.Topic, tp.Partition)
		eo, ok2 := ends.Lookup(tp.Topic, tp.Partition)
		lso, ok3 := stable.Lookup(tp.Topic, tp.Partition)
		if !ok1 || !ok2 || !ok3 || so.Err != nil || eo.Err != nil || lso.Err != nil {
			return fmt.Errorf("restore: offsets of changelog %s: %w", tp, errors.Join(so.Err, eo.Err, lso.Err))
		}
		if lso.Offset < eo.Offset {
			tg.stable, tg.waits = lso.Offset, true
		}
		cp, has, err := t.engine.Checkpoint(tg.sp)
		if err != nil {
			return fmt.Errorf("restore %s: %w", tp, err)
		}
		tg.next, tg.end = 0, eo.Offset
		if has {
			tg.next = cp
		}
		if has && (cp < so.Offset || cp > eo.Offset) {
			t.log.Warn("runtime: store checkpoint outside its changelog: wiping the store and restoring from the start",
				"store", tg.sp.Store, "partition", tg.sp.Partition, "checkpoint", cp, "log_start", so.Offset, "log_end", eo.Offset)
			if err := t.engine.Drop(tg.sp); err != nil {
				return fmt.Errorf("restore %s: wipe: %w", tp, err)
			}
			tg.next = so.Offset
		}
		tg.next = max(tg.next, so.Offset)
		if tg.next >= tg.end {
			delete(targets, tp)
			continue
		}
		if consume[tp.Topic] == nil {
			consume[tp.Topic] = map[int32]kgo.Offset{}
		}
		consume[tp.Topic][tp.Partition] = kgo.NewOffset().At(tg.next)
		total += tg.end - tg.next
		t.m.addRestoreLeft(tg.sp.Store, tg.end-tg.next)
	}
	if len(targets) == 0 {
		return nil
	}
	start := time.Now()
	t.log.Info("runtime: restoring stores", "partitions", len(targets), "records_at_most", total)
	for tp, tg := range targets {
		if tg.waits {
			t.log.Info("runtime: changelog has a transaction open below its end: restore waits until it ends",
				"changelog", tp.String(), "stable_offset", tg.stable, "end", tg.end, "wait_at_most", t.restoreWait())
		}
	}
	deadline := start.Add(t.restoreWait())
	cl, err := kgo.NewClient(append(t.r.clientOpts(t.brokers),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("restore: client: %w", err)
	}
	defer cl.Close()
	batch := make([]state.RestoreRecord, 0, t.r.cfg.restoreBatch)
	restored, lastLog := int64(0), time.Now()
	for len(targets) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollRecords(pctx, t.r.cfg.restoreBatch)
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if time.Now().After(deadline) {
			return t.restoreStalled(targets)
		}
		if err := fetchError(fs); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		var applyErr error
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			tp := task.TopicPartition{Topic: p.Topic, Partition: p.Partition}
			tg := targets[tp]
			if applyErr != nil || tg == nil || len(p.Records) == 0 {
				return
			}
			batch = batch[:0]
			last := int64(-1)
			for _, kr := range p.Records {
				last = kr.Offset
				if kr.Attrs.IsControl() || kr.Offset >= tg.end {
					continue
				}
				batch = append(batch, state.RestoreRecord{Key: kr.Key, Value: kr.Value})
			}
			next := min(last+1, tg.end)
			if err := t.engine.Restore(tg.sp, batch, next); err != nil {
				applyErr = fmt.Errorf("restore %s: %w", tp, err)
				return
			}
			t.m.restored.Add(context.Background(), int64(len(batch)), metric.WithAttributes(attribute.String("store", tg.sp.Store)))
			t.m.addRestoreLeft(tg.sp.Store, -(next - tg.next))
			restored += int64(len(batch))
			tg.next = next
			if tg.next >= tg.end {
				t.m.addRestoreLeft(tg.sp.Store, -(tg.end - tg.next))
				delete(targets, tp)
				cl.RemoveConsumePartitions(map[string][]int32{p.Topic: {p.Partition}})
			}
		})
		if applyErr != nil {
			return applyErr
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			t.log.Info("runtime: restoring", "restored", restored, "partitions_left", len(targets), "waiting_on", waitingOn(targets))
		}
	}
	el := time.Since(start)
	t.log.Info("runtime: restored stores", "records", restored, "took", el.Round(time.Millisecond),
		"records_per_s", int64(float64(restored)/max(el.Seconds(), 1e-9)))
	return nil
}

// restoreWait bounds the restore of one assignment: a transaction open
// below a changelog's end ends within its producer's transaction timeout
// (the broker aborts it then), so waiting twice that, and at least 30 s,
// covers a previous owner with the same settings.
func (t *thread) restoreWait() time.Duration {
	return max(2*t.r.cfg.txnTimeout, 30*time.Second)
}

// waitingOn lists the changelog partitions whose restore waits on an open
// transaction: their position has reached the last stable offset seen at
// the start, below the end.
func waitingOn(targets map[task.TopicPartition]*restoreTarget) []string {
	return positions(targets, func(tg *restoreTarget) bool { return tg.waits && tg.next >= tg.stable })
}

// positions lists the targets that keep selects, as "changelog at next of
// end", in order.
func positions(targets map[task.TopicPartition]*restoreTarget, keep func(*restoreTarget) bool) []string {
	var out []string
	for tp, tg := range targets {
		if keep(tg) {
			out = append(out, fmt.Sprintf("%s at %d of %d", tp, tg.next, tg.end))
		}
	}
	slices.Sort(out)
	return out
}

// restoreStalled is the error of a restore that did not reach its ends in
// time: a transaction below a changelog's end stayed open longer than any
// transaction timeout of ours allows.
func (t *thread) restoreStalled(targets map[task.TopicPartition]*restoreTarget) error {
	all := positions(targets, func(*restoreTarget) bool { return true })
	return fmt.Errorf("restore: %w after %v: %s", ErrRestoreStalled, t.restoreWait(), strings.Join(all, ", "))
}

// fetchError returns the errors of a restore consumer's poll.
func fetchError(fs kgo.Fetches) error {
	var errs []error
	fs.EachError(func(topic string, p int32, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
			return
		}
		errs = append(errs, fmt.Errorf("fetch %s/%d: %w", topic, p, err))
	})
	return errors.Join(errs...)
}
