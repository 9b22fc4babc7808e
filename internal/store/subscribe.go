package store

import (
	"context"
	"errors"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// SubscribeToAll calls fn with every event of the topic, in the wire form
// of an eventstore.Event, from offset from of every partition (0 is the
// start), then with every new event, until ctx ends or fn fails. Events of
// one stream arrive in version order, the events of one append all or
// none; fn blocking holds back delivery, it never drops events. The events
// are forwarded as the records hold them, never decoded: the subscription
// costs what its records' bytes cost. The events of one record are one
// delivery, with a span covering their calls of fn.
func (s *Store) SubscribeToAll(ctx context.Context, from int64, fn func(event []byte) error) error {
	return kafka.Tail(ctx, s.kcfg, kafka.TailOptions{From: from}, func(r *kgo.Record) error {
		events, err := kafka.EncodedEvents(r)
		if errors.Is(err, kafka.ErrNotAnAppend) {
			return nil
		}
		if err != nil {
			s.log.Warn("subscription skips an undecodable record", "partition", r.Partition,
				"offset", r.Offset, "err", err)
			return nil
		}
		span := s.startDeliverRecord(r, len(events))
		for _, e := range events {
			if err := fn(e); err != nil {
				endDeliver(span, deliveryClosed)
				return err
			}
		}
		endDeliver(span, deliverySent)
		return nil
	})
}

// startDeliverRecord is startDeliver for a record forwarded undecoded: the
// span's stream and versions come from the record's headers. Without a
// tracer it is nil, which endDeliver takes: a catch-up pays nothing per
// record for tracing that is off.
func (s *Store) startDeliverRecord(r *kgo.Record, count int) trace.Span {
	if !s.traced {
		return nil
	}
	h := kafka.HeaderCarrier{R: r}
	first, _ := strconv.ParseInt(h.Get(kafka.HeaderFirstVersion), 10, 64)
	last, _ := strconv.ParseInt(h.Get(kafka.HeaderLastVersion), 10, 64)
	pos := &eventstorepb.Position{Partition: r.Partition, Offset: r.Offset}
	what := delivered{stream: h.Get(kafka.HeaderStream), events: count, first: first, last: last}
	return s.startDeliver(s.appendContext(r), "", pos, what, 0)
}
