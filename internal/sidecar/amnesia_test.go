package sidecar_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Redis amnesia: a Redis of the test's own loses data in every way the
// index can detect, while writers keep appending, each retrying with the
// same event ids. Appends are refused as UNAVAILABLE until the index is
// rebuilt or the stream repaired, and the topic never holds a version
// twice.
func TestRedisAmnesia(t *testing.T) {
	real, ok := testenv.RealBackend(t)
	if !ok {
		t.Skip("flushes and restarts a redis-server of its own beside real Kafka; needs the real services configured")
	}
	srv := testenv.StartRedis(t)
	cfg := testenv.Config(t, real)
	cfg.RedisURL = srv.URL
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	rdb := testenv.RedisClient(t, srv.URL)
	ix := versions.New(rdb, cfg.KafkaTopic)
	ctx := t.Context()
	prefix := "es:" + cfg.KafkaTopic + ":"

	const victim = "victim"
	for v := range int64(3) {
		mustAppend(t, c, victim, v, event("Seeded", "{}"))
	}
	w := startWriters(t, c, 3)

	// recovers waits until appends to probe succeed again, after at least
	// one UNAVAILABLE whose message holds want.
	recovers := func(what, probe, want string, expected int64) {
		t.Helper()
		sawUnavailable := false
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := appendEvents(t, c, probe, expected, event("Probe", "{}"))
			switch st := status.Convert(err); {
			case err == nil:
				if !sawUnavailable {
					t.Fatalf("%s: append succeeded at version %d without an UNAVAILABLE first", what, resp.CurrentVersion)
				}
				return
			case st.Code() == codes.Unavailable:
				if strings.Contains(st.Message(), want) {
					sawUnavailable = true
				}
			default:
				t.Fatalf("%s: %v; want UNAVAILABLE until the index is back", what, err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still unavailable after a minute: %v", what, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	probes := 0
	probe := func() string { probes++; return fmt.Sprintf("probe-%d", probes) }

	// The whole Redis is flushed.
	w.waitProgress(t)
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	recovers("after FLUSHALL", probe(), "being rebuilt from the topic", 0)

	// Redis restarts with nothing persisted.
	w.waitProgress(t)
	srv.Restart(t)
	recovers("after a restart", probe(), "being rebuilt from the topic", 0)
	before, err := ix.Watermarks(ctx)
	if err != nil || before.Rebuild == "" {
		t.Fatalf("watermarks after a rebuild: %+v, %v", before, err)
	}

	// One stream loses its meta, then all of its keys: the rest of the
	// index stands, and the stream is repaired from its partition. A
	// writer that believes the stream is new never gets version 1 again.
	for _, lose := range [][]string{{":m"}, {":m", ":i", ":x"}} {
		w.waitProgress(t)
		for _, suffix := range lose {
			for _, stream := range []string{victim, w.streams[0]} {
				if err := rdb.Del(ctx, prefix+"{"+stream+"}"+suffix).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		// A read does not take the stream for a missing one.
		_, err := c.GetStream(ctx, &eventstorepb.GetStreamRequest{StreamName: victim})
		wantCode(t, err, codes.Unavailable, "lost stream")
		refusedUntilRepaired(t, c, victim, 3)
		info, err := c.GetStream(ctx, &eventstorepb.GetStreamRequest{StreamName: victim})
		if err != nil || info.CurrentVersion != 3 {
			t.Fatalf("victim after its repair: %v, %v", info, err)
		}
	}
	if v := mustAppend(t, c, victim, 3, event("Probe", "{}")); v != 4 {
		t.Fatalf("victim at %d after its repairs, want 4", v)
	}

	// Some slots lose their epoch: the index is rebuilt, resuming from the
	// watermarks of the last rebuild, since no slot lost its data.
	w.waitProgress(t)
	if n := testenv.DeleteKeys(t, rdb, prefix+"epoch:{[0-9a-h]*"); n == 0 {
		t.Fatal("no epoch key deleted")
	}
	// Streams of the other slots go on until one lands in a slot without
	// epoch; from then on every append waits for the rebuild.
	for i := 0; ; i++ {
		stream := probe()
		_, err := appendEvents(t, c, stream, 0, event("Probe", "{}"))
		if err != nil {
			recovers("after losing epoch keys", stream, "being rebuilt from the topic", 0)
			break
		}
		if i == 1000 {
			t.Fatal("no append noticed the lost epoch keys")
		}
	}
	after, err := ix.Watermarks(ctx)
	if err != nil || after.Rebuild != before.Rebuild {
		t.Fatalf("the rebuild after lost epoch keys started over (watermarks %+v, before %+v, %v)", after, before, err)
	}

	w.waitProgress(t)
	acked := w.stop(t)
	checkTopicAgainst(t, real.Brokers, cfg.KafkaTopic, acked)
}

// refusedUntilRepaired appends as a writer that believes the stream is
// new: it must get UNAVAILABLE while the stream is repaired, then ABORTED
// naming the stream's true version, never a success.
func refusedUntilRepaired(t *testing.T, c eventstorepb.EventStoreServiceClient, stream string, version int64) {
	t.Helper()
	sawUnavailable := false
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := appendEvents(t, c, stream, 0, event("Probe", "{}"))
		st := status.Convert(err)
		switch {
		case st.Code() == codes.Unavailable && strings.Contains(st.Message(), "lost stream"):
			sawUnavailable = true
		case st.Code() == codes.Aborted && sawUnavailable:
			wantCode(t, err, codes.Aborted, fmt.Sprintf("actual version %d", version))
			return
		default:
			t.Fatalf("append to %s as a new stream after it lost keys: %v, want UNAVAILABLE (lost stream) then ABORTED",
				stream, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s still unavailable after a minute", stream)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writers append to one stream each, as fast as they can, with event ids
// derived from the version they expect; an UNAVAILABLE is retried with the
// same ids and expectation.
type writers struct {
	streams []string
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	acked map[string]int64
	errs  []error
}

func startWriters(t *testing.T, c eventstorepb.EventStoreServiceClient, n int) *writers {
	ctx, cancel := context.WithCancel(context.Background())
	w := &writers{cancel: cancel, acked: map[string]int64{}}
	for i := range n {
		stream := fmt.Sprintf("writer-%d", i)
		w.streams = append(w.streams, stream)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			var version int64
			for ctx.Err() == nil {
				e := event("Written", fmt.Sprintf(`{"v":%d}`, version+1))
				e.EventId = fmt.Sprintf("%s-%d", stream, version+1)
				actx, cancelAppend := context.WithTimeout(context.Background(), 20*time.Second)
				resp, err := c.AppendToStream(actx, &eventstorepb.AppendRequest{
					StreamName: stream, ExpectedVersion: version, Events: []*eventstorepb.Event{e}})
				cancelAppend()
				switch status.Code(err) {
				case codes.OK:
					if resp.CurrentVersion != version+1 {
						w.fail(fmt.Errorf("%s: append at %d returned version %d", stream, version, resp.CurrentVersion))
						return
					}
					version = resp.CurrentVersion
					w.mu.Lock()
					w.acked[stream] = version
					w.mu.Unlock()
				case codes.Unavailable, codes.DeadlineExceeded:
					time.Sleep(20 * time.Millisecond)
				default:
					w.fail(fmt.Errorf("%s: append at %d: %v", stream, version, err))
					return
				}
			}
		}()
	}
	return w
}

func (w *writers) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}

// waitProgress waits until every writer acknowledged one more append.
func (w *writers) waitProgress(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	start := make(map[string]int64, len(w.acked))
	for s, v := range w.acked {
		start[s] = v
	}
	w.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	for {
		w.mu.Lock()
		done, errs := true, errors.Join(w.errs...)
		for _, s := range w.streams {
			done = done && w.acked[s] > start[s]
		}
		w.mu.Unlock()
		if errs != nil {
			t.Fatal(errs)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("writers made no progress within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the writers and returns the last version each had
// acknowledged.
func (w *writers) stop(t *testing.T) map[string]int64 {
	t.Helper()
	w.cancel()
	w.wg.Wait()
	if err := errors.Join(w.errs...); err != nil {
		t.Fatal(err)
	}
	return w.acked
}

// checkTopicAgainst reads the topic with a plain consumer: every stream
// holds versions 1..n once each, in order, in one partition, and each
// writer's stream holds at least what was acknowledged, with the event ids
// its writer gave each version.
func checkTopicAgainst(t *testing.T, brokers []string, topic string, acked map[string]int64) {
	t.Helper()
	versionsOf := map[string][]int64{}
	idOf := map[string]map[int64]string{}
	partitionOf := map[string]int32{}
	for _, r := range testenv.ReadTopic(t, brokers, topic) {
		a, err := kafka.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if p, seen := partitionOf[a.StreamName]; seen && p != r.Partition {
			t.Fatalf("stream %s in partitions %d and %d", a.StreamName, p, r.Partition)
		}
		partitionOf[a.StreamName] = r.Partition
		for _, e := range a.Events {
			versionsOf[a.StreamName] = append(versionsOf[a.StreamName], e.AggregateVersion)
			if idOf[a.StreamName] == nil {
				idOf[a.StreamName] = map[int64]string{}
			}
			idOf[a.StreamName][e.AggregateVersion] = e.EventId
		}
	}
	for s, vs := range versionsOf {
		checkVersions(t, s, vs, len(vs))
	}
	for s, n := range acked {
		if got := int64(len(versionsOf[s])); got < n {
			t.Fatalf("stream %s: topic holds %d events, %d were acknowledged", s, got, n)
		}
		for v := int64(1); v <= int64(len(versionsOf[s])); v++ {
			if want := fmt.Sprintf("%s-%d", s, v); idOf[s][v] != want {
				t.Fatalf("stream %s version %d holds event %s, want %s", s, v, idOf[s][v], want)
			}
		}
	}
}
