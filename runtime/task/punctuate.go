package task

import (
	"time"

	"github.com/gregorstream/gregor/processor"
)

// schedule is one Schedule call's state. Its times follow Kafka Streams'
// PunctuationSchedule: stream-time schedules are aligned to multiples of the
// interval since the Unix epoch and fire at the first record; a schedule that
// missed several intervals fires once and moves to the next multiple.
type schedule struct {
	node      string
	interval  time.Duration
	typ       processor.PunctuationType
	fn        processor.Punctuator
	next      time.Time
	cancelled bool
}

func (s *schedule) Cancel() { s.cancelled = true }

// advance moves next past now.
func (s *schedule) advance(now time.Time) {
	next := s.next.Add(s.interval)
	if !now.Before(next) {
		missed := now.Sub(s.next) / s.interval
		next = s.next.Add((missed + 1) * s.interval)
	}
	s.next = next
}

type punctuations struct {
	clock  func() time.Time
	stream []*schedule
	wall   []*schedule
}

func (p *punctuations) add(node string, interval time.Duration, typ processor.PunctuationType, fn processor.Punctuator) *schedule {
	s := &schedule{node: node, interval: interval, typ: typ, fn: fn}
	if typ == processor.WallClockTime {
		s.next = p.clock().Add(interval)
		p.wall = append(p.wall, s)
	} else {
		s.next = time.UnixMilli(0)
		p.stream = append(p.stream, s)
	}
	return s
}

func (p *punctuations) streamTime(t *Task, now time.Time) error {
	if len(p.stream) == 0 {
		return nil
	}
	return fire(t, &p.stream, now)
}

func (p *punctuations) wallClock(t *Task, now time.Time) error {
	return fire(t, &p.wall, now)
}

// fire runs every schedule of *list due at now, earliest first, then drops
// the cancelled schedules from *list. Schedules added by a punctuator (they
// are appended to *list meanwhile) wait for the next call.
func fire(t *Task, list *[]*schedule, now time.Time) error {
	n := len(*list)
	defer func() { *list = compact(*list) }()
	for {
		var due *schedule
		for _, s := range (*list)[:n] { // *list may have grown, and moved: index it anew
			if !s.cancelled && !now.Before(s.next) && (due == nil || s.next.Before(due.next)) {
				due = s
			}
		}
		if due == nil {
			return nil
		}
		due.advance(now)
		err := t.protect(func() error { return due.fn(now) })
		if err != nil {
			return &PunctuationError{Task: t.id, Node: due.node, Type: due.typ, Time: now, Err: err}
		}
	}
}

func compact(list []*schedule) []*schedule {
	out := list[:0]
	for _, s := range list {
		if !s.cancelled {
			out = append(out, s)
		}
	}
	clear(list[len(out):])
	return out
}
