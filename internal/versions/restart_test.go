package versions_test

import (
	"errors"
	"testing"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// ownRedis returns backends that a test may flush and restart: miniredis,
// and a redis-server of the test's own and the Redis Cluster (used by no
// other test) when the real services are configured.
func ownRedis(t *testing.T, fn func(t *testing.T, rb testenv.RedisBackend, srv *testenv.RedisServer)) {
	t.Helper()
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		switch {
		case rb.Cluster:
			fn(t, rb, nil)
		case rb.Real:
			srv := testenv.StartRedis(t)
			fn(t, testenv.RedisBackend{Name: "own", Client: testenv.RedisClient(t, srv.URL), Real: true}, srv)
		default:
			fn(t, rb, nil)
		}
	})
}

// TestScriptFlushBetweenCalls: every call finds the script cache empty, as
// after a restart or a failover; no error may reach the caller.
func TestScriptFlushBetweenCalls(t *testing.T) {
	ownRedis(t, func(t *testing.T, rb testenv.RedisBackend, _ *testenv.RedisServer) {
		r := newRig(t, rb)
		ctx := t.Context()
		flush := func() {
			t.Helper()
			if err := r.rdb.ScriptFlush(ctx).Err(); err != nil {
				t.Fatalf("script flush: %v", err)
			}
		}
		var first versions.Reservation
		steps := []struct {
			name string
			do   func() error
		}{
			{"reserve", func() (err error) { first, err = r.reserve("s", 0, keysOf("a")...); return err }},
			{"commit", func() error { return r.commit(first, 4, keysOf("a")...) }},
			{"retry", func() error {
				res, err := r.reserve("s", 0, keysOf("a")...)
				if err == nil && !res.Duplicate {
					return errors.New("the retry was not found a duplicate")
				}
				return err
			}},
			{"release", func() error {
				res := r.mustReserve("t", 0, keysOf("b")...)
				flush()
				return r.ix.Release(ctx, res)
			}},
			{"commit after a flush", func() error {
				res := r.mustReserve("u", 0, keysOf("c")...)
				flush()
				return r.commit(res, 5, keysOf("c")...)
			}},
			{"merge", func() error {
				r.streams["m"] = true
				return r.ix.Merge(ctx, []versions.StreamUpdate{{Stream: "m", Partition: 1,
					Records: []versions.RecordRef{record(1, 9, "d")}}})
			}},
			{"start rebuild", func() error { return r.ix.StartRebuild(ctx, "r1") }},
			{"advance watermarks", func() error {
				_, err := r.ix.AdvanceWatermarks(ctx, "r1", map[int32]int64{0: 3})
				return err
			}},
			{"mark repair", func() error { return r.ix.MarkRepair(ctx, "m") }},
			{"end repair", func() error { return r.ix.EndRepair(ctx, "m", true) }},
		}
		for _, st := range steps {
			flush()
			if err := st.do(); err != nil {
				t.Fatalf("%s after a script flush: %v", st.name, err)
			}
		}
		flush()
		for stream, want := range map[string]int64{"s": 1, "u": 1, "m": 1} {
			if v := r.version(stream); v != want {
				t.Fatalf("stream %s at %d, want %d", stream, v, want)
			}
		}
		if res := r.mustReserve("m", 1, keysOf("e")...); res.FirstVersion != 2 {
			t.Fatalf("after the flushes: %+v", res)
		}
	})
}

// TestRedisRestartBetweenCalls: while Redis is down calls fail with a
// connection error; once it is back, empty, the index reports that it
// lost its data, and works again after a new epoch.
func TestRedisRestartBetweenCalls(t *testing.T) {
	if _, ok := testenv.RealBackend(t); !ok {
		t.Skip("starts a redis-server of its own; needs the real services configured")
	}
	srv := testenv.StartRedis(t)
	rdb := testenv.RedisClient(t, srv.URL)
	r := newRig(t, testenv.RedisBackend{Name: "own", Client: rdb, Real: true})
	ctx := t.Context()
	r.appendAt("s", 0, 0, "a")
	inFlight := r.mustReserve("s", 1, keysOf("b")...)

	srv.Stop(t)
	_, err := r.reserve("s", 1, keysOf("c")...)
	if err == nil || errors.Is(err, versions.ErrNoIndex) || errors.As(err, new(*versions.ConflictError)) {
		t.Fatalf("reserve while redis is down: %v, want a connection error", err)
	}
	if _, err := r.ix.HasEpoch(ctx); err == nil {
		t.Fatal("epoch check while redis is down succeeded")
	}

	srv.Start(t)
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after the restart: %v", err)
	}
	if _, err := r.reserve("s", 1, keysOf("c")...); !errors.Is(err, versions.ErrNoIndex) {
		t.Fatalf("reserve after the restart: %v, want no index", err)
	}
	if err := r.commit(inFlight, 1, keysOf("b")...); !errors.Is(err, versions.ErrNoIndex) {
		t.Fatalf("commit of a reservation from before the restart: %v, want no index", err)
	}
	if ok, err := r.ix.HasEpoch(ctx); ok || err != nil {
		t.Fatalf("has epoch after the restart: %v, %v", ok, err)
	}
	if err := r.ix.WriteEpoch(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if v := r.appendAt("fresh", 0, 2, "d"); v != 1 {
		t.Fatalf("after a new epoch: version %d", v)
	}
}
