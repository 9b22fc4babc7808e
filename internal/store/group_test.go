package store

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// The ack tracking of a subscription, without Kafka: records are handed
// to register as a poll would.

func newTestSubscription(t *testing.T, window int, open *eventstorepb.SubscribeOpen) *Subscription {
	t.Helper()
	return &Subscription{
		s:      &Store{opts: Options{Topic: "events"}.withDefaults()},
		window: window,
		filter: newFilter(open),
		parts:  make(map[partKey]*partState),
		ready:  make(chan struct{}, 1),
		room:   make(chan struct{}, 1),
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func testRecord(t *testing.T, partition int32, offset int64, stream, typ string) *kgo.Record {
	t.Helper()
	r, err := kafka.NewRecord("events", partition, &eventstorepb.RecordedAppend{
		StreamName: stream, FirstVersion: offset + 1,
		Events: []*eventstorepb.Event{{EventType: typ, AggregateId: stream}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Offset = offset
	return r
}

// deliverAll takes every queued message, as Next would.
func deliverAll(sub *Subscription) (ds []*eventstorepb.Delivery, caughtUp int) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for m := sub.nextLocked(); m != nil; m = sub.nextLocked() {
		if d := m.GetDelivery(); d != nil {
			ds = append(ds, d)
		} else {
			caughtUp++
		}
	}
	return ds, caughtUp
}

func pos(p int32, o int64) *eventstorepb.Position {
	return &eventstorepb.Position{Partition: p, Offset: o}
}

func watermarkOf(sub *Subscription, p int32) int64 {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.parts[partKey{partition: p}].watermark()
}

func TestWatermarkIsTheFirstUnackedOffset(t *testing.T) {
	sub := newTestSubscription(t, 10, &eventstorepb.SubscribeOpen{})
	sub.mu.Lock()
	sub.assignLocked([]int32{0}, map[int32]int64{0: 0}, map[int32]int64{0: 5})
	sub.mu.Unlock()
	var rs []*kgo.Record
	for o := range int64(5) {
		rs = append(rs, testRecord(t, 0, o, "s", "E"))
	}
	sub.register(rs, nil)
	ds, caughtUp := deliverAll(sub)
	if len(ds) != 5 || caughtUp != 1 {
		t.Fatalf("%d deliveries and %d caught-up markers, want 5 and 1", len(ds), caughtUp)
	}

	steps := []struct {
		ack  int64
		want int64
	}{{1, 0}, {2, 0}, {0, 3}, {4, 3}, {3, 5}}
	for _, st := range steps {
		sub.Ack([]*eventstorepb.Position{pos(0, st.ack)})
		if got := watermarkOf(sub, 0); got != st.want {
			t.Fatalf("after acking %d the watermark is %d, want %d", st.ack, got, st.want)
		}
	}
	if sub.outstanding != 0 {
		t.Fatalf("%d outstanding after every ack", sub.outstanding)
	}
}

func TestAcksOfRevokedPartitionsAreIgnored(t *testing.T) {
	sub := newTestSubscription(t, 10, &eventstorepb.SubscribeOpen{Group: "g"})
	sub.mu.Lock()
	sub.assignLocked([]int32{0, 1}, map[int32]int64{0: 0, 1: 0}, map[int32]int64{0: 2, 1: 2})
	sub.mu.Unlock()
	sub.register([]*kgo.Record{testRecord(t, 0, 0, "a", "E"), testRecord(t, 0, 1, "a", "E"),
		testRecord(t, 1, 0, "b", "E"), testRecord(t, 1, 1, "b", "E")}, nil)
	deliverAll(sub)
	sub.Ack([]*eventstorepb.Position{pos(0, 0)})

	// Partition 0 is revoked: its watermark is committed, its unacked
	// delivery is no longer counted, and a late ack is ignored.
	sub.mu.Lock()
	offsets := sub.dropLocked(map[string][]int32{"events": {0}})
	sub.mu.Unlock()
	if offsets["events"][0] != 1 || len(offsets["events"]) != 1 {
		t.Fatalf("revoke commits %v, want partition 0 at 1", offsets)
	}
	if sub.outstanding != 2 {
		t.Fatalf("%d outstanding after the revoke, want partition 1's 2", sub.outstanding)
	}
	sub.Ack([]*eventstorepb.Position{pos(0, 1)})
	if sub.outstanding != 2 {
		t.Fatalf("a late ack of a revoked partition changed the window: %d outstanding", sub.outstanding)
	}

	// Assigned again, the partition starts over; the old ack does not
	// count for the new delivery until it is acked again.
	sub.mu.Lock()
	sub.assignLocked([]int32{0}, map[int32]int64{0: 1}, map[int32]int64{0: 2})
	sub.mu.Unlock()
	sub.register([]*kgo.Record{testRecord(t, 0, 1, "a", "E")}, nil)
	if ds, _ := deliverAll(sub); len(ds) != 1 || ds[0].Position.Offset != 1 {
		t.Fatalf("after reassignment delivered %v, want offset 1 again", ds)
	}
	if wm := watermarkOf(sub, 0); wm != 1 {
		t.Fatalf("watermark %d before the new ack, want 1", wm)
	}
	sub.Ack([]*eventstorepb.Position{pos(0, 1)})
	if wm := watermarkOf(sub, 0); wm != 2 {
		t.Fatalf("watermark %d after the new ack, want 2", wm)
	}
}

func TestFilteredRecordsCountAsAckedInOrder(t *testing.T) {
	sub := newTestSubscription(t, 3, &eventstorepb.SubscribeOpen{EventTypes: []string{"Wanted"}})
	sub.mu.Lock()
	sub.assignLocked([]int32{0}, map[int32]int64{0: 0}, map[int32]int64{0: 4})
	sub.mu.Unlock()
	sub.register([]*kgo.Record{testRecord(t, 0, 0, "s", "Other"), testRecord(t, 0, 1, "s", "Wanted"),
		testRecord(t, 0, 2, "s", "Other")}, nil)
	if free := sub.window - sub.outstanding; free != 0 {
		t.Fatalf("window has %d free before the sender ran, want 0: filtered records count until passed", free)
	}
	ds, caughtUp := deliverAll(sub)
	if len(ds) != 1 || ds[0].Position.Offset != 1 || caughtUp != 0 {
		t.Fatalf("delivered %v (%d markers), want only offset 1 and no marker yet", ds, caughtUp)
	}
	// Offset 0 is done, 1 is unacked, 2 is done behind it.
	if wm := watermarkOf(sub, 0); wm != 1 {
		t.Fatalf("watermark %d, want the unacked offset 1", wm)
	}
	sub.Ack([]*eventstorepb.Position{ds[0].Position})
	if wm := watermarkOf(sub, 0); wm != 3 {
		t.Fatalf("watermark %d after the ack, want 3", wm)
	}
	sub.register([]*kgo.Record{testRecord(t, 0, 3, "s", "Other")}, nil)
	if _, caughtUp := deliverAll(sub); caughtUp != 1 {
		t.Fatalf("%d caught-up markers after the last record was passed, want 1", caughtUp)
	}
}

func TestNackRetryRedeliversFirst(t *testing.T) {
	sub := newTestSubscription(t, 10, &eventstorepb.SubscribeOpen{})
	sub.mu.Lock()
	sub.assignLocked([]int32{0}, map[int32]int64{0: 0}, map[int32]int64{0: 0})
	sub.mu.Unlock()
	sub.register([]*kgo.Record{testRecord(t, 0, 0, "s", "E"), testRecord(t, 0, 1, "s", "E")}, nil)
	sub.mu.Lock()
	first := sub.nextLocked()
	for first.GetDelivery() == nil {
		first = sub.nextLocked()
	}
	sub.mu.Unlock()
	if err := sub.Nack(t.Context(), &eventstorepb.Nack{Position: pos(0, 0), Action: eventstorepb.NackAction_NACK_ACTION_RETRY}); err != nil {
		t.Fatal(err)
	}
	ds, _ := deliverAll(sub)
	if len(ds) != 2 || ds[0].Position.Offset != 0 || ds[0].Redeliveries != 1 || ds[1].Position.Offset != 1 {
		t.Fatalf("after the retry delivered %v, want offset 0 again (1 redelivery), then 1", ds)
	}
	err := sub.Nack(t.Context(), &eventstorepb.Nack{Position: pos(0, 0), Action: eventstorepb.NackAction_NACK_ACTION_PARK})
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != "nack.action" {
		t.Fatalf("park without a group: %v, want invalid nack.action", err)
	}
}
