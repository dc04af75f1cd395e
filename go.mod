module github.com/gregorstream/gregor

go 1.27

require (
	github.com/google/btree v1.1.3
	github.com/twmb/franz-go v1.22.3
	pgregory.net/rapid v1.3.0
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
)
