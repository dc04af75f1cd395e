package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregorstream/gregor/runtime/internal/assign"
)

// taskProtocol is the group protocol name of the task balancer.
const taskProtocol = "gregor-tasks"

// userDataVersion is the version of the UserData encoding written by
// encodeUserData. See encodeUserData for the layout.
const userDataVersion = 1

// taskBalancer is a kgo.GroupBalancer that assigns by task, as Kafka Streams'
// StreamsPartitionAssignor does: a task is (sub-topology, partition), and a
// task's partition of every co-partitioned source topic goes to the member
// that owns the task. Members advertise their endpoint and the tasks they own
// in the UserData of their kmsg.ConsumerMemberMetadata; the leader balances
// with assign.Assign, which is balanced, sticky and deterministic.
//
// It is eager: every member gives up all its partitions before a rebalance.
type taskBalancer struct {
	topicSub map[string]int // source topic -> sub-topology
	endpoint string
	owned    func() []assign.TaskID
}

// newTaskBalancer returns the group balancer of a member. topicSub maps each
// source topic to its sub-topology; endpoint is the member's advertised
// "host:port" (may be empty); owned, which may be nil, returns the tasks the
// member holds and is called each time the member joins the group.
//
// Topics a member subscribes to that are not in the leader's topicSub are not
// assigned to anyone.
func newTaskBalancer(topicSub map[string]int, endpoint string, owned func() []assign.TaskID) kgo.GroupBalancer {
	ts := make(map[string]int, len(topicSub))
	for t, s := range topicSub {
		ts[t] = s
	}
	return &taskBalancer{topicSub: ts, endpoint: endpoint, owned: owned}
}

func (*taskBalancer) ProtocolName() string { return taskProtocol }

func (*taskBalancer) IsCooperative() bool { return false }

// JoinGroupMetadata returns a version 0 kmsg.ConsumerMemberMetadata with the
// sorted topic interests and UserData holding this member's endpoint and
// owned tasks. The same state always gives the same bytes.
func (tb *taskBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, _ int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 0
	meta.Topics = slices.Clone(interests)
	sort.Strings(meta.Topics)
	var owned []assign.TaskID
	if tb.owned != nil {
		owned = tb.owned()
	}
	meta.UserData = encodeUserData(memberUserData{Endpoint: tb.endpoint, Owned: owned})
	return meta.AppendTo(nil)
}

// ParseSyncAssignment decodes a kmsg.ConsumerMemberAssignment.
func (*taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	m, err := kgo.ParseConsumerSyncAssignment(assignment)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", taskProtocol, err)
	}
	return m, nil
}

// MemberBalancer parses every member's kmsg.ConsumerMemberMetadata. A member
// whose metadata does not parse fails the balance; a member whose UserData
// does not parse is balanced as owning nothing.
func (tb *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	b, err := kgo.NewConsumerBalancer(tb, members)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", taskProtocol, err)
	}
	return b, b.MemberTopics(), nil
}

// Balance assigns the tasks of every sub-topology to the members and turns
// them into topic-partitions. Sub-topology s has partitions 0..n-1, where n
// is the largest partition count among its topics; task (s, p) gives its
// member partition p of every topic of s that has more than p partitions and
// that the member subscribed to. Errors are reported through b.SetError.
func (tb *taskBalancer) Balance(b *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	// Topics of each sub-topology that have partition counts, sorted.
	subTopics := make(map[int][]string)
	subParts := make(map[int]int32)
	for t, n := range topics {
		s, ok := tb.topicSub[t]
		if !ok {
			continue
		}
		subTopics[s] = append(subTopics[s], t)
		subParts[s] = max(subParts[s], n)
	}
	subs := make([]int, 0, len(subTopics))
	for s, ts := range subTopics {
		sort.Strings(ts)
		subs = append(subs, s)
	}
	sort.Ints(subs)
	var tasks []assign.TaskID
	for _, s := range subs {
		for p := int32(0); p < subParts[s]; p++ {
			tasks = append(tasks, assign.TaskID{SubTopology: s, Partition: p})
		}
	}

	var members []assign.Member
	b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		ud, err := decodeUserData(meta.UserData)
		if err != nil {
			ud = memberUserData{} // owns nothing
		}
		members = append(members, assign.Member{ID: m.MemberID, Previous: ud.Owned})
	})
	assigned, err := assign.Assign(tasks, members)
	if err != nil {
		b.SetError(fmt.Errorf("%s: balancing %d tasks over %d members: %w", taskProtocol, len(tasks), len(members), err))
		return nil
	}

	plan := b.NewPlan()
	b.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		subscribed := make(map[string]bool, len(meta.Topics))
		for _, t := range meta.Topics {
			subscribed[t] = true
		}
		for _, task := range assigned[m.MemberID] {
			for _, t := range subTopics[task.SubTopology] {
				if subscribed[t] && task.Partition < topics[t] {
					plan.AddPartition(m, t, task.Partition)
				}
			}
		}
	})
	return plan
}

// memberUserData is what a member advertises in its metadata's UserData.
type memberUserData struct {
	Endpoint string          // "host:port", or empty
	Owned    []assign.TaskID // tasks held
}

var errUserData = errors.New("invalid " + taskProtocol + " user data")

// encodeUserData encodes u as
//
//	version   byte (userDataVersion)
//	endpoint  uvarint length, then bytes
//	count     uvarint
//	tasks     count times: uvarint sub-topology, uvarint partition
//
// with the tasks sorted and deduplicated, so equal state gives equal bytes.
// Tasks with a negative sub-topology or partition, which no task has, are
// left out.
func encodeUserData(u memberUserData) []byte {
	owned := make([]assign.TaskID, 0, len(u.Owned))
	for _, t := range u.Owned {
		if t.SubTopology >= 0 && t.Partition >= 0 {
			owned = append(owned, t)
		}
	}
	slices.SortFunc(owned, func(a, b assign.TaskID) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	owned = slices.Compact(owned)

	dst := make([]byte, 0, 2+len(u.Endpoint)+binary.MaxVarintLen64+4*len(owned))
	dst = append(dst, userDataVersion)
	dst = binary.AppendUvarint(dst, uint64(len(u.Endpoint)))
	dst = append(dst, u.Endpoint...)
	dst = binary.AppendUvarint(dst, uint64(len(owned)))
	for _, t := range owned {
		dst = binary.AppendUvarint(dst, uint64(t.SubTopology))
		dst = binary.AppendUvarint(dst, uint64(t.Partition))
	}
	return dst
}

// decodeUserData decodes what encodeUserData wrote. Unknown versions,
// truncated input, out-of-range values and trailing bytes are errors.
func decodeUserData(b []byte) (memberUserData, error) {
	var u memberUserData
	if len(b) == 0 {
		return u, fmt.Errorf("%w: empty", errUserData)
	}
	if b[0] != userDataVersion {
		return u, fmt.Errorf("%w: unknown version %d", errUserData, b[0])
	}
	b = b[1:]

	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return u, fmt.Errorf("%w: bad endpoint length", errUserData)
	}
	b = b[k:]
	u.Endpoint = string(b[:n])
	b = b[n:]

	count, k := binary.Uvarint(b)
	// Each task takes at least two bytes; the bound keeps a corrupt count
	// from allocating.
	if k <= 0 || count > uint64(len(b)-k)/2 {
		return u, fmt.Errorf("%w: bad task count", errUserData)
	}
	b = b[k:]
	if count > 0 {
		u.Owned = make([]assign.TaskID, 0, count)
	}
	for i := uint64(0); i < count; i++ {
		s, k := binary.Uvarint(b)
		if k <= 0 || s > math.MaxInt {
			return memberUserData{}, fmt.Errorf("%w: bad sub-topology of task %d", errUserData, i)
		}
		b = b[k:]
		p, k := binary.Uvarint(b)
		if k <= 0 || p > math.MaxInt32 {
			return memberUserData{}, fmt.Errorf("%w: bad partition of task %d", errUserData, i)
		}
		b = b[k:]
		u.Owned = append(u.Owned, assign.TaskID{SubTopology: int(s), Partition: int32(p)})
	}
	if len(b) != 0 {
		return memberUserData{}, fmt.Errorf("%w: %d trailing bytes", errUserData, len(b))
	}
	return u, nil
}
