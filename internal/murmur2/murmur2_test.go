package murmur2

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Vectors from Kafka's UtilsTest.testMurmur2.
func TestHashKafkaVectors(t *testing.T) {
	cases := map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	}
	for in, want := range cases {
		if got := Hash([]byte(in)); got != want {
			t.Errorf("Hash(%q) = %d, want %d", in, got, want)
		}
	}
}

// The partition of a key must be the one franz-go's default partitioner picks.
func TestPartitionMatchesFranzGo(t *testing.T) {
	for _, n := range []int32{1, 2, 3, 4, 7, 16, 100} {
		p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
		for i := range 2000 {
			key := []byte(fmt.Sprintf("key-%d", i))
			want := int32(p.Partition(&kgo.Record{Key: key}, int(n)))
			if got := Partition(key, n); got != want {
				t.Fatalf("Partition(%q, %d) = %d, franz-go says %d", key, n, got, want)
			}
		}
	}
}
