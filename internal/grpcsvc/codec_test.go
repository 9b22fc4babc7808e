package grpcsvc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func TestCodecKeepsInvalidUTF8OfAppends(t *testing.T) {
	const placeholder, bad = "@@XX@@", "\xff\xfe@@@@"
	req := &eventstorepb.AppendRequest{StreamName: "s-" + placeholder, ExpectedVersion: 7, Events: []*eventstorepb.Event{
		{EventId: "id", EventType: "T", Data: []byte{0xff, 0, 1}, Metadata: `{"a":1}`, CreatedAt: 99},
		{EventId: placeholder, EventType: placeholder, AggregateId: "agg", Metadata: placeholder, AggregateVersion: 3},
	}}
	wire, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	wire = bytes.ReplaceAll(wire, []byte(placeholder), []byte(bad))
	c := codec{std: encoding.GetCodecV2("proto")}

	var got eventstorepb.AppendRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := proto.Clone(req).(*eventstorepb.AppendRequest)
	want.StreamName = "s-" + bad
	want.Events[1].EventId, want.Events[1].EventType, want.Events[1].Metadata = bad, bad, bad
	if !proto.Equal(&got, want) {
		t.Fatalf("decoded %v, want %v", &got, want)
	}

	// Only appends and reads are decoded leniently, and only well-formed
	// protobuf.
	var other eventstorepb.ListParkedRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire[:8])}, &other); err == nil {
		t.Fatal("a truncated message of another type decoded")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire[:len(wire)-3])}, &got); err == nil {
		t.Fatal("a truncated append decoded")
	}
	otherWire, _ := proto.Marshal(&eventstorepb.ListParkedRequest{Group: placeholder})
	otherWire = bytes.ReplaceAll(otherWire, []byte(placeholder), []byte(bad))
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(otherWire)}, &other); err == nil {
		t.Fatal("invalid UTF-8 in another request decoded")
	}
	getWire, _ := proto.Marshal(&eventstorepb.GetStreamRequest{StreamName: placeholder})
	getWire = bytes.ReplaceAll(getWire, []byte(placeholder), []byte(bad))
	var get eventstorepb.GetStreamRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(getWire)}, &get); err != nil || get.StreamName != bad {
		t.Fatalf("GetStream with invalid UTF-8: %q, %v; want it decoded for the store to refuse", get.StreamName, err)
	}
}
