package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

const (
	rowFromAck  = "end to end, acknowledged → delivered to a live SubscribeToAll"
	rowFromSend = "end to end, sent → delivered to a live SubscribeToAll"
)

// deliveryWait bounds the wait for one event to reach the subscriber.
const deliveryWait = 30 * time.Second

type arrival struct {
	id string
	at time.Time
}

// endToEnd appends events one at a time and times each one's delivery to
// a subscriber that is live, after the append's acknowledgement and after
// its sending. A delivery can come before the acknowledgement: the record
// is readable once Kafka has it, while the sidecar still commits to Redis.
func (h *harness) endToEnd(ctx context.Context, a *child) error {
	h.rep.expect(rowFromAck, rowFromSend)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := a.es.SubscribeToAll(ctx, &eventstorepb.SubscribeRequest{})
	if err != nil {
		return err
	}
	arrivals := make(chan arrival, 1024)
	recvErr := make(chan error, 1)
	go func() {
		for {
			e, err := sub.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case arrivals <- arrival{e.EventId, time.Now()}:
			case <-ctx.Done():
				return
			}
		}
	}()

	const stream = "end-to-end"
	h.track(a.topic, stream)
	var version int64
	pay := newPayload()
	appendOne := func(id string) (sent, acked time.Time, err error) {
		e := newEvent(pay.next())
		e.EventId = id
		sent = time.Now()
		resp, err := a.es.AppendToStream(ctx, &eventstorepb.AppendRequest{
			StreamName: stream, ExpectedVersion: version, Events: []*eventstorepb.Event{e},
		})
		acked = time.Now()
		if err != nil {
			return sent, acked, err
		}
		version = resp.CurrentVersion
		return sent, acked, nil
	}
	delivered := func(id string) (time.Time, error) {
		timeout := time.After(deliveryWait)
		for {
			select {
			case got := <-arrivals:
				if got.id == id {
					return got.at, nil
				}
			case err := <-recvErr:
				return time.Time{}, fmt.Errorf("subscription ended: %w", err)
			case <-timeout:
				return time.Time{}, fmt.Errorf("event %s not delivered within %s", id, deliveryWait)
			}
		}
	}

	// The subscriber is live once an event appended after it subscribed
	// reaches it.
	probe := uuid.NewString()
	if _, _, err := appendOne(probe); err != nil {
		return err
	}
	if _, err := delivered(probe); err != nil {
		return err
	}

	var fromAck, fromSend run
	for range h.sz.EndToEnd {
		id := uuid.NewString()
		sent, acked, err := appendOne(id)
		if err != nil {
			return err
		}
		at, err := delivered(id)
		if err != nil {
			return err
		}
		fromAck.add(at.Sub(acked))
		fromSend.add(at.Sub(sent))
	}
	n := fmt.Sprintf(" · %d events, one at a time", h.sz.EndToEnd)
	h.rep.add(rowFromAck, latencies(&fromAck)+n)
	h.rep.add(rowFromSend, latencies(&fromSend)+n)
	return nil
}
