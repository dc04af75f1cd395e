package memory

import (
	"bytes"

	"github.com/gregorstream/gregor/state"
)

// mergeIter merges an iterator over a batch's overlay (tagged values) with
// one over the committed state, both in the same direction and bounds. On
// equal keys the overlay wins; tombstones are skipped, hiding the committed
// key they shadow.
//
// INVARIANT: when overOK (baseOK) is set, over (base) is positioned on an
// entry not yet returned, except that the entry returned last is the one the
// advance flags name: Next moves those first.
type mergeIter struct {
	over, base state.Iterator
	reverse    bool
	closedErr  func() error // non-nil once the owner (the batch) is closed

	started          bool
	overOK, baseOK   bool
	advOver, advBase bool // the last entry returned came from over / base

	key, value []byte
	err        error
	closed     bool
}

var _ state.Iterator = (*mergeIter)(nil)

func (m *mergeIter) Next() bool {
	if m.closed || m.err != nil {
		return false
	}
	if err := m.closedErr(); err != nil {
		m.fail(err)
		return false
	}
	if !m.started {
		m.started = true
		m.overOK, m.baseOK = m.over.Next(), m.base.Next()
	} else {
		if m.advOver {
			m.overOK = m.over.Next()
		}
		if m.advBase {
			m.baseOK = m.base.Next()
		}
	}
	m.advOver, m.advBase = false, false
	for {
		if m.failed() {
			return false
		}
		if !m.overOK && !m.baseOK {
			m.key, m.value = nil, nil
			return false
		}
		c := -1 // < 0: over comes first; > 0: base comes first
		switch {
		case !m.overOK:
			c = 1
		case m.baseOK:
			c = bytes.Compare(m.over.Key(), m.base.Key())
			if m.reverse {
				c = -c
			}
		}
		if c > 0 {
			m.key, m.value = m.base.Key(), m.base.Value()
			m.advBase = true
			return true
		}
		if c == 0 {
			// The overlay shadows the committed entry: skip it. over
			// has not moved, so its key is still valid.
			m.baseOK = m.base.Next()
			if m.failed() {
				return false
			}
		}
		tagged := m.over.Value()
		if tagged[0] == tagTombstone {
			m.overOK = m.over.Next()
			continue
		}
		m.key, m.value = m.over.Key(), tagged[1:]
		m.advOver = true
		return true
	}
}

// failed reports, and records, an error of either iterator.
func (m *mergeIter) failed() bool {
	if err := m.over.Err(); err != nil {
		m.fail(err)
		return true
	}
	if err := m.base.Err(); err != nil {
		m.fail(err)
		return true
	}
	return false
}

func (m *mergeIter) fail(err error) {
	m.err = err
	m.release()
}

func (m *mergeIter) release() {
	m.over.Close()
	m.base.Close()
	m.key, m.value = nil, nil
	m.overOK, m.baseOK = false, false
}

func (m *mergeIter) Key() []byte   { return m.key }
func (m *mergeIter) Value() []byte { return m.value }
func (m *mergeIter) Err() error    { return m.err }

func (m *mergeIter) Close() error {
	if !m.closed {
		m.closed = true
		m.release()
	}
	return m.err
}
