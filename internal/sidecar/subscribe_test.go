package sidecar_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc/codes"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Persistent subscriptions: groups, acks, nacks, parking, rebalances and
// partitions added under load.

// subscriber is one Subscribe stream seen from the client. Messages are
// received in the background; the test takes them with next.
type subscriber struct {
	t      testing.TB
	stream eventstorepb.EventStoreService_SubscribeClient
	cancel context.CancelFunc
	msgs   chan *eventstorepb.SubscribeServerMessage
	done   chan error

	mu sync.Mutex
	// unacked counts deliveries received and not acked (or nacked) yet;
	// maxUnacked is the most it ever was.
	unacked, maxUnacked int
}

func openSubscriber(t testing.TB, c eventstorepb.EventStoreServiceClient, open *eventstorepb.SubscribeOpen) *subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Subscribe(ctx)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	s := &subscriber{t: t, stream: stream, cancel: cancel,
		msgs: make(chan *eventstorepb.SubscribeServerMessage, 100_000), done: make(chan error, 1)}
	t.Cleanup(s.close)
	if err := stream.Send(&eventstorepb.SubscribeClientMessage{
		Kind: &eventstorepb.SubscribeClientMessage_Open{Open: open}}); err != nil {
		t.Fatalf("send open: %v", err)
	}
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				s.done <- err
				close(s.msgs)
				return
			}
			if m.GetDelivery() != nil {
				s.mu.Lock()
				s.unacked++
				s.maxUnacked = max(s.maxUnacked, s.unacked)
				s.mu.Unlock()
			}
			s.msgs <- m
		}
	}()
	return s
}

// close ends the stream abruptly, as a crashing client would.
func (s *subscriber) close() { s.cancel() }

// next returns the next message, failing the test after wait.
func (s *subscriber) next(wait time.Duration) *eventstorepb.SubscribeServerMessage {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			s.t.Fatalf("subscription ended: %v", <-s.done)
		}
		return m
	case <-time.After(wait):
		s.t.Fatalf("no message within %s", wait)
		return nil
	}
}

// quiet reports whether no delivery arrives within wait.
func (s *subscriber) quiet(wait time.Duration) bool {
	s.t.Helper()
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return true
			}
			if m.GetDelivery() != nil {
				s.t.Logf("unexpected delivery %v", m.GetDelivery().Position)
				return false
			}
		case <-time.After(wait):
			return true
		}
	}
}

func (s *subscriber) ack(ps ...*eventstorepb.Position) {
	s.t.Helper()
	s.mu.Lock()
	s.unacked -= len(ps)
	s.mu.Unlock()
	if err := s.stream.Send(&eventstorepb.SubscribeClientMessage{
		Kind: &eventstorepb.SubscribeClientMessage_Ack{Ack: &eventstorepb.Ack{Positions: ps}}}); err != nil {
		s.t.Fatalf("send ack: %v", err)
	}
}

func (s *subscriber) nack(p *eventstorepb.Position, action eventstorepb.NackAction, reason string) {
	s.t.Helper()
	s.mu.Lock()
	s.unacked--
	s.mu.Unlock()
	if err := s.stream.Send(&eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Nack{
		Nack: &eventstorepb.Nack{Position: p, Action: action, Reason: reason}}}); err != nil {
		s.t.Fatalf("send nack: %v", err)
	}
}

// received is what a test subscriber saw, per stream.
type received struct {
	deliveries []*eventstorepb.Delivery
	versions   map[string][]int64
	events     int
	caughtUp   []*eventstorepb.CaughtUp
}

func newReceived() *received { return &received{versions: map[string][]int64{}} }

func (r *received) add(d *eventstorepb.Delivery) {
	r.deliveries = append(r.deliveries, d)
	for _, e := range d.Events {
		r.versions[e.AggregateId] = append(r.versions[e.AggregateId], e.AggregateVersion)
		r.events++
	}
}

// collect receives until the subscriber holds n events, acking every
// delivery when ack is set.
func (s *subscriber) collect(n int, ack bool, wait time.Duration) *received {
	s.t.Helper()
	r := newReceived()
	for r.events < n {
		m := s.next(wait)
		if cu := m.GetCaughtUp(); cu != nil {
			r.caughtUp = append(r.caughtUp, cu)
			continue
		}
		d := m.GetDelivery()
		r.add(d)
		if ack {
			s.ack(d.Position)
		}
	}
	return r
}

// appendMany appends perStream single-event appends to each of streams and
// returns the streams' versions.
func appendMany(t testing.TB, c eventstorepb.EventStoreServiceClient, streams []string, perStream int) {
	t.Helper()
	for v := range perStream {
		for _, s := range streams {
			mustAppend(t, c, s, int64(v), event("Step", fmt.Sprintf(`{"v":%d}`, v+1)))
		}
	}
}

func streamNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// checkOrder fails unless every stream's versions arrived in order, and,
// with want > 0, are exactly 1..want.
func checkOrder(t testing.TB, got map[string][]int64, streams []string, want int) {
	t.Helper()
	for _, s := range streams {
		vs := got[s]
		if want > 0 {
			checkVersions(t, s, vs, want)
			continue
		}
		for i := 1; i < len(vs); i++ {
			if vs[i] <= vs[i-1] {
				t.Fatalf("stream %s: versions %v out of order", s, vs)
			}
		}
	}
}

func adminFor(t testing.TB, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// committed returns what group committed in topic, per partition.
func committed(t testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	resps, err := adm.FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatalf("fetch offsets: %v", err)
	}
	out := map[int32]int64{}
	resps.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitFor polls cond until it holds, failing the test after wait.
func waitFor(t testing.TB, wait time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// brokersOf returns the brokers of a sidecar's backend, starting the
// sidecar on a kfake of the test's own when the backend is embedded, so
// that the test can reach Kafka too.
func brokersOf(t testing.TB, b testenv.Backend, cfg *sidecar.Config) []string {
	t.Helper()
	if b.Real() {
		return b.Brokers
	}
	return testenv.OwnKafka(t, cfg)
}

const wait = 30 * time.Second

func TestNewGroupReceivesEverythingAndResetReplays(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		brokers := brokersOf(t, b, &cfg)
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		streams := streamNames("replay", 8)
		appendMany(t, c, streams, 5)

		sub := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "read-model"})
		got := sub.collect(40, true, wait)
		checkOrder(t, got.versions, streams, 5)
		for _, d := range got.deliveries {
			if d.Position == nil || d.Events[0].Partition != d.Position.Partition || d.Events[0].Offset != d.Position.Offset {
				t.Fatalf("delivery position %v, event position %d/%d", d.Position, d.Events[0].Partition, d.Events[0].Offset)
			}
		}
		// Everything that was in the log has been sent: the marker follows,
		// naming the end offsets.
		if len(got.caughtUp) == 0 {
			m := sub.next(wait)
			if m.GetCaughtUp() == nil {
				t.Fatalf("got %v, want the caught-up marker", m)
			}
			total := int64(0)
			for _, p := range m.GetCaughtUp().Positions {
				total += p.Offset
			}
			if total != 40 {
				t.Fatalf("caught up at %v, want the end offsets (40 records)", m.GetCaughtUp().Positions)
			}
		}

		// Live events follow.
		mustAppend(t, c, streams[0], 5, event("Live", "{}"))
		live := sub.collect(1, true, wait)
		if vs := live.versions[streams[0]]; len(vs) != 1 || vs[0] != 6 {
			t.Fatalf("live delivery %v, want %s v6", live.versions, streams[0])
		}

		adm := adminFor(t, brokers)
		waitFor(t, wait, "group commits everything", func() bool {
			n := int64(0)
			for _, o := range committed(t, adm, "read-model", cfg.KafkaTopic) {
				n += o
			}
			return n == 41
		})
		sub.close()

		// A reset group receives every event again, once it has no members.
		waitFor(t, wait, "reset of the group", func() bool {
			_, err := kafka.ResetGroup(context.Background(), adm, cfg.KafkaTopic, "read-model", kafka.ResetTarget{Start: true})
			return err == nil
		})
		again := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "read-model"})
		got = again.collect(41, true, wait)
		checkOrder(t, got.versions, streams[1:], 5)
		checkVersions(t, streams[0], got.versions[streams[0]], 6)
	})
}

func TestSubscriptionOpenIsValidated(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	sc := testenv.Start(t, cfg)
	c := testenv.Client(t, sc.Addr())
	tests := []struct {
		name  string
		first *eventstorepb.SubscribeClientMessage
		field string
	}{
		{"ack first", &eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Ack{Ack: &eventstorepb.Ack{}}}, "open"},
		{"empty message", &eventstorepb.SubscribeClientMessage{}, "open"},
		{"group with a space", openMsg(&eventstorepb.SubscribeOpen{Group: "read model"}), "open.group"},
		{"group with a brace", openMsg(&eventstorepb.SubscribeOpen{Group: "{x}"}), "open.group"},
		{"negative window", openMsg(&eventstorepb.SubscribeOpen{MaxInFlight: -1}), "open.max_in_flight"},
		{"huge window", openMsg(&eventstorepb.SubscribeOpen{MaxInFlight: 1 << 30}), "open.max_in_flight"},
		{"empty event type", openMsg(&eventstorepb.SubscribeOpen{EventTypes: []string{"A", ""}}), "open.event_types[1]"},
		{"group with a start", openMsg(&eventstorepb.SubscribeOpen{Group: "g", Start: eventstorepb.StartPosition_START_POSITION_END}), "open.start"},
		{"unknown start", openMsg(&eventstorepb.SubscribeOpen{Start: 7}), "open.start"},
		{"cursor without start", openMsg(&eventstorepb.SubscribeOpen{Cursor: []*eventstorepb.Position{{}}}), "open.cursor"},
		{"cursor beyond the topic", openMsg(&eventstorepb.SubscribeOpen{Start: eventstorepb.StartPosition_START_POSITION_CURSOR,
			Cursor: []*eventstorepb.Position{{Partition: 9}}}), "open.cursor[0].partition"},
		{"cursor twice", openMsg(&eventstorepb.SubscribeOpen{Start: eventstorepb.StartPosition_START_POSITION_CURSOR,
			Cursor: []*eventstorepb.Position{{Partition: 1}, {Partition: 1, Offset: 3}}}), "open.cursor[1].partition"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			stream, err := c.Subscribe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(tt.first); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			wantCode(t, err, codes.InvalidArgument, tt.field+":")
		})
	}

	// A second open, and a park without a group, end the stream too.
	for _, second := range []*eventstorepb.SubscribeClientMessage{
		openMsg(&eventstorepb.SubscribeOpen{}),
		{Kind: &eventstorepb.SubscribeClientMessage_Nack{Nack: &eventstorepb.Nack{
			Position: &eventstorepb.Position{}, Action: eventstorepb.NackAction_NACK_ACTION_PARK}}},
		{Kind: &eventstorepb.SubscribeClientMessage_Nack{Nack: &eventstorepb.Nack{}}},
	} {
		sub := openSubscriber(t, c, &eventstorepb.SubscribeOpen{})
		if err := sub.stream.Send(second); err != nil {
			t.Fatal(err)
		}
		for range sub.msgs {
		}
		wantCode(t, <-sub.done, codes.InvalidArgument)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := c.ListParked(ctx, &eventstorepb.ListParkedRequest{Group: "a/b"})
	wantCode(t, err, codes.InvalidArgument, "group:")
	_, err = c.ReplayParked(ctx, &eventstorepb.ReplayParkedRequest{})
	wantCode(t, err, codes.InvalidArgument, "group:")
	all, err := c.SubscribeToAll(ctx, &eventstorepb.SubscribeRequest{Group: "no good"})
	if err == nil {
		_, err = all.Recv()
	}
	wantCode(t, err, codes.InvalidArgument, "group:")
}

func openMsg(o *eventstorepb.SubscribeOpen) *eventstorepb.SubscribeClientMessage {
	return &eventstorepb.SubscribeClientMessage{Kind: &eventstorepb.SubscribeClientMessage_Open{Open: o}}
}

// ackPrefix acks, per partition, the first half of the deliveries and
// returns the acked and the unacked positions.
func ackPrefix(s *subscriber, ds []*eventstorepb.Delivery) (acked, unacked map[string]bool) {
	perPartition := map[int32][]*eventstorepb.Delivery{}
	for _, d := range ds {
		perPartition[d.Position.Partition] = append(perPartition[d.Position.Partition], d)
	}
	acked, unacked = map[string]bool{}, map[string]bool{}
	for _, pds := range perPartition {
		for i, d := range pds {
			if i < len(pds)/2 {
				s.ack(d.Position)
				acked[posKey(d.Position)] = true
			} else {
				unacked[posKey(d.Position)] = true
			}
		}
	}
	return acked, unacked
}

func posKey(p *eventstorepb.Position) string {
	return fmt.Sprintf("%v/%d/%d", p.Replayed, p.Partition, p.Offset)
}

// watermarks returns, per partition, the offset a group commits after
// the acked positions: the first unacked one.
func watermarks(acked, unacked map[string]bool, ds []*eventstorepb.Delivery) map[int32]int64 {
	out := map[int32]int64{}
	for _, d := range ds {
		p := d.Position
		switch {
		case unacked[posKey(p)]:
			if o, ok := out[p.Partition]; !ok || p.Offset < o || o < 0 {
				out[p.Partition] = p.Offset
			}
		case acked[posKey(p)]:
			if _, ok := out[p.Partition]; !ok {
				out[p.Partition] = -1
			}
		}
	}
	return out
}

func equalOffsets(got, want map[int32]int64) bool {
	for p, o := range want {
		if got[p] != o {
			return false
		}
	}
	return true
}

func TestKilledSubscriberGetsItsUnackedEventsAgain(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		brokers := brokersOf(t, b, &cfg)
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		adm := adminFor(t, brokers)
		streams := streamNames("killed", 8)
		appendMany(t, c, streams, 6)

		first := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "analyzer"})
		got := first.collect(48, false, wait)
		acked, unacked := ackPrefix(first, got.deliveries)
		want := watermarks(acked, unacked, got.deliveries)
		waitFor(t, wait, "acked offsets committed", func() bool {
			return equalOffsets(committed(t, adm, "analyzer", cfg.KafkaTopic), want)
		})
		// The subscriber dies with half of its deliveries unacked.
		first.close()

		second := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "analyzer"})
		again := second.collect(len(unacked), true, wait)
		for _, d := range again.deliveries {
			if acked[posKey(d.Position)] {
				t.Fatalf("acked delivery %v came again", d.Position)
			}
			delete(unacked, posKey(d.Position))
		}
		if len(unacked) > 0 {
			t.Fatalf("unacked deliveries %v did not come again", unacked)
		}
		if !second.quiet(time.Second) {
			t.Fatal("more deliveries than the unacked ones")
		}
		// Per stream, what came again continues where the acks stopped.
		checkOrder(t, again.versions, streams, 0)
		for _, s := range streams {
			if vs := again.versions[s]; len(vs) > 0 && vs[len(vs)-1] != 6 {
				t.Fatalf("stream %s came again as %v, want a suffix ending at 6", s, vs)
			}
		}
	})
}

func TestGroupMemberLeavesAndTheOtherTakesOver(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		brokers := brokersOf(t, b, &cfg)
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		adm := adminFor(t, brokers)

		a := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "projector"})
		if m := a.next(wait); m.GetCaughtUp() == nil {
			t.Fatalf("first member: %v, want caught up on the empty topic", m)
		}
		bsub := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "projector"})
		// The second member caught up once it holds partitions.
		if m := bsub.next(wait); m.GetCaughtUp() == nil || len(m.GetCaughtUp().Positions) == 0 {
			t.Fatalf("second member: %v, want caught up on its partitions", m)
		}

		streams := streamNames("shared", 16)
		appendMany(t, c, streams, 4)
		var fromA, fromB []*eventstorepb.Delivery
		for len(fromA)+len(fromB) < 64 {
			select {
			case m := <-a.msgs:
				if d := m.GetDelivery(); d != nil {
					fromA = append(fromA, d)
				}
			case m := <-bsub.msgs:
				if d := m.GetDelivery(); d != nil {
					fromB = append(fromB, d)
					bsub.ack(d.Position)
				}
			case <-time.After(wait):
				t.Fatalf("received %d and %d of 64", len(fromA), len(fromB))
			}
		}
		if len(fromA) == 0 || len(fromB) == 0 {
			t.Fatalf("members got %d and %d deliveries; both should hold partitions", len(fromA), len(fromB))
		}
		acked, unacked := ackPrefix(a, fromA)
		want := watermarks(acked, unacked, fromA)
		waitFor(t, wait, "first member's acks committed", func() bool {
			return equalOffsets(committed(t, adm, "projector", cfg.KafkaTopic), want)
		})

		// The first member leaves; the second takes its partitions and
		// every event the first had not acked.
		a.close()
		took := bsub.collect(len(unacked), true, wait)
		for _, d := range took.deliveries {
			if acked[posKey(d.Position)] {
				t.Fatalf("delivery %v acked by the first member came again", d.Position)
			}
			delete(unacked, posKey(d.Position))
		}
		if len(unacked) > 0 {
			t.Fatalf("unacked deliveries %v of the first member were not taken over", unacked)
		}

		// Every event went somewhere; per stream in order.
		all := newReceived()
		for _, d := range fromA {
			if acked[posKey(d.Position)] {
				all.add(d)
			}
		}
		for _, d := range append(fromB, took.deliveries...) {
			all.add(d)
		}
		checkOrder(t, all.versions, streams, 0)
		if all.events != 64 {
			t.Fatalf("%d events acked in the group, want 64", all.events)
		}
		// The second member commits its acks in the partitions it took.
		waitFor(t, wait, "everything committed", func() bool {
			n := int64(0)
			for _, o := range committed(t, adm, "projector", cfg.KafkaTopic) {
				n += o
			}
			return n == 64
		})
	})
}

func TestPartitionsAddedUnderLoadKeepOrderAndAreReadFromTheStart(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		cfg := testenv.Config(t, b)
		brokers := brokersOf(t, b, &cfg)
		sc := testenv.Start(t, cfg)
		c := testenv.Client(t, sc.Addr())
		adm := adminFor(t, brokers)

		// A group that committed before the partitions are added, then
		// goes away, and one that keeps reading throughout.
		old := streamNames("before", 8)
		appendMany(t, c, old, 2)
		offline := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "offline"})
		offline.collect(16, true, wait)
		waitFor(t, wait, "offline group committed", func() bool {
			n := int64(0)
			for _, o := range committed(t, adm, "offline", cfg.KafkaTopic) {
				n += o
			}
			return n == 16
		})
		offline.close()
		live := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "online"})

		// Writers append to the old streams and to ever new ones while
		// the partitions go from 4 to 8.
		var mu sync.Mutex
		versions := map[string]int64{}
		for _, s := range old {
			versions[s] = 2
		}
		partitionOf := map[string]int32{}
		stop, usedNew := make(chan struct{}), make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					s := old[(w+i)%len(old)]
					if i%2 == 1 {
						s = fmt.Sprintf("after-%d-%d", w, i)
					}
					mu.Lock()
					v := versions[s]
					mu.Unlock()
					resp, err := appendEvents(t, c, s, v, event("Step", "{}"))
					if err != nil {
						continue // another writer moved the stream on
					}
					mu.Lock()
					versions[s] = resp.CurrentVersion
					if p, seen := partitionOf[s]; seen && p != resp.Partition {
						t.Errorf("stream %s moved from partition %d to %d", s, p, resp.Partition)
					}
					partitionOf[s] = resp.Partition
					mu.Unlock()
					if resp.Partition >= 4 {
						once.Do(func() { close(usedNew) })
					}
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := kafka.SetPartitions(context.Background(), adm, cfg.KafkaTopic, 8); err != nil {
			t.Fatalf("add partitions: %v", err)
		}
		select {
		case <-usedNew:
		case <-time.After(wait):
			t.Fatal("no append reached a new partition")
		}
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()

		// total counts the events after the offline group's commit.
		total := -16
		for _, v := range versions {
			total += int(v)
		}
		t.Logf("%d events appended while partitions were added, %d streams", total, len(versions))
		got := live.collect(16+total, true, wait)
		if !live.quiet(500 * time.Millisecond) {
			t.Fatal("the live group got more deliveries than events")
		}
		for s, v := range versions {
			checkVersions(t, s, got.versions[s], int(v))
		}
		newPartitions := 0
		for _, d := range got.deliveries {
			if d.Position.Partition >= 4 {
				newPartitions++
			}
		}
		if newPartitions == 0 {
			t.Fatal("the live group read nothing from the new partitions")
		}

		// The group that was away reads everything after its commit,
		// the new partitions from their first offset.
		back := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "offline"})
		rest := back.collect(total, true, wait)
		if !back.quiet(500 * time.Millisecond) {
			t.Fatal("the returning group got more deliveries than events")
		}
		for s, v := range versions {
			from := int64(0)
			if strings.HasPrefix(s, "before") {
				from = 2
			}
			vs := rest.versions[s]
			if int64(len(vs)) != v-from || (len(vs) > 0 && vs[0] != from+1) {
				t.Fatalf("stream %s: returning group got %v, want %d..%d", s, vs, from+1, v)
			}
		}
		checkOrder(t, rest.versions, old, 0)
	})
}

// ownSidecar starts a sidecar on a kfake and miniredis of the test's own
// and returns it with a client and an admin client of its Kafka.
func ownSidecar(t *testing.T) (sidecar.Config, eventstorepb.EventStoreServiceClient, *kadm.Client) {
	t.Helper()
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	brokers := testenv.OwnKafka(t, &cfg)
	sc := testenv.Start(t, cfg)
	return cfg, testenv.Client(t, sc.Addr()), adminFor(t, brokers)
}

func TestFiltersDeliverExactlyTheMatchingEvents(t *testing.T) {
	cfg, c, adm := ownSidecar(t)
	mustAppend(t, c, "orders-1", 0, event("OrderPlaced", "{}"), event("OrderPaid", "{}"))
	mustAppend(t, c, "orders-1", 2, event("OrderShipped", "{}"))
	mustAppend(t, c, "orders-2", 0, event("OrderPaid", "{}"))
	mustAppend(t, c, "users-1", 0, event("OrderPaid", "{}"), event("UserRenamed", "{}"))
	mustAppend(t, c, "users-2", 0, event("UserRenamed", "{}"))

	tests := []struct {
		name   string
		open   *eventstorepb.SubscribeOpen
		want   []string // stream/version of the delivered events
		commit bool
	}{
		{"event types", &eventstorepb.SubscribeOpen{Group: "paid", EventTypes: []string{"OrderPaid"}},
			[]string{"orders-1/2", "orders-2/1", "users-1/1"}, true},
		{"stream prefix", &eventstorepb.SubscribeOpen{StreamPrefix: "users-"},
			[]string{"users-1/1", "users-1/2", "users-2/1"}, false},
		{"both", &eventstorepb.SubscribeOpen{Group: "both", StreamPrefix: "orders-", EventTypes: []string{"OrderPlaced", "OrderShipped"}},
			[]string{"orders-1/1", "orders-1/3"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := openSubscriber(t, c, tt.open)
			got := sub.collect(len(tt.want), true, wait)
			if !sub.quiet(300 * time.Millisecond) {
				t.Fatal("more deliveries than matching events")
			}
			var keys []string
			for _, d := range got.deliveries {
				for _, e := range d.Events {
					keys = append(keys, fmt.Sprintf("%s/%d", e.AggregateId, e.AggregateVersion))
				}
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tt.want) {
				t.Fatalf("delivered %v, want %v", keys, tt.want)
			}
			if !tt.commit {
				return
			}
			// Filtered-out records count as acked: the group commits the
			// end of every partition.
			ends, err := adm.ListEndOffsets(context.Background(), cfg.KafkaTopic)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				if o.Offset > 0 {
					want[o.Partition] = o.Offset
				}
			})
			waitFor(t, wait, "filtered records committed", func() bool {
				return equalOffsets(committed(t, adm, tt.open.Group, cfg.KafkaTopic), want)
			})
		})
	}
}

func TestNackRetryParkSkipAndReplayParked(t *testing.T) {
	cfg, c, adm := ownSidecar(t)
	for _, s := range []string{"retried", "parked", "skipped"} {
		mustAppend(t, c, s, 0, event("ContentSubmitted", `{"stream":"`+s+`"}`))
	}
	sub := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "analyzer"})
	byStream := map[string]*eventstorepb.Delivery{}
	for _, d := range sub.collect(3, false, wait).deliveries {
		byStream[d.Events[0].AggregateId] = d
	}

	sub.nack(byStream["retried"].Position, eventstorepb.NackAction_NACK_ACTION_RETRY, "try again")
	again := sub.collect(1, false, wait).deliveries[0]
	if posKey(again.Position) != posKey(byStream["retried"].Position) || again.Redeliveries != 1 {
		t.Fatalf("retry delivered %v with %d redeliveries, want %v with 1", again.Position, again.Redeliveries,
			byStream["retried"].Position)
	}
	sub.ack(again.Position)
	sub.nack(byStream["parked"].Position, eventstorepb.NackAction_NACK_ACTION_PARK, "toxicity model failed")
	sub.nack(byStream["skipped"].Position, eventstorepb.NackAction_NACK_ACTION_SKIP, "not for us")

	// Park and skip count as acked: everything is committed.
	waitFor(t, wait, "nacked records committed", func() bool {
		n := int64(0)
		for _, o := range committed(t, adm, "analyzer", cfg.KafkaTopic) {
			n += o
		}
		return n == 3
	})
	ctx := context.Background()
	list, err := c.ListParked(ctx, &eventstorepb.ListParkedRequest{Group: "analyzer"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Parked) != 1 {
		t.Fatalf("%d parked, want 1: %v", len(list.Parked), list.Parked)
	}
	p := list.Parked[0]
	if p.Reason != "toxicity model failed" || posKey(p.Delivery.Position) != posKey(byStream["parked"].Position) ||
		p.Delivery.Events[0].AggregateId != "parked" || time.Since(time.Unix(p.ParkedAt, 0)) > time.Minute {
		t.Fatalf("parked %v, want the parked delivery at %v with its reason", p, byStream["parked"].Position)
	}
	if other, err := c.ListParked(ctx, &eventstorepb.ListParkedRequest{Group: "other"}); err != nil || len(other.Parked) != 0 {
		t.Fatalf("another group's parked: %v, %v; want none", other, err)
	}
	if r, err := c.ReplayParked(ctx, &eventstorepb.ReplayParkedRequest{Group: "other"}); err != nil || r.Replayed != 0 {
		t.Fatalf("replay of a group that never parked: %v, %v; want none", r, err)
	}
	made, err := adm.ListTopics(ctx, kafka.ParkedTopic(cfg.KafkaTopic, "other"), kafka.ReplayTopic(cfg.KafkaTopic, "other"))
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range made {
		if d.Err == nil {
			t.Fatalf("listing and replaying a group that never subscribed made topic %s", name)
		}
	}

	// A replay hands the parked delivery back to the group, once.
	replayed, err := c.ReplayParked(ctx, &eventstorepb.ReplayParkedRequest{Group: "analyzer"})
	if err != nil || replayed.Replayed != 1 {
		t.Fatalf("replay: %v, %v; want 1 replayed", replayed, err)
	}
	back := sub.collect(1, false, wait).deliveries[0]
	if !back.Position.Replayed || back.Events[0].AggregateId != "parked" ||
		back.Events[0].Offset != byStream["parked"].Position.Offset || back.Redeliveries < 1 {
		t.Fatalf("replayed delivery %v, want the parked event at its own position", back)
	}
	if list, _ := c.ListParked(ctx, &eventstorepb.ListParkedRequest{Group: "analyzer"}); len(list.Parked) != 0 {
		t.Fatalf("%d still parked after the replay", len(list.Parked))
	}
	if again, _ := c.ReplayParked(ctx, &eventstorepb.ReplayParkedRequest{Group: "analyzer"}); again.Replayed != 0 {
		t.Fatalf("a second replay replayed %d, want 0", again.Replayed)
	}

	// Parked again from the replay, it keeps its position in the topic.
	sub.nack(back.Position, eventstorepb.NackAction_NACK_ACTION_PARK, "still failing")
	waitFor(t, wait, "parked again", func() bool {
		list, err := c.ListParked(ctx, &eventstorepb.ListParkedRequest{Group: "analyzer"})
		return err == nil && len(list.Parked) == 1 && list.Parked[0].Reason == "still failing" &&
			posKey(list.Parked[0].Delivery.Position) == posKey(byStream["parked"].Position)
	})
	if r, err := c.ReplayParked(ctx, &eventstorepb.ReplayParkedRequest{Group: "analyzer"}); err != nil || r.Replayed != 1 {
		t.Fatalf("second replay: %v, %v", r, err)
	}
	final := sub.collect(1, true, wait).deliveries[0]
	if !final.Position.Replayed || final.Events[0].AggregateId != "parked" {
		t.Fatalf("second replay delivered %v", final)
	}

	// Everything is acked: a new member of the group gets nothing again.
	waitFor(t, wait, "replay log committed", func() bool {
		return committed(t, adm, "analyzer", kafka.ReplayTopic(cfg.KafkaTopic, "analyzer"))[0] == 2
	})
	sub.close()
	next := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "analyzer"})
	if m := next.next(wait); m.GetCaughtUp() == nil {
		t.Fatalf("new member got %v, want only the caught-up marker", m)
	}
	if !next.quiet(500 * time.Millisecond) {
		t.Fatal("a new member got deliveries that were acked, parked or skipped")
	}
}

func TestSlowSubscriberIsBoundedByItsWindow(t *testing.T) {
	sc := testenv.Start(t, testenv.Config(t, testenv.Backend{Name: "embedded"}))
	c := testenv.Client(t, sc.Addr())
	streams := streamNames("slow", 4)
	appendMany(t, c, streams, 30)

	const window = 5
	sub := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "slow", MaxInFlight: window})
	got := newReceived()
	for got.events < 120 {
		m := sub.next(wait)
		if d := m.GetDelivery(); d != nil {
			got.add(d)
			time.Sleep(2 * time.Millisecond)
			sub.ack(d.Position)
		}
	}
	checkOrder(t, got.versions, streams, 30)
	sub.mu.Lock()
	most := sub.maxUnacked
	sub.mu.Unlock()
	// The server never had more than the window unacked; a slow
	// subscriber fills it.
	if most != window {
		t.Fatalf("at most %d deliveries were unacked, want the window %d", most, window)
	}
}

func TestGroupLessSubscriptionStarts(t *testing.T) {
	sc := testenv.Start(t, testenv.Config(t, testenv.Backend{Name: "embedded"}))
	c := testenv.Client(t, sc.Addr())
	streams := streamNames("start", 4)
	appendMany(t, c, streams, 3)

	// From the beginning: everything, then caught up, then live.
	begin := openSubscriber(t, c, &eventstorepb.SubscribeOpen{})
	got := begin.collect(12, true, wait)
	checkOrder(t, got.versions, streams, 3)
	if len(got.caughtUp) == 0 {
		m := begin.next(wait)
		if m.GetCaughtUp() == nil {
			t.Fatalf("got %v, want caught up", m)
		}
		got.caughtUp = append(got.caughtUp, m.GetCaughtUp())
	}
	ends := got.caughtUp[0].Positions

	// From the end: caught up at once, then only new events.
	end := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Start: eventstorepb.StartPosition_START_POSITION_END})
	if m := end.next(wait); m.GetCaughtUp() == nil {
		t.Fatalf("from the end got %v first, want caught up", m)
	}
	mustAppend(t, c, streams[0], 3, event("Live", "{}"))
	for _, s := range []*subscriber{begin, end} {
		live := s.collect(1, true, wait)
		if vs := live.versions[streams[0]]; len(vs) != 1 || vs[0] != 4 {
			t.Fatalf("live delivery %v, want %s v4", live.versions, streams[0])
		}
	}

	// From a cursor: one partition from its second record, the others
	// from their start.
	var p *eventstorepb.Position
	for _, e := range ends {
		if p == nil || e.Offset > p.Offset {
			p = e
		}
	}
	cur := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Start: eventstorepb.StartPosition_START_POSITION_CURSOR,
		Cursor: []*eventstorepb.Position{{Partition: p.Partition, Offset: 1}}})
	fromCursor := cur.collect(12, true, wait)
	for _, d := range fromCursor.deliveries {
		if d.Position.Partition == p.Partition && d.Position.Offset < 1 {
			t.Fatalf("delivery %v is before the cursor", d.Position)
		}
	}
	if !cur.quiet(300 * time.Millisecond) {
		t.Fatal("cursor subscription got more than the 12 events after its cursor")
	}
}

func TestSubscribeToAllWithGroupCommitsWhatItSent(t *testing.T) {
	cfg, c, adm := ownSidecar(t)
	streams := streamNames("push", 4)
	appendMany(t, c, streams, 3)
	ctx, cancel := context.WithCancel(context.Background())
	all, err := c.SubscribeToAll(ctx, &eventstorepb.SubscribeRequest{Group: "push"})
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		if _, err := all.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, wait, "handed events committed", func() bool {
		n := int64(0)
		for _, o := range committed(t, adm, "push", cfg.KafkaTopic) {
			n += o
		}
		return n == 12
	})
	cancel()

	mustAppend(t, c, streams[1], 3, event("Later", "{}"))
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	all, err = c.SubscribeToAll(ctx, &eventstorepb.SubscribeRequest{Group: "push"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := all.Recv()
	if err != nil || e.AggregateId != streams[1] || e.AggregateVersion != 4 {
		t.Fatalf("after reconnecting got %v, %v; want only the new %s v4", e, err, streams[1])
	}
}
