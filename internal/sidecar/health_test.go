package sidecar_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/internal/testenv"
)

// fakeBackend is a kfake broker and a miniredis run by the test, given to
// the sidecar as if they were remote, so the test can take them away.
type fakeBackend struct {
	testenv.Backend
	kafka *kfake.Cluster
	redis *miniredis.Miniredis
	// kafkaDown makes the broker drop every metadata request.
	kafkaDown atomic.Bool
}

func startFakeBackend(t testing.TB, opts ...kfake.Opt) *fakeBackend {
	t.Helper()
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	mr := miniredis.RunT(t)
	fb := &fakeBackend{
		Backend: testenv.Backend{Name: "fake", Brokers: kc.ListenAddrs(), RedisURL: "redis://" + mr.Addr() + "/0"},
		kafka:   kc,
		redis:   mr,
	}
	kc.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if fb.kafkaDown.Load() {
			return nil, errors.New("broker unreachable"), true
		}
		return nil, nil, false
	})
	return fb
}

// healthCheck asks the health service at addr for service's status.
func healthCheck(t testing.TB, addr, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check of %q at %s: %v", service, addr, err)
	}
	return resp.Status
}

// httpGet returns the status code and body of a GET.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// opsConfig is a test configuration with the health listener and the HTTP
// endpoints on free ports and fast checks. The interval is also how long
// Redis and Kafka have to answer a check: it stays well above what a
// loaded machine takes, or a slow answer reads as not ready.
func opsConfig(t testing.TB, b testenv.Backend) sidecar.Config {
	cfg := testenv.Config(t, b)
	cfg.HealthAddr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.HealthInterval = 500 * time.Millisecond
	return cfg
}

// wantReady checks every way of asking whether sc is ready.
func wantReady(t testing.TB, sc *sidecar.Sidecar, ready bool) bool {
	t.Helper()
	want, wantCode := healthpb.HealthCheckResponse_NOT_SERVING, http.StatusServiceUnavailable
	if ready {
		want, wantCode = healthpb.HealthCheckResponse_SERVING, http.StatusOK
	}
	code, _ := httpGet(t, "http://"+sc.MetricsAddr()+"/readyz")
	return code == wantCode &&
		healthCheck(t, sc.Addr(), "") == want &&
		healthCheck(t, sc.Addr(), "eventstore.EventStoreService") == want &&
		healthCheck(t, sc.HealthAddr(), "") == want
}

// wantLive checks that the liveness answers say the process is up.
func wantLive(t testing.TB, sc *sidecar.Sidecar) {
	t.Helper()
	if code, body := httpGet(t, "http://"+sc.MetricsAddr()+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	for _, addr := range []string{sc.Addr(), sc.HealthAddr()} {
		if st := healthCheck(t, addr, sidecar.LiveService); st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness at %s: %v", addr, st)
		}
	}
}

func TestHealthServingWhenReady(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		sc := testenv.Start(t, opsConfig(t, b))
		eventually(t, "ready", func() bool { return wantReady(t, sc, true) })
		wantLive(t, sc)
		if code, body := httpGet(t, "http://"+sc.MetricsAddr()+"/readyz"); code != http.StatusOK || body != "ready\n" {
			t.Fatalf("/readyz: %d %q", code, body)
		}
	})
}

func TestHealthFollowsRedisAndKafka(t *testing.T) {
	fb := startFakeBackend(t)
	sc := testenv.Start(t, opsConfig(t, fb.Backend))
	eventually(t, "ready", func() bool { return wantReady(t, sc, true) })

	fb.redis.Close()
	eventually(t, "not ready without redis", func() bool { return wantReady(t, sc, false) })
	wantLive(t, sc)
	if _, why := sc.Ready(); why == "" {
		t.Fatal("not ready without a reason")
	}
	if err := fb.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ready with redis back", func() bool { return wantReady(t, sc, true) })

	fb.kafkaDown.Store(true)
	eventually(t, "not ready without kafka", func() bool { return wantReady(t, sc, false) })
	wantLive(t, sc)
	fb.kafkaDown.Store(false)
	eventually(t, "ready with kafka back", func() bool { return wantReady(t, sc, true) })
}

func TestHealthNotServingDuringRebuild(t *testing.T) {
	fb := startFakeBackend(t)
	cfg := opsConfig(t, fb.Backend)
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	mustAppend(t, c, "content-1", 0, event("ContentSubmitted", "{}"))
	eventually(t, "ready", func() bool { return wantReady(t, sc, true) })

	// Redis forgets everything; the next append notices and the index is
	// rebuilt, which waits one lease for appends in flight.
	fb.redis.FlushAll()
	_, err := appendEvents(t, c, "content-1", 1, event("ContentAnalyzed", "{}"))
	wantCode(t, err, codes.Unavailable)
	eventually(t, "not ready during the rebuild", func() bool { return wantReady(t, sc, false) })
	wantLive(t, sc)
	eventually(t, "ready after the rebuild", func() bool { return wantReady(t, sc, true) })
	mustAppend(t, c, "content-1", 1, event("ContentAnalyzed", "{}"))
}

func TestHealthNotServingAfterShutdown(t *testing.T) {
	sc := testenv.Start(t, opsConfig(t, testenv.Backend{Name: "embedded"}))
	eventually(t, "ready", func() bool { return wantReady(t, sc, true) })
	healthAddr := sc.HealthAddr()
	sc.Shutdown()
	if ok, why := sc.Ready(); ok || why == "" {
		t.Fatalf("ready after shutdown: %v %q", ok, why)
	}
	conn, err := grpc.NewClient(healthAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
		t.Fatal("the health listener still answers after shutdown")
	}
}
