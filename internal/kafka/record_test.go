package kafka_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func tracedRecord(t *testing.T) *kgo.Record {
	t.Helper()
	r, err := kafka.NewRecord("events", 2, &eventstorepb.RecordedAppend{
		StreamName: "s", FirstVersion: 4, Token: "tok",
		Events: []*eventstorepb.Event{{EventId: "e", EventType: "E"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := kafka.HeaderCarrier{R: r}
	c.Set(kafka.HeaderTraceparent, traceparent)
	c.Set(kafka.HeaderTracestate, "vendor=1")
	r.Offset = 7
	return r
}

func TestTraceHeadersLeaveTheRecordAnAppend(t *testing.T) {
	r := tracedRecord(t)
	a, err := kafka.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if a.StreamName != "s" || a.FirstVersion != 4 || len(a.Events) != 1 || a.Events[0].Offset != 7 {
		t.Fatalf("decoded %v", a)
	}
	if kafka.Token(r) != "tok" || kafka.IsFence(r) {
		t.Fatalf("token %q, fence %v", kafka.Token(r), kafka.IsFence(r))
	}

	// A parked record, and its replay, keep the trace context.
	parked := kafka.NewParkedRecord("events", r, kafka.Parked{Group: "g", At: time.Unix(1, 0), Partition: 2, Offset: 7})
	replayed := kafka.NewReplayRecord("events", "g", parked)
	for _, rec := range []*kgo.Record{parked, replayed} {
		if got := (kafka.HeaderCarrier{R: rec}).Get(kafka.HeaderTraceparent); got != traceparent {
			t.Fatalf("%s: traceparent %q, want %q", rec.Topic, got, traceparent)
		}
		if _, err := kafka.Decode(rec); err != nil {
			t.Fatalf("%s: %v", rec.Topic, err)
		}
	}
}

func TestHeaderCarrierReplacesAHeader(t *testing.T) {
	r := tracedRecord(t)
	n := len(r.Headers)
	c := kafka.HeaderCarrier{R: r}
	c.Set(kafka.HeaderTracestate, "vendor=2")
	if len(r.Headers) != n || c.Get(kafka.HeaderTracestate) != "vendor=2" {
		t.Fatalf("headers %v after replacing tracestate", r.Headers)
	}
	keys := c.Keys()
	if len(keys) != n || keys[0] != kafka.HeaderFormat {
		t.Fatalf("keys %v", keys)
	}
	if c.Get("missing") != "" {
		t.Fatal("a missing header has a value")
	}
}
