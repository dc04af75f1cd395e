package pebble_test

import (
	"fmt"
	"log"
	"os"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/pebble"
)

// A task writes through a batch during its commit interval; once Kafka has
// committed, the batch is committed with the changelog offset it reaches.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "state")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	e, err := pebble.Open(dir, pebble.WithMemory(64<<20))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	sp := state.StorePartition{Store: "counts", Partition: 0}
	b := e.NewBatch()
	s := b.Store(sp)
	s.Put([]byte("alice"), []byte("1"))
	s.Put([]byte("bob"), []byte("2"))
	v, _, _ := s.Get([]byte("alice")) // reads see the batch
	fmt.Printf("batch: alice=%s\n", v)
	_, found, _ := e.Reader(sp).Get([]byte("alice"))
	fmt.Println("committed before Commit:", found)

	if err := b.Commit(map[state.StorePartition]int64{sp: 42}); err != nil {
		log.Fatal(err)
	}
	b.Close()
	v, _, _ = e.Reader(sp).Get([]byte("bob"))
	next, _, _ := e.Checkpoint(sp)
	fmt.Printf("committed: bob=%s, restore from offset %d\n", v, next)
	// Output:
	// batch: alice=1
	// committed before Commit: false
	// committed: bob=2, restore from offset 42
}
