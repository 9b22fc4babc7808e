package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/eventsidecar/sidecar/internal/sidecar"
)

// RedisClusterURL returns the Redis Cluster that tests may use, from
// SIDECAR_TEST_REDIS_CLUSTER_URL (a redis+cluster:// URL), when set. It
// fails the test when SIDECAR_TEST_REQUIRE_REAL is set and the cluster is
// not.
func RedisClusterURL(t testing.TB) (string, bool) {
	t.Helper()
	u := os.Getenv("SIDECAR_TEST_REDIS_CLUSTER_URL")
	if u == "" && os.Getenv("SIDECAR_TEST_REQUIRE_REAL") != "" {
		t.Fatal("SIDECAR_TEST_REQUIRE_REAL is set but SIDECAR_TEST_REDIS_CLUSTER_URL is not")
	}
	return u, u != ""
}

// WithRedisCluster makes ForEach also run fn on real Kafka with the Redis
// Cluster of SIDECAR_TEST_REDIS_CLUSTER_URL as the index, when both are
// configured.
func WithRedisCluster() Option {
	return func(t testing.TB, bs []Backend) []Backend {
		t.Helper()
		real, ok := RealBackend(t)
		if !ok {
			return bs
		}
		u, ok := RedisClusterURL(t)
		if !ok {
			return bs
		}
		return append(bs, Backend{Name: "real-cluster", Brokers: real.Brokers, RedisURL: u})
	}
}

// Option changes the backends ForEach runs on.
type Option func(testing.TB, []Backend) []Backend

// RedisClient returns a client of a SIDECAR_REDIS_URL, single node or
// cluster, closed when the test ends.
func RedisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	rdb, err := sidecar.NewRedisClient(url, nil)
	if err != nil {
		t.Fatalf("redis url %q: %v", url, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// RedisBackend is a Redis for tests of the index alone.
type RedisBackend struct {
	Name   string
	Client redis.UniversalClient
	// Cluster is set for a Redis Cluster; Real for a redis-server (single
	// node or cluster) rather than miniredis.
	Cluster, Real bool
	// Miniredis is the in-process server behind Client, nil for the real
	// ones: tests may set up many keys through it without round trips.
	Miniredis *miniredis.Miniredis
}

// ForEachRedis runs fn as a subtest on miniredis and, when configured, on
// the shared real Redis and on the Redis Cluster. Tests share the real
// ones: they must use key prefixes of their own (a fresh topic) and never
// flush.
func ForEachRedis(t *testing.T, fn func(t *testing.T, rb RedisBackend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { rdb.Close() })
		fn(t, RedisBackend{Name: "miniredis", Client: rdb, Miniredis: mr})
	})
	if real, ok := RealBackend(t); ok {
		t.Run("redis", func(t *testing.T) {
			fn(t, RedisBackend{Name: "redis", Client: RedisClient(t, real.RedisURL), Real: true})
		})
	}
	if u, ok := RedisClusterURL(t); ok {
		t.Run("cluster", func(t *testing.T) {
			fn(t, RedisBackend{Name: "cluster", Client: RedisClient(t, u), Cluster: true, Real: true})
		})
	}
}

// DeleteKeys removes every key that matches pattern, on every master of a
// cluster, scanning the whole keyspace. Tests use it on Redis instances of
// their own only; on the shared one, name the keys (UnlinkKeys).
func DeleteKeys(t testing.TB, rdb redis.UniversalClient, pattern string) int {
	t.Helper()
	ctx := context.Background()
	var n atomic.Int64
	del := func(ctx context.Context, c *redis.Client) error {
		// One UNLINK per key, pipelined per page: a cluster node refuses
		// a command over keys of several slots.
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			pipe := c.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			if len(keys) > 0 {
				if _, err := pipe.Exec(ctx); err != nil {
					return err
				}
			}
			n.Add(int64(len(keys)))
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *redis.Client:
		err = del(ctx, c)
	default:
		t.Fatalf("delete keys: unsupported client %T", rdb)
	}
	if err != nil {
		t.Fatalf("delete keys %s: %v", pattern, err)
	}
	return int(n.Load())
}

// UnlinkKeys removes the named keys, pipelined (a cluster pipeline sends
// each key to its node).
func UnlinkKeys(t testing.TB, rdb redis.UniversalClient, keys ...string) {
	t.Helper()
	pipe := rdb.Pipeline()
	for _, k := range keys {
		pipe.Unlink(context.Background(), k)
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatalf("unlink %d keys: %v", len(keys), err)
	}
}

// RedisServer is a redis-server of the test's own, started by
// scripts/redis.sh on a free port with its state in a temporary directory,
// for tests that flush, restart or stop Redis. It has no persistence: a
// restart starts empty.
type RedisServer struct {
	Port int
	// URL is its SIDECAR_REDIS_URL.
	URL string
	dir string
}

// StartRedis starts a redis-server of the test's own and stops it when the
// test ends.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	r := &RedisServer{Port: freePort(t), dir: t.TempDir()}
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port)
	r.Start(t)
	t.Cleanup(func() { r.script(t, "stop") })
	return r
}

// Start starts the server again after Stop.
func (r *RedisServer) Start(t testing.TB) { t.Helper(); r.script(t, "start") }

// Stop stops the server; its data is gone.
func (r *RedisServer) Stop(t testing.TB) { t.Helper(); r.script(t, "stop") }

// Restart stops and starts the server: it comes back empty.
func (r *RedisServer) Restart(t testing.TB) {
	t.Helper()
	r.Stop(t)
	r.Start(t)
}

func (r *RedisServer) script(t testing.TB, cmd string) {
	t.Helper()
	c := exec.Command(filepath.Join(repoRoot(), "scripts", "redis.sh"), cmd)
	c.Env = append(os.Environ(), "SERVICES_DIR="+r.dir, "REDIS_PORT="+strconv.Itoa(r.Port))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = c.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("scripts/redis.sh %s on port %d: %v\n%s", cmd, r.Port, err, out)
		}
	case <-ctx.Done():
		t.Fatalf("scripts/redis.sh %s on port %d did not finish", cmd, r.Port)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
