// Command wordcount runs the classic word count on Kafka with the gregor
// runtime, exactly once, and prints the counts as they change.
//
// It writes a bundled story (keeper.txt, embedded in the binary) to the
// topic wordcount-lines, one line per record keyed by its line number, and
// runs the topology
//
//	wordcount-lines → FlatMapValues(lower-cased words, punctuation stripped)
//	                → GroupBy(word) → Count("counts") → ToStream → wordcount-counts
//
// The text goes out a chapter at a time, --pace (300 ms) apart, so that
// the counts visibly change; --pace 0 writes it at once. Meanwhile it reads
// wordcount-counts (read_committed) and prints, every second, the updates
// seen, the distinct words and the current top 5. When
// every word's count is the one computed locally from the text, it prints
// the top 20, stops the runtime and exits 0.
//
//	go run ./examples/wordcount
//
// With no broker configured (no --brokers flag, no GREGOR_BROKERS), it
// starts an embedded Kafka broker (franz-go's kfake) on 127.0.0.1:9092, or
// on a free port if 9092 is taken, and logs how to connect to it. State
// (the stores and the embedded broker's data) lives in a fresh temporary
// directory, removed at exit, so every run starts clean; --state-dir keeps
// it, and a later run with the same directory counts on from where the
// last one stopped.
//
//	go run ./examples/wordcount --follow
//
// keeps running once the text is counted and keeps printing the counts as
// they change: produce more lines, for instance with
// `kcat -b 127.0.0.1:9092 -t wordcount-lines -P`, and stop it with Ctrl-C.
//
//	go run ./examples/wordcount --brokers host:9092[,host:9093]
//
// runs against any Kafka (GREGOR_BROKERS=host:9092 does the same). The
// topics are created with 4 partitions if missing; counts left in
// wordcount-counts by earlier runs are read first, and this run's text is
// counted on top of them.
package main

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gregorstream/gregor/dsl"
	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/runtime"
	"github.com/gregorstream/gregor/serde"
)

//go:embed keeper.txt
var text string

const (
	appID       = "wordcount"
	linesTopic  = "wordcount-lines"
	countsTopic = "wordcount-counts"
	partitions  = 4
	// embeddedPort is the embedded broker's preferred port; a free one is
	// chosen when it is taken.
	embeddedPort = 9092
	// stopTimeout bounds the runtime's shutdown (its own final commit is
	// bounded by 30 s).
	stopTimeout = 45 * time.Second
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	slog.SetDefault(log)
	if err := run(log); err != nil {
		log.Error("wordcount failed", "err", err)
		os.Exit(1)
	}
}

// words splits a line into lower-cased words: runs of letters, digits and
// apostrophes, without leading or trailing apostrophes.
func words(line string) []string {
	fields := strings.FieldsFunc(strings.ToLower(line), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	out := fields[:0]
	for _, w := range fields {
		if w = strings.Trim(w, "'"); w != "" {
			out = append(out, w)
		}
	}
	return out
}

func topology() (*processor.Topology, error) {
	b := dsl.NewBuilder()
	b.Stream(linesTopic, serde.String(), serde.String()).
		FlatMapValues(words, dsl.Named("words")).
		GroupBy(func(_ string, w string) string { return w }, serde.String(), dsl.Named("by-word")).
		Count(dsl.Named("counts")).
		ToStream().
		To(countsTopic)
	topo, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build topology: %w", err)
	}
	return topo, nil
}

func run(log *slog.Logger) (err error) {
	brokersFlag := flag.String("brokers", "", "comma-separated Kafka brokers, host:port (default: $"+runtime.BrokersEnv+", else an embedded broker)")
	follow := flag.Bool("follow", false, "keep running once the text is counted, printing the counts as they change, until Ctrl-C")
	stateDirFlag := flag.String("state-dir", "", "directory of the state stores and of the embedded broker's data, kept at exit (default: a fresh temporary directory, removed at exit)")
	pace := flag.Duration("pace", 300*time.Millisecond, "pause between the chapters of the text as it is produced, to watch the counts change; 0 writes it at once")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long to wait for the text to be counted")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: wordcount [--follow] [--brokers host:port[,host:port]] [--state-dir dir] [--pace d] [--timeout d]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("unexpected arguments: %q", flag.Args())
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	start := time.Now()

	// State directory: a fresh one per run unless --state-dir is given.
	stateDir, tempState := *stateDirFlag, *stateDirFlag == ""
	if tempState {
		if stateDir, err = os.MkdirTemp("", "gregor-wordcount-"); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(stateDir); rerr != nil {
				log.Warn("could not remove the state directory", "dir", stateDir, "err", rerr)
			}
		}()
	} else if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}

	// Brokers: --brokers, GREGOR_BROKERS, or an embedded broker.
	brokers := splitBrokers(*brokersFlag)
	if len(brokers) == 0 {
		brokers = splitBrokers(os.Getenv(runtime.BrokersEnv))
	}
	if len(brokers) == 0 {
		c, err := startBroker(log, filepath.Join(stateDir, "broker"))
		if err != nil {
			return err
		}
		defer c.Close() // after the runtime and the clients: deferred first
		brokers = c.ListenAddrs()
	} else {
		log.Info("using brokers", "brokers", strings.Join(brokers, ","))
	}

	// The text is counted within the deadline; --follow then runs until a signal.
	dctx, cancelDeadline := context.WithTimeout(ctx, *timeout)
	defer cancelDeadline()
	waitErr := func(what string) error {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while %s: %w", what, ctx.Err())
		}
		return fmt.Errorf("%s: not done after %v (--timeout): %w", what, *timeout, dctx.Err())
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ClientID("wordcount-example"))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := createTopics(dctx, log, kadm.NewClient(cl)); err != nil {
		if dctx.Err() != nil {
			return waitErr("creating topics")
		}
		return err
	}

	// Counts already in wordcount-counts (from earlier runs on the same
	// Kafka) are the baseline this run's text adds to.
	w, err := newWatcher(brokers)
	if err != nil {
		return err
	}
	defer w.close()
	if err := w.catchUp(dctx, kadm.NewClient(cl)); err != nil {
		if dctx.Err() != nil {
			return waitErr("reading the counts of earlier runs")
		}
		return err
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	textCounts := map[string]int64{}
	var total int64
	for _, line := range lines {
		for _, word := range words(line) {
			textCounts[word]++
			total++
		}
	}
	want := maps.Clone(w.latest)
	for word, n := range textCounts {
		want[word] += n
	}
	if len(w.latest) > 0 {
		log.Info("wordcount-counts already holds counts from earlier runs: counting this run's text on top of them", "words", len(w.latest))
	}

	log.Info("counting the text", "lines", len(lines), "words", total, "distinct", len(textCounts))

	// The runtime, stopped before the clients and the broker close.
	topo, err := topology()
	if err != nil {
		return err
	}
	opts := []runtime.Option{
		runtime.WithApplicationID(appID),
		runtime.WithBrokers(brokers...),
		runtime.WithStateDir(stateDir),
		runtime.WithGuarantee(runtime.ExactlyOnce),
		runtime.WithLogger(log),
	}
	if tempState {
		// A fresh state directory is a new process id each run: static
		// members of earlier runs would hold their tasks until their
		// session times out, so this run's members leave when they stop.
		opts = append(opts, runtime.WithDynamicMembership())
	}
	rt, err := runtime.New(topo, opts...)
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	rctx, cancelRuntime := context.WithCancel(context.Background())
	defer cancelRuntime()
	runDone := make(chan error, 1)
	go func() { runDone <- rt.Run(rctx) }()
	running := true
	stopRuntime := func() error {
		if !running {
			return nil
		}
		running = false
		cancelRuntime()
		select {
		case err := <-runDone:
			if err != nil {
				return fmt.Errorf("runtime: %w", err)
			}
			return nil
		case <-time.After(stopTimeout):
			return fmt.Errorf("runtime: Run did not return %v after its context was cancelled", stopTimeout)
		}
	}
	defer func() {
		if serr := stopRuntime(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	runErr := func(err error) error {
		running = false
		if err == nil {
			return errors.New("runtime: Run returned before it was stopped")
		}
		return fmt.Errorf("runtime: %w", err)
	}

	// Write the text while the runtime runs, a chapter at a time.
	var producedLines atomic.Int64
	produced, producerDone := make(chan error, 1), make(chan struct{})
	pctx, cancelProduce := context.WithCancel(dctx)
	go func() {
		defer close(producerDone)
		produced <- produceText(pctx, cl, lines, *pace, &producedLines)
	}()
	defer func() { cancelProduce(); <-producerDone }() // before cl closes

	// Watch the counts until they are the expected ones.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := w.poll(dctx, 200*time.Millisecond); err != nil {
			return err
		}
		// Counts only grow: once no word is below its total, the text is
		// counted. A word above it was in other lines too.
		right, above := w.compare(want)
		if right == len(want) {
			if above > 0 {
				log.Warn("some counts are above the text's: wordcount-lines held lines besides the bundled text (produced by hand, or left unprocessed by an earlier run)", "words", above)
			}
			break
		}
		select {
		case err := <-produced:
			if err != nil {
				if dctx.Err() != nil {
					return waitErr("producing the text")
				}
				return err
			}
			log.Info("produced the text", "topic", linesTopic, "lines", len(lines))
		case err := <-runDone:
			return runErr(err)
		case <-dctx.Done():
			return waitErr(fmt.Sprintf("counting the text (%d of %d words at their expected count)", right, len(want)))
		case <-tick.C:
			w.printProgress(time.Since(start), fmt.Sprintf("lines %d/%d, %d/%d words final", producedLines.Load(), len(lines), right, len(want)))
		default:
		}
	}
	w.printProgress(time.Since(start), fmt.Sprintf("lines %d/%d, all words final", producedLines.Load(), len(lines)))
	fmt.Printf("\nThe text is counted: %d lines, %d words, %d distinct, in %.1fs. Top 20:\n", len(lines), total, len(textCounts), time.Since(start).Seconds())
	for i, e := range w.top(20) {
		fmt.Printf("%4d. %-12s %6d\n", i+1, e.word, e.n)
	}

	if *follow {
		fmt.Printf("\nFollowing the counts in %s; produce more lines to count them, for instance:\n\n", countsTopic)
		fmt.Printf("    kcat -b %s -t %s -P\n\n", brokers[0], linesTopic)
		fmt.Printf("(one line per record; Ctrl-D ends kcat's input). Ctrl-C stops wordcount.\n\n")
		printed := w.updates
		clear(w.changed)
		for ctx.Err() == nil {
			if err := w.poll(ctx, 200*time.Millisecond); err != nil {
				return err
			}
			select {
			case err := <-runDone:
				return runErr(err)
			case <-tick.C:
				if w.updates != printed {
					printed = w.updates
					w.printProgress(time.Since(start), "following")
					w.printChanges(10)
				}
			default:
			}
		}
		log.Info("stopping", "cause", "signal")
	}
	if err := stopRuntime(); err != nil {
		return err
	}
	log.Info("stopped", "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

func splitBrokers(s string) []string {
	var out []string
	for b := range strings.SplitSeq(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// startBroker starts a one-broker kfake cluster keeping its data in dir,
// on embeddedPort if it is free, else on any free port.
func startBroker(log *slog.Logger, dir string) (*kfake.Cluster, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(embeddedPort), kfake.DataDir(dir))
	if err != nil {
		log.Info("embedded broker: port taken, choosing a free one", "port", embeddedPort, "err", err)
		c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(0), kfake.DataDir(dir))
	}
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	addr := c.ListenAddrs()[0]
	log.Info("no brokers configured (--brokers or "+runtime.BrokersEnv+"): started an embedded Kafka broker",
		"addr", addr, "data_dir", dir, "connect", "kcat -b "+addr+" -L")
	return c, nil
}

// createTopics creates the input and output topics if they are missing.
func createTopics(ctx context.Context, log *slog.Logger, adm *kadm.Client) error {
	for _, topic := range []string{linesTopic, countsTopic} {
		_, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		switch {
		case err == nil:
			log.Info("created topic", "topic", topic, "partitions", partitions)
		case errors.Is(err, kerr.TopicAlreadyExists):
			log.Info("topic exists", "topic", topic)
		default:
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// produceText writes the lines to linesTopic, keyed by line number (from
// 1), a chapter at a time with pace between chapters, counting them in n.
func produceText(ctx context.Context, cl *kgo.Client, lines []string, pace time.Duration, n *atomic.Int64) error {
	var chapter []*kgo.Record
	flush := func() error {
		if err := cl.ProduceSync(ctx, chapter...).FirstErr(); err != nil {
			return fmt.Errorf("produce the text to %s: %w", linesTopic, err)
		}
		n.Add(int64(len(chapter)))
		chapter = chapter[:0]
		return nil
	}
	for i, line := range lines {
		if strings.HasPrefix(line, "CHAPTER ") && len(chapter) > 0 {
			if err := flush(); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("produce the text to %s: %w", linesTopic, ctx.Err())
			case <-time.After(pace):
			}
		}
		chapter = append(chapter, &kgo.Record{Topic: linesTopic, Key: []byte(strconv.Itoa(i + 1)), Value: []byte(line)})
	}
	return flush()
}

// watcher reads countsTopic read_committed and keeps each word's latest
// count.
type watcher struct {
	cl      *kgo.Client
	latest  map[string]int64
	updates int64           // count records read
	next    map[int32]int64 // partition -> offset after the last record or marker read
	changed map[string]bool // words updated since the last printChanges
}

func newWatcher(brokers []string) (*watcher, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.ClientID("wordcount-example-watcher"),
		kgo.ConsumeTopics(countsTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers tell how far a partition has been read,
		// for catchUp.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, fmt.Errorf("counts consumer: %w", err)
	}
	return &watcher{cl: cl, latest: map[string]int64{}, next: map[int32]int64{}, changed: map[string]bool{}}, nil
}

func (w *watcher) close() { w.cl.Close() }

// catchUp reads countsTopic up to its last stable offsets: the counts that
// earlier runs left.
func (w *watcher) catchUp(ctx context.Context, adm *kadm.Client) error {
	ends, err := adm.ListCommittedOffsets(ctx, countsTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", countsTopic, err)
	}
	for {
		behind := false
		ends.Each(func(o kadm.ListedOffset) {
			if w.next[o.Partition] < o.Offset {
				behind = true
			}
		})
		if !behind {
			return nil
		}
		if err := w.poll(ctx, time.Second); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read %s: %w", countsTopic, ctx.Err())
		}
	}
}

// poll reads what comes within d. Expiry of d or of ctx is not an error.
func (w *watcher) poll(ctx context.Context, d time.Duration) error {
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	fetches := w.cl.PollFetches(pctx)
	var errs []error
	fetches.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("read %s partition %d: %w", topic, p, err))
		}
	})
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	fetches.EachRecord(func(r *kgo.Record) {
		w.next[r.Partition] = r.Offset + 1
		if r.Attrs.IsControl() {
			return
		}
		w.updates++
		w.changed[string(r.Key)] = true
		if r.Value == nil {
			delete(w.latest, string(r.Key))
			return
		}
		n, err := serde.Int64().Deserialize(countsTopic, r.Value)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s partition %d offset %d: %w", countsTopic, r.Partition, r.Offset, err))
			return
		}
		w.latest[string(r.Key)] = n
	})
	return errors.Join(errs...)
}

// compare returns how many words of want have reached their count, and how
// many of those are above it.
func (w *watcher) compare(want map[string]int64) (right, above int) {
	for word, n := range want {
		if got := w.latest[word]; got >= n {
			right++
			if got > n {
				above++
			}
		}
	}
	return right, above
}

type entry struct {
	word string
	n    int64
}

// top returns the k most frequent words, ties in alphabetical order.
func (w *watcher) top(k int) []entry {
	all := make([]entry, 0, len(w.latest))
	for word, n := range w.latest {
		all = append(all, entry{word, n})
	}
	slices.SortFunc(all, func(a, b entry) int {
		return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.word, b.word))
	})
	return all[:min(k, len(all))]
}

func (w *watcher) printProgress(elapsed time.Duration, status string) {
	var top []string
	for _, e := range w.top(5) {
		top = append(top, fmt.Sprintf("%s=%d", e.word, e.n))
	}
	fmt.Printf("[%5.1fs] %6d updates, %4d words (%s)  top 5: %s\n",
		elapsed.Seconds(), w.updates, len(w.latest), status, strings.Join(top, " "))
}

// printChanges prints the latest counts of up to k of the words updated
// since its last call, in alphabetical order.
func (w *watcher) printChanges(k int) {
	changed := slices.Sorted(maps.Keys(w.changed))
	clear(w.changed)
	var parts []string
	for _, word := range changed[:min(k, len(changed))] {
		parts = append(parts, fmt.Sprintf("%s=%d", word, w.latest[word]))
	}
	more := ""
	if len(changed) > k {
		more = fmt.Sprintf(" (and %d more)", len(changed)-k)
	}
	fmt.Printf("          changed: %s%s\n", strings.Join(parts, " "), more)
}
