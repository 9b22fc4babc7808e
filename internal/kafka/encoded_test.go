package kafka_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func TestEncodedEventsDecodeAsDecode(t *testing.T) {
	a := &eventstorepb.RecordedAppend{
		StreamName:   "order-1",
		FirstVersion: 4,
		Token:        "token",
		Events: []*eventstorepb.Event{
			{EventId: "e1", AggregateId: "order-1", EventType: "Placed", Data: []byte(`{"n":1}`),
				Metadata: `{"schema_version":1}`, CreatedAt: 1700000000, AggregateVersion: 4},
			{EventId: "e2", AggregateId: "order-1", EventType: "Paid", AggregateVersion: 5},
		},
	}
	for _, pos := range []struct {
		partition int32
		offset    int64
	}{{0, 0}, {0, 9}, {7, 0}, {15, 1 << 40}} {
		rec, err := kafka.NewRecord("t", pos.partition, a)
		if err != nil {
			t.Fatal(err)
		}
		rec.Offset = pos.offset
		want, err := kafka.Decode(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kafka.EncodedEvents(rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.Events) {
			t.Fatalf("at %+v: %d events, want %d", pos, len(got), len(want.Events))
		}
		for i, b := range got {
			var e eventstorepb.Event
			if err := proto.Unmarshal(b, &e); err != nil {
				t.Fatalf("at %+v: event %d: %v", pos, i, err)
			}
			if !proto.Equal(&e, want.Events[i]) {
				t.Fatalf("at %+v: event %d decodes as %v, want %v", pos, i, &e, want.Events[i])
			}
		}
	}
}

func TestEncodedEventsRefuses(t *testing.T) {
	if _, err := kafka.EncodedEvents(&kgo.Record{Value: []byte("x")}); !errors.Is(err, kafka.ErrNotAnAppend) {
		t.Fatalf("foreign record: %v, want ErrNotAnAppend", err)
	}
	fence := kafka.NewFence("t", 0, "s", "token")
	if _, err := kafka.EncodedEvents(fence); !errors.Is(err, kafka.ErrNotAnAppend) {
		t.Fatalf("fence: %v, want ErrNotAnAppend", err)
	}
	rec, err := kafka.NewRecord("t", 1, &eventstorepb.RecordedAppend{StreamName: "s", FirstVersion: 1,
		Events: []*eventstorepb.Event{{EventId: "a", EventType: "T"}, {EventId: "b", EventType: "T"}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string][]byte{
		"cut short": rec.Value[:len(rec.Value)-1],
		// The second event's length claims more bytes than the record has.
		"event too long": append(append([]byte{}, rec.Value...), 0x22, 0x7f, 0x0a),
		"bad tag":        append(append([]byte{}, rec.Value...), 0xff),
	} {
		bad := *rec
		bad.Value = value
		events, err := kafka.EncodedEvents(&bad)
		if err == nil || errors.Is(err, kafka.ErrNotAnAppend) || events != nil {
			t.Errorf("%s: %d events, err %v; want a decode error and no events", name, len(events), err)
		}
	}
}

// rawEvent appends to a record's value one more event, written field by
// field as given, bypassing the encoder's checks.
func rawEvent(value []byte, fields func(b []byte) []byte) []byte {
	ev := fields(nil)
	value = protowire.AppendTag(append([]byte{}, value...), 4, protowire.BytesType)
	return protowire.AppendBytes(value, ev)
}

func fieldOf(m proto.Message, name protoreflect.Name) protowire.Number {
	return m.ProtoReflect().Descriptor().Fields().ByName(name).Number()
}

func TestEncodedEventsAsDecodeOnOddRecords(t *testing.T) {
	rec, err := kafka.NewRecord("t", 0, &eventstorepb.RecordedAppend{StreamName: "s", FirstVersion: 1,
		Events: []*eventstorepb.Event{{EventId: "a", EventType: "T"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := &eventstorepb.Event{}
	// An event whose bytes hold a position of their own gets the record's,
	// also when the record's is partition 0 at offset 0.
	stray := *rec
	stray.Value = rawEvent(rec.Value, func(b []byte) []byte {
		b = protowire.AppendTag(b, fieldOf(ev, "event_id"), protowire.BytesType)
		b = protowire.AppendString(b, "b")
		b = protowire.AppendTag(b, fieldOf(ev, "partition"), protowire.VarintType)
		b = protowire.AppendVarint(b, 7)
		b = protowire.AppendTag(b, fieldOf(ev, "offset"), protowire.VarintType)
		return protowire.AppendVarint(b, 99)
	})
	events, err := kafka.EncodedEvents(&stray)
	if err != nil || len(events) != 2 {
		t.Fatalf("%d events, %v", len(events), err)
	}
	var e eventstorepb.Event
	if err := proto.Unmarshal(events[1], &e); err != nil || e.Partition != 0 || e.Offset != 0 || e.EventId != "b" {
		t.Fatalf("event with a stray position: %v, %v; want partition 0, offset 0", &e, err)
	}

	// A string that is not UTF-8, which Decode refuses, in an event or in
	// the record.
	badEvent := *rec
	badEvent.Value = rawEvent(rec.Value, func(b []byte) []byte {
		b = protowire.AppendTag(b, fieldOf(ev, "event_type"), protowire.BytesType)
		return protowire.AppendBytes(b, []byte("bad\xff"))
	})
	badStream := *rec
	badStream.Value = protowire.AppendTag(append([]byte{}, rec.Value...),
		fieldOf(&eventstorepb.RecordedAppend{}, "stream_name"), protowire.BytesType)
	badStream.Value = protowire.AppendBytes(badStream.Value, []byte{0xc3})
	for name, r := range map[string]*kgo.Record{"event_type": &badEvent, "stream_name": &badStream} {
		if _, derr := kafka.Decode(r); derr == nil {
			t.Fatalf("%s: Decode took it", name)
		}
		if events, err := kafka.EncodedEvents(r); err == nil || events != nil {
			t.Errorf("%s not UTF-8: %d events, err %v; want an error like Decode's", name, len(events), err)
		}
	}
}
