package sidecar

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/metrics"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// newRegistry returns the sidecar's own registry, with the Go runtime's
// and the process's collectors and the event store's metrics.
func newRegistry() (*prometheus.Registry, *metrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, metrics.New(reg)
}

// serverOptions measure the calls of the gRPC server. Calls over HTTP are
// transcoded into calls of the same server, so they are measured too.
func (ops *operations) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ops.measureAppend),
		grpc.ChainStreamInterceptor(ops.countDeliveries),
	}
}

// measureAppend records the latency and outcome of every append.
func (ops *operations) measureAppend(ctx context.Context, req any, info *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (any, error) {
	if info.FullMethod != eventstorepb.EventStoreService_AppendToStream_FullMethodName {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	outcome := appendOutcome(resp, err)
	ops.metrics.AppendDuration.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if outcome == metrics.OutcomeConflict {
		ops.metrics.AppendConflicts.Inc()
	}
	return resp, err
}

// appendOutcome classifies an append by the status its client sees.
func appendOutcome(resp any, err error) string {
	switch status.Code(err) {
	case codes.OK:
		if r, ok := resp.(*eventstorepb.AppendResponse); ok && r.Offset < 0 {
			return metrics.OutcomeDuplicate
		}
		return metrics.OutcomeOK
	case codes.Aborted:
		return metrics.OutcomeConflict
	case codes.AlreadyExists:
		return metrics.OutcomeClash
	case codes.InvalidArgument:
		return metrics.OutcomeInvalid
	case codes.ResourceExhausted:
		return metrics.OutcomeTooLarge
	case codes.FailedPrecondition:
		return metrics.OutcomeRefused
	case codes.Unavailable:
		return metrics.OutcomeUnavailable
	case codes.Canceled, codes.DeadlineExceeded:
		return metrics.OutcomeCanceled
	}
	return metrics.OutcomeError
}

// countDeliveries counts the events SubscribeToAll sends.
func (ops *operations) countDeliveries(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	if info.FullMethod == eventstorepb.EventStoreService_SubscribeToAll_FullMethodName {
		ss = countingStream{ss, ops.metrics.SubscribeDelivered}
	}
	return handler(srv, ss)
}

type countingStream struct {
	grpc.ServerStream
	sent prometheus.Counter
}

func (s countingStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.sent.Inc()
	}
	return err
}

// produceHook counts the produce errors of the sidecar's Kafka clients.
func (ops *operations) produceHook() kgo.Opt {
	return kgo.WithHooks(produceErrors{ops.metrics})
}

type produceErrors struct{ m *metrics.Metrics }

func (h produceErrors) OnProduceRecordUnbuffered(_ *kgo.Record, err error) {
	switch {
	case err == nil:
	case kafka.Rejected(err):
		h.m.ProduceErrors.WithLabelValues(metrics.ProduceRejected).Inc()
	default:
		h.m.ProduceErrors.WithLabelValues(metrics.ProduceUnknown).Inc()
	}
}
