package store

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// SubscribeToAll calls fn for every event of the topic, from offset from of
// every partition (0 is the start), then for every new event, until ctx
// ends or fn fails. Events of one stream arrive in version order; fn
// blocking holds back delivery, it never drops events. The events of one
// record are one delivery, with a span covering their calls of fn.
func (s *Store) SubscribeToAll(ctx context.Context, from int64, fn func(*eventstorepb.Event) error) error {
	return kafka.Tail(ctx, s.kcfg, kafka.TailOptions{From: from}, func(r *kgo.Record) error {
		a, err := kafka.Decode(r)
		if errors.Is(err, kafka.ErrNotAnAppend) {
			return nil
		}
		if err != nil {
			s.log.Warn("subscription skips an undecodable record", "partition", r.Partition,
				"offset", r.Offset, "err", err)
			return nil
		}
		pos := &eventstorepb.Position{Partition: r.Partition, Offset: r.Offset}
		span := s.startDeliver(s.appendContext(r), "", pos, a.StreamName, a.Events, 0)
		for _, e := range a.Events {
			if err := fn(e); err != nil {
				endDeliver(span, deliveryClosed)
				return err
			}
		}
		endDeliver(span, deliverySent)
		return nil
	})
}
