package store

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
)

// SubscribeToAll calls fn with every event of the topic, in the wire form
// of an eventstore.Event, from offset from of every partition (0 is the
// start), then with every new event, until ctx ends or fn fails. Events of
// one stream arrive in version order, the events of one append all or
// none; fn blocking holds back delivery, it never drops events. The events
// are forwarded as the records hold them, never decoded: the subscription
// costs what its records' bytes cost.
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
		for _, e := range events {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}
