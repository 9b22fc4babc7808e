package bench

import (
	crand "crypto/rand"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Every benchmark event is of this shape.
const (
	payloadBytes = 1024
	eventType    = "BenchEvent"
	metadata     = `{"schema_version":1}`
)

// payload makes one writer's event data: fresh random bytes every time.
type payload struct {
	rng *rand.ChaCha8
	buf []byte
}

func newPayload() *payload {
	var seed [32]byte
	crand.Read(seed[:])
	return &payload{rng: rand.NewChaCha8(seed), buf: make([]byte, payloadBytes)}
}

// next returns new data in a buffer that the next call overwrites.
func (p *payload) next() []byte {
	p.rng.Read(p.buf)
	return p.buf
}

// fresh returns new data in a buffer of its own.
func (p *payload) fresh() []byte {
	b := make([]byte, payloadBytes)
	p.rng.Read(b)
	return b
}

func newEvent(data []byte) *eventstorepb.Event {
	return &eventstorepb.Event{EventType: eventType, Data: data, Metadata: metadata}
}

// sidecarRecord is the record the sidecar writes for a one-event append of
// data at version.
func sidecarRecord(topic string, partition int32, stream string, version int64, data []byte) (*kgo.Record, error) {
	return kafka.NewRecord(topic, partition, &eventstorepb.RecordedAppend{
		StreamName:   stream,
		FirstVersion: version,
		Token:        uuid.NewString(),
		Events: []*eventstorepb.Event{{
			EventId: uuid.NewString(), AggregateId: stream, EventType: eventType,
			AggregateVersion: version, Data: data, Metadata: metadata, CreatedAt: time.Now().Unix(),
		}},
	})
}

// partitioner picks a new stream's partition the way the sidecar does:
// Kafka's default key hash over the partition count.
type partitioner struct {
	tp kgo.TopicPartitioner
	n  int
}

func newPartitioner(topic string, n int32) partitioner {
	return partitioner{tp: kgo.StickyKeyPartitioner(nil).ForTopic(topic), n: int(n)}
}

func (p partitioner) of(stream string) int32 {
	return int32(p.tp.Partition(&kgo.Record{Key: []byte(stream)}, p.n))
}
