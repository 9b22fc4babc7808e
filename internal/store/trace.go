package store

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/metrics"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// TracerName is the instrumentation scope of the store's spans.
const TracerName = "github.com/eventsidecar/sidecar/internal/store"

// Span names.
const (
	spanAppend  = "append"
	spanReserve = "reserve"
	spanProduce = "produce"
	spanSettle  = "settle"
	spanCommit  = "commit"
	spanDeliver = "deliver"
)

// Span attributes, in the store's vocabulary. No span carries event data
// or metadata.
const (
	AttrStream          = attribute.Key("eventstore.stream")
	AttrExpectedVersion = attribute.Key("eventstore.expected_version")
	AttrEvents          = attribute.Key("eventstore.events")
	AttrFirstVersion    = attribute.Key("eventstore.first_version")
	// AttrVersion is the stream's version after an append; on a delivery,
	// the version of its last event.
	AttrVersion      = attribute.Key("eventstore.version")
	AttrPartition    = attribute.Key("eventstore.partition")
	AttrOffset       = attribute.Key("eventstore.offset")
	AttrGroup        = attribute.Key("eventstore.group")
	AttrRedeliveries = attribute.Key("eventstore.redeliveries")
	AttrReplayed     = attribute.Key("eventstore.replayed")
	// AttrOutcome is an append's outcome, one of the metrics.Outcome*
	// values, or how a delivery ended, one of the delivery* values.
	AttrOutcome = attribute.Key("eventstore.outcome")
)

// How a delivery's span ends, the values of AttrOutcome on deliver spans.
const (
	deliveryAcked   = "acked"
	deliveryParked  = "parked"
	deliverySkipped = "skipped"
	deliveryRetried = "retried"
	deliveryRevoked = "revoked" // the partition went to another member
	deliveryClosed  = "closed"  // the subscription ended before an ack
	deliverySent    = "sent"    // SubscribeToAll, which has no acks
)

// startAppend starts the span of an append.
func (s *Store) startAppend(ctx context.Context,
	req *eventstorepb.AppendRequest) (context.Context, trace.Span) {
	ctx, span := s.opts.Tracer.Start(ctx, spanAppend, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(AttrStream.String(req.StreamName), AttrExpectedVersion.Int64(req.ExpectedVersion),
			AttrEvents.Int(len(req.Events)))
	}
	return ctx, span
}

// endAppend ends the span of an append with its outcome.
func endAppend(span trace.Span, res AppendResult, err error) {
	if span.IsRecording() {
		outcome := appendOutcome(res, err)
		span.SetAttributes(AttrOutcome.String(outcome))
		if err == nil {
			span.SetAttributes(AttrVersion.Int64(res.Version), AttrPartition.Int64(int64(res.Partition)))
			if res.Offset >= 0 {
				span.SetAttributes(AttrOffset.Int64(res.Offset))
			}
		}
		switch outcome {
		case metrics.OutcomeRefused, metrics.OutcomeUnavailable, metrics.OutcomeError:
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// appendOutcome classifies an append as its metrics do.
func appendOutcome(res AppendResult, err error) string {
	var (
		conflict *versions.ConflictError
		clash    *versions.ClashError
		inv      *InvalidError
		tooLarge *TooLargeError
	)
	switch {
	case err == nil && res.Duplicate:
		return metrics.OutcomeDuplicate
	case err == nil:
		return metrics.OutcomeOK
	case errors.As(err, &conflict):
		return metrics.OutcomeConflict
	case errors.As(err, &clash):
		return metrics.OutcomeClash
	case errors.As(err, &inv):
		return metrics.OutcomeInvalid
	case errors.As(err, &tooLarge):
		return metrics.OutcomeTooLarge
	case errors.Is(err, ErrRefused):
		return metrics.OutcomeRefused
	case errors.Is(err, ErrUnavailable):
		return metrics.OutcomeUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return metrics.OutcomeCanceled
	}
	return metrics.OutcomeError
}

// startStep starts the span of one step of an append: reserve, produce,
// settle or commit.
func (s *Store) startStep(ctx context.Context, name string, partition int32) (context.Context, trace.Span) {
	ctx, span := s.opts.Tracer.Start(ctx, name)
	if span.IsRecording() && partition >= 0 {
		span.SetAttributes(AttrPartition.Int64(int64(partition)))
	}
	return ctx, span
}

// endStep ends the span of a step; a failure sets its status.
func endStep(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// event adds an event to the span in ctx, when it records.
func event(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(name, trace.WithAttributes(attrs...))
	}
}

// inject writes the trace context of ctx into rec's headers. Without a
// propagator, tracing is off and rec is left alone.
func (s *Store) inject(ctx context.Context, rec *kgo.Record) {
	if s.opts.Propagator != nil {
		s.opts.Propagator.Inject(ctx, kafka.HeaderCarrier{R: rec})
	}
}

// appendContext returns the trace context of the append that wrote rec, the
// zero SpanContext when it has none or tracing is off.
func (s *Store) appendContext(rec *kgo.Record) trace.SpanContext {
	if s.opts.Propagator == nil {
		return trace.SpanContext{}
	}
	ctx := s.opts.Propagator.Extract(context.Background(), kafka.HeaderCarrier{R: rec})
	return trace.SpanContextFromContext(ctx)
}

// startDeliver starts the span of a delivery: a root of its own, linked to
// the append that wrote its record, so that replaying a topic does not
// grow old traces.
func (s *Store) startDeliver(producer trace.SpanContext, group string, pos *eventstorepb.Position,
	what delivered, redeliveries int32) trace.Span {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithNewRoot()}
	if producer.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: producer}))
	}
	_, span := s.opts.Tracer.Start(context.Background(), spanDeliver, opts...)
	if span.IsRecording() {
		span.SetAttributes(AttrStream.String(what.stream), AttrPartition.Int64(int64(pos.Partition)),
			AttrOffset.Int64(pos.Offset), AttrEvents.Int(what.events),
			AttrRedeliveries.Int(int(redeliveries)))
		if what.events > 0 {
			span.SetAttributes(AttrFirstVersion.Int64(what.first), AttrVersion.Int64(what.last))
		}
		if group != "" {
			span.SetAttributes(AttrGroup.String(group))
		}
		if pos.Replayed {
			span.SetAttributes(AttrReplayed.Bool(true))
		}
	}
	return span
}

// delivered is what a delivery span says of the events it carries.
type delivered struct {
	stream      string
	events      int
	first, last int64
}

func deliveredEvents(stream string, events []*eventstorepb.Event) delivered {
	d := delivered{stream: stream, events: len(events)}
	if len(events) > 0 {
		d.first, d.last = events[0].AggregateVersion, events[len(events)-1].AggregateVersion
	}
	return d
}

// endDeliver ends the span of a delivery with how it ended.
func endDeliver(span trace.Span, outcome string) {
	if span == nil {
		return
	}
	if span.IsRecording() {
		span.SetAttributes(AttrOutcome.String(outcome))
	}
	span.End()
}
