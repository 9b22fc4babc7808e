package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/eventsidecar/sidecar/internal/store"
)

// Tracing modes, the values of SIDECAR_TRACING.
const (
	TracingAuto   = "auto"
	TracingOTLP   = "otlp"
	TracingStdout = "stdout"
	TracingOff    = "off"
)

// serviceName is the service.name of the sidecar's spans unless
// OTEL_SERVICE_NAME says otherwise.
const serviceName = "eventsidecar"

// traceFlushTimeout bounds the export of the last spans at shutdown.
const traceFlushTimeout = 2 * time.Second

// TracingMode is how the sidecar traces, resolved from SIDECAR_TRACING and
// OpenTelemetry's variables: otlp, stdout or off.
func (c Config) TracingMode() string {
	if c.OTelSDKDisabled {
		return TracingOff
	}
	switch c.Tracing {
	case "", TracingAuto:
		if c.OTLPEndpoint != "" || c.OTLPTracesEndpoint != "" {
			return TracingOTLP
		}
		return TracingOff
	}
	return c.Tracing
}

// tracing is the sidecar's tracer provider and propagator. With tracing
// off both are nil: the store records nothing and writes no trace context,
// and the gRPC server has no stats handler.
type tracing struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
	log  *slog.Logger
}

// startTracing starts the tracer provider that cfg asks for, exporting to
// exp instead when exp is not nil. The exporters and the SDK read the
// other OTEL_* variables themselves: endpoints, headers, TLS, sampler,
// batching, resource attributes and the service name.
func startTracing(ctx context.Context, cfg Config, exp sdktrace.SpanExporter,
	log *slog.Logger) (*tracing, error) {
	mode := cfg.TracingMode()
	if exp == nil && mode == TracingOff {
		return &tracing{log: log}, nil
	}
	if exp == nil {
		var err error
		switch mode {
		case TracingOTLP:
			exp, err = otlptracegrpc.New(ctx)
		case TracingStdout:
			exp, err = stdouttrace.New()
		default:
			err = fmt.Errorf("unknown mode %q", mode)
		}
		if err != nil {
			return nil, fmt.Errorf("SIDECAR_TRACING: %w", err)
		}
	}
	// Detectors run in order, later ones win: OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES override the default name.
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName)), resource.WithFromEnv())
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing failed, spans may be lost", "err", err)
	}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log.Info("tracing on", "exporter", mode)
	return &tracing{tp: tp, prop: propagation.TraceContext{}, log: log}, nil
}

// tracer is the store's tracer; nil when tracing is off, which the store
// replaces with one that records nothing.
func (t *tracing) tracer() trace.Tracer {
	if t.tp == nil {
		return nil
	}
	return t.tp.Tracer(store.TracerName)
}

// serverOptions trace the calls of the gRPC server, and through it those
// over HTTP, except health checks and reflection. Off, there are none.
func (t *tracing) serverOptions() []grpc.ServerOption {
	if t.tp == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithPropagators(t.prop),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(traced),
	))}
}

// traced leaves out the calls that probes and tools make all the time.
func traced(info *stats.RPCTagInfo) bool {
	m := info.FullMethodName
	return !strings.HasPrefix(m, "/grpc.health.v1.") && !strings.HasPrefix(m, "/grpc.reflection.")
}

// shutdown exports the spans still batched, within traceFlushTimeout,
// and stops the provider.
func (t *tracing) shutdown() {
	if t.tp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		t.log.Warn("flushing traces failed; the spans not exported are lost", "err", err)
	}
}
