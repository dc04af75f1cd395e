package memory_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/gregorstream/gregor/state"
	"github.com/gregorstream/gregor/state/internal/storetest"
	"github.com/gregorstream/gregor/state/memory"
)

func TestConformance(t *testing.T) {
	storetest.Conformance(t, func(*testing.T) state.KeyValueBytesStore {
		return memory.New("conformance")
	}, storetest.Options{ExactCount: true})
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := memory.New("model")
		defer s.Close()
		storetest.Check(t, s, storetest.Options{ExactCount: true})
	})
}

func TestBuilder(t *testing.T) {
	ctx := state.BuildContext{ApplicationID: "app", TaskID: "0_3", Partition: 3}
	b := memory.NewBuilder("counts")
	if b.Name() != "counts" {
		t.Errorf("Name = %q", b.Name())
	}
	s1, err := b.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kv1, ok := s1.(*memory.Store)
	if !ok || s1.Name() != "counts" {
		t.Fatalf("Build returned %T named %q, want *memory.Store named counts", s1, s1.Name())
	}
	if err := kv1.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s2.(*memory.Store).Get([]byte("k")); found {
		t.Error("two builds share their contents")
	}

	if _, err := memory.NewBuilder("").Build(ctx); !errors.Is(err, state.ErrInvalidBuilder) {
		t.Errorf("Build with an empty name: error %v, want ErrInvalidBuilder", err)
	}
}

// TestConcurrentReads runs readers and iterators against a writer; run it
// with -race.
func TestConcurrentReads(t *testing.T) {
	s := memory.New("concurrent")
	defer s.Close()
	const n = 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := s.Get(fmt.Appendf(nil, "k%05d", i%n)); err != nil {
					t.Error(err)
					return
				}
				if r%2 == 0 {
					continue
				}
				it := s.PrefixScan([]byte("k01"))
				prev := ""
				for it.Next() {
					if k := string(it.Key()); k <= prev {
						t.Errorf("iterator out of order: %q after %q", k, prev)
					} else {
						prev = k
					}
				}
				if err := it.Close(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 5 * n {
		k := fmt.Appendf(nil, "k%05d", i%n)
		var err error
		if i%7 == 0 {
			err = s.Delete(k)
		} else {
			err = s.Put(k, k)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

// The benchmarks report the B-tree next to a baseline run in the same
// process, a map under a read-write lock (unordered, so a lower bound):
// compare ratios, not absolute numbers.

func BenchmarkGet(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("map-baseline/%d", size), func(b *testing.B) {
			var mu sync.RWMutex
			m := map[string][]byte{}
			keys := make([][]byte, size)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%09d", i)
				m[string(keys[i])] = make([]byte, 64)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				mu.RLock()
				_, found := m[string(keys[i%size])]
				mu.RUnlock()
				if !found {
					b.Fatal("missing key")
				}
				i++
			}
		})
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s := memory.New("bench")
			defer s.Close()
			keys := make([][]byte, size)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%09d", i)
				if err := s.Put(keys[i], make([]byte, 64)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, found, err := s.Get(keys[i%size]); !found || err != nil {
					b.Fatal("missing key", err)
				}
				i++
			}
		})
	}
}

func BenchmarkPut(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("map-baseline/%d", size), func(b *testing.B) {
			var mu sync.RWMutex
			m := map[string][]byte{}
			keys := make([][]byte, size)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%09d", i)
			}
			value := make([]byte, 64)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := keys[i%size]
				buf := make([]byte, len(k)+len(value)) // the same copy the store makes
				copy(buf[copy(buf, k):], value)
				mu.Lock()
				m[string(buf[:len(k)])] = buf[len(k):]
				mu.Unlock()
				i++
			}
		})
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s := memory.New("bench")
			defer s.Close()
			keys := make([][]byte, size)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "key-%09d", i)
			}
			value := make([]byte, 64)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := s.Put(keys[i%size], value); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkPutWithOpenIterator measures the copy-on-write cost that an
// iterator's snapshot puts on the writes made while it is open.
func BenchmarkPutWithOpenIterator(b *testing.B) {
	s := memory.New("bench")
	defer s.Close()
	const size = 100_000
	keys := make([][]byte, size)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%09d", i)
		if err := s.Put(keys[i], make([]byte, 64)); err != nil {
			b.Fatal(err)
		}
	}
	value := make([]byte, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%100 == 0 {
			s.Range(nil, nil).Close()
		}
		if err := s.Put(keys[i%size], value); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
