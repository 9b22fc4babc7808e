package store

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

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
//
// The append's span covers it to the reply, with the reserve, the produce
// and, when needed, the settle of an unknown outcome as child spans; the
// commit's span, which may run after the reply, is a child too. The
// record carries the append span's trace context.
func (s *Store) Append(ctx context.Context, req *eventstorepb.AppendRequest) (AppendResult, error) {
	ctx, span := s.startAppend(ctx, req)
	res, err := s.appendEvents(ctx, req)
	endAppend(span, res, err)
	return res, err
}

func (s *Store) appendEvents(ctx context.Context, req *eventstorepb.AppendRequest) (AppendResult, error) {
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
	rctx, span := s.startStep(ctx, spanReserve, -1)
	res, deadline, err := s.reserve(rctx, req, keys)
	if err == nil && span.IsRecording() {
		span.SetAttributes(AttrPartition.Int64(int64(res.Partition)), AttrFirstVersion.Int64(res.FirstVersion))
	}
	endStep(span, unexpected(err))
	if err != nil || res.Duplicate {
		unlock()
		return AppendResult{Version: res.LastVersion, Partition: res.Partition, Offset: -1,
			Duplicate: res.Duplicate}, err
	}
	result, commit, err := s.write(ctx, res, deadline, events, keys)
	if commit == nil {
		unlock()
		return result, err
	}
	// The record is in Kafka and the lease still runs: the append is
	// acknowledged now and its commit runs after the reply, holding the
	// stream's lock so that this process's next append and reads of the
	// stream wait for it. If the commit never happens, the lease expires
	// and the next writer finds the record in the partition.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer unlock()
		commit()
	}()
	return result, nil
}

// reserve obtains a reservation, waiting out the live leases of other
// sidecars and resolving expired ones.
// It also returns the lease's deadline, by this process's clock.
func (s *Store) reserve(ctx context.Context, req *eventstorepb.AppendRequest,
	keys []versions.EventKey) (versions.Reservation, time.Time, error) {
	backoff := busyBackoffMin
	for {
		now := time.Now()
		res, err := s.index.Reserve(ctx, versions.ReserveRequest{
			Stream:    req.StreamName,
			Expected:  req.ExpectedVersion,
			Events:    keys,
			Token:     uuid.NewString(),
			Now:       now,
			Lease:     s.opts.Lease,
			Partition: s.partitionFor(req.StreamName),
		})
		var expired *versions.ExpiredError
		switch {
		case err == nil:
			return res, now.Add(s.opts.Lease), nil
		case errors.Is(err, versions.ErrBusy):
			event(ctx, "stream busy")
			if err := sleep(ctx, backoff); err != nil {
				return res, time.Time{}, err
			}
			backoff = min(2*backoff, busyBackoffMax)
		case errors.As(err, &expired):
			event(ctx, "expired lease", AttrPartition.Int64(int64(expired.Reservation.Partition)),
				AttrFirstVersion.Int64(expired.Reservation.FirstVersion))
			if err := s.resolve(ctx, expired.Reservation); err != nil {
				return res, time.Time{}, err
			}
		case errors.Is(err, versions.ErrNoIndex):
			s.lostIndex()
			return res, time.Time{}, ErrRebuilding
		case s.isStreamLost(err):
			return res, time.Time{}, streamLostError(req.StreamName)
		case isDomain(err):
			return res, time.Time{}, err
		default:
			return res, time.Time{}, unavailable("redis: %v", err)
		}
	}
}

// write produces the reserved append and settles its reservation. It runs
// detached from the caller's context: once a reservation exists, leaving
// it unsettled would block the stream for a lease.
//
// When the record landed well within the lease, write returns commit for
// the caller to run after replying: the record is in the partition before
// the lease ends, so whoever resolves the lease finds it even if the
// commit never runs. Otherwise it commits before returning.
func (s *Store) write(ctx context.Context, res versions.Reservation, deadline time.Time,
	events []*eventstorepb.Event, keys []versions.EventKey) (_ AppendResult, commit func(), _ error) {
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
		return AppendResult{}, nil, err
	}
	s.inject(ctx, rec)

	offset, err := s.produce(ctx, rec)
	// The produce may have used up its deadline; settling its outcome
	// (resolving, committing or releasing) gets a deadline of its own.
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.opts.DeliveryTimeout)
	defer cancel()
	settled := false
	switch {
	case err == nil:
	case kafka.Rejected(err):
		s.release(ctx, res)
		return AppendResult{}, nil, refused(err)
	default:
		s.log.Warn("append outcome unknown, resolving it against the partition",
			"stream", res.Stream, "partition", res.Partition, "version", res.FirstVersion, "err", err)
		sctx, span := s.startStep(ctx, spanSettle, res.Partition)
		found, rerr := s.settle(sctx, res)
		if rerr == nil && found >= 0 && span.IsRecording() {
			span.SetAttributes(AttrOffset.Int64(found))
		}
		endStep(span, rerr)
		if rerr != nil {
			return AppendResult{}, nil, unavailable("kafka: %v; the outcome is unknown, retry with the same event ids", err)
		}
		if found < 0 {
			return AppendResult{}, nil, unavailable("kafka: %v; the append was not written", err)
		}
		offset, settled = found, true
	}
	last := res.FirstVersion + int64(res.Count) - 1
	result := AppendResult{Version: last, Partition: res.Partition, Offset: offset}
	if settled {
		return result, nil, nil
	}

	if time.Until(deadline) > commitMargin {
		// The commit's span belongs to the append's trace, which has ended
		// by the time it runs.
		span := trace.SpanFromContext(ctx)
		return result, func() {
			ctx, cancel := context.WithTimeout(trace.ContextWithSpan(context.Background(), span),
				s.opts.DeliveryTimeout)
			defer cancel()
			_ = s.commit(ctx, res, offset, keys)
		}, nil
	}
	if err := s.commit(ctx, res, offset, keys); err != nil {
		return AppendResult{}, nil, err
	}
	return result, nil, nil
}

// commitMargin is how much of the lease must be left for an append to be
// acknowledged before its commit.
const commitMargin = time.Second

// commit records the landed append in the index. Its error is for a caller
// that has not replied yet: the append does not count.
func (s *Store) commit(ctx context.Context, res versions.Reservation, offset int64, keys []versions.EventKey) error {
	ctx, span := s.startStep(ctx, spanCommit, res.Partition)
	err := s.index.Commit(ctx, res, offset, keys)
	endStep(span, err)
	switch {
	case err == nil, errors.Is(err, versions.ErrNoIndex), s.isStreamLost(err):
		// With the index or the stream's keys lost, the rebuild or the
		// repair reads this record: it landed before their settle pass.
		return nil
	case errors.Is(err, versions.ErrSuperseded):
		s.log.Error("append landed after its lease was resolved; the record is superseded",
			"stream", res.Stream, "partition", res.Partition, "offset", offset, "version", res.FirstVersion)
		return unavailable("the append took longer than its lease and was not applied")
	default:
		// Kafka has the record; the next writer resolves the lease.
		s.log.Warn("commit failed, the lease will be resolved by the next append",
			"stream", res.Stream, "version", res.FirstVersion, "err", err)
		return nil
	}
}

// produce writes the record of an append under a span of its own.
func (s *Store) produce(ctx context.Context, rec *kgo.Record) (int64, error) {
	ctx, span := s.startStep(ctx, spanProduce, rec.Partition)
	offset, err := s.producer.Produce(ctx, rec)
	if err == nil && span.IsRecording() {
		span.SetAttributes(AttrOffset.Int64(offset))
	}
	endStep(span, err)
	return offset, err
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

// unexpected is err unless it is an answer the caller expects (a
// conflict, a clash, a canceled call): the error a step's span reports.
func unexpected(err error) error {
	if err == nil || isDomain(err) {
		return nil
	}
	return err
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
