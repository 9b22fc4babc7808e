package store

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/sidecar/internal/metrics"
)

// measureRebuild counts a rebuild of the index and reports it running
// until the returned function is called.
func (s *Store) measureRebuild() (done func()) {
	s.opts.Metrics.IndexRebuilds.Inc()
	s.opts.Metrics.IndexRebuilding.Inc()
	return s.opts.Metrics.IndexRebuilding.Dec
}

// joinGroup counts a subscription of group opening in this process.
func (s *Store) joinGroup(group string) {
	gs := s.groupState(group)
	gs.subsMu.Lock()
	defer gs.subsMu.Unlock()
	gs.subscribers++
	s.opts.Metrics.GroupSubscribers.WithLabelValues(group).Set(float64(gs.subscribers))
}

// leaveGroup counts a subscription of group closing. With none left in
// this process, every series of the group is deleted: another sidecar
// may own its partitions now, and its series would be stale here.
func (s *Store) leaveGroup(group string) {
	gs := s.groupState(group)
	gs.subsMu.Lock()
	defer gs.subsMu.Unlock()
	gs.subscribers--
	m := s.opts.Metrics
	if gs.subscribers > 0 {
		m.GroupSubscribers.WithLabelValues(group).Set(float64(gs.subscribers))
		return
	}
	labels := prometheus.Labels{"group": group}
	m.GroupSubscribers.DeletePartialMatch(labels)
	m.GroupDelivered.DeletePartialMatch(labels)
	m.GroupAcked.DeletePartialMatch(labels)
	m.GroupLag.DeletePartialMatch(labels)
}

// groupMetrics records the metrics of one subscription's group. The zero
// value, for a subscription without a group, records nothing.
//
// Deliveries and acks count events, labelled with the partition of the
// event topic they come from: a replayed delivery counts in the partition
// its events were appended to, not in the replay log's.
type groupMetrics struct {
	m     *metrics.Metrics
	group string
}

// delivered counts the events of e, which was just sent.
func (g groupMetrics) delivered(e *entry) {
	if g.m == nil || e.delivery == nil {
		return
	}
	p, n := eventsOf(e)
	g.m.GroupDelivered.WithLabelValues(g.group, p).Add(n)
}

// acked counts the events of e, acked, parked or skipped by the
// subscriber: everything that lets the group commit past it.
func (g groupMetrics) acked(e *entry) {
	if g.m == nil || e.delivery == nil || !e.delivered {
		return
	}
	p, n := eventsOf(e)
	g.m.GroupAcked.WithLabelValues(g.group, p).Add(n)
}

func eventsOf(e *entry) (partition string, n float64) {
	events := e.delivery.Events
	return metrics.Partition(events[0].Partition), float64(len(events))
}

// lag sets the lag of an event-topic partition; a negative lag, unknown,
// sets nothing.
func (g groupMetrics) lag(partition int32, lag int64) {
	if g.m == nil || lag < 0 {
		return
	}
	g.m.GroupLag.WithLabelValues(g.group, metrics.Partition(partition)).Set(float64(lag))
}

// forget deletes the series of an event-topic partition the subscription
// no longer holds; its new owner records them, here or elsewhere.
func (g groupMetrics) forget(partition int32) {
	if g.m == nil {
		return
	}
	p := metrics.Partition(partition)
	g.m.GroupDelivered.DeleteLabelValues(g.group, p)
	g.m.GroupAcked.DeleteLabelValues(g.group, p)
	g.m.GroupLag.DeleteLabelValues(g.group, p)
}

// lagLocked is how many records of p's partition lie after the group's
// committed offset, as far as the subscription knows both: the end is the
// highest the fetches and the store's refreshes saw, the committed offset
// the one it started at or its own last commit. It is -1 when either is
// unknown.
func (sub *Subscription) lagLocked(p *partState) int64 {
	base := max(p.start, p.committed)
	end := max(p.end, sub.s.endOf(p.key.partition))
	if base < 0 || end < 0 {
		return -1
	}
	return max(0, end-base)
}

// recordLagLocked sets the lag of every event-topic partition held.
func (sub *Subscription) recordLagLocked() {
	for k, p := range sub.parts {
		if !k.replay && !p.gone {
			sub.gm.lag(k.partition, sub.lagLocked(p))
		}
	}
}
