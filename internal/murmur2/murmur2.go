// Package murmur2 is Kafka's default partitioner for keyed records: murmur2
// of the key bytes, made positive, modulo the partition count, as the Java
// client and franz-go compute it.
package murmur2

// Hash is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) with
// its seed, as a signed 32-bit value.
func Hash(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	i := 0
	for ; n-i >= 4; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(data[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// Partition returns the partition Kafka's default partitioner gives a
// non-null key among n partitions.
func Partition(key []byte, n int32) int32 {
	return int32(uint32(Hash(key))&0x7fffffff) % n
}
