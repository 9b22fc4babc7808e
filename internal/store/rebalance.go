package store

import (
	"context"
	"time"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// assignTimeout bounds the offset look-ups of an assignment. They run
// inside the rebalance, which every member of the group waits for.
const assignTimeout = 5 * time.Second

// Assigned registers newly assigned partitions before any of their records
// are polled, and looks up where each event-topic partition starts and
// ends, so that the subscriber learns when it has caught up with them.
func (sub *Subscription) Assigned(ctx context.Context, _ *kafka.Consumer, assigned map[string][]int32) {
	events, replay := assigned[sub.s.opts.Topic], assigned[sub.replay]
	if len(events)+len(replay) == 0 {
		return
	}
	sub.log.Info("partitions assigned", "partitions", events, "replay_partitions", replay)

	// The previous owners committed in their revoke, which finished
	// before this assignment was handed out: the committed offsets are
	// where fetching starts.
	var starts, ends, committed map[int32]int64
	var err error
	if len(events) > 0 {
		ctx, cancel := context.WithTimeout(ctx, assignTimeout)
		starts, ends, committed, err = sub.groupOffsets(ctx)
		cancel()
		if err != nil {
			sub.log.Warn("offsets of the assigned partitions unknown; no caught-up marker for them", "err", err)
		}
	}

	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, p := range replay {
		k := partKey{replay: true, partition: p}
		sub.parts[k] = newPartState(k, -1)
	}
	if err != nil {
		for _, p := range events {
			k := partKey{partition: p}
			sub.parts[k] = newPartState(k, -1)
		}
		return
	}
	from := make(map[int32]int64, len(events))
	for _, p := range events {
		from[p] = sub.startOf(starts[p], ends[p], committed, p)
	}
	sub.assignLocked(events, from, ends)
	sub.recordLagLocked()
}

// startOf is the first offset a partition is read from: the committed
// offset, else the subscription's start bounded by the log.
func (sub *Subscription) startOf(start, end int64, committed map[int32]int64, p int32) int64 {
	if c, ok := committed[p]; ok {
		return max(c, start)
	}
	return min(max(sub.from, start), end)
}

func (sub *Subscription) groupOffsets(ctx context.Context) (starts, ends, committed map[int32]int64, err error) {
	rd := sub.s.reader
	if starts, err = rd.StartOffsets(ctx); err != nil {
		return
	}
	if ends, err = rd.EndOffsets(ctx); err != nil {
		return
	}
	committed, err = rd.CommittedOffsets(ctx, sub.group)
	return
}

// assignLocked registers event-topic partitions as one assignment that
// reports when everything before ends was sent. Partitions with nothing
// to send count as caught up at once.
func (sub *Subscription) assignLocked(partitions []int32, from, ends map[int32]int64) {
	a := &assignment{ends: make(map[*partState]int64)}
	for _, p := range partitions {
		k := partKey{partition: p}
		st := newPartState(k, from[p])
		st.assign, st.start, st.end = a, from[p], ends[p]
		sub.parts[k] = st
		a.positions = append(a.positions, &eventstorepb.Position{Partition: p, Offset: ends[p]})
		if st.sent < ends[p] {
			a.ends[st] = ends[p]
		}
	}
	sub.maybeCaughtUpLocked(a)
}

// advanceLocked records that everything of p before to was sent or
// skipped, and queues the caught-up marker of p's assignment when p was
// its last partition behind.
func (sub *Subscription) advanceLocked(p *partState, to int64) {
	if to <= p.sent {
		return
	}
	p.sent = to
	a := p.assign
	if a == nil {
		return
	}
	if end, behind := a.ends[p]; !behind || p.sent < end {
		return
	}
	delete(a.ends, p)
	sub.maybeCaughtUpLocked(a)
}

func (sub *Subscription) maybeCaughtUpLocked(a *assignment) {
	if len(a.ends) > 0 || len(a.positions) == 0 {
		return
	}
	sub.outbox = append(sub.outbox, &eventstorepb.SubscribeServerMessage{
		Kind: &eventstorepb.SubscribeServerMessage_CaughtUp{CaughtUp: &eventstorepb.CaughtUp{Positions: a.positions}},
	})
	a.positions = nil
	notify(sub.ready)
}

// Revoked commits what was acked in the revoked partitions and forgets
// them: their queued records are not sent, later acks for them are
// ignored, and their unacked deliveries go to the new owner, which starts
// at the commit made here.
func (sub *Subscription) Revoked(ctx context.Context, cons *kafka.Consumer, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	sub.commitMu.Lock()
	defer sub.commitMu.Unlock()
	sub.mu.Lock()
	offsets := sub.dropLocked(revoked)
	sub.mu.Unlock()
	notify(sub.room)

	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	if err := cons.Commit(ctx, offsets); err != nil {
		sub.log.Warn("commit on revoke failed; the new owner gets acked deliveries again", "err", err)
	}
	sub.log.Info("partitions revoked", "partitions", revoked[sub.s.opts.Topic],
		"replay_partitions", revoked[sub.replay], "committed", offsets[sub.s.opts.Topic])
}

// Lost forgets partitions that may already have a new owner; committing
// them would fail, so their acked deliveries since the last commit come
// again.
func (sub *Subscription) Lost(_ context.Context, _ *kafka.Consumer, lost map[string][]int32) {
	sub.mu.Lock()
	sub.dropLocked(lost)
	sub.mu.Unlock()
	notify(sub.room)
	sub.log.Warn("partitions lost", "partitions", lost[sub.s.opts.Topic], "replay_partitions", lost[sub.replay])
}

// dropLocked removes partitions from the subscription and returns the
// commits they need. Their states are marked gone, for the records of
// theirs still queued and for acks in flight.
func (sub *Subscription) dropLocked(partitions map[string][]int32) map[string]map[int32]int64 {
	dropped := make(map[partKey]*partState)
	for t, ps := range partitions {
		for _, p := range ps {
			k := partKey{replay: t != sub.s.opts.Topic, partition: p}
			if st := sub.parts[k]; st != nil {
				dropped[k] = st
				delete(sub.parts, k)
			}
		}
	}
	offsets, _ := sub.watermarksLocked(dropped)
	for k, st := range dropped {
		if !k.replay {
			sub.gm.forget(k.partition)
		}
		st.gone = true
		for _, e := range st.pending {
			if !e.done {
				sub.outstanding--
			}
		}
		endSpansLocked(st, deliveryRevoked)
		sub.forgetCatchUpLocked(st)
	}
	return offsets
}

// endSpansLocked ends the spans of p's deliveries in flight: they will
// not be acked here.
func endSpansLocked(p *partState, outcome string) {
	for _, e := range p.pending {
		endDeliver(e.span, outcome)
		e.span = nil
	}
}

// forgetCatchUpLocked takes a revoked partition out of its assignment's
// caught-up report; the rest of the assignment still reports.
func (sub *Subscription) forgetCatchUpLocked(st *partState) {
	a := st.assign
	if a == nil || len(a.positions) == 0 {
		return
	}
	delete(a.ends, st)
	kept := a.positions[:0]
	for _, pos := range a.positions {
		if pos.Partition != st.key.partition {
			kept = append(kept, pos)
		}
	}
	a.positions = kept
	sub.maybeCaughtUpLocked(a)
}
