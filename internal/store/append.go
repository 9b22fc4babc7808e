package store

import (
	"context"
	"errors"
	"fmt"
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

	h, err := s.locks.lock(ctx, req.StreamName)
	if err != nil {
		return AppendResult{}, err
	}
	defer h.unlock()
	rctx, span := s.startStep(ctx, spanReserve, -1)
	res, deadline, err := s.reserve(rctx, req, keys, h.takePending())
	if err == nil && span.IsRecording() {
		span.SetAttributes(AttrPartition.Int64(int64(res.Partition)), AttrFirstVersion.Int64(res.FirstVersion))
	}
	endStep(span, unexpected(err))
	if err != nil || res.Duplicate {
		return AppendResult{Version: res.LastVersion, Partition: res.Partition, Offset: -1,
			Duplicate: res.Duplicate}, err
	}
	result, commit, err := s.write(ctx, res, deadline, events, keys)
	if commit != nil {
		s.deferCommit(h, *commit, trace.SpanFromContext(ctx))
	}
	return result, err
}

// commitHold is how long the commit of an acknowledged append waits for
// the stream's next append to carry it. It covers a client's turnaround
// between appends to a stream on a loaded machine; meanwhile another
// sidecar appending to the stream finds it busy and backs off.
const commitHold = 10 * time.Millisecond

// deferCommit leaves the commit of an acknowledged append to the stream's
// next append in this process, which sends it in the same script call as
// its own reservation. When no append comes within commitHold, a timer
// sends it alone; a read of the stream sends it first. If the commit never
// happens, the lease expires and the next writer finds the record in the
// partition.
//
// The commit's span is a child of the append's, whichever call sends it.
func (s *Store) deferCommit(h held, c versions.Commit, appendSpan trace.Span) {
	s.wg.Add(1)
	stream := h.stream
	h.setPending(&pendingCommit{
		commit: c,
		span:   appendSpan,
		timer:  time.AfterFunc(commitHold, func() { s.flushCommit(stream) }),
	})
}

// flushCommit sends the stream's pending commit, if it still has one.
func (s *Store) flushCommit(stream string) {
	h, _ := s.locks.lock(context.Background(), stream)
	defer h.unlock()
	s.sendPending(h)
}

// sendPending sends the pending commit of a held stream, if any, so that
// what follows sees every append this process acknowledged.
func (s *Store) sendPending(h held) {
	p := h.takePending()
	if p == nil {
		return
	}
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(trace.ContextWithSpan(context.Background(), p.span), s.opts.DeliveryTimeout)
	defer cancel()
	_ = s.commit(ctx, p.commit)
}

// awaitStream returns once the stream's appends in this process are
// committed, so that a read sees every append this process acknowledged.
func (s *Store) awaitStream(ctx context.Context, stream string) error {
	h, err := s.locks.lock(ctx, stream)
	if err != nil {
		return err
	}
	defer h.unlock()
	s.sendPending(h)
	return nil
}

// reserve obtains a reservation, waiting out the live leases of other
// sidecars and resolving expired ones. The stream's pending commit, when
// there is one, goes with the first reservation call.
// It also returns the lease's deadline, by this process's clock.
func (s *Store) reserve(ctx context.Context, req *eventstorepb.AppendRequest,
	keys []versions.EventKey, pending *pendingCommit) (versions.Reservation, time.Time, error) {
	backoff := busyBackoffMin
	for {
		now := time.Now()
		rreq := versions.ReserveRequest{
			Stream:    req.StreamName,
			Expected:  req.ExpectedVersion,
			Events:    keys,
			Token:     uuid.NewString(),
			Now:       now,
			Lease:     s.opts.Lease,
			Partition: s.partitionFor(req.StreamName),
		}
		var res versions.Reservation
		var err error
		if pending != nil {
			res, err = s.commitAndReserve(ctx, pending, rreq)
			pending = nil
		} else {
			res, err = s.index.Reserve(ctx, rreq)
		}
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

// commitAndReserve sends a pending commit and the next reservation of its
// stream in one call. The call runs detached from the caller's context,
// so that a client leaving cannot cut short the commit of an append it
// was not party to.
func (s *Store) commitAndReserve(ctx context.Context, p *pendingCommit,
	req versions.ReserveRequest) (versions.Reservation, error) {
	defer s.wg.Done()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.DeliveryTimeout)
	defer cancel()
	_, span := s.startStep(trace.ContextWithSpan(context.Background(), p.span), spanCommit,
		p.commit.Reservation.Partition)
	committed, res, err := s.index.CommitAndReserve(dctx, p.commit, req)
	endStep(span, committed)
	_ = s.settleCommit(p.commit, committed)
	if err != nil && dctx.Err() != nil && ctx.Err() == nil {
		// Redis did not answer within this call's own deadline: an
		// outage, not the client's deadline.
		err = fmt.Errorf("no answer within %s", s.opts.DeliveryTimeout)
	}
	return res, err
}

// write produces the reserved append and settles its reservation. It runs
// detached from the caller's context: once a reservation exists, leaving
// it unsettled would block the stream for a lease.
//
// When the record landed well within the lease, write returns the commit
// for the caller to defer past the reply: the record is in the partition
// before the lease ends, so whoever resolves the lease finds it even if
// the commit never runs. Otherwise it commits before returning.
func (s *Store) write(ctx context.Context, res versions.Reservation, deadline time.Time,
	events []*eventstorepb.Event, keys []versions.EventKey) (_ AppendResult, _ *versions.Commit, _ error) {
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

	commit := versions.Commit{Reservation: res, Offset: offset, Events: keys}
	if time.Until(deadline) > commitMargin {
		return result, &commit, nil
	}
	if err := s.commit(ctx, commit); err != nil {
		return AppendResult{}, nil, err
	}
	return result, nil, nil
}

// commitMargin is how much of the lease must be left for an append to be
// acknowledged before its commit.
const commitMargin = time.Second

// commit records the landed append in the index. Its error is for a caller
// that has not replied yet: the append does not count.
func (s *Store) commit(ctx context.Context, c versions.Commit) error {
	ctx, span := s.startStep(ctx, spanCommit, c.Reservation.Partition)
	err := s.index.Commit(ctx, c.Reservation, c.Offset, c.Events)
	endStep(span, err)
	return s.settleCommit(c, err)
}

// settleCommit turns the outcome of a commit into commit's error, logging
// what an operator must know.
func (s *Store) settleCommit(c versions.Commit, err error) error {
	res, offset := c.Reservation, c.Offset
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
