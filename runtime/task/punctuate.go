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
	var err error
	p.stream, err = fire(t, p.stream, now)
	return err
}

func (p *punctuations) wallClock(t *Task, now time.Time) error {
	var err error
	p.wall, err = fire(t, p.wall, now)
	return err
}

// fire runs every schedule due at now, earliest first, and returns the list
// without cancelled schedules. Schedules added by a punctuator wait for the
// next call.
func fire(t *Task, list []*schedule, now time.Time) ([]*schedule, error) {
	for {
		var due *schedule
		for _, s := range list {
			if !s.cancelled && !now.Before(s.next) && (due == nil || s.next.Before(due.next)) {
				due = s
			}
		}
		if due == nil {
			break
		}
		due.advance(now)
		err := t.protect(func() error { return due.fn(now) })
		if err != nil {
			return compact(list), &PunctuationError{Task: t.id, Node: due.node, Type: due.typ, Time: now, Err: err}
		}
	}
	return compact(list), nil
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
