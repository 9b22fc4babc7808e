package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func TestIndexCommands(t *testing.T) {
	real, ok := testenv.RealBackend(t)
	if !ok {
		t.Skip("flushes a redis-server of its own beside real Kafka; needs the real services configured")
	}
	srv := testenv.StartRedis(t)
	rdb := testenv.RedisClient(t, srv.URL)
	cfg := testenv.Config(t, real)
	cfg.RedisURL = srv.URL
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	e := &env{ctx: t.Context(), cfg: cfg, log: testenv.Logger(t)}
	appendN := func(stream string, expected int64, n int) {
		t.Helper()
		for i := range n {
			if _, err := c.AppendToStream(t.Context(), &eventstorepb.AppendRequest{StreamName: stream,
				ExpectedVersion: expected + int64(i), Events: []*eventstorepb.Event{{EventType: "E"}}}); err != nil {
				t.Fatalf("append to %s: %v", stream, err)
			}
		}
	}
	const streams = 12
	for i := range streams {
		appendN(fmt.Sprintf("cli-%d", i), 0, 1+i%3)
	}
	status := func() indexStatus {
		t.Helper()
		out, err := runCLI(t, e, "index", "status", "--json")
		if err != nil {
			t.Fatalf("index status: %v", err)
		}
		var st indexStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("index status --json printed %q: %v", out, err)
		}
		return st
	}

	st := status()
	if st.EpochSlots != st.Slots || st.LedgerStreams != streams || st.ScannedStreams != streams ||
		len(st.Partitions) != int(cfg.KafkaPartitions) || st.Rebuild == "" {
		t.Fatalf("status of a built index: %+v", st)
	}
	out, err := runCLI(t, e, "index", "status")
	if err != nil || !strings.Contains(out, "epoch: present in every slot") ||
		!strings.Contains(out, fmt.Sprintf("streams: %d in the slots' ledgers, %d entries found by scanning", streams, streams)) ||
		!strings.Contains(out, "PARTITION  END OFFSET  WATERMARK  SINCE WATERMARK") {
		t.Fatalf("index status printed %q, %v", out, err)
	}

	// Redis loses everything: status says so, and a rebuild reads the
	// topic from the start.
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if st := status(); st.EpochSlots != 0 || st.LedgerStreams != 0 || st.ScannedStreams != 0 || st.Rebuild != "" {
		t.Fatalf("status of a flushed index: %+v", st)
	}
	out, err = runCLI(t, e, "index", "status", "--no-scan")
	if err != nil || !strings.Contains(out, "epoch: MISSING in 16384 of 16384 slots") || strings.Contains(out, "scanning") {
		t.Fatalf("index status --no-scan of a flushed index printed %q, %v", out, err)
	}
	out, err = runCLI(t, e, "index", "rebuild")
	if err != nil || !strings.Contains(out, "from the start of every partition in") ||
		!strings.Contains(out, fmt.Sprintf("%d streams", streams)) {
		t.Fatalf("index rebuild printed %q, %v", out, err)
	}
	st = status()
	if st.EpochSlots != st.Slots || st.LedgerStreams != streams {
		t.Fatalf("status after the rebuild: %+v", st)
	}
	for _, p := range st.Partitions {
		if p.Watermark != p.End {
			t.Fatalf("partition %d: watermark %d after a rebuild, end %d", p.Partition, p.Watermark, p.End)
		}
	}

	// The sidecar appends on the rebuilt index, and the next rebuild only
	// reads what came since.
	appendN("cli-0", 1, 2)
	appendN("cli-new", 0, 1)
	out, err = runCLI(t, e, "index", "rebuild")
	if err != nil || !strings.Contains(out, "resumed from the watermarks") {
		t.Fatalf("second index rebuild printed %q, %v", out, err)
	}
	out, err = runCLI(t, e, "index", "rebuild", "--full")
	if err != nil || !strings.Contains(out, "from the start of every partition") {
		t.Fatalf("index rebuild --full printed %q, %v", out, err)
	}
	if st := status(); st.EpochSlots != st.Slots || st.LedgerStreams != streams+1 {
		t.Fatalf("status after a full rebuild: %+v", st)
	}
	// Versions are what the topic says: cli-0 has 1 + 2 events.
	_, err = c.AppendToStream(t.Context(), &eventstorepb.AppendRequest{StreamName: "cli-0", ExpectedVersion: 1,
		Events: []*eventstorepb.Event{{EventType: "E"}}})
	if err == nil || !strings.Contains(err.Error(), "actual version 3") {
		t.Fatalf("append at a stale version after the rebuilds: %v", err)
	}
	appendN("cli-0", 3, 1)
}

func TestIndexCommandsNeedRealServices(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	e := &env{ctx: t.Context(), cfg: cfg, log: testenv.Logger(t)}
	for _, cmd := range []string{"status", "rebuild"} {
		if _, err := runCLI(t, e, "index", cmd); err == nil || !strings.Contains(err.Error(), "SIDECAR_REDIS_URL") {
			t.Fatalf("index %s on the embedded configuration: %v", cmd, err)
		}
	}
}
