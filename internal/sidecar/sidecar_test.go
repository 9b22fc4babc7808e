package sidecar_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// The conformance suite: every promise of the contract, held against every
// backend.

func event(typ, data string) *eventstorepb.Event {
	return &eventstorepb.Event{EventType: typ, Data: []byte(data), Metadata: `{"schema_version":1}`}
}

func appendEvents(t testing.TB, c eventstorepb.EventStoreServiceClient, stream string, expected int64,
	events ...*eventstorepb.Event) (*eventstorepb.AppendResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.AppendToStream(ctx, &eventstorepb.AppendRequest{StreamName: stream, ExpectedVersion: expected, Events: events})
}

func mustAppend(t testing.TB, c eventstorepb.EventStoreServiceClient, stream string, expected int64,
	events ...*eventstorepb.Event) int64 {
	t.Helper()
	resp, err := appendEvents(t, c, stream, expected, events...)
	if err != nil {
		t.Fatalf("append to %q at %d: %v", stream, expected, err)
	}
	return resp.CurrentVersion
}

func wantCode(t testing.TB, err error, code codes.Code, contains ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("got %v (%v), want %v", st.Code(), err, code)
	}
	for _, s := range contains {
		if !strings.Contains(st.Message(), s) {
			t.Fatalf("message %q does not mention %q", st.Message(), s)
		}
	}
}

func TestExpectedVersions(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		const (
			noStream     = int64(eventstorepb.ExpectedVersion_EXPECTED_VERSION_NO_STREAM)
			any          = int64(eventstorepb.ExpectedVersion_EXPECTED_VERSION_ANY)
			streamExists = int64(eventstorepb.ExpectedVersion_EXPECTED_VERSION_STREAM_EXISTS)
		)
		tests := []struct {
			name     string
			existing int // events in the stream before the append
			expected int64
			events   int
			want     int64 // version after; 0 means a conflict
		}{
			{"no stream on a new stream", 0, noStream, 1, 1},
			{"no stream on an existing stream", 2, noStream, 1, 0},
			{"exact version", 3, 3, 2, 5},
			{"stale version", 3, 2, 1, 0},
			{"version ahead", 3, 4, 1, 0},
			{"any on a new stream", 0, any, 3, 3},
			{"any on an existing stream", 2, any, 1, 3},
			{"stream exists on a new stream", 0, streamExists, 1, 0},
			{"stream exists on an existing stream", 1, streamExists, 1, 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				stream := "order-" + uuid.NewString()
				for i := range tt.existing {
					mustAppend(t, c, stream, int64(i), event("Seeded", "{}"))
				}
				events := make([]*eventstorepb.Event, tt.events)
				for i := range events {
					events[i] = event("Tested", fmt.Sprintf(`{"i":%d}`, i))
				}
				resp, err := appendEvents(t, c, stream, tt.expected, events...)
				if tt.want == 0 {
					wantCode(t, err, codes.Aborted, "actual version "+strconv.Itoa(tt.existing))
					// The failed append wrote nothing.
					if v := mustAppend(t, c, stream, any, event("Probe", "{}")); v != int64(tt.existing)+1 {
						t.Fatalf("after a conflict the stream has version %d, want %d", v-1, tt.existing)
					}
					return
				}
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if resp.CurrentVersion != tt.want || !resp.Success {
					t.Fatalf("current version %d (success %v), want %d", resp.CurrentVersion, resp.Success, tt.want)
				}
			})
		}
	}, testenv.WithRedisCluster())
}

func TestConflictMessageNamesBothVersions(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		mustAppend(t, c, "content-1", 0, event("ContentSubmitted", "{}"), event("ContentAnalyzed", "{}"))
		_, err := appendEvents(t, c, "content-1", 1, event("ContentAnalyzed", "{}"))
		wantCode(t, err, codes.Aborted, "expected version 1", "actual version 2", `"content-1"`)
	}, testenv.WithRedisCluster())
}

// subscribe collects events from SubscribeToAll until stop returns true.
func subscribe(t testing.TB, c eventstorepb.EventStoreServiceClient, from int64, perEvent time.Duration,
	stop func([]*eventstorepb.Event) bool) []*eventstorepb.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sub, err := c.SubscribeToAll(ctx, &eventstorepb.SubscribeRequest{FromSequenceId: from})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var got []*eventstorepb.Event
	for !stop(got) {
		e, err := sub.Recv()
		if err != nil {
			t.Fatalf("receive after %d events: %v", len(got), err)
		}
		got = append(got, e)
		time.Sleep(perEvent)
	}
	return got
}

func TestSubscribeFromStartThenLive(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		streams := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
		for _, s := range streams {
			for v := range 4 {
				mustAppend(t, c, s, int64(v), event("Step", fmt.Sprintf(`{"stream":%q,"v":%d}`, s, v+1)))
			}
		}
		// A two-event append stays one unit for readers.
		mustAppend(t, c, "alpha", 4, event("Step", "{}"), event("Step", "{}"))

		live := make(chan struct{})
		appended := make(chan error, 1)
		go func() {
			<-live
			_, err := appendEvents(t, c, "beta", 4, event("Live", `{"late":true}`))
			appended <- err
		}()
		var once sync.Once
		got := subscribe(t, c, 0, 0, func(got []*eventstorepb.Event) bool {
			if len(got) == 4*len(streams)+2 {
				once.Do(func() { close(live) })
			}
			return len(got) == 4*len(streams)+3
		})
		if err := <-appended; err != nil {
			t.Fatalf("live append: %v", err)
		}

		perStream := map[string][]int64{}
		for _, e := range got {
			perStream[e.AggregateId] = append(perStream[e.AggregateId], e.AggregateVersion)
		}
		for _, s := range streams {
			n := 4
			switch s {
			case "alpha":
				n = 6
			case "beta":
				n = 5
			}
			checkVersions(t, s, perStream[s], n)
		}
		if last := got[len(got)-1]; last.EventType != "Live" || last.AggregateVersion != 5 {
			t.Fatalf("last event %s v%d, want the live Live v5", last.EventType, last.AggregateVersion)
		}
	})
}

func checkVersions(t testing.TB, stream string, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("stream %s: %d events %v, want %d", stream, len(got), got, n)
	}
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("stream %s: versions %v, want 1..%d in order", stream, got, n)
		}
	}
}

func TestSlowSubscriberReceivesEverything(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		// 300 events of 8 KiB: far more than gRPC's flow-control window,
		// so the sidecar must wait for the reader rather than drop.
		payload := `{"text":"` + strings.Repeat("x", 8<<10) + `"}`
		const n = 300
		for v := range n {
			mustAppend(t, c, fmt.Sprintf("slow-%d", v%3), int64(v/3), event("Big", payload))
		}
		got := subscribe(t, c, 0, 3*time.Millisecond, func(got []*eventstorepb.Event) bool { return len(got) == n })
		perStream := map[string][]int64{}
		for _, e := range got {
			if string(e.Data) != payload {
				t.Fatalf("event %s v%d: payload changed", e.AggregateId, e.AggregateVersion)
			}
			perStream[e.AggregateId] = append(perStream[e.AggregateId], e.AggregateVersion)
		}
		for s, vs := range perStream {
			checkVersions(t, s, vs, n/3)
		}
	})
}

func TestConcurrentWritersOneWinnerPerVersion(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		const writers, versions = 20, 30
		winners := make([][]string, versions+1) // version -> winning event ids
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range int64(versions) {
					id := fmt.Sprintf("w%d-v%d", w, v+1)
					e := event("Raced", fmt.Sprintf(`{"writer":%d}`, w))
					e.EventId = id
					resp, err := appendEvents(t, c, "contended", v, e)
					if status.Code(err) == codes.Aborted {
						continue
					}
					if err != nil {
						t.Errorf("writer %d at %d: %v", w, v, err)
						return
					}
					mu.Lock()
					winners[resp.CurrentVersion] = append(winners[resp.CurrentVersion], id)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for v := 1; v <= versions; v++ {
			if len(winners[v]) != 1 {
				t.Fatalf("version %d has %d winners %v, want exactly one", v, len(winners[v]), winners[v])
			}
		}
		if !b.Real() {
			return
		}
		// The topic agrees: each version once, holding the winner's event.
		var got []*eventstorepb.Event
		for _, r := range testenv.ReadTopic(t, b.Brokers, cfg.KafkaTopic) {
			a, err := kafka.Decode(r)
			if errors.Is(err, kafka.ErrNotAnAppend) {
				continue // a fence written while resolving an unknown outcome
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, a.Events...)
		}
		if len(got) != versions {
			t.Fatalf("topic holds %d events, want %d", len(got), versions)
		}
		for i, e := range got {
			if e.AggregateVersion != int64(i+1) || e.EventId != winners[i+1][0] {
				t.Fatalf("topic event %d is %s v%d, want %s v%d", i, e.EventId, e.AggregateVersion, winners[i+1][0], i+1)
			}
		}
	}, testenv.WithRedisCluster())
}

func TestTopicLayout(t *testing.T) {
	b, ok := testenv.RealBackend(t)
	if !ok {
		t.Skip("reads the topic with a plain consumer; needs SIDECAR_TEST_KAFKA_BROKERS and SIDECAR_TEST_REDIS_URL")
	}
	cfg := testenv.Config(t, b)
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	want := map[string]int{}
	for i := range 40 {
		s := fmt.Sprintf("layout-%d", i)
		for v := range 1 + i%4 {
			mustAppend(t, c, s, int64(2*v), event("E", "{}"), event("E", "{}"))
		}
		want[s] = 2 * (1 + i%4)
	}

	partitionOf := map[string]int32{}
	versions := map[string][]int64{}
	for _, r := range testenv.ReadTopic(t, b.Brokers, cfg.KafkaTopic) {
		a, err := kafka.Decode(r)
		if errors.Is(err, kafka.ErrNotAnAppend) {
			continue // a fence written while resolving an unknown outcome
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != a.StreamName {
			t.Fatalf("record key %q, stream %q", r.Key, a.StreamName)
		}
		if p, seen := partitionOf[a.StreamName]; seen && p != r.Partition {
			t.Fatalf("stream %s in partitions %d and %d", a.StreamName, p, r.Partition)
		}
		partitionOf[a.StreamName] = r.Partition
		for _, e := range a.Events {
			versions[a.StreamName] = append(versions[a.StreamName], e.AggregateVersion)
		}
	}
	for s, n := range want {
		checkVersions(t, s, versions[s], n)
	}
	used := map[int32]bool{}
	for _, p := range partitionOf {
		used[p] = true
	}
	if len(used) < 2 {
		t.Fatalf("40 streams all in partitions %v; keys should spread", used)
	}
}

func TestSidecarFillsOwnedFields(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		before := time.Now().Unix()
		e := event("ContentSubmitted", `{"text":"Ada Lovelace wrote in London."}`)
		e.AggregateVersion = 99 // ignored
		kept := event("ContentSubmitted", "{}")
		kept.EventId, kept.CreatedAt, kept.AggregateId = "fixed-id", 1234, "other-aggregate"
		mustAppend(t, c, "filled", 0, e, kept)

		got := subscribe(t, c, 0, 0, func(got []*eventstorepb.Event) bool { return len(got) == 2 })
		if got[0].AggregateVersion != 1 || got[1].AggregateVersion != 2 {
			t.Fatalf("versions %d, %d; want 1, 2 whatever the client sent", got[0].AggregateVersion, got[1].AggregateVersion)
		}
		if _, err := uuid.Parse(got[0].EventId); err != nil {
			t.Fatalf("filled event id %q is not a UUID", got[0].EventId)
		}
		if got[0].CreatedAt < before || got[0].AggregateId != "filled" {
			t.Fatalf("filled created_at %d (before %d), aggregate_id %q", got[0].CreatedAt, before, got[0].AggregateId)
		}
		if got[1].EventId != "fixed-id" || got[1].CreatedAt != 1234 || got[1].AggregateId != "other-aggregate" {
			t.Fatalf("client fields overwritten: %v", got[1])
		}
	})
}

func TestRetryWithSameEventIDsWritesNothing(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, testenv.Config(t, b))
		c := testenv.Client(t, sc.Addr())
		a, b2 := event("A", `{"n":1}`), event("B", `{"n":2}`)
		a.EventId, b2.EventId = uuid.NewString(), uuid.NewString()
		mustAppend(t, c, "retried", 0, a, b2)
		mustAppend(t, c, "retried", 2, event("C", "{}"))
		// The first reply was lost: the same append again, with its old
		// expectation, returns the original result.
		if v := mustAppend(t, c, "retried", 0, a, b2); v != 2 {
			t.Fatalf("retry returned version %d, want the original 2", v)
		}
		changed := event("A", `{"n":"other"}`)
		changed.EventId = a.EventId
		_, err := appendEvents(t, c, "retried", -1, changed)
		wantCode(t, err, codes.AlreadyExists, a.EventId, "other content")
		if v := mustAppend(t, c, "retried", 3, event("D", "{}")); v != 4 {
			t.Fatalf("stream at %d after the retries, want 4", v-1)
		}
	}, testenv.WithRedisCluster())
}

func TestEmbeddedRestartKeepsEvents(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	mustAppend(t, c, "kept", 0, event("A", "{}"), event("B", "{}"))
	sc.Shutdown()

	sc = testenv.Start(t, cfg)
	c = testenv.Client(t, sc.Addr())
	_, err := appendEvents(t, c, "kept", 0, event("C", "{}"))
	wantCode(t, err, codes.Aborted, "actual version 2")
	if v := mustAppend(t, c, "kept", 2, event("C", "{}")); v != 3 {
		t.Fatalf("version %d after restart, want 3", v)
	}
	got := subscribe(t, c, 0, 0, func(got []*eventstorepb.Event) bool { return len(got) == 3 })
	checkVersions(t, "kept", []int64{got[0].AggregateVersion, got[1].AggregateVersion, got[2].AggregateVersion}, 3)
}
