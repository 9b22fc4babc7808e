package kafka

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Record header keys. They repeat what the value holds, for tools that
// inspect the topic without decoding it.
const (
	HeaderStream       = "es-stream"
	HeaderFirstVersion = "es-first-version"
	HeaderLastVersion  = "es-last-version"
	HeaderToken        = "es-token"
	// HeaderFence holds, on a fence, the token of the append it resolves.
	HeaderFence  = "es-fence"
	HeaderFormat = "es-format"
)

// formatV1 names the record format: a protobuf eventstore.RecordedAppend.
const formatV1 = "eventstore.RecordedAppend/1"

// formatFence names a fence: a record without events, see NewFence.
const formatFence = "eventstore.Fence/1"

// ErrNotAnAppend is a record in the topic that the sidecar did not write.
var ErrNotAnAppend = errors.New("record is not an event store append")

// NewRecord encodes an append as a record for partition.
func NewRecord(topic string, partition int32, a *eventstorepb.RecordedAppend) (*kgo.Record, error) {
	value, err := proto.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode append: %w", err)
	}
	last := a.FirstVersion + int64(len(a.Events)) - 1
	return &kgo.Record{
		Topic:     topic,
		Partition: partition,
		Key:       []byte(a.StreamName),
		Value:     value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderFormat, Value: []byte(formatV1)},
			{Key: HeaderStream, Value: []byte(a.StreamName)},
			{Key: HeaderFirstVersion, Value: strconv.AppendInt(nil, a.FirstVersion, 10)},
			{Key: HeaderLastVersion, Value: strconv.AppendInt(nil, last, 10)},
			{Key: HeaderToken, Value: []byte(a.Token)},
		},
	}, nil
}

// Decode reads the append a record holds and stamps every event with the
// record's position. It returns ErrNotAnAppend for foreign records.
func Decode(r *kgo.Record) (*eventstorepb.RecordedAppend, error) {
	if !isAppend(r) {
		return nil, ErrNotAnAppend
	}
	a := new(eventstorepb.RecordedAppend)
	if err := proto.Unmarshal(r.Value, a); err != nil {
		return nil, fmt.Errorf("decode append at partition %d offset %d: %w", r.Partition, r.Offset, err)
	}
	for _, e := range a.Events {
		e.Partition = r.Partition
		e.Offset = r.Offset
	}
	return a, nil
}

// NewFence returns a fence for partition: a record without a value that
// the append protocol writes before it looks in the partition for an
// append whose outcome is unknown. Once the fence is acknowledged, every
// record the broker took before it lies below its offset; and a produce of
// the same producer that was abandoned before the fence was written cannot
// land after it, because an abandoned produce moves the producer to a new
// epoch and the broker refuses batches of an older one. The fence names
// the stream and the token it resolves. Readers skip it: Decode returns
// ErrNotAnAppend.
func NewFence(topic string, partition int32, stream, token string) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: partition,
		Key:       []byte(stream),
		Headers: []kgo.RecordHeader{
			{Key: HeaderFormat, Value: []byte(formatFence)},
			{Key: HeaderStream, Value: []byte(stream)},
			{Key: HeaderFence, Value: []byte(token)},
		},
	}
}

// IsFence reports whether r is a fence written by NewFence.
func IsFence(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderFormat {
			return string(h.Value) == formatFence
		}
	}
	return false
}

// Token returns the reservation token of a record without decoding it.
func Token(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == HeaderToken {
			return string(h.Value)
		}
	}
	return ""
}

func isAppend(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == HeaderFormat {
			return string(h.Value) == formatV1
		}
	}
	return false
}
