package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// groupState is what this process keeps per group: whether its parked and
// replay logs are known to exist, a lock that makes replays of the group
// one at a time, and how many of its subscriptions are open.
type groupState struct {
	replayMu sync.Mutex
	ensured  bool

	subsMu      sync.Mutex
	subscribers int
}

func (s *Store) groupState(group string) *groupState {
	gs, _ := s.groups.LoadOrStore(group, new(groupState))
	return gs.(*groupState)
}

// ensureGroupTopics creates the group's parked and replay logs once per
// process.
func (s *Store) ensureGroupTopics(ctx context.Context, group string) error {
	gs := s.groupState(group)
	gs.replayMu.Lock()
	defer gs.replayMu.Unlock()
	if gs.ensured {
		return nil
	}
	if err := s.reader.EnsureGroupTopics(ctx, group, s.opts.Subscriptions.ReplicationFactor); err != nil {
		return unavailable("kafka: %v", err)
	}
	gs.ensured = true
	return nil
}

// park appends rec, a record of the event topic or of the group's replay
// log, to the group's parked log.
func (s *Store) park(ctx context.Context, group string, rec *kgo.Record, fromReplay bool,
	redeliveries int32, reason string) error {
	p := kafka.Parked{Group: group, Reason: reason, At: time.Now(), Partition: rec.Partition,
		Offset: rec.Offset, Redeliveries: redeliveries}
	if fromReplay {
		// A replayed record keeps the position it has in the topic.
		if info, ok := kafka.ParkedInfo(rec); ok {
			p.Partition, p.Offset = info.Partition, info.Offset
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.DeliveryTimeout)
	defer cancel()
	if _, err := s.producer.Produce(ctx, kafka.NewParkedRecord(s.opts.Topic, rec, p)); err != nil {
		return unavailable("parking failed, the delivery stays unacked: %v", err)
	}
	return nil
}

// errUnknownTopic is how Kafka answers for a parked or replay log that
// was never created.
var errUnknownTopic = kerr.UnknownTopicOrPartition

// defaultListParked and maxListParked bound ListParked.
const (
	defaultListParked = 100
	maxListParked     = 1000
)

// ListParked returns the deliveries group parked that no replay has
// handed back yet, oldest first. A group that never parked has none.
func (s *Store) ListParked(ctx context.Context, req *eventstorepb.ListParkedRequest) ([]*eventstorepb.ParkedDelivery, error) {
	if err := s.validGroup("group", req.Group); err != nil {
		return nil, err
	}
	limit := int(req.MaxCount)
	switch {
	case limit < 0:
		return nil, invalid("max_count", "%d is negative; 0 takes the default %d", limit, defaultListParked)
	case limit > maxListParked:
		return nil, invalid("max_count", "%d is above the limit %d", limit, maxListParked)
	case limit == 0:
		limit = defaultListParked
	}
	from, end, err := s.unreplayed(ctx, req.Group)
	if err != nil || from >= end {
		return nil, err
	}
	var out []*eventstorepb.ParkedDelivery
	topic := kafka.ParkedTopic(s.opts.Topic, req.Group)
	err = s.reader.ScanTopic(ctx, topic, 0, from, end, func(r *kgo.Record) (bool, error) {
		if pd := parkedDelivery(r); pd != nil {
			out = append(out, pd)
		}
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, unavailable("kafka: %v", err)
	}
	return out, nil
}

func parkedDelivery(r *kgo.Record) *eventstorepb.ParkedDelivery {
	info, ok := kafka.ParkedInfo(r)
	if !ok {
		return nil
	}
	a, err := kafka.Decode(r)
	if err != nil {
		return nil
	}
	for _, e := range a.Events {
		e.Partition, e.Offset = info.Partition, info.Offset
	}
	return &eventstorepb.ParkedDelivery{
		Delivery: &eventstorepb.Delivery{
			Position:     &eventstorepb.Position{Partition: info.Partition, Offset: info.Offset},
			Events:       a.Events,
			Redeliveries: info.Redeliveries,
		},
		Reason:   info.Reason,
		ParkedAt: info.At.Unix(),
	}
}

// replayBatch is how many parked records a replay writes at once.
const replayBatch = 500

// ReplayParked hands every parked delivery of the group that was not
// replayed yet back to the group: they are appended to the group's replay
// log, which the group's subscribers consume beside the topic. It returns
// how many were replayed. Replays of one group in one process run one at
// a time; see the package doc for replays from several sidecars at once.
func (s *Store) ReplayParked(ctx context.Context, req *eventstorepb.ReplayParkedRequest) (int64, error) {
	if err := s.validGroup("group", req.Group); err != nil {
		return 0, err
	}
	// A group that parked nothing (or does not exist) has nothing to
	// replay, and gets no topics made for it.
	if from, end, err := s.unreplayed(ctx, req.Group); err != nil || from >= end {
		return 0, err
	}
	if err := s.ensureGroupTopics(ctx, req.Group); err != nil {
		return 0, err
	}
	gs := s.groupState(req.Group)
	gs.replayMu.Lock()
	defer gs.replayMu.Unlock()

	from, end, err := s.unreplayed(ctx, req.Group)
	if err != nil || from >= end {
		return 0, err
	}
	var batch []*kgo.Record
	var replayed int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.producer.ProduceAll(ctx, batch); err != nil {
			return err
		}
		replayed += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	topic := kafka.ParkedTopic(s.opts.Topic, req.Group)
	err = s.reader.ScanTopic(ctx, topic, 0, from, end, func(r *kgo.Record) (bool, error) {
		batch = append(batch, kafka.NewReplayRecord(s.opts.Topic, req.Group, r))
		if len(batch) >= replayBatch {
			return true, flush()
		}
		return true, nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		// What was written stays replayed: the replay log's last record
		// says where the next replay continues.
		return replayed, unavailable("replay stopped after %d: %v", replayed, err)
	}
	s.log.Info("parked deliveries replayed", "group", req.Group, "replayed", replayed)
	return replayed, nil
}

// unreplayed returns the range of the group's parked log that no replay
// handed back yet; empty for a group without a parked log.
func (s *Store) unreplayed(ctx context.Context, group string) (from, end int64, err error) {
	ends, err := s.reader.TopicEndOffsets(ctx, kafka.ParkedTopic(s.opts.Topic, group))
	if errors.Is(err, errUnknownTopic) || (err == nil && len(ends) == 0) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, unavailable("kafka: %v", err)
	}
	from, err = s.reader.ReplayCursor(ctx, group)
	if errors.Is(err, errUnknownTopic) {
		from, err = 0, nil
	}
	if err != nil {
		return 0, 0, unavailable("kafka: %v", err)
	}
	return from, ends[0], nil
}
