package serde_test

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gregorstream/gregor/serde"
)

func ExampleString() {
	s := serde.String()

	b, _ := s.Serialize("greetings", "héllo")
	fmt.Printf("% x\n", b)

	v, _ := s.Deserialize("greetings", b)
	fmt.Println(v)

	// An empty string is an empty value, not a null (tombstone).
	empty, _ := s.Serialize("greetings", "")
	fmt.Println(empty != nil, len(empty))
	// Output:
	// 68 c3 a9 6c 6c 6f
	// héllo
	// true 0
}

func ExampleJSON() {
	type Click struct {
		User  string `json:"user"`
		Count int    `json:"count"`
	}
	s := serde.JSON[Click]()

	b, _ := s.Serialize("clicks", Click{User: "ana", Count: 3})
	fmt.Println(string(b))

	c, _ := s.Deserialize("clicks", []byte(`{"user":"bo","count":7,"unknown":true}`))
	fmt.Printf("%+v\n", c)

	_, err := s.Deserialize("clicks", []byte(`{"user":`))
	fmt.Println(err)

	// With a pointer type, nil is null: it serializes to nil bytes and nil
	// bytes deserialize to nil.
	p := serde.JSON[*Click]()
	tomb, _ := p.Serialize("clicks", nil)
	back, _ := p.Deserialize("clicks", nil)
	fmt.Println(tomb == nil, back == nil)
	// Output:
	// {"user":"ana","count":3}
	// {User:bo Count:7}
	// serde: deserialize json from topic "clicks": unexpected end of JSON input
	// true true
}

func ExampleInt64() {
	s := serde.Int64()
	b, _ := s.Serialize("totals", 1)
	fmt.Printf("% x\n", b)

	_, err := s.Deserialize("totals", []byte{1, 2, 3})
	fmt.Println(err)
	fmt.Println(errors.Is(err, serde.ErrInvalidLength))
	// Output:
	// 00 00 00 00 00 00 00 01
	// serde: deserialize int64 from topic "totals": got 3 bytes, want 8: invalid length
	// true
}

func ExampleFunc() {
	// Unsigned decimal text, as some producers write counters.
	s := serde.Func(
		func(_ string, v uint64) ([]byte, error) { return strconv.AppendUint(nil, v, 10), nil },
		func(_ string, b []byte) (uint64, error) { return strconv.ParseUint(string(b), 10, 64) },
	)
	b, _ := s.Serialize("counters", 42)
	fmt.Println(string(b))

	_, err := s.Deserialize("counters", []byte("-1"))
	fmt.Println(err)
	// Output:
	// 42
	// serde: deserialize func from topic "counters": strconv.ParseUint: parsing "-1": invalid syntax
}
