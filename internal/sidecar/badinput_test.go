package sidecar_test

import (
	"bytes"
	"context"
	cryptorand "crypto/rand"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Bad input is answered with a precise status naming the field, and
// changes nothing: neither the topic nor the stream's version.

// invalidUTF8 stands in a request for bytes that are not UTF-8: a Go
// client refuses to encode those, so the test encodes a placeholder of the
// same length and swaps the bytes in on the wire.
const (
	invalidUTF8 = "@@INVALID-UTF8@@"
	invalidWire = "\xff\xfe\xfdNVALID-UTF8@@" // as long as invalidUTF8
)

// rawCodec sends requests as ready-made bytes and decodes replies as
// protobuf.
type rawCodec struct{}

type rawRequest []byte

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(rawRequest); ok {
		return r, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (rawCodec) Name() string                       { return "proto" }

// rawAppend sends req with every invalidUTF8 placeholder replaced by bytes
// that are not UTF-8.
func rawAppend(t *testing.T, conn *grpc.ClientConn, req *eventstorepb.AppendRequest) error {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(invalidUTF8), []byte(invalidWire))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return conn.Invoke(ctx, eventstorepb.EventStoreService_AppendToStream_FullMethodName, rawRequest(b),
		new(eventstorepb.AppendResponse), grpc.ForceCodec(rawCodec{}))
}

func withEvents(events ...*eventstorepb.Event) []*eventstorepb.Event { return events }

func nEvents(n int, size int) []*eventstorepb.Event {
	es := make([]*eventstorepb.Event, n)
	for i := range es {
		es[i] = event("Many", strings.Repeat("x", size))
	}
	return es
}

func withMetadata(md string) *eventstorepb.Event {
	e := event("Meta", "{}")
	e.Metadata = md
	return e
}

func withType(typ string) *eventstorepb.Event { return event(typ, "{}") }

func withID(id string) *eventstorepb.Event {
	e := event("Identified", "{}")
	e.EventId = id
	return e
}

func withAggregate(id string) *eventstorepb.Event {
	e := event("Aggregated", "{}")
	e.AggregateId = id
	return e
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	const target = "bad-input"
	type badCase struct {
		name     string
		stream   string // default target
		expected int64  // default 1, the target's version
		events   []*eventstorepb.Event
		noEvents bool
		code     codes.Code
		mention  []string
	}
	big := func(n int) *eventstorepb.Event { return event("Big", strings.Repeat("b", n)) }
	tooLate := event("Late", "{}")
	tooLate.CreatedAt = -1
	cases := []badCase{
		{name: "empty stream name", stream: "-", code: codes.InvalidArgument, mention: []string{"stream_name", "empty"}},
		{name: "stream name over the limit", stream: strings.Repeat("s", 257), code: codes.InvalidArgument,
			mention: []string{"stream_name", "257 bytes", "256"}},
		{name: "stream name not UTF-8", stream: "s-" + invalidUTF8, code: codes.InvalidArgument,
			mention: []string{"stream_name", "UTF-8"}},
		{name: "stream name with a newline", stream: "a\nb", code: codes.InvalidArgument,
			mention: []string{"stream_name", "control character"}},
		{name: "stream name with NUL", stream: "a\x00b", code: codes.InvalidArgument, mention: []string{"stream_name", "control"}},
		{name: "stream name with DEL", stream: "a\x7fb", code: codes.InvalidArgument, mention: []string{"stream_name", "control"}},
		{name: "stream name with a C1 control", stream: "a\u0085b", code: codes.InvalidArgument, mention: []string{"stream_name", "control"}},

		{name: "expected version -3", expected: -3, code: codes.InvalidArgument, mention: []string{"expected_version", "-3"}},
		{name: "expected version min int64", expected: math.MinInt64, code: codes.InvalidArgument, mention: []string{"expected_version"}},
		{name: "expected version max int64", expected: math.MaxInt64, code: codes.InvalidArgument,
			mention: []string{"expected_version", "highest supported"}},
		{name: "expected version past the highest", expected: versions.MaxVersion + 1, code: codes.InvalidArgument,
			mention: []string{"expected_version"}},

		{name: "no events", noEvents: true, code: codes.InvalidArgument, mention: []string{"events", "at least one"}},
		{name: "10000 events", events: nEvents(10_000, 1), code: codes.ResourceExhausted, mention: []string{"events", "10000", "1000"}},
		{name: "1001 events", events: nEvents(1001, 1), code: codes.ResourceExhausted, mention: []string{"events", "1001"}},
		{name: "one event over the limit", events: withEvents(big(600 << 10)), code: codes.ResourceExhausted,
			mention: []string{"events[0].data", "524288"}},
		{name: "metadata over the limit", events: withEvents(withMetadata(`{"m":"` + strings.Repeat("m", 600<<10) + `"}`)),
			code: codes.ResourceExhausted, mention: []string{"events[0].metadata", "524288"}},
		{name: "second event over the limit", events: withEvents(big(10), big(513<<10)), code: codes.ResourceExhausted,
			mention: []string{"events[1].data"}},
		{name: "events small alone, too large together", events: nEvents(3, 400<<10), code: codes.ResourceExhausted,
			mention: []string{"events", "encoded size", "1000000"}},

		{name: "metadata not JSON", events: withEvents(withMetadata("{")), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata", "JSON"}},
		{name: "metadata a JSON array", events: withEvents(withMetadata("[1,2]")), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata", "object"}},
		{name: "metadata a JSON string", events: withEvents(withMetadata(`"text"`)), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata", "object"}},
		{name: "metadata JSON null", events: withEvents(withMetadata("null")), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata", "object"}},
		{name: "metadata with trailing text", events: withEvents(withMetadata(`{"a":1} {"b":2}`)), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata"}},
		{name: "metadata not UTF-8", events: withEvents(withMetadata(`{"a":"` + invalidUTF8 + `"}`)), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata", "UTF-8"}},
		{name: "schema_version 0", events: withEvents(withMetadata(`{"schema_version":0}`)), code: codes.InvalidArgument,
			mention: []string{"events[0].metadata", "schema_version"}},
		{name: "schema_version negative", events: withEvents(withMetadata(`{"schema_version":-1}`)), code: codes.InvalidArgument,
			mention: []string{"schema_version"}},
		{name: "schema_version a word", events: withEvents(withMetadata(`{"schema_version":"two"}`)), code: codes.InvalidArgument,
			mention: []string{"schema_version"}},
		{name: "schema_version a string of digits", events: withEvents(withMetadata(`{"schema_version":"2"}`)),
			code: codes.InvalidArgument, mention: []string{"schema_version"}},
		{name: "schema_version a fraction", events: withEvents(withMetadata(`{"schema_version":1.5}`)), code: codes.InvalidArgument,
			mention: []string{"schema_version"}},
		{name: "schema_version with an escaped key", events: withEvents(withMetadata(`{"schema\u005fversion":0}`)),
			code: codes.InvalidArgument, mention: []string{"events[0].metadata", "schema_version"}},
		{name: "schema_version with an exponent", events: withEvents(withMetadata(`{"schema_version":1e3}`)),
			code: codes.InvalidArgument, mention: []string{"schema_version"}},
		{name: "schema_version null", events: withEvents(withMetadata(`{"schema_version":null}`)), code: codes.InvalidArgument,
			mention: []string{"schema_version"}},
		{name: "schema_version true", events: withEvents(withMetadata(`{"schema_version":true}`)), code: codes.InvalidArgument,
			mention: []string{"schema_version"}},
		{name: "schema_version an object", events: withEvents(withMetadata(`{"schema_version":{}}`)), code: codes.InvalidArgument,
			mention: []string{"schema_version"}},

		{name: "empty event type", events: withEvents(withType("")), code: codes.InvalidArgument,
			mention: []string{"events[0].event_type", "empty"}},
		{name: "event type with a tab", events: withEvents(withType("Content\tSubmitted")), code: codes.InvalidArgument,
			mention: []string{"events[0].event_type", "control"}},
		{name: "event type over the limit", events: withEvents(withType(strings.Repeat("T", 257))), code: codes.InvalidArgument,
			mention: []string{"events[0].event_type", "257"}},
		{name: "event type not UTF-8", events: withEvents(withType(invalidUTF8)), code: codes.InvalidArgument,
			mention: []string{"events[0].event_type", "UTF-8"}},
		{name: "event type wrong in the third event", events: withEvents(withType("A"), withType("B"), withType("")),
			code: codes.InvalidArgument, mention: []string{"events[2].event_type"}},

		{name: "event id over the limit", events: withEvents(withID(strings.Repeat("i", 129))), code: codes.InvalidArgument,
			mention: []string{"events[0].event_id", "129"}},
		{name: "event id with a control character", events: withEvents(withID("id\x01")), code: codes.InvalidArgument,
			mention: []string{"events[0].event_id", "control"}},
		{name: "event id not UTF-8", events: withEvents(withID(invalidUTF8)), code: codes.InvalidArgument,
			mention: []string{"events[0].event_id", "UTF-8"}},
		{name: "same event id twice", events: withEvents(withID("twice"), withID("other"), withID("twice")),
			code: codes.InvalidArgument, mention: []string{"events[2].event_id", "events[0]"}},

		{name: "negative created_at", events: withEvents(tooLate), code: codes.InvalidArgument,
			mention: []string{"events[0].created_at", "-1"}},
		{name: "aggregate id not UTF-8", events: withEvents(withAggregate(invalidUTF8)), code: codes.InvalidArgument,
			mention: []string{"events[0].aggregate_id", "UTF-8"}},
		{name: "aggregate id with a control character", events: withEvents(withAggregate("agg\n1")), code: codes.InvalidArgument,
			mention: []string{"events[0].aggregate_id", "control"}},
		{name: "aggregate id over the limit", events: withEvents(withAggregate(strings.Repeat("a", 257))), code: codes.InvalidArgument,
			mention: []string{"events[0].aggregate_id", "257"}},
	}
	// Valid, however odd: each is a stream of its own, created once.
	valid := []string{"{", "}", "%", "{}", "}{", "%7b", "a{b}c", "{bad-input}", "流水-ü-🙂", strings.Repeat("v", 256)}

	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		conn, err := grpc.NewClient(sc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		mustAppend(t, c, target, 0, event("Seeded", "{}"))
		records := 1
		// unchanged checks the topic's record count on the real backend and
		// the stream's version through an append it refuses.
		unchanged := func(t *testing.T, stream string, version int64) {
			t.Helper()
			if b.Real() {
				if n := len(testenv.ReadTopic(t, b.Brokers, cfg.KafkaTopic)); n != records {
					t.Fatalf("topic holds %d records, want %d", n, records)
				}
			}
			_, err := appendEvents(t, c, stream, version+7, event("Probe", "{}"))
			wantCode(t, err, codes.Aborted, fmt.Sprintf("actual version %d", version))
		}

		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				stream, expected, events := target, int64(1), tt.events
				switch {
				case tt.stream == "-":
					stream = ""
				case tt.stream != "":
					stream = tt.stream
				}
				if tt.expected != 0 {
					expected = tt.expected
				}
				if events == nil && !tt.noEvents {
					events = withEvents(event("Fine", "{}"))
				}
				err := rawAppend(t, conn, &eventstorepb.AppendRequest{StreamName: stream, ExpectedVersion: expected, Events: events})
				wantCode(t, err, tt.code, tt.mention...)
				unchanged(t, target, 1)
			})
		}
		for _, name := range valid {
			t.Run("valid stream name "+name[:min(len(name), 20)], func(t *testing.T) {
				if v := mustAppend(t, c, name, 0, event("Odd", "{}")); v != 1 {
					t.Fatalf("stream %q at %d", name, v)
				}
				records++
				unchanged(t, name, 1)
				unchanged(t, target, 1)
			})
		}
		for _, tt := range undecodable {
			t.Run("undecodable "+tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				err := conn.Invoke(ctx, tt.method, rawRequest(tt.wire), new(eventstorepb.AppendResponse),
					grpc.ForceCodec(rawCodec{}))
				wantCode(t, err, codes.InvalidArgument, tt.mention...)
				unchanged(t, target, 1)
			})
		}
		t.Run("undecodable subscription message", func(t *testing.T) {
			stream := rawSubscribe(t, conn)
			if err := stream.SendMsg(rawRequest{0x0a, 0x05, 0x0a}); err != nil {
				t.Fatal(err)
			}
			err = stream.RecvMsg(new(eventstorepb.SubscribeServerMessage))
			wantCode(t, err, codes.InvalidArgument, "eventstore.SubscribeClientMessage")
		})
		t.Run("undecodable message of an open subscription", func(t *testing.T) {
			stream := rawSubscribe(t, conn)
			open, _ := proto.Marshal(&eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Open{
				Open: &eventstorepb.SubscribeOpen{Group: "undecodable"}}})
			if err := stream.SendMsg(rawRequest(open)); err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(rawRequest{0x12, 0x05, 0x0a}); err != nil {
				t.Fatal(err)
			}
			for {
				if err = stream.RecvMsg(new(eventstorepb.SubscribeServerMessage)); err != nil {
					break
				}
			}
			wantCode(t, err, codes.InvalidArgument, "eventstore.SubscribeClientMessage")
		})
	})
}

// rawSubscribe opens a Subscribe stream whose messages are sent as
// ready-made bytes.
func rawSubscribe(t *testing.T, conn *grpc.ClientConn) grpc.ClientStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	stream, err := conn.NewStream(ctx, &eventstorepb.EventStoreService_ServiceDesc.Streams[2],
		eventstorepb.EventStoreService_Subscribe_FullMethodName, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	return stream
}

// undecodable are requests that are not protobuf of their method's type.
var undecodable = []struct {
	name, method string
	wire         []byte
	mention      []string
}{
	{"garbage append", eventstorepb.EventStoreService_AppendToStream_FullMethodName, []byte{0xff, 0xff, 0xff},
		[]string{"eventstore.AppendRequest"}},
	{"truncated append", eventstorepb.EventStoreService_AppendToStream_FullMethodName, []byte{0x0a, 0x09, 'b', 'a', 'd'},
		[]string{"eventstore.AppendRequest"}},
	{"garbage get", eventstorepb.EventStoreService_GetStream_FullMethodName, []byte{0x08},
		[]string{"eventstore.GetStreamRequest"}},
	{"parked list with a group not UTF-8", eventstorepb.EventStoreService_ListParked_FullMethodName,
		append([]byte{0x0a, 0x03}, invalidWire[:3]...), []string{"group", "UTF-8"}},
}

// An append that passes the sidecar's own limits but not the broker's
// max.message.bytes is refused by Kafka: the client gets RESOURCE_EXHAUSTED
// and the stream is free for the next append at once, well within a lease.
func TestAppendRefusedByTheBroker(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		cfg.MaxEventBytes = 3 << 20
		cfg.MaxAppendBytes = 3500 << 10
		cfg.AppendLease = 8 * time.Second
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		mustAppend(t, c, "big", 0, event("Seeded", "{}"))

		// Random bytes: the producer compresses, and the broker measures
		// the compressed batch.
		huge := event("Huge", "")
		huge.Data = make([]byte, 2<<20)
		cryptorand.Read(huge.Data)
		_, err := appendEvents(t, c, "big", 1, huge)
		wantCode(t, err, codes.ResourceExhausted, "events", "larger than the topic accepts")

		ctx, cancel := context.WithTimeout(context.Background(), cfg.AppendLease/2)
		defer cancel()
		resp, err := c.AppendToStream(ctx, &eventstorepb.AppendRequest{StreamName: "big", ExpectedVersion: 1,
			Events: withEvents(event("Small", "{}"))})
		if err != nil || resp.CurrentVersion != 2 {
			t.Fatalf("append after the refusal: %v, %v; want version 2 without waiting for the lease", resp, err)
		}
		if b.Real() {
			if n := len(testenv.ReadTopic(t, b.Brokers, cfg.KafkaTopic)); n != 2 {
				t.Fatalf("topic holds %d records, want 2", n)
			}
		}
	})
}

// SIDECAR_MAX_APPEND_BYTES above gRPC's default of 4 MiB raises the
// server's request limit with it; a client reading such events raises its
// own receive limit.
func TestAppendAboveFourMiB(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		cfg.MaxEventBytes = 6 << 20
		cfg.MaxAppendBytes = 16 << 20
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "SIDECAR_MAX_APPEND_BYTES") {
			t.Fatalf("an append limit beyond the producer's batches: %v, want SIDECAR_MAX_APPEND_BYTES refused", err)
		}
		cfg.MaxAppendBytes = 6 << 20
		sc := testenv.Start(t, cfg)
		conn, err := grpc.NewClient(sc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(8<<20)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		c := eventstorepb.NewEventStoreServiceClient(conn)

		// Compressible: the broker measures the compressed batch, well
		// under its max.message.bytes.
		large := event("Large", strings.Repeat("l", 5<<20))
		if v := mustAppend(t, c, "large", 0, large); v != 1 {
			t.Fatalf("append of 5 MiB at version %d, want 1", v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rs, err := c.ReadStream(ctx, &eventstorepb.ReadStreamRequest{StreamName: "large"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := rs.Recv()
		if err != nil || !bytes.Equal(got.Data, large.Data) {
			t.Fatalf("read of the 5 MiB event: %d bytes, %v", len(got.GetData()), err)
		}

		over := event("Over", strings.Repeat("o", 7<<20))
		_, err = appendEvents(t, c, "large", 1, over)
		wantCode(t, err, codes.ResourceExhausted)
	})
}

// Random bytes sent as any method's request are refused or served, never
// answered INTERNAL or UNKNOWN, and the sidecar goes on serving.
func TestRandomRequestsAreNeverInternal(t *testing.T) {
	sc := testenv.Start(t, testenv.Config(t, testenv.Backend{Name: "embedded"}))
	conn, err := grpc.NewClient(sc.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rnd := rand.New(rand.NewPCG(1, 2))
	requests := make([]rawRequest, 150)
	for i := range requests {
		requests[i] = make(rawRequest, rnd.IntN(40))
		for j := range requests[i] {
			requests[i][j] = byte(rnd.UintN(256))
		}
	}
	wantServed := func(t *testing.T, method string, req rawRequest, err error) {
		t.Helper()
		switch status.Code(err) {
		case codes.Internal, codes.Unknown:
			t.Fatalf("%s with %x: %v", method, []byte(req), err)
		}
	}
	desc := eventstorepb.EventStoreService_ServiceDesc
	for _, m := range desc.Methods {
		method := "/" + desc.ServiceName + "/" + m.MethodName
		t.Run(m.MethodName, func(t *testing.T) {
			for _, req := range requests {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				// Empty takes any reply as unknown fields.
				err := conn.Invoke(ctx, method, req, new(emptypb.Empty), grpc.ForceCodec(rawCodec{}))
				cancel()
				wantServed(t, m.MethodName, req, err)
			}
		})
	}
	for i := range desc.Streams {
		s := &desc.Streams[i]
		method := "/" + desc.ServiceName + "/" + s.StreamName
		t.Run(s.StreamName, func(t *testing.T) {
			for _, req := range requests[:40] {
				// A request that decodes may open an endless stream: what
				// it answers first, or the deadline, is enough.
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				stream, err := conn.NewStream(ctx, s, method, grpc.ForceCodec(rawCodec{}))
				if err == nil {
					if err = stream.SendMsg(req); err == nil {
						err = stream.CloseSend()
					}
					if err == nil {
						err = stream.RecvMsg(new(emptypb.Empty))
					}
				}
				cancel()
				if status.Code(err) == codes.DeadlineExceeded || status.Code(err) == codes.Canceled {
					continue
				}
				wantServed(t, s.StreamName, req, err)
			}
		})
	}
	c := testenv.Client(t, sc.Addr())
	if v := mustAppend(t, c, "after-random", 0, event("Fine", "{}")); v != 1 {
		t.Fatalf("append after random requests at version %d, want 1", v)
	}
}
