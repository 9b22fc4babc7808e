package grpcsvc

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
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
	// protobuf; any other request that does not decode is marked for the
	// interceptors to refuse.
	refused := func(what string, v proto.Message, wire []byte, mention string) {
		t.Helper()
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, v); err != nil {
			t.Fatalf("%s: unmarshal: %v", what, err)
		}
		err := undecodable(v)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), mention) {
			t.Fatalf("%s: %v, want INVALID_ARGUMENT mentioning %q", what, err, mention)
		}
	}
	var other eventstorepb.ListParkedRequest
	refused("a truncated message of another type", &other, wire[:8], "eventstore.ListParkedRequest")
	refused("a truncated append", &got, wire[:len(wire)-3], "eventstore.AppendRequest")
	otherWire, _ := proto.Marshal(&eventstorepb.ListParkedRequest{Group: placeholder})
	otherWire = bytes.ReplaceAll(otherWire, []byte(placeholder), []byte(bad))
	refused("invalid UTF-8 in another request", &other, otherWire, "group")
	subWire, _ := proto.Marshal(&eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Open{
		Open: &eventstorepb.SubscribeOpen{Group: "g", EventTypes: []string{"A", placeholder}}}})
	subWire = bytes.ReplaceAll(subWire, []byte(placeholder), []byte(bad))
	refused("invalid UTF-8 in a nested list", new(eventstorepb.SubscribeClientMessage), subWire, "open.event_types[1]: not valid UTF-8")
	if err := undecodable(want); err != nil {
		t.Fatalf("a request that decoded is refused: %v", err)
	}
	withUnknown := proto.Clone(req)
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	if err := undecodable(withUnknown); err != nil {
		t.Fatalf("a request with an unknown field is refused: %v", err)
	}
	getWire, _ := proto.Marshal(&eventstorepb.GetStreamRequest{StreamName: placeholder})
	getWire = bytes.ReplaceAll(getWire, []byte(placeholder), []byte(bad))
	var get eventstorepb.GetStreamRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(getWire)}, &get); err != nil || get.StreamName != bad {
		t.Fatalf("GetStream with invalid UTF-8: %q, %v; want it decoded for the store to refuse", get.StreamName, err)
	}
}
