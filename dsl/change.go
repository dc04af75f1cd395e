package dsl

import (
	"encoding/binary"
	"fmt"

	"github.com/gregorstream/gregor/serde"
)

// Change is one update of a table row as tables pass it downstream: the
// row's new value and the value it replaced. A delete has no new value; an
// insert no old one.
type Change[V any] struct {
	New    V
	Old    V
	HasNew bool
	HasOld bool
}

// changeSerde encodes a Change for a repartition topic: a flags byte (1: has
// new, 2: has old), the new value's length as a uvarint and its bytes, then
// the old value's bytes.
type changeSerde[V any] struct{ values serde.Serde[V] }

func (s changeSerde[V]) Serialize(topic string, c Change[V]) ([]byte, error) {
	var nb, ob []byte
	var err error
	var flags byte
	if c.HasNew {
		flags |= 1
		if nb, err = s.values.Serialize(topic, c.New); err != nil {
			return nil, err
		}
		if nb == nil { // a null value: no new value
			flags &^= 1
		}
	}
	if c.HasOld {
		flags |= 2
		if ob, err = s.values.Serialize(topic, c.Old); err != nil {
			return nil, err
		}
		if ob == nil {
			flags &^= 2
		}
	}
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(nb)+len(ob))
	out = append(out, flags)
	out = binary.AppendUvarint(out, uint64(len(nb)))
	out = append(out, nb...)
	return append(out, ob...), nil
}

func (s changeSerde[V]) Deserialize(topic string, b []byte) (Change[V], error) {
	var c Change[V]
	bad := func(why string) (Change[V], error) {
		return Change[V]{}, &serde.Error{Op: "deserialize", Topic: topic, Format: "change", Err: fmt.Errorf("%s: %w", why, serde.ErrInvalidLength)}
	}
	if len(b) < 2 {
		return bad("too short")
	}
	flags := b[0]
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || uint64(len(b)-1-w) < n {
		return bad("bad new-value length")
	}
	rest := b[1+w:]
	var err error
	if flags&1 != 0 {
		c.HasNew = true
		if c.New, err = s.values.Deserialize(topic, rest[:n]); err != nil {
			return Change[V]{}, err
		}
	}
	if flags&2 != 0 {
		c.HasOld = true
		if c.Old, err = s.values.Deserialize(topic, rest[n:]); err != nil {
			return Change[V]{}, err
		}
	}
	return c, nil
}
