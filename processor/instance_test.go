package processor_test

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gregorstream/gregor/processor"
	"github.com/gregorstream/gregor/serde"
	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/memory"
)

var errBoom = errors.New("boom")

// instantiate validates topo, instantiates sub-topology 0 on env and inits it.
func instantiate(t *testing.T, topo *processor.Topology, env processor.Env) *processor.Instance {
	t.Helper()
	inst, err := topo.Instantiate(0, env)
	if err != nil {
		t.Fatalf("Instantiate: %v", err)
	}
	if err := inst.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return inst
}

func feed(t *testing.T, inst *processor.Instance, topic string, recs ...processor.RawRecord) error {
	t.Helper()
	src, ok := inst.Source(topic)
	if !ok {
		t.Fatalf("no source reads %q", topic)
	}
	for _, r := range recs {
		if err := src(r); err != nil {
			return err
		}
	}
	return nil
}

// recorder is a supplier of processors that log "<name>:<key>" and, for the
// key "fail-<name>", fail.
func recorder(name string, l *log) processor.Supplier[string, string, string, string] {
	return supplierOf(funcProc[string, string, string, string]{
		process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
			l.add("%s:%s", name, r.Key)
			if r.Key == "fail-"+name {
				return errBoom
			}
			return nil
		},
	})
}

// fanOut builds src ("in") -> hub -> c, a, b (added in that order), where
// hub's process function is given.
func fanOut(l *log, hub func(ctx processor.Context[string, string], r processor.Record[string, string]) error,
	init func(ctx processor.Context[string, string]) error) *processor.Topology {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("hub", supplierOf(funcProc[string, string, string, string]{init: init, process: hub}), "src")
	topo.AddProcessor("c", recorder("c", l), "hub")
	topo.AddProcessor("a", recorder("a", l), "hub")
	topo.AddProcessor("b", recorder("b", l), "hub")
	return topo
}

func TestForwardFanOutOrder(t *testing.T) {
	var l log
	topo := fanOut(&l, func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		return ctx.Forward(r)
	}, nil)
	inst := instantiate(t, topo, newFakeEnv())
	if err := feed(t, inst, "in", raw("in", 0, "k1", "v"), raw("in", 1, "k2", "v")); err != nil {
		t.Fatal(err)
	}
	// Children in the order they were added, not by name.
	want := log{"c:k1", "a:k1", "b:k1", "c:k2", "a:k2", "b:k2"}
	if !slices.Equal(l, want) {
		t.Errorf("calls = %v, want %v", l, want)
	}

	// A child's error stops the fan-out and reaches the caller.
	l = nil
	err := feed(t, inst, "in", raw("in", 2, "fail-a", "v"))
	if !errors.Is(err, errBoom) {
		t.Fatalf("error = %v, want errBoom", err)
	}
	if want := (log{"c:fail-a", "a:fail-a"}); !slices.Equal(l, want) {
		t.Errorf("calls = %v, want %v (b is not called after a fails)", l, want)
	}
}

func TestForwardTo(t *testing.T) {
	var l log
	topo := fanOut(&l, func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		return ctx.ForwardTo(r.Value, r)
	}, nil)
	inst := instantiate(t, topo, newFakeEnv())
	if err := feed(t, inst, "in", raw("in", 0, "k1", "a"), raw("in", 1, "k2", "b")); err != nil {
		t.Fatal(err)
	}
	if want := (log{"a:k1", "b:k2"}); !slices.Equal(l, want) {
		t.Errorf("calls = %v, want %v", l, want)
	}
	for _, child := range []string{"src", "hub", "ghost", ""} { // nodes that are not children, and no node
		err := feed(t, inst, "in", raw("in", 2, "k", child))
		if !errors.Is(err, processor.ErrUnknownChild) {
			t.Errorf("ForwardTo(%q) = %v, want ErrUnknownChild", child, err)
		}
		if err != nil && !strings.Contains(err.Error(), `"hub"`) {
			t.Errorf("ForwardTo(%q) error %q does not name the forwarding node", child, err)
		}
	}
}

func TestForwarderAndChildForwarder(t *testing.T) {
	var l log
	var all func(processor.Record[string, string]) error
	var toB func(processor.Record[string, string]) error
	var unknownErr error
	topo := fanOut(&l, func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
		if r.Value == "b" {
			return toB(r)
		}
		return all(r)
	}, func(ctx processor.Context[string, string]) error {
		all = processor.Forwarder(ctx)
		var err error
		if toB, err = processor.ChildForwarder(ctx, "b"); err != nil {
			return err
		}
		_, unknownErr = processor.ChildForwarder(ctx, "src")
		return nil
	})
	inst := instantiate(t, topo, newFakeEnv())
	if !errors.Is(unknownErr, processor.ErrUnknownChild) {
		t.Errorf("ChildForwarder(non-child) error = %v, want ErrUnknownChild", unknownErr)
	}
	if err := feed(t, inst, "in", raw("in", 0, "k1", "all"), raw("in", 1, "k2", "b")); err != nil {
		t.Fatal(err)
	}
	if want := (log{"c:k1", "a:k1", "b:k1", "b:k2"}); !slices.Equal(l, want) {
		t.Errorf("calls = %v, want %v", l, want)
	}
}

// wrappedContext is a Context of another implementation than the package's,
// as a test harness or a decorator would provide.
type wrappedContext struct {
	processor.Context[string, string]
	calls *log
}

func (w wrappedContext) Forward(r processor.Record[string, string]) error {
	w.calls.add("forward:%s", r.Key)
	return nil
}

func (w wrappedContext) ForwardTo(child string, r processor.Record[string, string]) error {
	w.calls.add("forward-to-%s:%s", child, r.Key)
	return nil
}

func TestForwarderOfAnotherContext(t *testing.T) {
	var calls log
	ctx := wrappedContext{calls: &calls}
	if err := processor.Forwarder[string, string](ctx)(processor.Record[string, string]{Key: "k1"}); err != nil {
		t.Fatal(err)
	}
	f, err := processor.ChildForwarder[string, string](ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := f(processor.Record[string, string]{Key: "k2"}); err != nil {
		t.Fatal(err)
	}
	if want := (log{"forward:k1", "forward-to-x:k2"}); !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
}

func TestContextStore(t *testing.T) {
	s := serde.String()
	type result struct {
		store   state.Store
		err     error
		typed   *memory.Store
		typeErr error
	}
	results := map[string]result{}
	lookup := func(names ...string) processor.Supplier[string, string, string, string] {
		return supplierOf(funcProc[string, string, string, string]{
			process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
				for _, n := range names {
					st, err := ctx.Store(n)
					typed, _ := processor.StoreOf[*memory.Store](ctx, n)
					_, typeErr := processor.StoreOf[*state.KeyValueStore[string, string]](ctx, n)
					results[ctx.NodeName()+"/"+n] = result{st, err, typed, typeErr}
				}
				return ctx.Forward(r)
			},
		})
	}
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("p1", lookup("mine", "theirs", "missing"), "src")
	topo.AddProcessor("p2", lookup("theirs"), "p1")
	topo.AddStore(memory.NewBuilder("mine"), "p1")
	topo.AddStore(memory.NewBuilder("theirs"), "p2")
	topo.AddStore(memory.NewBuilder("missing"), "p1") // connected, but the env has no instance

	env := newFakeEnv()
	mine, theirs := memory.New("mine"), memory.New("theirs")
	env.stores["mine"], env.stores["theirs"] = mine, theirs
	inst := instantiate(t, topo, env)
	if err := feed(t, inst, "in", raw("in", 0, "k", "v")); err != nil {
		t.Fatal(err)
	}

	if r := results["p1/mine"]; r.err != nil || r.store != mine || r.typed != mine {
		t.Errorf("p1 Store(mine) = %v, %v; StoreOf = %v", r.store, r.err, r.typed)
	}
	if r := results["p1/mine"]; !errors.Is(r.typeErr, state.ErrWrongStoreType) {
		t.Errorf("StoreOf with the wrong type: error = %v, want state.ErrWrongStoreType", r.typeErr)
	}
	if r := results["p2/theirs"]; r.err != nil || r.store != theirs {
		t.Errorf("p2 Store(theirs) = %v, %v", r.store, r.err)
	}
	if r := results["p1/theirs"]; !errors.Is(r.err, processor.ErrStoreNotAttached) || r.store != nil {
		t.Errorf("p1 Store(theirs), a store of another node = %v, %v; want ErrStoreNotAttached", r.store, r.err)
	}
	if r := results["p1/missing"]; !errors.Is(r.err, processor.ErrUnknownStore) {
		t.Errorf("p1 Store(missing), not provided by the task = %v; want ErrUnknownStore", r.err)
	}
}

func TestContextDelegatesToEnv(t *testing.T) {
	s := serde.String()
	var l log
	var ctxSeen processor.Context[string, string]
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("p", supplierOf(funcProc[string, string, string, string]{
		init: func(ctx processor.Context[string, string]) error { ctxSeen = ctx; return nil },
		process: func(ctx processor.Context[string, string], r processor.Record[string, string]) error {
			md, ok := ctx.RecordMetadata()
			l.add("%s %v %v", r.Key, md, ok)
			ctx.Commit()
			return nil
		},
	}), "src")
	env := newFakeEnv()
	env.streamTime, env.systemTime = time.UnixMilli(5000), time.UnixMilli(9000)
	inst := instantiate(t, topo, env)

	env.meta, env.hasMeta = processor.RecordMetadata{Topic: "in", Partition: 3, Offset: 7}, true
	if err := feed(t, inst, "in", raw("in", 7, "k", "v")); err != nil {
		t.Fatal(err)
	}
	env.meta, env.hasMeta = processor.RecordMetadata{}, false
	if err := feed(t, inst, "in", raw("in", 8, "k2", "v")); err != nil {
		t.Fatal(err)
	}
	if want := (log{"k {in 3 7} true", "k2 { 0 0} false"}); !slices.Equal(l, want) {
		t.Errorf("RecordMetadata = %v, want %v", l, want)
	}
	if env.commits != 2 {
		t.Errorf("Commit requests = %d, want 2", env.commits)
	}
	c := ctxSeen
	if c.TaskID() != env.id || c.ApplicationID() != "app" || c.NodeName() != "p" ||
		!c.CurrentStreamTime().Equal(env.streamTime) || !c.CurrentSystemTime().Equal(env.systemTime) {
		t.Errorf("context reports task %v, app %q, node %q, stream time %v, system time %v",
			c.TaskID(), c.ApplicationID(), c.NodeName(), c.CurrentStreamTime(), c.CurrentSystemTime())
	}
}

func TestContextSchedule(t *testing.T) {
	s := serde.String()
	var ctx processor.Context[string, string]
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("p", supplierOf(funcProc[string, string, string, string]{
		init: func(c processor.Context[string, string]) error { ctx = c; return nil },
	}), "src")
	env := newFakeEnv()
	instantiate(t, topo, env)
	fn := func(time.Time) error { return nil }

	if _, err := ctx.Schedule(time.Millisecond-time.Microsecond, processor.StreamTime, fn); !errors.Is(err, processor.ErrBadInterval) {
		t.Errorf("Schedule(999µs) error = %v, want ErrBadInterval", err)
	}
	if _, err := ctx.Schedule(0, processor.WallClockTime, fn); !errors.Is(err, processor.ErrBadInterval) {
		t.Errorf("Schedule(0) error = %v, want ErrBadInterval", err)
	}
	if _, err := ctx.Schedule(time.Second, processor.StreamTime, nil); err == nil {
		t.Error("Schedule(nil punctuator) succeeded")
	}
	if len(env.schedules) != 0 {
		t.Fatalf("rejected schedules reached the task: %+v", env.schedules)
	}
	c, err := ctx.Schedule(time.Millisecond, processor.WallClockTime, fn)
	if err != nil || c == nil {
		t.Fatalf("Schedule(1ms) = %v, %v", c, err)
	}
	if len(env.schedules) != 1 || env.schedules[0].node != "p" || env.schedules[0].interval != time.Millisecond ||
		env.schedules[0].typ != processor.WallClockTime {
		t.Errorf("task received %+v, want one wall-clock schedule of p every 1ms", env.schedules)
	}
}

// lifecycle builds, in this insertion order, c <- b <- a <- src and d <- a,
// so that insertion order and topological order differ.
func lifecycle(l *log, failInit, failClose map[string]bool) *processor.Topology {
	s := serde.String()
	proc := func(name string) processor.Supplier[string, string, string, string] {
		return supplierOf(funcProc[string, string, string, string]{
			init: func(processor.Context[string, string]) error {
				l.add("init %s", name)
				if failInit[name] {
					return errBoom
				}
				return nil
			},
			close: func() error {
				l.add("close %s", name)
				if failClose[name] {
					return errors.New("close " + name + " failed")
				}
				return nil
			},
		})
	}
	topo := processor.NewTopology()
	topo.AddProcessor("c", proc("c"), "b")
	topo.AddProcessor("b", proc("b"), "a")
	topo.AddProcessor("a", proc("a"), "src")
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("d", proc("d"), "a")
	return topo
}

func TestInitOrderParentsFirst(t *testing.T) {
	var l log
	instantiate(t, lifecycle(&l, nil, nil), newFakeEnv())
	if want := (log{"init a", "init b", "init c", "init d"}); !slices.Equal(l, want) {
		t.Errorf("init order = %v, want %v", l, want)
	}
}

func TestInitStopsAtFirstError(t *testing.T) {
	var l log
	inst, err := lifecycle(&l, map[string]bool{"b": true}, nil).Instantiate(0, newFakeEnv())
	if err != nil {
		t.Fatal(err)
	}
	err = inst.Init()
	if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), `init "b"`) {
		t.Errorf("Init() = %v, want errBoom naming b", err)
	}
	if want := (log{"init a", "init b"}); !slices.Equal(l, want) {
		t.Errorf("init calls = %v, want %v", l, want)
	}
}

func TestCloseClosesEveryProcessor(t *testing.T) {
	var l log
	inst := instantiate(t, lifecycle(&l, nil, map[string]bool{"b": true, "d": true}), newFakeEnv())
	l = nil
	err := inst.Close()
	var closed []string
	for _, e := range l {
		closed = append(closed, strings.TrimPrefix(e, "close "))
	}
	slices.Sort(closed)
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(closed, want) {
		t.Errorf("closed %v, want %v", closed, want)
	}
	for _, name := range []string{"b", "d"} {
		if err == nil || !strings.Contains(err.Error(), `processor: close "`+name+`": close `+name+` failed`) {
			t.Errorf("Close() = %v, want it to report %s's error", err, name)
		}
	}
	if j, ok := err.(interface{ Unwrap() []error }); !ok || len(j.Unwrap()) != 2 {
		t.Errorf("Close() = %#v, want two errors joined", err)
	}
}

func TestSupplierCalledPerInstance(t *testing.T) {
	s := serde.String()
	made := 0
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("p", func() processor.Processor[string, string, string, string] {
		made++
		return &funcProc[string, string, string, string]{}
	}, "src")
	for i := 1; i <= 3; i++ {
		if _, err := topo.Instantiate(0, newFakeEnv()); err != nil {
			t.Fatal(err)
		}
		if made != i {
			t.Errorf("after %d instantiations the supplier made %d processors", i, made)
		}
	}
}

func TestInstantiateErrors(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in")
	topo.AddProcessor("p", func() processor.Processor[string, string, string, string] { return nil }, "src")
	if _, err := topo.Instantiate(0, newFakeEnv()); !errors.Is(err, processor.ErrNoSupplier) || !strings.Contains(err.Error(), `"p"`) {
		t.Errorf("Instantiate with a supplier returning nil = %v, want ErrNoSupplier naming p", err)
	}
	for _, sub := range []int{-1, 1} {
		if _, err := topo.Instantiate(sub, newFakeEnv()); err == nil {
			t.Errorf("Instantiate(%d) of a topology with one sub-topology succeeded", sub)
		}
	}
}

func TestSourcesAndSinks(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", s, s, "in", "rep")
	topo.AddSourcePattern("events", s, s, regexp.MustCompile(`events-\d+`))
	topo.AddProcessor("p", pass[string, string](), "src", "events")
	topo.AddSink("to-out", "out", s, s, "p")
	topo.AddSink("to-rep2", "rep2", s, s, "p")
	topo.AddSinkFunc("route", func(r processor.Record[string, string]) string { return r.Value }, s, s, "p")
	topo.AddInternalTopic("rep", 0)
	topo.AddInternalTopic("rep2", 0)

	env := newFakeEnv()
	inst := instantiate(t, topo, env)

	// Sources are found by the topic's name in Kafka: internal topics are
	// prefixed with the application id, patterns match whole names.
	for topic, want := range map[string]bool{"in": true, "app-rep": true, "rep": false, "events-1": true,
		"events-": false, "xevents-1": false, "out": false} {
		for range 2 { // the second lookup is answered from the cache
			if _, ok := inst.Source(topic); ok != want {
				t.Errorf("Source(%q) found = %v, want %v", topic, ok, want)
			}
		}
	}

	rec := raw("app-rep", 4, "k", "dyn")
	rec.Headers = processor.Headers{{Key: "h", Value: []byte("1")}}
	if err := feed(t, inst, "app-rep", rec); err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, sn := range env.sends {
		topics = append(topics, sn.topic)
		if sn.partition != -1 || string(sn.rec.Key) != "k" || string(sn.rec.Value) != "dyn" ||
			!sn.rec.Timestamp.Equal(rec.Timestamp) || sn.rec.Origin != rec.Origin || len(sn.rec.Headers) != 1 {
			t.Errorf("sent %+v, want the record as read, partition -1", sn)
		}
	}
	if want := []string{"out", "app-rep2", "dyn"}; !slices.Equal(topics, want) {
		t.Errorf("sent to %v, want %v (internal topics by their Kafka name)", topics, want)
	}

	// A dynamic sink that chooses no topic fails the record.
	var se *processor.SerializationError
	if err := feed(t, inst, "in", raw("in", 5, "k", "")); !errors.As(err, &se) || !errors.Is(err, processor.ErrNoTopic) || se.Node != "route" {
		t.Errorf("empty dynamic topic: error = %v, want a SerializationError of route wrapping ErrNoTopic", err)
	}
	// A failed send fails the record.
	env.sendErr = errBoom
	if err := feed(t, inst, "in", raw("in", 6, "k", "v")); !errors.Is(err, errBoom) {
		t.Errorf("failed send: error = %v, want errBoom", err)
	}
}

func TestSerdeErrors(t *testing.T) {
	s := serde.String()
	topo := processor.NewTopology()
	topo.AddSource("src", serde.Int64(), s, "in")
	topo.AddProcessor("p", supplierOf(funcProc[int64, string, int64, int64]{
		process: func(ctx processor.Context[int64, int64], r processor.Record[int64, string]) error {
			return ctx.Forward(r.WithValue(int64(len(r.Value))))
		},
	}), "src")
	failing := serde.Func(func(string, int64) ([]byte, error) { return nil, errBoom },
		func(string, []byte) (int64, error) { return 0, nil })
	topo.AddSink("out", "out", serde.Int64(), failing, "p")
	inst := instantiate(t, topo, newFakeEnv())

	bad := processor.RawRecord{Key: []byte{1, 2, 3}, Value: []byte("v"), Origin: processor.Origin{Topic: "in", Partition: 3, Offset: 9}}
	var de *processor.DeserializationError
	if err := feed(t, inst, "in", bad); !errors.As(err, &de) || !de.Key || de.Node != "src" || de.Origin != bad.Origin {
		t.Errorf("undecodable key: error = %#v, want a DeserializationError of the key at %v", err, bad.Origin)
	}
	good := processor.RawRecord{Key: make([]byte, 8), Value: []byte("v"), Origin: processor.Origin{Topic: "in", Offset: 10}}
	var se *processor.SerializationError
	if err := feed(t, inst, "in", good); !errors.As(err, &se) || se.Key || se.Topic != "out" || !errors.Is(err, errBoom) {
		t.Errorf("unencodable value: error = %#v, want a SerializationError of the value for out", err)
	}
}
