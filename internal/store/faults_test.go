package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// The append protocol under injected faults: kfake answers or drops
// produce requests as each case needs, miniredis holds the index.

const faultTopic = "events"

// rig is a store over kfake and miniredis, with handles on both.
type rig struct {
	kc    *kfake.Cluster
	mr    *miniredis.Miniredis
	index *versions.Index
	kcfg  kafka.Config
	admin *kgo.Client
	store *store.Store
}

// newRig starts a one-broker kfake with a one-partition topic, a miniredis
// and a store over them. Zero lease and delivery timeout mean a lease so
// long that a test fails before it ends and a one-second delivery timeout.
func newRig(t *testing.T, opts store.Options) *rig {
	t.Helper()
	r, opts := newBackends(t, opts)
	// An index that was built before: opening the store rebuilds nothing.
	if err := r.index.WriteEpoch(t.Context(), "built"); err != nil {
		t.Fatal(err)
	}
	r.store = r.newStore(t, opts)
	if err := r.store.Open(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	return r
}

// newBackends starts the rig's kfake and miniredis, without a store, and
// returns opts with the rig's defaults.
func newBackends(t *testing.T, opts store.Options) (*rig, store.Options) {
	t.Helper()
	if opts.Lease == 0 {
		opts.Lease = time.Hour
	}
	if opts.DeliveryTimeout == 0 {
		opts.DeliveryTimeout = time.Second
	}
	if opts.RebuildSettle == 0 {
		opts.RebuildSettle = -1
	}
	opts.Topic, opts.Logger = faultTopic, testenv.Logger(t)

	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })

	kcfg := kafka.Config{Brokers: kc.ListenAddrs(), Topic: faultTopic, DeliveryTimeout: opts.DeliveryTimeout}
	admCl, err := kafka.NewAdminClient(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admCl.Close)
	if _, _, err := kafka.EnsureTopic(t.Context(), kadm.NewClient(admCl),
		kafka.TopicSpec{Name: faultTopic, Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	return &rig{kc: kc, mr: mr, index: versions.New(rdb, faultTopic), kcfg: kcfg, admin: admCl}, opts
}

// newStore returns a store over the rig's backends, not yet open.
func (r *rig) newStore(t *testing.T, opts store.Options) *store.Store {
	t.Helper()
	producer, err := kafka.NewProducer(r.kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	st, err := store.New(r.index, producer, kafka.NewReader(r.kcfg, r.admin), r.kcfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// The first rebuild of a topic's index waits a lease for appends that were
// in flight when the index was lost, unless the sidecar has just created
// the topic: then none can be.
func TestOpenOnANewTopicWaitsForNoAppends(t *testing.T) {
	r, opts := newBackends(t, store.Options{RebuildSettle: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := r.newStore(t, opts).Open(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open of an index without an epoch: %v, want it waiting for the settle", err)
	}

	opts.NewTopic = true
	st := r.newStore(t, opts)
	ctx, cancel = context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := st.Open(ctx, 1); err != nil {
		t.Fatalf("open on a topic just created: %v, want it ready without the settle", err)
	}
	if _, err := st.Append(t.Context(), appendReq("fresh", 0, "a")); err != nil {
		t.Fatalf("append after the open: %v", err)
	}
}

// appendReq is an append of one event per id, with those ids.
func appendReq(stream string, expected int64, ids ...string) *eventstorepb.AppendRequest {
	req := &eventstorepb.AppendRequest{StreamName: stream, ExpectedVersion: expected}
	for _, id := range ids {
		req.Events = append(req.Events, &eventstorepb.Event{
			EventId: id, EventType: "Tested", Data: []byte(`{"id":"` + id + `"}`), CreatedAt: 1,
		})
	}
	return req
}

// appendWithin appends and fails the test when the append has not
// returned after d: an append must settle within its lease, whatever the
// broker does.
func appendWithin(t *testing.T, st *store.Store, d time.Duration,
	req *eventstorepb.AppendRequest) (store.AppendResult, error) {
	t.Helper()
	type outcome struct {
		res store.AppendResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := st.Append(context.Background(), req)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(d):
		t.Fatalf("append to %q still running after %s, past its lease", req.StreamName, d)
		return store.AppendResult{}, nil
	}
}

// mustAppend appends and fails the test on any error.
func mustAppend(t *testing.T, st *store.Store, req *eventstorepb.AppendRequest) store.AppendResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := st.Append(ctx, req)
	if err != nil {
		t.Fatalf("append to %q at %d: %v", req.StreamName, req.ExpectedVersion, err)
	}
	return res
}

// topicAppends decodes every append of the topic, in offset order.
func (r *rig) topicAppends(t *testing.T) []*eventstorepb.RecordedAppend {
	t.Helper()
	var out []*eventstorepb.RecordedAppend
	for _, rec := range testenv.ReadTopic(t, r.kcfg.Brokers, faultTopic) {
		a, err := kafka.Decode(rec)
		if errors.Is(err, kafka.ErrNotAnAppend) {
			continue
		}
		if err != nil {
			t.Fatalf("offset %d: %v", rec.Offset, err)
		}
		out = append(out, a)
	}
	return out
}

// wantVersions fails unless the topic holds exactly one record per wanted
// append, in order, each with the given first version and event ids.
func (r *rig) wantTopic(t *testing.T, want ...*eventstorepb.AppendRequest) {
	t.Helper()
	got := r.topicAppends(t)
	if len(got) != len(want) {
		t.Fatalf("topic holds %d records, want %d", len(got), len(want))
	}
	version := int64(1)
	for i, a := range got {
		if a.FirstVersion != version || len(a.Events) != len(want[i].Events) {
			t.Fatalf("record %d: first version %d with %d events, want %d with %d",
				i, a.FirstVersion, len(a.Events), version, len(want[i].Events))
		}
		for j, e := range a.Events {
			if e.EventId != want[i].Events[j].EventId {
				t.Fatalf("record %d event %d: id %q, want %q", i, j, e.EventId, want[i].Events[j].EventId)
			}
		}
		version += int64(len(a.Events))
	}
}

func (r *rig) wantIndex(t *testing.T, stream string, version, offset int64) {
	t.Helper()
	s, found, err := r.index.Lookup(t.Context(), stream)
	if err != nil || !found {
		t.Fatalf("index entry of %q: found %v, %v", stream, found, err)
	}
	if s.Version != version || s.LastOffset != offset {
		t.Fatalf("index has %q at version %d, last offset %d; want %d, %d",
			stream, s.Version, s.LastOffset, version, offset)
	}
}

func TestRetriableProduceErrorsAreRetried(t *testing.T) {
	// Each retry waits for fresh metadata, about a second.
	r := newRig(t, store.Options{DeliveryTimeout: 5 * time.Second, Lease: time.Hour})
	r.kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: 2})
	first := appendReq("retried", 0, "a", "b")
	if res := mustAppend(t, r.store, first); res.Version != 2 {
		t.Fatalf("version %d, want 2", res.Version)
	}
	second := appendReq("retried", 2, "c")
	if res := mustAppend(t, r.store, second); res.Version != 3 {
		t.Fatalf("version %d, want 3", res.Version)
	}
	r.wantTopic(t, first, second)
}

func TestDefiniteProduceErrorsReleaseTheReservation(t *testing.T) {
	tests := []struct {
		name string
		err  *kerr.Error
		want func(error) bool
	}{
		{"authorization", kerr.TopicAuthorizationFailed, func(err error) bool { return errors.Is(err, store.ErrRefused) }},
		{"too large", kerr.MessageTooLarge, func(err error) bool {
			var tl *store.TooLargeError
			return errors.As(err, &tl)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, store.Options{})
			h := r.kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: tt.err, Count: -1})
			_, err := appendWithin(t, r.store, 30*time.Second, appendReq("refused", 0, "a"))
			if !tt.want(err) {
				t.Fatalf("append error %v, want a refusal", err)
			}
			h.Remove()
			// Released: with a lease of an hour, a held reservation would
			// block this append until the test times out.
			retry := appendReq("refused", 0, "a")
			if res := mustAppend(t, r.store, retry); res.Version != 1 {
				t.Fatalf("version %d after the refusal, want 1", res.Version)
			}
			r.wantTopic(t, retry)
		})
	}
}

// dropProduce closes the connection of every produce request with the
// given acks, so the producer never learns what became of its record.
func (r *rig) dropProduce(acks int16) (dropped *atomic.Int64) {
	dropped = new(atomic.Int64)
	r.kc.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		r.kc.KeepControl()
		if kreq.(*kmsg.ProduceRequest).Acks != acks {
			return nil, nil, false
		}
		dropped.Add(1)
		return nil, errors.New("connection lost"), true
	})
	return dropped
}

func TestProduceWithoutResponseEndsWithinTheLease(t *testing.T) {
	// A produce whose connection dropped after the request was written
	// was retried until a response came, long past the delivery timeout
	// and the lease, holding the append and its stream. Such an append
	// never ends; the lease is far above the delivery timeouts that bound
	// a correct one, so that a loaded machine cannot make it late.
	const lease = 30 * time.Second
	r := newRig(t, store.Options{Lease: lease})
	dropped := r.dropProduce(-1)
	_, err := appendWithin(t, r.store, lease, appendReq("dropped", 0, "a"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("append error %v, want unavailable", err)
	}
	if dropped.Load() == 0 {
		t.Fatal("no produce request reached the broker")
	}
}

func TestUnknownOutcomeIsResolvedAgainstThePartition(t *testing.T) {
	t.Run("applied, answered with a timeout", func(t *testing.T) {
		r := newRig(t, store.Options{})
		// REQUEST_TIMED_OUT on produce: the broker appends, then answers
		// that it timed out, on every attempt of the append.
		h := r.kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: -1,
			When: firstEpochOnly()})
		first := appendReq("timed-out", 0, "a", "b")
		res, err := appendWithin(t, r.store, 30*time.Second, first)
		if err != nil || res.Version != 2 {
			t.Fatalf("append: version %d, %v; want 2 found in the partition", res.Version, err)
		}
		h.Remove()
		r.wantIndex(t, "timed-out", 2, res.Offset)
		second := appendReq("timed-out", 2, "c")
		if res := mustAppend(t, r.store, second); res.Version != 3 {
			t.Fatalf("version %d, want 3", res.Version)
		}
		r.wantTopic(t, first, second)
	})

	t.Run("applied, response lost", func(t *testing.T) {
		r := newRig(t, store.Options{})
		// The producer's requests (acks=all) are dropped; the first one is
		// applied through another client (acks=1), as if the broker had
		// written it and the response had been lost.
		injector, err := kgo.NewClient(kgo.SeedBrokers(r.kcfg.Brokers...), kgo.RequiredAcks(kgo.LeaderAck()),
			kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		defer injector.Close()
		applied := make(chan error, 1)
		var once atomic.Bool
		appendAttempt := firstEpochOnly()
		r.kc.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			r.kc.KeepControl()
			req := kreq.(*kmsg.ProduceRequest)
			if req.Acks != -1 || !appendAttempt(req) {
				return nil, nil, false
			}
			if once.CompareAndSwap(false, true) {
				cp := *req
				cp.Acks = 1
				go func() {
					resp, err := injector.Request(context.Background(), &cp)
					if err == nil {
						err = kerr.ErrorForCode(resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode)
					}
					applied <- err
				}()
			}
			return nil, errors.New("connection lost"), true
		})
		first := appendReq("lost-response", 0, "a")
		res, err := appendWithin(t, r.store, 30*time.Second, first)
		if aerr := <-applied; aerr != nil {
			t.Fatalf("applying the first request: %v", aerr)
		}
		if err != nil || res.Version != 1 {
			t.Fatalf("append: version %d, %v; want 1 found in the partition", res.Version, err)
		}
		r.wantIndex(t, "lost-response", 1, res.Offset)
		r.wantTopic(t, first)
	})

	t.Run("not applied", func(t *testing.T) {
		r := newRig(t, store.Options{})
		h := r.kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotLeaderForPartition, Count: -1,
			When: firstEpochOnly()})
		_, err := appendWithin(t, r.store, 30*time.Second, appendReq("not-applied", 0, "a"))
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("append error %v, want unavailable", err)
		}
		h.Remove()
		// Released at once: a reservation left behind would block this
		// append for the lease of an hour.
		retry := appendReq("not-applied", 0, "a")
		if res := mustAppend(t, r.store, retry); res.Version != 1 {
			t.Fatalf("version %d, want 1", res.Version)
		}
		r.wantTopic(t, retry)
	})
}

// firstEpochOnly matches the produce requests of the first producer epoch
// it sees: the attempts of an append, and not the fence written after the
// producer abandoned it and moved to a new epoch.
func firstEpochOnly() func(kmsg.Request) bool {
	var first atomic.Int32
	first.Store(-2)
	return func(kreq kmsg.Request) bool {
		epoch := int32(-1)
		for _, t := range kreq.(*kmsg.ProduceRequest).Topics {
			for _, p := range t.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(p.Records); err == nil {
					epoch = int32(b.ProducerEpoch)
				}
			}
		}
		first.CompareAndSwap(-2, epoch)
		return epoch == first.Load()
	}
}

// reserveAndDie reserves versions for req as a sidecar would, with a
// lease that ran out already, and never commits: the sidecar died.
func (r *rig) reserveAndDie(t *testing.T, req *eventstorepb.AppendRequest) versions.Reservation {
	t.Helper()
	keys := make([]versions.EventKey, len(req.Events))
	for i, e := range req.Events {
		keys[i] = versions.EventKey{ID: e.EventId, Hash: "dead-" + e.EventId}
	}
	for {
		res, err := r.index.Reserve(t.Context(), versions.ReserveRequest{
			Stream: req.StreamName, Expected: req.ExpectedVersion, Events: keys,
			Token: fmt.Sprintf("dead-%s-%d", req.StreamName, req.ExpectedVersion),
			Now:   time.Now().Add(-2 * time.Minute), Lease: time.Minute,
		})
		if errors.Is(err, versions.ErrBusy) {
			// The commit of the previous append, which runs after its
			// reply, is not done yet.
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("reserve: %v", err)
		}
		return res
	}
}

// land produces the record a reservation's sidecar would have written.
func (r *rig) land(t *testing.T, res versions.Reservation, req *eventstorepb.AppendRequest) {
	t.Helper()
	events := make([]*eventstorepb.Event, len(req.Events))
	for i, e := range req.Events {
		events[i] = &eventstorepb.Event{EventId: e.EventId, EventType: e.EventType, Data: e.Data,
			AggregateId: req.StreamName, CreatedAt: e.CreatedAt, AggregateVersion: res.FirstVersion + int64(i)}
	}
	rec, err := kafka.NewRecord(faultTopic, res.Partition, &eventstorepb.RecordedAppend{
		StreamName: res.Stream, FirstVersion: res.FirstVersion, Token: res.Token, Events: events,
	})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.kcfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestDeadSidecarsReservationIsResolvedByTheNextWriter(t *testing.T) {
	t.Run("record landed: committed", func(t *testing.T) {
		r := newRig(t, store.Options{})
		seed := appendReq("orphan", 0, "s")
		mustAppend(t, r.store, seed)
		dead := appendReq("orphan", 1, "d1", "d2")
		r.land(t, r.reserveAndDie(t, dead), dead)

		next := appendReq("orphan", 1, "n")
		_, err := r.store.Append(t.Context(), next)
		var conflict *versions.ConflictError
		if !errors.As(err, &conflict) || conflict.Actual != 3 {
			t.Fatalf("append at 1 after the dead append landed: %v, want a conflict at 3", err)
		}
		next.ExpectedVersion = 3
		if res := mustAppend(t, r.store, next); res.Version != 4 {
			t.Fatalf("version %d, want 4", res.Version)
		}
		r.wantTopic(t, seed, dead, next)
	})

	t.Run("record never landed: released", func(t *testing.T) {
		r := newRig(t, store.Options{})
		seed := appendReq("orphan", 0, "s")
		mustAppend(t, r.store, seed)
		r.reserveAndDie(t, appendReq("orphan", 1, "d1", "d2"))

		next := appendReq("orphan", 1, "n")
		if res := mustAppend(t, r.store, next); res.Version != 2 {
			t.Fatalf("version %d, want 2: the dead reservation should be released", res.Version)
		}
		r.wantTopic(t, seed, next)
	})
}

func TestIndexLostMidAppend(t *testing.T) {
	r := newRig(t, store.Options{})
	seed := appendReq("amnesia", 0, "s")
	mustAppend(t, r.store, seed)

	// Redis loses everything while the record is on its way to Kafka.
	var flushed atomic.Bool
	r.kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if flushed.CompareAndSwap(false, true) {
			r.mr.FlushAll()
		}
		return nil, nil, false
	})
	lost := appendReq("amnesia", 1, "l1", "l2")
	res, err := appendWithin(t, r.store, 30*time.Second, lost)
	if err != nil || res.Version != 3 {
		t.Fatalf("append during the loss: version %d, %v; want 3, acknowledged", res.Version, err)
	}

	// The next append notices, and the rebuild includes the record.
	_, err = r.store.Append(t.Context(), appendReq("amnesia", 3, "n"))
	if !errors.Is(err, store.ErrRebuilding) {
		t.Fatalf("append after the loss: %v, want the index rebuilding", err)
	}
	waitReady(t, r.store)
	r.wantIndex(t, "amnesia", 3, res.Offset)
	if again := mustAppend(t, r.store, lost); !again.Duplicate || again.Version != 3 {
		t.Fatalf("retry of the acknowledged append: %+v, want the original version 3", again)
	}
	next := appendReq("amnesia", 3, "n")
	if res := mustAppend(t, r.store, next); res.Version != 4 {
		t.Fatalf("version %d, want 4", res.Version)
	}
	r.wantTopic(t, seed, lost, next)
}

func TestCommitLostIsResolvedByTheNextWriter(t *testing.T) {
	r := newRig(t, store.Options{Lease: 2 * time.Second, DeliveryTimeout: time.Second})
	// Redis fails every command from the moment the record is produced
	// until the append returned: the commit is lost, the record is not.
	r.kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		r.kc.DropControl()
		r.mr.SetError("LOADING redis is loading")
		return nil, nil, false
	})
	first := appendReq("uncommitted", 0, "a")
	res, err := appendWithin(t, r.store, 30*time.Second, first)
	r.mr.SetError("")
	if err != nil || res.Version != 1 {
		t.Fatalf("append: version %d, %v; want 1, acknowledged", res.Version, err)
	}

	// The reservation blocks the stream until its lease ends, then the
	// next writer finds the record and commits it.
	next := appendReq("uncommitted", 1, "b")
	if res := mustAppend(t, r.store, next); res.Version != 2 {
		t.Fatalf("version %d, want 2", res.Version)
	}
	if again := mustAppend(t, r.store, first); !again.Duplicate || again.Version != 1 {
		t.Fatalf("retry of the first append: %+v, want the original version 1", again)
	}
	r.wantTopic(t, first, next)
}

func waitReady(t *testing.T, st *store.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for !st.Ready() {
		if ctx.Err() != nil {
			t.Fatal("the index was not rebuilt")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIndexLostAgainDuringRebuild(t *testing.T) {
	// Redis lost its data a second time while the rebuild waited for
	// in-flight appends: the rebuild still wrote the epoch, over an index
	// without the streams it had merged, and the next append took version
	// 1 of a stream that had 3.
	r := newRig(t, store.Options{RebuildSettle: 200 * time.Millisecond})
	seed := appendReq("twice", 0, "a", "b", "c")
	mustAppend(t, r.store, seed)
	waitCommitted(t, r, "twice", 3)

	// The rebuild's second look at the end offsets comes after its first
	// merge: Redis loses everything again at that moment.
	var armed, flushed atomic.Bool
	meta := "es:" + faultTopic + ":{twice}:m"
	r.kc.ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
		r.kc.KeepControl()
		if armed.Load() && r.mr.Exists(meta) && !flushed.Load() {
			r.mr.FlushAll()
			flushed.Store(true)
		}
		return nil, nil, false
	})
	r.mr.FlushAll()
	armed.Store(true)
	if _, err := r.store.Append(t.Context(), appendReq("twice", 3, "d")); !errors.Is(err, store.ErrRebuilding) {
		t.Fatalf("append after the loss: %v, want the index rebuilding", err)
	}
	waitReady(t, r.store)
	if !flushed.Load() {
		t.Fatal("the rebuild never looked at the end offsets after merging")
	}

	_, err := r.store.Append(t.Context(), appendReq("twice", 0, "x"))
	var conflict *versions.ConflictError
	if !errors.As(err, &conflict) || conflict.Actual != 3 {
		t.Fatalf("append at 0 to a stream of 3 events: %v, want a conflict at 3", err)
	}
	r.wantIndex(t, "twice", 3, 0)
}

// waitCommitted waits until the index has stream at version: commits run
// after the reply.
func waitCommitted(t *testing.T, r *rig, stream string, version int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		s, found, err := r.index.Lookup(ctx, stream)
		if err == nil && found && s.Version == version {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("stream %q not committed at version %d: %+v, %v", stream, version, s, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProduceAppliedAfterItWasAbandoned(t *testing.T) {
	// A produce the broker took late, after the append had given up on it
	// and found nothing in the partition, landed after the reservation was
	// released: the retry wrote the same events at the same versions again,
	// and a contended stream got two records of one version.
	r := newRig(t, store.Options{})
	wake := make(chan struct{})
	var slept atomic.Bool
	r.kc.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		r.kc.KeepControl()
		if kreq.(*kmsg.ProduceRequest).Acks == -1 && slept.CompareAndSwap(false, true) {
			r.kc.SleepControl(func() { <-wake })
		}
		return nil, nil, false
	})
	handled := r.kc.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Observe: true, Count: -1})

	_, err := appendWithin(t, r.store, 30*time.Second, appendReq("late", 0, "a"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("append error %v, want unavailable", err)
	}
	// The broker takes the abandoned request now.
	before := handled.Hits()
	close(wake)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := handled.Wait(ctx, before+1); err != nil {
		t.Fatalf("the abandoned produce was not handled: %v", err)
	}

	retry := appendReq("late", 0, "a")
	res := mustAppend(t, r.store, retry)
	if res.Version != 1 {
		t.Fatalf("retry: version %d, want 1", res.Version)
	}
	r.wantTopic(t, retry)
}
