package store

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// AppendResult is the outcome of a successful append.
type AppendResult struct {
	// Version is the stream's version after the append.
	Version   int64
	Partition int32
	// Offset is the offset of the append's record; -1 for a retried append
	// answered from the index.
	Offset int64
	// Duplicate is set when every event had landed before: nothing was
	// written.
	Duplicate bool
}

// busyBackoff bounds the wait between reservations of a stream that
// another sidecar holds.
const (
	busyBackoffMin = 2 * time.Millisecond
	busyBackoffMax = 100 * time.Millisecond
)

// Append appends the request's events to its stream. It returns a
// *versions.ConflictError when the expectation fails, a *versions.ClashError
// for an event id the stream holds with other content, an *InvalidError or
// a *TooLargeError for a malformed request, and an error wrapping
// ErrUnavailable when a retry may succeed.
func (s *Store) Append(ctx context.Context, req *eventstorepb.AppendRequest) (AppendResult, error) {
	if err := s.opts.Limits.validate(req); err != nil {
		return AppendResult{}, err
	}
	if !s.ready.Load() {
		return AppendResult{}, ErrRebuilding
	}
	events, keys := prepare(req, time.Now())

	unlock, err := s.locks.lock(ctx, req.StreamName)
	if err != nil {
		return AppendResult{}, err
	}
	defer unlock()

	res, err := s.reserve(ctx, req, keys)
	if err != nil || res.Duplicate {
		return AppendResult{Version: res.LastVersion, Partition: res.Partition, Offset: -1,
			Duplicate: res.Duplicate}, err
	}
	return s.write(ctx, res, events, keys)
}

// reserve obtains a reservation, waiting out the live leases of other
// sidecars and resolving expired ones.
func (s *Store) reserve(ctx context.Context, req *eventstorepb.AppendRequest,
	keys []versions.EventKey) (versions.Reservation, error) {
	backoff := busyBackoffMin
	for {
		res, err := s.index.Reserve(ctx, versions.ReserveRequest{
			Stream:    req.StreamName,
			Expected:  req.ExpectedVersion,
			Events:    keys,
			Token:     uuid.NewString(),
			Now:       time.Now(),
			Lease:     s.opts.Lease,
			Partition: s.partitionFor(req.StreamName),
		})
		var expired *versions.ExpiredError
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, versions.ErrBusy):
			if err := sleep(ctx, backoff); err != nil {
				return res, err
			}
			backoff = min(2*backoff, busyBackoffMax)
		case errors.As(err, &expired):
			if err := s.resolve(ctx, expired.Reservation); err != nil {
				return res, err
			}
		case errors.Is(err, versions.ErrNoIndex):
			s.lostIndex()
			return res, ErrRebuilding
		case isDomain(err):
			return res, err
		default:
			return res, unavailable("redis: %v", err)
		}
	}
}

// write produces the reserved append and settles its reservation. It runs
// detached from the caller's context: once a reservation exists, leaving
// it unsettled would block the stream for a lease.
func (s *Store) write(ctx context.Context, res versions.Reservation,
	events []*eventstorepb.Event, keys []versions.EventKey) (AppendResult, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.DeliveryTimeout)
	defer cancel()

	for i, e := range events {
		e.AggregateVersion = res.FirstVersion + int64(i)
	}
	rec, err := kafka.NewRecord(s.opts.Topic, res.Partition, &eventstorepb.RecordedAppend{
		StreamName:   res.Stream,
		FirstVersion: res.FirstVersion,
		Token:        res.Token,
		Events:       events,
	})
	if err != nil {
		s.release(ctx, res)
		return AppendResult{}, err
	}

	offset, err := s.producer.Produce(ctx, rec)
	switch {
	case err == nil:
	case kafka.Rejected(err):
		s.release(ctx, res)
		return AppendResult{}, refused(err)
	default:
		s.log.Warn("append outcome unknown, resolving it against the partition",
			"stream", res.Stream, "partition", res.Partition, "version", res.FirstVersion, "err", err)
		found, rerr := s.settle(ctx, res)
		if rerr != nil {
			return AppendResult{}, unavailable("kafka: %v; the outcome is unknown, retry with the same event ids", err)
		}
		if found < 0 {
			return AppendResult{}, unavailable("kafka: %v; the append was not written", err)
		}
		offset = found
	}

	switch err := s.index.Commit(ctx, res, offset, keys); {
	case err == nil, errors.Is(err, versions.ErrNoIndex):
		// With the index lost, the rebuild reads this record: it landed
		// before the rebuild's settle pass.
	case errors.Is(err, versions.ErrSuperseded):
		s.log.Error("append landed after its lease was resolved; the record is superseded",
			"stream", res.Stream, "partition", res.Partition, "offset", offset, "version", res.FirstVersion)
		return AppendResult{}, unavailable("the append took longer than its lease and was not applied")
	default:
		// Kafka has the record; the next writer resolves the lease.
		s.log.Warn("commit failed, the lease will be resolved by the next append",
			"stream", res.Stream, "version", res.FirstVersion, "err", err)
	}
	last := res.FirstVersion + int64(res.Count) - 1
	return AppendResult{Version: last, Partition: res.Partition, Offset: offset}, nil
}

func (s *Store) release(ctx context.Context, res versions.Reservation) {
	if err := s.index.Release(ctx, res); err != nil {
		s.log.Warn("release failed, the lease will expire", "stream", res.Stream, "err", err)
	}
}

// prepare copies the request's events with the fields the sidecar owns
// filled, and returns the keys the index deduplicates them by.
func prepare(req *eventstorepb.AppendRequest, now time.Time) ([]*eventstorepb.Event, []versions.EventKey) {
	events := make([]*eventstorepb.Event, len(req.Events))
	keys := make([]versions.EventKey, len(req.Events))
	for i, in := range req.Events {
		e := &eventstorepb.Event{
			EventId:     in.EventId,
			AggregateId: in.AggregateId,
			EventType:   in.EventType,
			Data:        in.Data,
			Metadata:    in.Metadata,
			CreatedAt:   in.CreatedAt,
		}
		if e.EventId == "" {
			e.EventId = uuid.NewString()
		}
		if e.AggregateId == "" {
			e.AggregateId = req.StreamName
		}
		if e.CreatedAt == 0 {
			e.CreatedAt = now.Unix()
		}
		events[i] = e
		keys[i] = versions.EventKey{ID: e.EventId, Hash: contentHash(e)}
	}
	return events, keys
}

// contentHash tells a retried event from another event with the same id.
// created_at is left out: a retry filled by the sidecar gets a new one.
func contentHash(e *eventstorepb.Event) string {
	h := fnv.New64a()
	for _, part := range [][]byte{[]byte(e.EventType), e.Data, []byte(e.Metadata), []byte(e.AggregateId)} {
		h.Write(strconv.AppendInt(nil, int64(len(part)), 10))
		h.Write([]byte{':'})
		h.Write(part)
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

func isDomain(err error) bool {
	var conflict *versions.ConflictError
	var clash *versions.ClashError
	return errors.As(err, &conflict) || errors.As(err, &clash) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
