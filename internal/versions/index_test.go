package versions_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// The index's scripts, each outcome on miniredis, on a redis-server and on
// a Redis Cluster. Times are arguments: a test moves its clock by passing
// a later Now.

var t0 = time.UnixMilli(1_700_000_000_000)

const lease = 10 * time.Second

// rig is an index over a fresh topic, with its epoch written.
type rig struct {
	t     *testing.T
	rb    testenv.RedisBackend
	rdb   redis.UniversalClient
	ix    *versions.Index
	topic string
	// streams are the streams the test used, for the cleanup.
	streams map[string]bool
	tokens  int
}

func newRig(t *testing.T, rb testenv.RedisBackend) *rig {
	t.Helper()
	r := newRigNoEpoch(t, rb)
	if rb.Miniredis != nil {
		// What WriteEpoch writes, without 16384 round trips.
		for _, k := range versions.EpochKeys(r.topic) {
			if err := rb.Miniredis.Set(k, "test-epoch"); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	if err := r.ix.WriteEpoch(t.Context(), "test-epoch"); err != nil {
		t.Fatal(err)
	}
	return r
}

func newRigNoEpoch(t *testing.T, rb testenv.RedisBackend) *rig {
	t.Helper()
	r := &rig{t: t, rb: rb, rdb: rb.Client, topic: testenv.Topic(t), streams: map[string]bool{}}
	r.ix = versions.New(rb.Client, r.topic)
	if rb.Real {
		t.Cleanup(r.forget)
	}
	return r
}

// forget deletes every key of the rig's topic: the cleanup, and an index
// that lost all its data.
func (r *rig) forget() {
	if r.rb.Miniredis != nil {
		r.rb.Miniredis.FlushAll() // the test's own
		return
	}
	keys := versions.SharedKeys(r.topic)
	for s := range r.streams {
		keys = append(keys, versions.StreamKeys(r.topic, s)[:3]...)
	}
	testenv.UnlinkKeys(r.t, r.rdb, keys...)
}

func keysOf(ids ...string) []versions.EventKey {
	ks := make([]versions.EventKey, len(ids))
	for i, id := range ids {
		ks[i] = versions.EventKey{ID: id, Hash: "h-" + id}
	}
	return ks
}

func (r *rig) reserveAt(now time.Time, stream string, expected int64, events ...versions.EventKey) (versions.Reservation, error) {
	r.t.Helper()
	r.streams[stream] = true
	r.tokens++
	return r.ix.Reserve(context.Background(), versions.ReserveRequest{
		Stream: stream, Expected: expected, Events: events,
		Token: fmt.Sprintf("token-%d", r.tokens), Now: now, Lease: lease, Partition: 3,
	})
}

func (r *rig) reserve(stream string, expected int64, events ...versions.EventKey) (versions.Reservation, error) {
	r.t.Helper()
	return r.reserveAt(t0, stream, expected, events...)
}

func (r *rig) mustReserve(stream string, expected int64, events ...versions.EventKey) versions.Reservation {
	r.t.Helper()
	res, err := r.reserve(stream, expected, events...)
	if err != nil {
		r.t.Fatalf("reserve %q at %d: %v", stream, expected, err)
	}
	return res
}

func (r *rig) commit(res versions.Reservation, offset int64, events ...versions.EventKey) error {
	r.t.Helper()
	return r.ix.Commit(context.Background(), res, offset, events)
}

// appendAt reserves and commits one append as if its record landed at
// offset; it returns the stream's version after it.
func (r *rig) appendAt(stream string, expected, offset int64, ids ...string) int64 {
	r.t.Helper()
	ks := keysOf(ids...)
	res := r.mustReserve(stream, expected, ks...)
	if err := r.commit(res, offset, ks...); err != nil {
		r.t.Fatalf("commit %q: %v", stream, err)
	}
	return res.FirstVersion + int64(res.Count) - 1
}

func (r *rig) version(stream string) int64 {
	r.t.Helper()
	s, _, err := r.ix.Lookup(context.Background(), stream)
	if err != nil {
		r.t.Fatalf("lookup %q: %v", stream, err)
	}
	return s.Version
}

func (r *rig) del(keys ...string) {
	r.t.Helper()
	for _, k := range keys {
		if err := r.rdb.Del(context.Background(), k).Err(); err != nil {
			r.t.Fatalf("del %s: %v", k, err)
		}
	}
}

func TestReserveCommit(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		res := r.mustReserve("s", 0, keysOf("a", "b")...)
		if res.FirstVersion != 1 || res.Count != 2 || res.Partition != 3 || res.LastOffset != -1 || res.Duplicate {
			t.Fatalf("reservation of a new stream: %+v", res)
		}
		if err := r.commit(res, 41, keysOf("a", "b")...); err != nil {
			t.Fatal(err)
		}
		s, found, err := r.ix.Lookup(t.Context(), "s")
		if err != nil || !found || s.Version != 2 || s.Partition != 3 || s.LastOffset != 41 {
			t.Fatalf("after commit: %+v found %v err %v", s, found, err)
		}
		// The pinned partition wins over the one offered for a new stream.
		res, err = r.ix.Reserve(t.Context(), versions.ReserveRequest{Stream: "s", Expected: 2,
			Events: keysOf("c"), Token: "t2", Now: t0, Lease: lease, Partition: 0})
		if err != nil || res.FirstVersion != 3 || res.Partition != 3 || res.LastOffset != 41 {
			t.Fatalf("second reservation: %+v %v", res, err)
		}
		// Committing twice is harmless.
		for range 2 {
			if err := r.commit(res, 50, keysOf("c")...); err != nil {
				t.Fatal(err)
			}
		}
		if v := r.version("s"); v != 3 {
			t.Fatalf("version %d, want 3", v)
		}
	})
}

func TestReserveExpectations(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		r.appendAt("two", 0, 0, "x1")
		r.appendAt("two", 1, 1, "x2")
		tests := []struct {
			stream   string
			expected int64
			ok       bool
			actual   int64
		}{
			{"new", 0, true, 0},
			{"new", -1, true, 0},
			{"new", -2, false, 0},
			{"new", 1, false, 0},
			{"new", 7, false, 0},
			{"two", 2, true, 2},
			{"two", -1, true, 2},
			{"two", -2, true, 2},
			{"two", 0, false, 2},
			{"two", 1, false, 2},
			{"two", 3, false, 2},
			{"two", versions.MaxVersion, false, 2},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s at %d", tt.stream, tt.expected), func(t *testing.T) {
				r.t = t
				res, err := r.reserve(tt.stream, tt.expected, keysOf(fmt.Sprintf("e%d", tt.expected))...)
				if tt.ok {
					if err != nil || res.FirstVersion != tt.actual+1 {
						t.Fatalf("got %+v, %v; want a reservation from %d", res, err, tt.actual+1)
					}
					if err := r.ix.Release(t.Context(), res); err != nil {
						t.Fatal(err)
					}
					return
				}
				var conflict *versions.ConflictError
				if !errors.As(err, &conflict) || conflict.Actual != tt.actual || conflict.Expected != tt.expected {
					t.Fatalf("got %v, want a conflict with actual %d", err, tt.actual)
				}
			})
		}
	})
}

func TestLeaseBusyThenExpired(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		r.appendAt("s", 0, 7, "a")
		held := r.mustReserve("s", 1, keysOf("b", "c")...)

		for _, at := range []time.Duration{0, lease / 2, lease - time.Millisecond} {
			if _, err := r.reserveAt(t0.Add(at), "s", 1, keysOf("d")...); !errors.Is(err, versions.ErrBusy) {
				t.Fatalf("%s into the lease: %v, want busy", at, err)
			}
		}
		// Busy wins over a conflict: the expectation is checked once the
		// lease is settled.
		if _, err := r.reserveAt(t0.Add(time.Second), "s", 5, keysOf("d")...); !errors.Is(err, versions.ErrBusy) {
			t.Fatalf("conflicting expectation during the lease: %v, want busy", err)
		}

		_, err := r.reserveAt(t0.Add(lease), "s", 1, keysOf("d")...)
		var expired *versions.ExpiredError
		if !errors.As(err, &expired) {
			t.Fatalf("at the deadline: %v, want expired", err)
		}
		want := versions.Reservation{Stream: "s", Token: held.Token, FirstVersion: 2, Count: 2, Partition: 3, LastOffset: 7}
		if expired.Reservation != want {
			t.Fatalf("expired reservation %+v, want %+v", expired.Reservation, want)
		}
	})
}

func TestRetriedAppend(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		r.appendAt("s", 0, 0, "a", "b")
		r.appendAt("s", 2, 1, "c")

		// The same append again, with its old expectation: the original
		// result, nothing reserved.
		res, err := r.reserve("s", 0, keysOf("a", "b")...)
		if err != nil || !res.Duplicate || res.LastVersion != 2 || res.Partition != 3 {
			t.Fatalf("retry: %+v, %v; want a duplicate ending at 2", res, err)
		}
		res, err = r.reserve("s", -1, keysOf("c")...)
		if err != nil || !res.Duplicate || res.LastVersion != 3 {
			t.Fatalf("retry of the last append: %+v, %v", res, err)
		}
		// Ids that landed one after the other are a retry too, whichever
		// appends wrote them: nothing new would be written.
		res, err = r.reserve("s", -1, keysOf("b", "c")...)
		if err != nil || !res.Duplicate || res.LastVersion != 3 {
			t.Fatalf("retry of consecutive ids: %+v, %v", res, err)
		}
		if v := r.appendAt("s", 3, 2, "d"); v != 4 {
			t.Fatalf("append after retries ends at %d, want 4", v)
		}

		clashes := []struct {
			name         string
			events       []versions.EventKey
			id           string
			version      int64
			otherContent bool
		}{
			{"other content", []versions.EventKey{{ID: "a", Hash: "changed"}}, "a", 1, true},
			{"other content in a retry", []versions.EventKey{{ID: "a", Hash: "h-a"}, {ID: "b", Hash: "changed"}}, "b", 2, true},
			{"a new id beside a landed one", keysOf("a", "z"), "a", 1, false},
			{"a landed id beside a new one", keysOf("z", "c"), "c", 3, false},
			{"landed ids in another order", keysOf("b", "a"), "a", 1, false},
			{"ids of two appends apart", keysOf("a", "c"), "c", 3, false},
		}
		for _, tt := range clashes {
			t.Run(tt.name, func(t *testing.T) {
				r.t = t
				_, err := r.reserve("s", -1, tt.events...)
				var clash *versions.ClashError
				if !errors.As(err, &clash) || clash.EventID != tt.id || clash.Version != tt.version ||
					clash.OtherContent != tt.otherContent {
					t.Fatalf("got %v (%+v), want a clash on %q at %d", err, clash, tt.id, tt.version)
				}
			})
		}
		r.t = t
		if v := r.version("s"); v != 4 {
			t.Fatalf("clashes moved the stream to %d", v)
		}
	})
}

func TestNoIndex(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRigNoEpoch(t, rb)
		if _, err := r.reserve("s", 0, keysOf("a")...); !errors.Is(err, versions.ErrNoIndex) {
			t.Fatalf("without an epoch: %v, want no index", err)
		}
		if ok, err := r.ix.HasEpoch(t.Context()); ok || err != nil {
			t.Fatalf("has epoch %v, %v", ok, err)
		}
		if err := r.ix.WriteEpoch(t.Context(), "e1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.ix.HasEpoch(t.Context()); !ok || err != nil {
			t.Fatalf("after writing: has epoch %v, %v", ok, err)
		}
		r.appendAt("s", 0, 0, "a")
		r.appendAt("other", 0, 1, "b")

		// One slot loses its epoch: its streams are refused, and the index
		// as a whole is incomplete.
		sKeys := versions.StreamKeys(r.topic, "s")
		r.del(sKeys[3])
		if _, err := r.reserve("s", 1, keysOf("c")...); !errors.Is(err, versions.ErrNoIndex) {
			t.Fatalf("slot without epoch: %v, want no index", err)
		}
		if ok, err := r.ix.HasEpoch(t.Context()); ok || err != nil {
			t.Fatalf("one slot without epoch: has epoch %v, %v", ok, err)
		}
		if versions.StreamKeys(r.topic, "other")[3] != sKeys[3] {
			if _, err := r.reserve("other", 1, keysOf("d")...); err != nil {
				t.Fatalf("a stream of another slot: %v", err)
			}
		}
	})
}

func TestCommitAfterTakeover(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		r.appendAt("s", 0, 0, "a")
		stale := r.mustReserve("s", 1, keysOf("b")...)

		// The lease runs out; the next writer resolves it as not landed,
		// releases it and appends in its place.
		_, err := r.reserveAt(t0.Add(lease), "s", 1, keysOf("c")...)
		var expired *versions.ExpiredError
		if !errors.As(err, &expired) {
			t.Fatalf("after the lease: %v", err)
		}
		if err := r.ix.Release(t.Context(), expired.Reservation); err != nil {
			t.Fatal(err)
		}
		next, err := r.reserveAt(t0.Add(lease), "s", 1, keysOf("c")...)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.commit(next, 2, keysOf("c")...); err != nil {
			t.Fatal(err)
		}
		if err := r.commit(stale, 3, keysOf("b")...); !errors.Is(err, versions.ErrSuperseded) {
			t.Fatalf("commit of the superseded append: %v, want superseded", err)
		}
		if v := r.version("s"); v != 2 {
			t.Fatalf("version %d, want 2", v)
		}

		// A lease released while nobody appended: the late record
		// continues the stream, as a rebuild would find, and counts.
		late := r.mustReserve("s", 2, keysOf("d")...)
		if err := r.ix.Release(t.Context(), late); err != nil {
			t.Fatal(err)
		}
		if err := r.commit(late, 4, keysOf("d")...); err != nil {
			t.Fatalf("late commit: %v", err)
		}
		if v := r.version("s"); v != 3 {
			t.Fatalf("version %d after the late commit, want 3", v)
		}
		// A late record under another live reservation does not.
		late = r.mustReserve("s", 3, keysOf("e")...)
		if err := r.ix.Release(t.Context(), late); err != nil {
			t.Fatal(err)
		}
		r.mustReserve("s", 3, keysOf("f")...)
		if err := r.commit(late, 5, keysOf("e")...); !errors.Is(err, versions.ErrSuperseded) {
			t.Fatalf("late commit under a live reservation: %v, want superseded", err)
		}
	})
}

func TestCommitAfterIndexLost(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		r.appendAt("s", 0, 0, "a")
		res := r.mustReserve("s", 1, keysOf("b")...)
		r.forget()
		if err := r.commit(res, 1, keysOf("b")...); !errors.Is(err, versions.ErrNoIndex) {
			t.Fatalf("commit after the index was lost: %v, want no index", err)
		}
	})
}

func TestRelease(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		res := r.mustReserve("new", 0, keysOf("a")...)
		for range 2 {
			if err := r.ix.Release(t.Context(), res); err != nil {
				t.Fatal(err)
			}
		}
		// Nothing is left of a released new stream: it is new, not lost.
		if n, err := r.rdb.Exists(t.Context(), versions.StreamKeys(r.topic, "new")[:3]...).Result(); err != nil || n != 0 {
			t.Fatalf("keys left after releasing a new stream: %d, %v", n, err)
		}
		if v := r.appendAt("new", 0, 0, "a"); v != 1 {
			t.Fatalf("after release: version %d", v)
		}

		res = r.mustReserve("new", 1, keysOf("b")...)
		if err := r.ix.Release(t.Context(), res); err != nil {
			t.Fatal(err)
		}
		// A release by a stale token leaves a live reservation alone.
		live := r.mustReserve("new", 1, keysOf("c")...)
		if err := r.ix.Release(t.Context(), res); err != nil {
			t.Fatal(err)
		}
		if _, err := r.reserve("new", 1, keysOf("d")...); !errors.Is(err, versions.ErrBusy) {
			t.Fatalf("after a stale release: %v, want busy", err)
		}
		if err := r.commit(live, 1, keysOf("c")...); err != nil {
			t.Fatal(err)
		}
		if v := r.version("new"); v != 2 {
			t.Fatalf("version %d, want 2", v)
		}
	})
}

func record(first, offset int64, ids ...string) versions.RecordRef {
	return versions.RecordRef{FirstVersion: first, Offset: offset, Events: keysOf(ids...)}
}

func TestMergeOnlyRaises(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		merge := func(stream string, recs ...versions.RecordRef) {
			t.Helper()
			r.streams[stream] = true
			if err := r.ix.Merge(t.Context(), []versions.StreamUpdate{{Stream: stream, Partition: 1, Records: recs}}); err != nil {
				t.Fatal(err)
			}
		}
		merge("s", record(1, 10, "a", "b"), record(3, 12, "c"))
		if v := r.version("s"); v != 3 {
			t.Fatalf("version %d, want 3", v)
		}
		merge("s", record(1, 10, "a", "b"))
		if s, _, _ := r.ix.Lookup(t.Context(), "s"); s.Version != 3 || s.LastOffset != 12 || s.Partition != 1 {
			t.Fatalf("an older merge moved the stream: %+v", s)
		}
		merge("s", record(4, 20, "d"), record(5, 21, "e", "f"))
		if s, _, _ := r.ix.Lookup(t.Context(), "s"); s.Version != 6 || s.LastOffset != 21 {
			t.Fatalf("after a newer merge: %+v", s)
		}
		// What was merged deduplicates and continues like a commit.
		if res, err := r.reserve("s", 0, keysOf("c")...); err != nil || !res.Duplicate || res.LastVersion != 3 {
			t.Fatalf("retry of a merged append: %+v %v", res, err)
		}
		if res := r.mustReserve("s", 6, keysOf("g")...); res.FirstVersion != 7 || res.LastOffset != 21 {
			t.Fatalf("after merges: %+v", res)
		}
		refs, err := r.ix.Records(t.Context(), "s", 1, 6)
		if err != nil {
			t.Fatal(err)
		}
		var offsets []int64
		for _, ref := range refs {
			offsets = append(offsets, ref.Offset)
		}
		if !slices.Equal(offsets, []int64{10, 12, 20, 21}) {
			t.Fatalf("offset index %v", offsets)
		}
	})
}

func TestStreamLostKeys(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		const meta, ids, offsets = 0, 1, 2
		tests := []struct {
			name string
			lose []int
		}{
			{"meta", []int{meta}},
			{"ids", []int{ids}},
			{"offsets", []int{offsets}},
			{"meta and ids", []int{meta, ids}},
			{"every key of the stream", []int{meta, ids, offsets}},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r.t = t
				stream := fmt.Sprintf("lost-%d", i)
				a, b := stream+"-a", stream+"-b"
				r.appendAt(stream, 0, 100, a)
				r.appendAt(stream, 1, 101, b)
				keys := versions.StreamKeys(r.topic, stream)
				for _, k := range tt.lose {
					r.del(keys[k])
				}

				// Whatever the expectation, even a retry, it is refused.
				for _, exp := range []int64{0, 1, 2, -1} {
					_, err := r.reserve(stream, exp, keysOf("new")...)
					var lost *versions.StreamLostError
					if !errors.As(err, &lost) || lost.Stream != stream {
						t.Fatalf("expected %d after losing %s: %v, want stream lost", exp, tt.name, err)
					}
				}
				if _, err := r.reserve(stream, 0, keysOf(a)...); !errors.As(err, new(*versions.StreamLostError)) {
					t.Fatalf("retry after losing %s: %v", tt.name, err)
				}

				// A repair merges the stream's records again and lets it on.
				if err := r.ix.MarkRepair(t.Context(), stream); err != nil {
					t.Fatal(err)
				}
				if err := r.ix.Merge(t.Context(), []versions.StreamUpdate{{Stream: stream, Partition: 3,
					Records: []versions.RecordRef{record(1, 100, a), record(2, 101, b)}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.reserve(stream, 2, keysOf("new")...); !errors.As(err, new(*versions.StreamLostError)) {
					t.Fatalf("under repair: %v, want stream lost", err)
				}
				if err := r.ix.EndRepair(t.Context(), stream, true); err != nil {
					t.Fatal(err)
				}
				if _, err := r.reserve(stream, 1, keysOf("new")...); !errors.As(err, new(*versions.ConflictError)) {
					t.Fatalf("after the repair, a stale expectation: %v, want conflict", err)
				}
				if res, err := r.reserve(stream, 0, keysOf(a)...); err != nil || !res.Duplicate {
					t.Fatalf("after the repair, a retry: %+v %v", res, err)
				}
				if res := r.mustReserve(stream, 2, keysOf("new")...); res.FirstVersion != 3 || res.LastOffset != 101 {
					t.Fatalf("after the repair: %+v", res)
				}
			})
		}

		// A stream whose keys were lost during an append: the commit is
		// refused as lost, for the repair to find the record.
		r.t = t
		r.appendAt("inflight", 0, 200, "i1")
		res := r.mustReserve("inflight", 1, keysOf("i2")...)
		r.del(versions.StreamKeys(r.topic, "inflight")[:3]...)
		if err := r.commit(res, 201, keysOf("i2")...); !errors.As(err, new(*versions.StreamLostError)) {
			t.Fatalf("commit after the stream's keys were lost: %v", err)
		}

		// A repair that finds no record leaves a new stream behind.
		r.appendAt("ghost", 0, 300, "g1")
		r.del(versions.StreamKeys(r.topic, "ghost")[0])
		if err := r.ix.MarkRepair(t.Context(), "ghost"); err != nil {
			t.Fatal(err)
		}
		if err := r.ix.EndRepair(t.Context(), "ghost", false); err != nil {
			t.Fatal(err)
		}
		if v := r.appendAt("ghost", 0, 301, "g2"); v != 1 {
			t.Fatalf("after a repair without records: version %d", v)
		}
	})
}

// names are stream names that a hash tag must survive.
var names = []string{"{", "}", "%", "{}", "}{", "%7b", "%7B", "%25", "%%", "{a}", "a", "a{b}c", "a}b{c",
	"{{}}", "流水-ü-🙂", "{流}", "x y\\z*?[]"}

func TestStreamNamesShareNoKeysAndOneSlot(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		owner := map[string]string{}
		for _, name := range names {
			keys := versions.StreamKeys(r.topic, name)
			for _, k := range keys[:3] {
				if other, taken := owner[k]; taken {
					t.Fatalf("streams %q and %q share key %q", name, other, k)
				}
				owner[k] = name
			}
			if rb.Cluster {
				slots := map[int64]bool{}
				for _, k := range keys {
					s, err := r.rdb.ClusterKeySlot(t.Context(), k).Result()
					if err != nil {
						t.Fatal(err)
					}
					slots[s] = true
				}
				if len(slots) != 1 {
					t.Fatalf("keys of stream %q in slots %v", name, slots)
				}
			}
		}

		// Every script runs on every name (in a cluster: no CROSSSLOT),
		// and each stream moves alone.
		for i, name := range names {
			if v := r.appendAt(name, 0, int64(i), "first"); v != 1 {
				t.Fatalf("stream %q: version %d", name, v)
			}
		}
		for i, name := range names {
			res := r.mustReserve(name, 1, keysOf("second")...)
			if res.FirstVersion != 2 || res.LastOffset != int64(i) {
				t.Fatalf("stream %q: %+v", name, res)
			}
			if err := r.ix.Release(t.Context(), res); err != nil {
				t.Fatal(err)
			}
			if err := r.ix.Merge(t.Context(), []versions.StreamUpdate{{Stream: name, Partition: 3,
				Records: []versions.RecordRef{record(2, 100+int64(i), "second")}}}); err != nil {
				t.Fatalf("merge %q: %v", name, err)
			}
			if err := r.ix.MarkRepair(t.Context(), name); err != nil {
				t.Fatal(err)
			}
			if err := r.ix.EndRepair(t.Context(), name, true); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range names {
			if v := r.version(name); v != 2 {
				t.Fatalf("stream %q at %d, want 2", name, v)
			}
		}
		// Counting scans the whole keyspace: not on the shared Redis.
		if !rb.Real || rb.Cluster {
			n, err := r.ix.CountStreams(t.Context(), nil)
			if err != nil || n != int64(len(names)) {
				t.Fatalf("count streams %d, %v; want %d", n, err, len(names))
			}
		}
		st, err := r.ix.Status(t.Context())
		if err != nil || st.LedgerStreams != int64(len(names)) || st.EpochSlots != st.Slots {
			t.Fatalf("status %+v, %v", st, err)
		}
	})
}

func TestWatermarks(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRigNoEpoch(t, rb)
		if w, err := r.ix.Watermarks(t.Context()); err != nil || w.Rebuild != "" || len(w.Next) != 0 {
			t.Fatalf("watermarks of a new index: %+v %v", w, err)
		}
		if ok, err := r.ix.RebuildIntact(t.Context(), "r1"); ok || err != nil {
			t.Fatalf("intact before any rebuild: %v %v", ok, err)
		}
		if err := r.ix.StartRebuild(t.Context(), "r1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.ix.AdvanceWatermarks(t.Context(), "r1", map[int32]int64{0: 10, 1: 0}); !ok || err != nil {
			t.Fatalf("advance: %v %v", ok, err)
		}
		w, err := r.ix.Watermarks(t.Context())
		if err != nil || w.Rebuild != "r1" || w.Next[0] != 10 || w.Next[1] != 0 || len(w.Next) != 2 {
			t.Fatalf("watermarks %+v %v", w, err)
		}
		if ok, err := r.ix.RebuildIntact(t.Context(), "r1"); !ok || err != nil {
			t.Fatalf("intact: %v %v", ok, err)
		}

		// A later rebuild takes over; the first one can no longer advance.
		if err := r.ix.StartRebuild(t.Context(), "r2"); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.ix.AdvanceWatermarks(t.Context(), "r1", map[int32]int64{0: 20}); ok || err != nil {
			t.Fatalf("advance by a replaced rebuild: %v %v", ok, err)
		}
		if w, _ := r.ix.Watermarks(t.Context()); w.Rebuild != "r2" || len(w.Next) != 0 {
			t.Fatalf("after the takeover: %+v", w)
		}

		// A slot that loses its data loses its mark.
		if ok, _ := r.ix.RebuildIntact(t.Context(), "r2"); !ok {
			t.Fatal("not intact right after the start")
		}
		r.del(versions.StreamKeys(r.topic, "any")[4])
		if ok, err := r.ix.RebuildIntact(t.Context(), "r2"); ok || err != nil {
			t.Fatalf("intact after a slot lost data: %v %v", ok, err)
		}
	})
}
