package store_test

import (
	"testing"
	"time"

	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// entry is the index's entry of one stream.
func (r *rig) entry(t *testing.T, stream string) versions.Entry {
	t.Helper()
	es, err := r.index.Inspect(t.Context(), []string{stream})
	if err != nil || len(es) != 1 {
		t.Fatalf("inspect %q: %v", stream, err)
	}
	return es[0]
}

// An acknowledged append's commit is deferred; reads, the next append, a
// timer and the store's close each send it, so the index catches up with
// every acknowledged append and no stream stays reserved.
func TestDeferredCommitsReachTheIndex(t *testing.T) {
	r := newRig(t, store.Options{})

	mustAppend(t, r.store, appendReq("deferred", 0, "a"))
	// A read through this store sees the append: it sends the commit first,
	// unless the timer did already.
	info, err := r.store.GetStream(t.Context(), "deferred")
	if err != nil || info.Version != 1 {
		t.Fatalf("read after the append: %+v, %v; want version 1", info, err)
	}
	if e := r.entry(t, "deferred"); e.Reserved || e.Version != 1 {
		t.Fatalf("after the read: version %d, reserved %v; want 1, committed", e.Version, e.Reserved)
	}

	// The next append carries the previous commit; the last one goes alone.
	for v := int64(1); v <= 5; v++ {
		if res := mustAppend(t, r.store, appendReq("deferred", v, "e"+string(rune('0'+v)))); res.Version != v+1 {
			t.Fatalf("append at %d: version %d", v, res.Version)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for e := r.entry(t, "deferred"); e.Reserved || e.Version != 6; e = r.entry(t, "deferred") {
		if time.Now().After(deadline) {
			t.Fatalf("the last commit was never sent: version %d, reserved %v", e.Version, e.Reserved)
		}
		time.Sleep(time.Millisecond)
	}

	// Closing the store sends what is deferred before it returns.
	mustAppend(t, r.store, appendReq("closing", 0, "x"))
	r.store.Close()
	if e := r.entry(t, "closing"); e.Reserved || e.Version != 1 {
		t.Fatalf("after close: version %d, reserved %v; want 1, committed", e.Version, e.Reserved)
	}
	r.wantIndex(t, "deferred", 6, 5)
}
