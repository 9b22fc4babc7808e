package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer writes appends to the event topic: acks from all in-sync
// replicas, idempotent, into the partition each record names.
//
// A record in flight is abandoned when its delivery timeout or its
// context ends, even when the broker may have written it: franz-go would
// otherwise retry it until a response comes, for as long as the broker is
// away, and write it after the append's lease let the stream move on. The
// append protocol resolves an abandoned record against the partition, so
// the duplicate-avoidance this gives up is not needed.
type Producer struct {
	cl *kgo.Client
}

// MaxBatchBytes bounds a batch the producer sends, and with it the largest
// record: the broker's max.message.bytes must also let it through.
const MaxBatchBytes = 16 << 20

// NewProducer returns a producer for c.Topic.
func NewProducer(c Config) (*Producer, error) {
	c = c.withDefaults()
	opts := append(c.base(),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(MaxBatchBytes),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	return &Producer{cl: cl}, nil
}

// Produce writes r and returns its offset once every in-sync replica has it.
func (p *Producer) Produce(ctx context.Context, r *kgo.Record) (int64, error) {
	res := p.cl.ProduceSync(ctx, r)
	if err := res.FirstErr(); err != nil {
		return 0, err
	}
	return r.Offset, nil
}

// Refresh asks for new metadata, so partitions added to the topic become
// usable.
func (p *Producer) Refresh() { p.cl.ForceMetadataRefresh() }

// Close flushes nothing: Produce waits for its record. It only releases the
// client's connections.
func (p *Producer) Close() { p.cl.Close() }

// Rejected reports whether err is a definite refusal by the broker, after
// which the record is certainly not in the log. Any other error leaves the
// outcome unknown: the record may have been written.
func Rejected(err error) bool {
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke {
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.CorruptMessage, kerr.TopicAuthorizationFailed, kerr.InvalidTopicException,
		kerr.PolicyViolation, kerr.InvalidRequiredAcks:
		return true
	}
	return false
}
