package store_test

import (
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// outcomeOf returns the outcome attribute of a span.
func outcomeOf(s sdktrace.ReadOnlySpan) string {
	for _, kv := range s.Attributes() {
		if kv.Key == store.AttrOutcome {
			return kv.Value.AsString()
		}
	}
	return ""
}

func TestTracedRecordsAreRebuiltAndVerified(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	r := newRig(t, store.Options{Tracer: tp.Tracer(store.TracerName), Propagator: propagation.TraceContext{}})
	first, next := appendReq("traced", 0, "a", "b"), appendReq("traced", 2, "c")
	mustAppend(t, r.store, first)
	res := mustAppend(t, r.store, next)
	_, err := r.store.Append(t.Context(), appendReq("traced", 0, "x"))
	var conflict *versions.ConflictError
	if !errors.As(err, &conflict) {
		t.Fatalf("append at 0: %v, want a conflict", err)
	}
	for _, rec := range testenv.ReadTopic(t, r.kcfg.Brokers, faultTopic) {
		if v := (kafka.HeaderCarrier{R: rec}).Get(kafka.HeaderTraceparent); v == "" {
			t.Fatalf("record at offset %d has no traceparent", rec.Offset)
		}
	}

	var outcomes []string
	for _, s := range spans.Ended() {
		if s.Name() != "append" {
			continue
		}
		outcomes = append(outcomes, outcomeOf(s))
		if s.Status().Code != codes.Unset {
			t.Errorf("append span %s has status %v", outcomeOf(s), s.Status())
		}
	}
	if len(outcomes) != 3 || outcomes[0] != "ok" || outcomes[1] != "ok" || outcomes[2] != "conflict" {
		t.Fatalf("append outcomes %v, want ok, ok, conflict", outcomes)
	}

	// Records with trace context decode as any other: a rebuild indexes
	// them.
	r.mr.FlushAll()
	if _, err := r.store.Append(t.Context(), appendReq("traced", 3, "d")); !errors.Is(err, store.ErrRebuilding) {
		t.Fatalf("append after the loss: %v, want the index rebuilding", err)
	}
	waitReady(t, r.store)
	r.wantIndex(t, "traced", 3, res.Offset)
	r.wantTopic(t, first, next)
}
