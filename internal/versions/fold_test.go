package versions_test

import (
	"errors"
	"testing"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
)

func TestCommitAndReserve(t *testing.T) {
	testenv.ForEachRedis(t, func(t *testing.T, rb testenv.RedisBackend) {
		r := newRig(t, rb)
		first := r.mustReserve("s", 0, keysOf("a", "b")...)
		pending := versions.Commit{Reservation: first, Offset: 7, Events: keysOf("a", "b")}

		// The next append expects the version the pending commit makes.
		req := versions.ReserveRequest{Stream: "s", Expected: 2, Events: keysOf("c"),
			Token: "t-next", Now: t0, Lease: lease, Partition: 0}
		committed, next, err := r.ix.CommitAndReserve(t.Context(), pending, req)
		if committed != nil || err != nil {
			t.Fatalf("commit and reserve: committed %v, err %v", committed, err)
		}
		if next.FirstVersion != 3 || next.Partition != 3 || next.LastOffset != 7 || next.Token != "t-next" {
			t.Fatalf("reservation after the commit: %+v", next)
		}
		if v := r.version("s"); v != 2 {
			t.Fatalf("version %d after the commit, want 2", v)
		}

		// A retry of the committed append is found by its ids, in the same
		// call as the commit of the reservation before it.
		req = versions.ReserveRequest{Stream: "s", Expected: 0, Events: keysOf("c"),
			Token: "t-retry", Now: t0, Lease: lease}
		committed, dup, err := r.ix.CommitAndReserve(t.Context(),
			versions.Commit{Reservation: next, Offset: 9, Events: keysOf("c")}, req)
		if committed != nil || err != nil || !dup.Duplicate || dup.LastVersion != 3 {
			t.Fatalf("retry after its commit: committed %v, %+v, err %v", committed, dup, err)
		}

		// The reserve's own outcome comes back beside the commit's.
		stale := r.mustReserve("s", 3, keysOf("d")...)
		if err := r.ix.Release(t.Context(), stale); err != nil {
			t.Fatal(err)
		}
		r.appendAt("s", 3, 10, "e")
		req = versions.ReserveRequest{Stream: "s", Expected: 3, Events: keysOf("f"),
			Token: "t-late", Now: t0, Lease: lease}
		committed, _, err = r.ix.CommitAndReserve(t.Context(),
			versions.Commit{Reservation: stale, Offset: 11, Events: keysOf("d")}, req)
		var conflict *versions.ConflictError
		if !errors.Is(committed, versions.ErrSuperseded) || !errors.As(err, &conflict) || conflict.Actual != 4 {
			t.Fatalf("superseded commit and stale expectation: committed %v, err %v", committed, err)
		}

		// Another stream's commit never travels with this one's reservation.
		if _, _, err := r.ix.CommitAndReserve(t.Context(), pending,
			versions.ReserveRequest{Stream: "other", Events: keysOf("x"), Token: "t", Now: t0, Lease: lease}); err == nil {
			t.Fatal("a commit of stream s went with a reservation of stream other")
		}
	})
}
