package versions

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func miniIndex(t *testing.T, topics ...string) (*miniredis.Miniredis, redis.UniversalClient, []*Index) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	var ixs []*Index
	for _, topic := range topics {
		ix := New(rdb, topic)
		if err := ix.WriteEpoch(t.Context(), "e"); err != nil {
			t.Fatal(err)
		}
		ixs = append(ixs, ix)
	}
	return mr, rdb, ixs
}

func directAppend(ctx context.Context, ix *Index, stream string, expected, offset int64) error {
	events := []EventKey{{ID: stream + "-" + time.Now().String(), Hash: "h"}}
	r, err := ix.ReserveDirect(ctx, ReserveRequest{Stream: stream, Expected: expected, Events: events,
		Token: "t" + time.Now().String(), Now: time.Now(), Lease: time.Minute, Partition: 3})
	if err != nil {
		return err
	}
	return ix.CommitDirect(ctx, r, offset, events)
}

func TestDirectScriptsKeepTheIndex(t *testing.T) {
	_, _, ixs := miniIndex(t, "events")
	ix, ctx := ixs[0], t.Context()
	for v := range int64(3) {
		if err := directAppend(ctx, ix, "s", v, 10+v); err != nil {
			t.Fatalf("append at version %d: %v", v, err)
		}
	}
	st, found, err := ix.Lookup(ctx, "s")
	if err != nil || !found || st.Version != 3 || st.Partition != 3 || st.LastOffset != 12 {
		t.Fatalf("lookup: %+v found=%v err=%v, want version 3 in partition 3 at offset 12", st, found, err)
	}

	var conflict *ConflictError
	if err := directAppend(ctx, ix, "s", 1, 20); !errors.As(err, &conflict) || conflict.Actual != 3 {
		t.Fatalf("stale expectation: %v, want a conflict naming version 3", err)
	}
	req := ReserveRequest{Stream: "held", Events: []EventKey{{ID: "a", Hash: "h"}}, Token: "t1",
		Now: time.Now(), Lease: time.Minute}
	if _, err := ix.ReserveDirect(ctx, req); err != nil {
		t.Fatal(err)
	}
	req.Token = "t2"
	if _, err := ix.ReserveDirect(ctx, req); !errors.Is(err, ErrBusy) {
		t.Fatalf("second reservation under a live lease: %v, want ErrBusy", err)
	}
}

func TestDropRemovesTheTopicsKeys(t *testing.T) {
	mr, rdb, ixs := miniIndex(t, "a", "b")
	ctx := t.Context()
	streams := []string{"s1", "s{2}", "s3"}
	for _, ix := range ixs {
		// A rebuild's marks and watermarks are part of the index too.
		if err := ix.StartRebuild(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		if _, err := ix.AdvanceWatermarks(ctx, "r", map[int32]int64{0: 5}); err != nil {
			t.Fatal(err)
		}
		for _, s := range streams {
			if err := directAppend(ctx, ix, s, 0, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := len(mr.Keys())

	n, err := Drop(ctx, rdb, "a", slices.Values(streams))
	if err != nil {
		t.Fatal(err)
	}
	left := mr.Keys()
	if n == 0 || len(left) != before-n {
		t.Fatalf("drop removed %d keys, %d of %d left", n, len(left), before)
	}
	for _, k := range left {
		if !strings.HasPrefix(k, "es:b:") {
			t.Fatalf("key %q of the dropped topic is left", k)
		}
	}
	for _, s := range streams {
		if _, found, err := ixs[1].Lookup(ctx, s); err != nil || !found {
			t.Fatalf("stream %q of the kept topic: found=%v err=%v", s, found, err)
		}
	}
}
