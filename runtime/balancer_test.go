package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregorstream/gregor/runtime/internal/assign"
)

func tid(s int, p int32) assign.TaskID { return assign.TaskID{SubTopology: s, Partition: p} }

// Two co-partitioned topics in sub-topology 0 and one in sub-topology 1.
var (
	balTopicSub = map[string]int{"a": 0, "b": 0, "r": 1}
	balTopics   = map[string]int32{"a": 4, "b": 4, "r": 4}
	balAll      = []string{"a", "b", "r"}
)

// joinMember returns a group member whose metadata is what its own task
// balancer would send.
func joinMember(id, endpoint string, owned []assign.TaskID, topics ...string) kmsg.JoinGroupResponseMember {
	bal := newTaskBalancer(balTopicSub, endpoint, func() []assign.TaskID { return owned })
	return kmsg.JoinGroupResponseMember{MemberID: id, ProtocolMetadata: bal.JoinGroupMetadata(topics, nil, 1)}
}

// balance runs the leader's side of a rebalance and returns member -> topic
// -> partitions, decoded from the SyncGroup assignments with
// ParseSyncAssignment.
func balance(t *testing.T, topicSub map[string]int, topics map[string]int32, members []kmsg.JoinGroupResponseMember) map[string]map[string][]int32 {
	t.Helper()
	bal := newTaskBalancer(topicSub, "leader:1", nil)
	if got := bal.ProtocolName(); got != "gregor-tasks" {
		t.Fatalf("ProtocolName = %q", got)
	}
	if bal.IsCooperative() {
		t.Fatal("IsCooperative = true, want eager")
	}
	mb, interests, err := bal.MemberBalancer(members)
	if err != nil {
		t.Fatalf("MemberBalancer: %v", err)
	}
	for topic := range topics {
		if _, ok := interests[topic]; !ok {
			t.Fatalf("MemberBalancer topics %v lack %q", interests, topic)
		}
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(topics)
	if err != nil {
		t.Fatalf("BalanceOrError: %v", err)
	}
	out := make(map[string]map[string][]int32)
	for _, sa := range into.IntoSyncAssignment() {
		m, err := bal.ParseSyncAssignment(sa.MemberAssignment)
		if err != nil {
			t.Fatalf("ParseSyncAssignment(%s): %v", sa.MemberID, err)
		}
		out[sa.MemberID] = m
	}
	// The bytes decode to exactly the plan Balance built.
	plan := into.(*kgo.BalancePlan).AsMemberIDMap()
	if diff := cmp.Diff(plan, out); diff != "" {
		t.Fatalf("decoded sync assignment differs from the plan (-plan +decoded):\n%s", diff)
	}
	return out
}

// checkExactlyOnce fails unless every partition of topics is assigned to
// exactly one member.
func checkExactlyOnce(t *testing.T, topics map[string]int32, got map[string]map[string][]int32) {
	t.Helper()
	owner := map[string]string{}
	for m, tps := range got {
		for topic, ps := range tps {
			for _, p := range ps {
				tp := fmt.Sprintf("%s/%d", topic, p)
				if p < 0 || p >= topics[topic] {
					t.Errorf("%s assigned %s, which does not exist", m, tp)
				}
				if prev, dup := owner[tp]; dup {
					t.Errorf("%s assigned to both %s and %s", tp, prev, m)
				}
				owner[tp] = m
			}
		}
	}
	for topic, n := range topics {
		for p := int32(0); p < n; p++ {
			if _, ok := owner[fmt.Sprintf("%s/%d", topic, p)]; !ok {
				t.Errorf("%s/%d not assigned", topic, p)
			}
		}
	}
}

// tasksByMember turns an assignment back into member -> sorted tasks.
func tasksByMember(topicSub map[string]int, got map[string]map[string][]int32) map[string][]assign.TaskID {
	out := map[string][]assign.TaskID{}
	for m, tps := range got {
		seen := map[assign.TaskID]bool{}
		out[m] = []assign.TaskID{}
		for topic, ps := range tps {
			for _, p := range ps {
				task := tid(topicSub[topic], p)
				if !seen[task] {
					seen[task] = true
					out[m] = append(out[m], task)
				}
			}
		}
		sort.Slice(out[m], func(i, j int) bool { return out[m][i].Less(out[m][j]) })
	}
	return out
}

func TestBalancerCoPartitioning(t *testing.T) {
	members := []kmsg.JoinGroupResponseMember{
		joinMember("m1", "h1:1", nil, balAll...),
		joinMember("m2", "h2:1", nil, balAll...),
		joinMember("m3", "h3:1", nil, balAll...),
	}
	got := balance(t, balTopicSub, balTopics, members)
	checkExactlyOnce(t, balTopics, got)

	owner := func(topic string, p int32) string {
		for m, tps := range got {
			for _, q := range tps[topic] {
				if q == p {
					return m
				}
			}
		}
		return ""
	}
	for p := int32(0); p < 4; p++ {
		if a, b := owner("a", p), owner("b", p); a != b {
			t.Errorf("partition %d: a to %s, b to %s; want the same member", p, a, b)
		}
	}

	tasks := tasksByMember(balTopicSub, got)
	lo, hi := 1<<30, -1
	for _, m := range []string{"m1", "m2", "m3"} {
		lo, hi = min(lo, len(tasks[m])), max(hi, len(tasks[m]))
	}
	if hi-lo > 1 {
		t.Errorf("task counts per member differ by %d: %v", hi-lo, tasks)
	}

	// The same input gives the same assignment.
	if again := balance(t, balTopicSub, balTopics, members); !cmp.Equal(got, again) {
		t.Errorf("second balance differs:\n%v\n%v", got, again)
	}
}

func TestBalancerCoPartitioningMismatchedCounts(t *testing.T) {
	// Sub-topology 0 has 3 tasks (the max); task 0_2 gets only b/2.
	topics := map[string]int32{"a": 2, "b": 3, "r": 1}
	got := balance(t, balTopicSub, topics, []kmsg.JoinGroupResponseMember{
		joinMember("m1", "", nil, balAll...),
		joinMember("m2", "", nil, balAll...),
	})
	checkExactlyOnce(t, topics, got)
	tasks := tasksByMember(balTopicSub, got)
	var all []assign.TaskID
	for _, m := range []string{"m1", "m2"} {
		if len(tasks[m]) != 2 {
			t.Errorf("%s has %d tasks, want 2: %v", m, len(tasks[m]), tasks)
		}
		all = append(all, tasks[m]...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Less(all[j]) })
	if diff := cmp.Diff([]assign.TaskID{tid(0, 0), tid(0, 1), tid(0, 2), tid(1, 0)}, all); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
}

func TestBalancerSubscribedTopicsOnly(t *testing.T) {
	// m2 does not subscribe to b: its tasks of sub-topology 0 give it only a.
	got := balance(t, balTopicSub, balTopics, []kmsg.JoinGroupResponseMember{
		joinMember("m1", "", nil, balAll...),
		joinMember("m2", "", nil, "a", "r"),
	})
	if ps := got["m2"]["b"]; len(ps) != 0 {
		t.Errorf("m2 assigned b%v without subscribing to b", ps)
	}
	if len(got["m2"]["a"]) == 0 {
		t.Errorf("m2 assigned no partition of a: %v", got["m2"])
	}
}

func TestBalancerStickiness(t *testing.T) {
	// A balanced assignment the algorithm would not pick from scratch: each
	// member has 1 or 2 tasks of each sub-topology, 3+3+2 in total.
	prev := map[string][]assign.TaskID{
		"m1": {tid(0, 3), tid(1, 0), tid(1, 1)},
		"m2": {tid(0, 0), tid(0, 1), tid(1, 3)},
		"m3": {tid(0, 2), tid(1, 2)},
	}
	members := []kmsg.JoinGroupResponseMember{
		joinMember("m1", "h1:1", prev["m1"], balAll...),
		joinMember("m2", "h2:1", prev["m2"], balAll...),
		joinMember("m3", "h3:1", prev["m3"], balAll...),
	}
	got := balance(t, balTopicSub, balTopics, members)
	checkExactlyOnce(t, balTopics, got)
	if diff := cmp.Diff(prev, tasksByMember(balTopicSub, got)); diff != "" {
		t.Fatalf("balanced previous assignment not kept (-prev +got):\n%s", diff)
	}

	// m2 leaves: m1 and m3 keep everything, and only m2's tasks move.
	got = balance(t, balTopicSub, balTopics, []kmsg.JoinGroupResponseMember{members[0], members[2]})
	checkExactlyOnce(t, balTopics, got)
	now := tasksByMember(balTopicSub, got)
	for _, m := range []string{"m1", "m3"} {
		kept := map[assign.TaskID]bool{}
		for _, task := range now[m] {
			kept[task] = true
		}
		for _, task := range prev[m] {
			if !kept[task] {
				t.Errorf("%s lost %v after m2 left; now %v", m, task, now[m])
			}
		}
	}
	if len(now["m1"]) != 4 || len(now["m3"]) != 4 {
		t.Errorf("after m2 left: %v, want 4 tasks each", now)
	}
}

func TestBalancerStickinessOwnOutput(t *testing.T) {
	// Members that report what the balancer gave them get it again.
	first := tasksByMember(balTopicSub, balance(t, balTopicSub, balTopics, []kmsg.JoinGroupResponseMember{
		joinMember("m1", "", nil, balAll...),
		joinMember("m2", "", nil, balAll...),
		joinMember("m3", "", nil, balAll...),
	}))
	second := tasksByMember(balTopicSub, balance(t, balTopicSub, balTopics, []kmsg.JoinGroupResponseMember{
		joinMember("m1", "", first["m1"], balAll...),
		joinMember("m2", "", first["m2"], balAll...),
		joinMember("m3", "", first["m3"], balAll...),
	}))
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("rebalance with unchanged members moved tasks (-first +second):\n%s", diff)
	}
}

func TestBalancerJoinGroupMetadataRoundTrip(t *testing.T) {
	owned := []assign.TaskID{tid(1, 2), tid(0, 3), tid(1, 2), tid(0, 0)}
	bal := newTaskBalancer(balTopicSub, "host1:8080", func() []assign.TaskID { return owned })
	b := bal.JoinGroupMetadata([]string{"r", "a", "b"}, nil, 7)

	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(b); err != nil {
		t.Fatalf("ConsumerMemberMetadata.ReadFrom: %v", err)
	}
	if diff := cmp.Diff([]string{"a", "b", "r"}, meta.Topics); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
	ud, err := decodeUserData(meta.UserData)
	if err != nil {
		t.Fatalf("decodeUserData: %v", err)
	}
	want := memberUserData{Endpoint: "host1:8080", Owned: []assign.TaskID{tid(0, 0), tid(0, 3), tid(1, 2)}}
	if diff := cmp.Diff(want, ud); diff != "" {
		t.Errorf("user data (-want +got):\n%s", diff)
	}
	if owned[0] != tid(1, 2) {
		t.Errorf("JoinGroupMetadata reordered the caller's slice: %v", owned)
	}

	// Same state in another order gives the same bytes.
	owned = []assign.TaskID{tid(0, 0), tid(1, 2), tid(0, 3)}
	if b2 := bal.JoinGroupMetadata([]string{"a", "b", "r"}, nil, 7); !bytes.Equal(b, b2) {
		t.Errorf("metadata not deterministic:\n%x\n%x", b, b2)
	}

	// No endpoint and a nil owned function.
	b = newTaskBalancer(balTopicSub, "", nil).JoinGroupMetadata([]string{"a"}, nil, 1)
	meta = kmsg.ConsumerMemberMetadata{}
	if err := meta.ReadFrom(b); err != nil {
		t.Fatalf("ConsumerMemberMetadata.ReadFrom: %v", err)
	}
	if ud, err := decodeUserData(meta.UserData); err != nil || ud.Endpoint != "" || len(ud.Owned) != 0 {
		t.Errorf("decodeUserData = %+v, %v; want empty", ud, err)
	}
}

func TestBalancerUserDataDecodeErrors(t *testing.T) {
	full := encodeUserData(memberUserData{Endpoint: "h:1", Owned: []assign.TaskID{tid(0, 1), tid(300, 70000)}})
	if _, err := decodeUserData(full); err != nil {
		t.Fatalf("decodeUserData(full): %v", err)
	}
	for n := 0; n < len(full); n++ {
		if ud, err := decodeUserData(full[:n]); !errors.Is(err, errUserData) {
			t.Errorf("decodeUserData(first %d bytes) = %+v, %v; want errUserData", n, ud, err)
		}
	}
	bad := map[string][]byte{
		"unknown version": append([]byte{99}, full[1:]...),
		"trailing bytes":  append(full[:len(full):len(full)], 0),
		"huge count":      {userDataVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge partition":  {userDataVersion, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range bad {
		if ud, err := decodeUserData(b); !errors.Is(err, errUserData) {
			t.Errorf("%s: decodeUserData = %+v, %v; want errUserData", name, ud, err)
		}
	}
}

func TestBalancerGarbageUserData(t *testing.T) {
	garbage := kmsg.NewConsumerMemberMetadata()
	garbage.Topics = balAll
	garbage.UserData = []byte{0xff, 0x01, 0x02}
	// m1 and m2 held a two-member assignment; m3 joins with garbage.
	members := []kmsg.JoinGroupResponseMember{
		joinMember("m1", "h1:1", []assign.TaskID{tid(0, 0), tid(0, 1), tid(1, 0), tid(1, 1)}, balAll...),
		joinMember("m2", "h2:1", []assign.TaskID{tid(0, 2), tid(0, 3), tid(1, 2), tid(1, 3)}, balAll...),
		{MemberID: "m3", ProtocolMetadata: garbage.AppendTo(nil)},
	}
	got := balance(t, balTopicSub, balTopics, members)
	checkExactlyOnce(t, balTopics, got)
	tasks := tasksByMember(balTopicSub, got)
	for _, m := range []string{"m1", "m2", "m3"} {
		if n := len(tasks[m]); n < 2 || n > 3 {
			t.Errorf("%s has %d tasks, want 2 or 3: %v", m, n, tasks)
		}
	}
}

func TestBalancerErrors(t *testing.T) {
	bal := newTaskBalancer(balTopicSub, "", nil)

	// No members: assign's error comes back from BalanceOrError.
	mb, _, err := bal.MemberBalancer(nil)
	if err != nil {
		t.Fatalf("MemberBalancer(nil): %v", err)
	}
	into, err := mb.(kgo.GroupMemberBalancerOrError).BalanceOrError(balTopics)
	if !errors.Is(err, assign.ErrNoMembers) {
		t.Errorf("BalanceOrError with no members = %v, %v; want assign.ErrNoMembers", into, err)
	}

	// Metadata that is not a ConsumerMemberMetadata fails MemberBalancer.
	_, _, err = bal.MemberBalancer([]kmsg.JoinGroupResponseMember{{MemberID: "m1", ProtocolMetadata: []byte{0xff}}})
	if err == nil {
		t.Error("MemberBalancer accepted unparseable metadata")
	}

	if _, err := bal.ParseSyncAssignment([]byte{0, 0, 0xff}); err == nil {
		t.Error("ParseSyncAssignment accepted a truncated assignment")
	}
}
