// Package testenv starts sidecars for tests against every backend: the
// embedded one (kfake and miniredis in the test process) always, and real
// Kafka and Redis when SIDECAR_TEST_KAFKA_BROKERS and SIDECAR_TEST_REDIS_URL
// name them. `make test` starts the real services and sets both, and sets
// SIDECAR_TEST_REQUIRE_REAL so that a missing real backend fails instead of
// passing on the embedded one alone.
package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Backend is where a sidecar's Kafka and Redis are. Empty Brokers and
// RedisURL mean embedded.
type Backend struct {
	Name     string
	Brokers  []string
	RedisURL string
}

// Real reports whether the backend is real Kafka and Redis.
func (b Backend) Real() bool { return len(b.Brokers) > 0 }

// Backends returns the embedded backend and, when configured, the real one.
func Backends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{{Name: "embedded"}}
	if real, ok := RealBackend(t); ok {
		bs = append(bs, real)
	}
	return bs
}

// RealBackend returns the real backend when configured. It fails the test
// when SIDECAR_TEST_REQUIRE_REAL is set and the backend is not.
func RealBackend(t testing.TB) (Backend, bool) {
	t.Helper()
	brokers, redisURL := os.Getenv("SIDECAR_TEST_KAFKA_BROKERS"), os.Getenv("SIDECAR_TEST_REDIS_URL")
	if brokers == "" || redisURL == "" {
		if os.Getenv("SIDECAR_TEST_REQUIRE_REAL") != "" {
			t.Fatal("SIDECAR_TEST_REQUIRE_REAL is set but SIDECAR_TEST_KAFKA_BROKERS or SIDECAR_TEST_REDIS_URL is not")
		}
		return Backend{}, false
	}
	return Backend{Name: "real", Brokers: strings.Split(brokers, ","), RedisURL: redisURL}, true
}

// ForEach runs fn as a subtest per backend, and on the backends that opts
// add.
func ForEach(t *testing.T, fn func(t *testing.T, b Backend), opts ...Option) {
	t.Helper()
	bs := Backends(t)
	for _, o := range opts {
		bs = o(t, bs)
	}
	for _, b := range bs {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// Topic returns a topic name no other test uses.
func Topic(t testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(t.Name())
	if len(name) > 180 {
		name = name[:180]
	}
	return fmt.Sprintf("test-%s-%08x", name, rand.Uint32())
}

// Config returns a sidecar configuration for b with a fresh topic, four
// partitions, a short lease and a free loopback port.
func Config(t testing.TB, b Backend) sidecar.Config {
	t.Helper()
	return sidecar.Config{
		GRPCAddr:               "127.0.0.1:0",
		KafkaBrokers:           b.Brokers,
		KafkaTopic:             Topic(t),
		KafkaPartitions:        4,
		KafkaReplicationFactor: -1,
		RedisURL:               b.RedisURL,
		DataDir:                t.TempDir(),
		AppendLease:            3 * time.Second,
		DeliveryTimeout:        2 * time.Second,
		MaxStreamNameBytes:     256,
		MaxEventBytes:          512 << 10,
		MaxAppendBytes:         1_000_000,
		MaxAppendEvents:        1000,
		LogLevel:               "info",
		LogFormat:              "text",
		ShutdownTimeout:        10 * time.Second,
		// Groups rebalance, and partitions added to the topic are noticed,
		// in well under a second.
		MetadataRefresh:         time.Second,
		SubscribeCommitInterval: 100 * time.Millisecond,
		GroupSessionTimeout:     6 * time.Second,
		GroupHeartbeatInterval:  200 * time.Millisecond,
		FetchMaxWait:            250 * time.Millisecond,
	}
}

// Start starts a sidecar with cfg and stops it when the test ends.
func Start(t testing.TB, cfg sidecar.Config) *sidecar.Sidecar {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	if strings.HasPrefix(cfg.RedisURL, "redis+cluster://") {
		// The cluster is the tests' own: leave no index behind, after the
		// sidecar stopped.
		rdb := RedisClient(t, cfg.RedisURL)
		t.Cleanup(func() { DeleteKeys(t, rdb, "es:"+cfg.KafkaTopic+":*") })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	sc, err := sidecar.Start(ctx, cfg, Logger(t))
	if err != nil {
		t.Fatalf("start sidecar: %v", err)
	}
	t.Cleanup(sc.Shutdown)
	return sc
}

// Logger returns a logger that writes to the test's log only when -v is
// set or SIDECAR_TEST_LOG is, so failures stay readable.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("SIDECAR_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Client dials addr and closes the connection when the test ends.
func Client(t testing.TB, addr string) eventstorepb.EventStoreServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return eventstorepb.NewEventStoreServiceClient(conn)
}

// Redis returns a client of the backend's Redis; nil for the embedded one,
// whose Redis lives inside the sidecar.
func Redis(t testing.TB, b Backend) *redis.Client {
	t.Helper()
	if !b.Real() {
		return nil
	}
	opts, err := redis.ParseURL(b.RedisURL)
	if err != nil {
		t.Fatalf("SIDECAR_TEST_REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// ReadTopic reads every record of topic with a plain consumer, not through
// the sidecar, until it has read the end offsets as they stood at the call.
func ReadTopic(t testing.TB, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends := endOffsets(t, ctx, cl, topic)
	var out []*kgo.Record
	remaining := 0
	for _, e := range ends {
		remaining += int(e)
	}
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading topic %s: %d records missing: %v", topic, remaining, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out = append(out, r)
				remaining--
			}
		})
	}
	return out
}
