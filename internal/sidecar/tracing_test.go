package sidecar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// keptSpans is an in-memory exporter that keeps its spans when the tracer
// provider shuts down, so that a test reads them after the sidecar's
// shutdown flushed them.
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

// Trace contexts of callers, as W3C Trace Context writes them.
const (
	grpcCaller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	httpCaller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)

func traceIDOf(t testing.TB, traceparent string) trace.TraceID {
	t.Helper()
	id, err := trace.TraceIDFromHex(strings.Split(traceparent, "-")[1])
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startOwnKafka starts a sidecar on a broker of the test's own, which the
// test reads beside it.
func startOwnKafka(t *testing.T, opts ...sidecar.Option) (*sidecar.Sidecar, sidecar.Config, []string) {
	t.Helper()
	cfg := opsConfig(t, testenv.Backend{Name: "embedded"})
	brokers := testenv.OwnKafka(t, &cfg)
	cfg.HTTPAddr = "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sc, err := sidecar.Start(t.Context(), cfg, testenv.Logger(t), opts...)
	if err != nil {
		t.Fatalf("start sidecar: %v", err)
	}
	t.Cleanup(sc.Shutdown)
	return sc, cfg, brokers
}

// appendTraced appends one event to stream as a caller in the trace of
// traceparent.
func appendTraced(t testing.TB, c eventstorepb.EventStoreServiceClient, stream, traceparent string) {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(t.Context(), "traceparent", traceparent)
	_, err := c.AppendToStream(ctx, &eventstorepb.AppendRequest{StreamName: stream, Events: []*eventstorepb.Event{{
		EventType: "ContentSubmitted", Data: []byte(`{"text":"payload-0451"}`), Metadata: `{"user":"meta-0451"}`,
	}}})
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
}

// recordOf returns the record of the first append to stream in topic.
func recordOf(t testing.TB, brokers []string, topic, stream string) *kgo.Record {
	t.Helper()
	for _, r := range testenv.ReadTopic(t, brokers, topic) {
		if a, err := kafka.Decode(r); err == nil && a.StreamName == stream {
			return r
		}
	}
	t.Fatalf("no record of stream %s", stream)
	return nil
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	out := make(map[attribute.Key]attribute.Value, len(s.Attributes))
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value
	}
	return out
}

// only returns the one span that match selects.
func only(t testing.TB, spans tracetest.SpanStubs, what string, match func(tracetest.SpanStub) bool) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans {
		if match(s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans of %s, want 1", len(found), what)
	}
	return found[0]
}

func wantAttrs(t testing.TB, s tracetest.SpanStub, want map[attribute.Key]any) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		if g, ok := got[k]; !ok || g.Emit() != fmt.Sprint(v) {
			t.Errorf("span %s: %s = %q, want %v", s.Name, k, g.Emit(), v)
		}
	}
}

func TestTracingFollowsAnAppendIntoItsRecordAndDeliveries(t *testing.T) {
	exp := keptSpans{tracetest.NewInMemoryExporter()}
	sc, cfg, brokers := startOwnKafka(t, sidecar.WithSpanExporter(exp))
	c := testenv.Client(t, sc.Addr())

	member := openSubscriber(t, c, &eventstorepb.SubscribeOpen{Group: "traced"})
	if m := member.next(wait); m.GetCaughtUp() == nil {
		t.Fatalf("first message %v, want caught up on the empty topic", m)
	}
	appendTraced(t, c, "traced-1", grpcCaller)
	d := member.collect(1, true, wait).deliveries[0]
	eventually(t, "the ack applied", func() bool {
		return value(scrape(t, sc.MetricsAddr()), "sidecar_group_events_acked_total", "group", "traced") == 1
	})
	if got := subscribe(t, c, 0, 0, func(es []*eventstorepb.Event) bool { return len(es) == 1 }); len(got) != 1 {
		t.Fatalf("SubscribeToAll got %d events", len(got))
	}
	postTraced(t, "http://"+sc.HTTPAddr()+"/eventstore.EventStoreService/AppendToStream", "traced-http", httpCaller)
	rec := recordOf(t, brokers, cfg.KafkaTopic, "traced-1")

	// The shutdown flushes what the batch processor still holds.
	sc.Shutdown()
	spans := exp.GetSpans()

	server := only(t, spans, "the AppendToStream call", func(s tracetest.SpanStub) bool {
		return s.Name == "eventstore.EventStoreService/AppendToStream" &&
			s.SpanContext.TraceID() == traceIDOf(t, grpcCaller)
	})
	app := only(t, spans, "the append", func(s tracetest.SpanStub) bool {
		return s.Name == "append" && s.SpanContext.TraceID() == traceIDOf(t, grpcCaller)
	})
	if app.Parent.SpanID() != server.SpanContext.SpanID() || app.SpanKind != trace.SpanKindProducer {
		t.Errorf("append span: parent %s kind %s, want the call's span %s and producer",
			app.Parent.SpanID(), app.SpanKind, server.SpanContext.SpanID())
	}
	wantAttrs(t, app, map[attribute.Key]any{
		store.AttrStream: "traced-1", store.AttrExpectedVersion: 0, store.AttrEvents: 1, store.AttrVersion: 1,
		store.AttrPartition: rec.Partition, store.AttrOffset: rec.Offset, store.AttrOutcome: "ok",
	})
	for _, step := range []string{"reserve", "produce", "commit"} {
		only(t, spans, step+" of the append", func(s tracetest.SpanStub) bool {
			return s.Name == step && s.Parent.SpanID() == app.SpanContext.SpanID()
		})
	}
	if v, _ := app.Resource.Set().Value("service.name"); v.AsString() != "eventsidecar" {
		t.Errorf("service.name %q, want eventsidecar", v.AsString())
	}

	// The record carries the append's trace context.
	want := fmt.Sprintf("00-%s-%s-01", app.SpanContext.TraceID(), app.SpanContext.SpanID())
	if got, _ := header(rec, kafka.HeaderTraceparent); got != want {
		t.Errorf("record traceparent %q, want %q", got, want)
	}

	// Each delivery's span links to the append.
	linked := func(s tracetest.SpanStub) bool {
		return s.Name == "deliver" && len(s.Links) == 1 &&
			s.Links[0].SpanContext.TraceID() == app.SpanContext.TraceID() &&
			s.Links[0].SpanContext.SpanID() == app.SpanContext.SpanID()
	}
	inGroup := only(t, spans, "the group's delivery", func(s tracetest.SpanStub) bool {
		return linked(s) && attrs(s)[store.AttrGroup].AsString() == "traced"
	})
	if inGroup.SpanKind != trace.SpanKindConsumer || inGroup.SpanContext.TraceID() == app.SpanContext.TraceID() {
		t.Errorf("group delivery: kind %s, trace %s; want a consumer span in a trace of its own",
			inGroup.SpanKind, inGroup.SpanContext.TraceID())
	}
	wantAttrs(t, inGroup, map[attribute.Key]any{
		store.AttrStream: "traced-1", store.AttrPartition: d.Position.Partition, store.AttrOffset: d.Position.Offset,
		store.AttrVersion: 1, store.AttrOutcome: "acked", store.AttrRedeliveries: 0,
	})
	only(t, spans, "the SubscribeToAll delivery", func(s tracetest.SpanStub) bool {
		_, grouped := attrs(s)[store.AttrGroup]
		return linked(s) && !grouped && attrs(s)[store.AttrOutcome].AsString() == "sent"
	})

	// A call over HTTP joins its caller's trace as well.
	only(t, spans, "the append over HTTP", func(s tracetest.SpanStub) bool {
		return s.Name == "append" && s.SpanContext.TraceID() == traceIDOf(t, httpCaller)
	})

	// No span holds event data or metadata.
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.Emit(), "0451") {
				t.Errorf("span %s: %s holds the event's content", s.Name, kv.Key)
			}
		}
	}
}

// postTraced appends one event over HTTP as a caller in the trace of
// traceparent.
func postTraced(t testing.TB, url, stream, traceparent string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"streamName": stream, "events": []any{jsonEvent("E", "{}")}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

func TestNoTraceContextInRecordsWhenTracingIsOff(t *testing.T) {
	sc, cfg, brokers := startOwnKafka(t)
	if mode := cfg.TracingMode(); mode != sidecar.TracingOff {
		t.Fatalf("tracing mode %q without any setting, want off", mode)
	}
	appendTraced(t, testenv.Client(t, sc.Addr()), "untraced-1", grpcCaller)
	rec := recordOf(t, brokers, cfg.KafkaTopic, "untraced-1")
	for _, key := range []string{kafka.HeaderTraceparent, kafka.HeaderTracestate} {
		if v, ok := header(rec, key); ok {
			t.Errorf("record has %s %q with tracing off", key, v)
		}
	}
}

func TestTracingMode(t *testing.T) {
	const endpoint = "http://collector:4317"
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nothing set", nil, sidecar.TracingOff},
		{"an OTLP endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, sidecar.TracingOTLP},
		{"an OTLP traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint}, sidecar.TracingOTLP},
		{"a prefixed endpoint is not OpenTelemetry's",
			map[string]string{"SIDECAR_OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, sidecar.TracingOff},
		{"stdout", map[string]string{"SIDECAR_TRACING": "stdout"}, sidecar.TracingStdout},
		{"otlp without an endpoint", map[string]string{"SIDECAR_TRACING": "otlp"}, sidecar.TracingOTLP},
		{"off beats an endpoint",
			map[string]string{"SIDECAR_TRACING": "off", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}, sidecar.TracingOff},
		{"the SDK disabled",
			map[string]string{"SIDECAR_TRACING": "otlp", "OTEL_SDK_DISABLED": "true"}, sidecar.TracingOff},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := sidecar.LoadConfig(t.Context(), tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.TracingMode(); got != tt.want {
				t.Fatalf("tracing mode %q, want %q", got, tt.want)
			}
		})
	}

	_, _, err := sidecar.LoadConfig(t.Context(), map[string]string{"SIDECAR_TRACING": "jaeger"})
	if err == nil || !strings.Contains(err.Error(), "SIDECAR_TRACING") {
		t.Fatalf("SIDECAR_TRACING=jaeger: %v, want an error naming the variable", err)
	}
}

var _ sdktrace.SpanExporter = keptSpans{}
