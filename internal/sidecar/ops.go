package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/internal/metrics"
)

// opsServer serves the operator endpoints over HTTP: /healthz (liveness:
// the process is up), /readyz (the same answer as the gRPC health service)
// and /metrics.
type opsServer struct {
	srv    *http.Server
	lis    net.Listener
	served chan error
}

func startOps(addr string, log *slog.Logger, ready func() (bool, string), metrics http.Handler) (*opsServer, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SIDECAR_METRICS_ADDR: %w", err)
	}
	if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) {
		log.Warn("metrics and health endpoints listen beyond loopback", "addr", addr)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := ready()
		if !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}

	o := &opsServer{
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		lis:    lis,
		served: make(chan error, 1),
	}
	go func() { o.served <- o.srv.Serve(lis) }()
	log.Info("metrics and health endpoints listening", "addr", lis.Addr().String())
	return o, nil
}

// Addr is the address the endpoints listen on.
func (o *opsServer) Addr() string { return o.lis.Addr().String() }

// shutdown lets requests in progress finish until ctx ends, then closes.
func (o *opsServer) shutdown(ctx context.Context) {
	if err := o.srv.Shutdown(ctx); err != nil {
		o.srv.Close()
	}
	<-o.served
}

// operations are what the sidecar offers operators besides the contract:
// the readiness checks behind the health service, the health-only gRPC
// listener and the HTTP endpoints.
type operations struct {
	registry *prometheus.Registry
	metrics  *metrics.Metrics

	readiness *readiness
	// healthSrv serves only the health service on SIDECAR_HEALTH_ADDR.
	healthSrv *grpc.Server
	healthLis net.Listener
	http      *opsServer
}

func newOperations() *operations {
	reg, m := newRegistry()
	return &operations{registry: reg, metrics: m}
}

// startOperations starts the readiness checks, the health listener and the
// HTTP endpoints of sc, each when configured. What it starts is stopped by
// sc's closers, after the gRPC server.
func (sc *Sidecar) startOperations(rdb redis.UniversalClient, adm *kadm.Client) error {
	cfg := sc.cfg
	ops := sc.ops
	ops.readiness = newReadiness(cfg.HealthInterval, sc.log, sc.health, sc.Store, rdb, adm, cfg.KafkaTopic)
	ops.readiness.onChange = func(ready bool) {
		if ready {
			ops.metrics.Ready.Set(1)
		} else {
			ops.metrics.Ready.Set(0)
		}
	}

	if cfg.HealthAddr != "" {
		lis, err := net.Listen("tcp", cfg.HealthAddr)
		if err != nil {
			return fmt.Errorf("SIDECAR_HEALTH_ADDR: %w", err)
		}
		ops.healthLis = lis
		ops.healthSrv = grpc.NewServer()
		healthpb.RegisterHealthServer(ops.healthSrv, sc.health)
		go ops.healthSrv.Serve(lis)
		// Stop, not GracefulStop: a probe's Watch never ends by itself.
		sc.closers = append(sc.closers, ops.healthSrv.Stop)
		sc.log.Info("health service listening", "addr", lis.Addr().String())
	}

	if cfg.MetricsAddr != "" {
		h, err := startOps(cfg.MetricsAddr, sc.log, ops.readiness.Ready,
			promhttp.HandlerFor(ops.registry, promhttp.HandlerOpts{}))
		if err != nil {
			return err
		}
		ops.http = h
		sc.closers = append(sc.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			h.shutdown(ctx)
		})
	}

	ops.readiness.start()
	sc.closers = append(sc.closers, ops.readiness.close)
	return nil
}

// MetricsAddr is the address of the HTTP endpoints, empty when disabled.
func (sc *Sidecar) MetricsAddr() string {
	if sc.ops.http == nil {
		return ""
	}
	return sc.ops.http.Addr()
}

// HealthAddr is the address of the health-only gRPC listener, empty when
// disabled.
func (sc *Sidecar) HealthAddr() string {
	if sc.ops.healthLis == nil {
		return ""
	}
	return sc.ops.healthLis.Addr().String()
}

// Ready reports whether the sidecar is ready, and why not when it is not:
// what the health service and /readyz answer.
func (sc *Sidecar) Ready() (bool, string) {
	if sc.ops.readiness == nil {
		return false, notStarted
	}
	return sc.ops.readiness.Ready()
}
