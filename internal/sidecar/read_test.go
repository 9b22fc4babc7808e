package sidecar_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func readStream(t testing.TB, c eventstorepb.EventStoreServiceClient, req *eventstorepb.ReadStreamRequest) ([]int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, err := c.ReadStream(ctx, req)
	if err != nil {
		return nil, err
	}
	var versions []int64
	for {
		e, err := rs.Recv()
		if err == io.EOF {
			return versions, nil
		}
		if err != nil {
			return versions, err
		}
		if e.AggregateId != req.StreamName {
			t.Fatalf("read %q returned an event of %q", req.StreamName, e.AggregateId)
		}
		versions = append(versions, e.AggregateVersion)
	}
}

func span(from, to int64) []int64 {
	var out []int64
	step := int64(1)
	if to < from {
		step = -1
	}
	for v := from; ; v += step {
		out = append(out, v)
		if v == to {
			return out
		}
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkReads reads a stream of n events in every way a client does.
func checkReads(t *testing.T, c eventstorepb.EventStoreServiceClient, stream string, n int64) {
	t.Helper()
	back := eventstorepb.ReadDirection_READ_DIRECTION_BACKWARDS
	tests := []struct {
		name string
		req  *eventstorepb.ReadStreamRequest
		want []int64
	}{
		{"all forwards", &eventstorepb.ReadStreamRequest{}, span(1, n)},
		{"all backwards", &eventstorepb.ReadStreamRequest{Direction: back}, span(n, 1)},
		{"middle forwards", &eventstorepb.ReadStreamRequest{FromVersion: n / 2, MaxCount: 10}, span(n/2, n/2+9)},
		{"middle backwards", &eventstorepb.ReadStreamRequest{FromVersion: n / 2, MaxCount: 10, Direction: back}, span(n/2, n/2-9)},
		{"tail", &eventstorepb.ReadStreamRequest{FromVersion: n - 2}, span(n-2, n)},
		{"last one backwards", &eventstorepb.ReadStreamRequest{MaxCount: 1, Direction: back}, []int64{n}},
		{"past the end", &eventstorepb.ReadStreamRequest{FromVersion: n + 1}, nil},
		{"backwards from past the end", &eventstorepb.ReadStreamRequest{FromVersion: n + 50, MaxCount: 2, Direction: back}, span(n, n-1)},
	}
	for _, tt := range tests {
		tt.req.StreamName = stream
		got, err := readStream(t, c, tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !equal(got, tt.want) {
			t.Fatalf("%s: versions %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReadStreamAndGetStream(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		var v int64
		for i := range 20 {
			// Appends of one, two and three events interleaved with other
			// streams.
			events := make([]*eventstorepb.Event, 1+i%3)
			for j := range events {
				events[j] = event("Step", fmt.Sprintf(`{"i":%d}`, i))
			}
			v = mustAppend(t, c, "aggregate", v, events...)
			mustAppend(t, c, fmt.Sprintf("other-%d", i), 0, event("Noise", "{}"))
		}
		checkReads(t, c, "aggregate", v)

		ctx := context.Background()
		info, err := c.GetStream(ctx, &eventstorepb.GetStreamRequest{StreamName: "aggregate"})
		if err != nil {
			t.Fatal(err)
		}
		if info.CurrentVersion != v || info.First.Partition != info.Partition || info.Last.Offset <= info.First.Offset {
			t.Fatalf("stream info %v, want version %d and first before last", info, v)
		}

		_, err = c.GetStream(ctx, &eventstorepb.GetStreamRequest{StreamName: "missing-" + uuid.NewString()})
		wantCode(t, err, codes.NotFound, "missing-")
		_, err = readStream(t, c, &eventstorepb.ReadStreamRequest{StreamName: "missing"})
		wantCode(t, err, codes.NotFound)
		_, err = readStream(t, c, &eventstorepb.ReadStreamRequest{StreamName: "aggregate", FromVersion: -1})
		wantCode(t, err, codes.InvalidArgument, "from_version")
		_, err = readStream(t, c, &eventstorepb.ReadStreamRequest{StreamName: "aggregate", MaxCount: -5})
		wantCode(t, err, codes.InvalidArgument, "max_count")
		_, err = readStream(t, c, &eventstorepb.ReadStreamRequest{StreamName: "aggregate", Direction: 7})
		wantCode(t, err, codes.InvalidArgument, "direction")
		_, err = readStream(t, c, &eventstorepb.ReadStreamRequest{})
		wantCode(t, err, codes.InvalidArgument, "stream_name")
		_, err = c.GetStream(ctx, &eventstorepb.GetStreamRequest{})
		wantCode(t, err, codes.InvalidArgument, "stream_name")
	})
}

// TestReadStreamAmongManyRecords reads a 100-event stream whose partition
// holds 100 000 records of other streams, before and after its index is
// lost and rebuilt.
func TestReadStreamAmongManyRecords(t *testing.T) {
	b, ok := testenv.RealBackend(t)
	if !ok {
		t.Skip("needs the real backend: SIDECAR_TEST_KAFKA_BROKERS and SIDECAR_TEST_REDIS_URL")
	}
	cfg := testenv.Config(t, b)
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	const stream, n, others = "needle", 100, 100_000

	mustAppend(t, c, stream, 0, event("Step", "{}"))
	info, err := c.GetStream(context.Background(), &eventstorepb.GetStreamRequest{StreamName: stream})
	if err != nil {
		t.Fatal(err)
	}
	noise := noiseProducer(t, b.Brokers)
	for v := int64(1); v < n; v++ {
		produceNoise(t, noise, cfg.KafkaTopic, info.Partition, others/(n-1))
		mustAppend(t, c, stream, v, event("Step", fmt.Sprintf(`{"v":%d}`, v+1)))
	}
	checkReads(t, c, stream, n)

	// Redis loses the topic's index: reads are unavailable until the
	// index is rebuilt from the topic, then read the same.
	rdb := testenv.Redis(t, b)
	// SCAN, not KEYS: other tests share this Redis and KEYS blocks it.
	var keys []string
	iter := rdb.Scan(context.Background(), 0, "es:"+cfg.KafkaTopic+":*", 1000).Iterator()
	for iter.Next(context.Background()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		t.Fatalf("index keys of the topic: %d, %v", len(keys), err)
	}
	for i := 0; i < len(keys); i += 1000 {
		if err := rdb.Unlink(context.Background(), keys[i:min(i+1000, len(keys))]...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	sawUnavailable := false
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := c.GetStream(context.Background(), &eventstorepb.GetStreamRequest{StreamName: stream})
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			t.Fatalf("while the index is rebuilt: %v, want UNAVAILABLE then success", err)
		}
		sawUnavailable = true
		time.Sleep(200 * time.Millisecond)
	}
	if !sawUnavailable {
		t.Fatal("a lost index was never reported as UNAVAILABLE")
	}
	checkReads(t, c, stream, n)
}

func noiseProducer(t testing.TB, brokers []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceNoise writes count one-event appends of fresh streams to partition.
func produceNoise(t testing.TB, cl *kgo.Client, topic string, partition int32, count int) {
	t.Helper()
	recs := make([]*kgo.Record, count)
	for i := range recs {
		stream := "noise-" + uuid.NewString()
		r, err := kafka.NewRecord(topic, partition, &eventstorepb.RecordedAppend{
			StreamName: stream, FirstVersion: 1, Token: uuid.NewString(),
			Events: []*eventstorepb.Event{{EventId: uuid.NewString(), AggregateId: stream, EventType: "Noise",
				AggregateVersion: 1, Data: []byte(`{"noise":true}`), CreatedAt: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = r
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce noise: %v", err)
	}
}
