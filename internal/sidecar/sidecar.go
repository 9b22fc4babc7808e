// Package sidecar wires the event store's parts into one process: the
// embedded or configured Kafka and Redis, the store, the gRPC server, and
// the ordered shutdown.
package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/eventsidecar/sidecar/internal/embedded"
	"github.com/eventsidecar/sidecar/internal/grpcsvc"
	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// maxRequestBytes bounds a request the gRPC server reads: gRPC's default
// of 4 MiB, or more when the largest append allowed needs it, with room
// for the request's own fields.
func maxRequestBytes(cfg Config) int {
	return max(4<<20, cfg.MaxAppendBytes+64<<10)
}

// streamWorkers is how many goroutines serve RPCs and stay for the next
// one, rather than one new goroutine per RPC: a fresh goroutine's stack
// grows through the append path's deep call chains every time. RPCs
// beyond it get goroutines of their own.
const streamWorkers = 64

// startupWait bounds how long the sidecar waits for Kafka and Redis at start.
const startupWait = 60 * time.Second

// Sidecar is a started sidecar.
type Sidecar struct {
	cfg    Config
	log    *slog.Logger
	lis    net.Listener
	srv    *grpc.Server
	health *health.Server
	// httpLis and httpSrv serve the service as JSON over HTTP; nil when
	// SIDECAR_HTTP_ADDR is empty.
	httpLis net.Listener
	httpSrv *http.Server
	// served reports a server that stopped serving on its own.
	served chan error
	// Store is the event store behind the service.
	Store *store.Store
	// ops are the readiness checks and the operator endpoints.
	ops *operations

	stopSubs context.CancelFunc
	// closers run in reverse order after the server stopped.
	closers      []func()
	shutdownOnce sync.Once
}

// Option changes how Start builds a sidecar.
type Option func(*options)

type options struct {
	spanExporter sdktrace.SpanExporter
}

// WithSpanExporter makes the sidecar trace, to exp, whatever its
// configuration says about tracing.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(o *options) { o.spanExporter = exp }
}

// Run starts the sidecar and serves until ctx ends, then shuts down.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	sc, err := Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	select {
	case err := <-sc.served:
		sc.Shutdown()
		return err
	case <-ctx.Done():
	}
	sc.Shutdown()
	return nil
}

// Start connects to (or embeds) Kafka and Redis, makes the topic and the
// index ready, and starts serving gRPC.
func Start(ctx context.Context, cfg Config, log *slog.Logger, opts ...Option) (sc *Sidecar, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	sc = &Sidecar{cfg: cfg, log: log, ops: newOperations()}
	// Returning nil, err clears sc: close what was opened through started.
	started := sc
	defer func() {
		if err != nil {
			started.close()
			// Errors of the clients may quote a URL with its password.
			err = cfg.redactErr(err)
		}
	}()

	// The first closer added runs last: the spans of everything closed
	// before it are flushed.
	tr, err := startTracing(ctx, cfg, o.spanExporter, log)
	if err != nil {
		return nil, err
	}
	sc.closers = append(sc.closers, tr.shutdown)

	redisURL, brokers := cfg.RedisURL, cfg.KafkaBrokers
	settle := cfg.AppendLease
	if cfg.Embedded() {
		svcs, err := embedded.Start(cfg.DataDir, log)
		if err != nil {
			return nil, err
		}
		sc.closers = append(sc.closers, svcs.Close)
		redisURL, brokers = "redis://"+svcs.RedisAddr, svcs.Brokers
		// Nobody else writes to an embedded index: no appends to wait for.
		settle = -1
	}

	rdb, err := NewRedisClient(redisURL, cfg.redisTLS)
	if err != nil {
		return nil, fmt.Errorf("SIDECAR_REDIS_URL: %w", err)
	}
	sc.closers = append(sc.closers, func() { rdb.Close() })
	if err := waitFor(ctx, log, "redis", func(ctx context.Context) error {
		return authFailure(rdb.Ping(ctx).Err())
	}); err != nil {
		return nil, err
	}

	kopts, err := cfg.kafkaOptions(log)
	if err != nil {
		return nil, err
	}
	kcfg := kafka.Config{
		Brokers:         brokers,
		Topic:           cfg.KafkaTopic,
		Logger:          franzLogger(cfg, log),
		DeliveryTimeout: cfg.DeliveryTimeout,
		Linger:          cfg.ProduceLinger,
		MetadataMaxAge:  cfg.MetadataRefresh,
		Extra:           append(kopts, sc.ops.produceHook()),
	}
	admCl, err := kafka.NewAdminClient(kcfg)
	if err != nil {
		return nil, err
	}
	sc.closers = append(sc.closers, admCl.Close)
	adm := kadm.NewClient(admCl)
	partitions, created, err := ensureTopic(ctx, log, cfg, adm)
	if err != nil {
		return nil, err
	}

	producer, err := kafka.NewProducer(kcfg)
	if err != nil {
		return nil, err
	}
	sc.closers = append(sc.closers, producer.Close)
	// The index closes after the store, which waits for its commits.
	ix := versions.New(rdb, cfg.KafkaTopic)
	sc.closers = append(sc.closers, ix.Close)
	st, err := store.New(ix, producer, kafka.NewReader(kcfg, admCl), kcfg,
		store.Options{
			Topic:           cfg.KafkaTopic,
			Lease:           cfg.AppendLease,
			DeliveryTimeout: cfg.DeliveryTimeout,
			RebuildSettle:   settle,
			NewTopic:        created,
			Logger:          log,
			Metrics:         sc.ops.metrics,
			Limits: store.Limits{
				MaxStreamNameBytes: cfg.MaxStreamNameBytes,
				MaxEventBytes:      cfg.MaxEventBytes,
				MaxAppendBytes:     cfg.MaxAppendBytes,
				MaxEvents:          cfg.MaxAppendEvents,
			},
			PartitionRefresh: cfg.MetadataRefresh,
			Subscriptions:    cfg.subscriptionOptions(),
			Tracer:           tr.tracer(),
			Propagator:       tr.prop,
		})
	if err != nil {
		return nil, err
	}
	if err := st.Open(ctx, partitions); err != nil {
		return nil, err
	}
	sc.Store = st
	sc.closers = append(sc.closers, st.Close)

	sc.lis, err = net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("SIDECAR_GRPC_ADDR: %w", err)
	}
	if host, _, _ := net.SplitHostPort(cfg.GRPCAddr); !isLoopback(host) {
		log.Warn("grpc listens beyond loopback; the contract has no authentication", "addr", cfg.GRPCAddr)
	}
	if sc.httpLis, err = listenHTTP(cfg, log); err != nil {
		sc.lis.Close()
		return nil, err
	}
	if httpLis := sc.httpLis; httpLis != nil {
		// Closes the listener when the start fails (sc is nil by then);
		// Shutdown closed it before otherwise.
		sc.closers = append(sc.closers, func() { httpLis.Close() })
	}
	subsCtx, stopSubs := context.WithCancel(context.Background())
	sc.stopSubs = stopSubs
	// The codec's interceptors come first: a request that did not decode
	// goes no further.
	srvOpts := append(grpcsvc.ServerOptions(), sc.ops.serverOptions()...)
	srvOpts = append(srvOpts, keepaliveOptions()...)
	srvOpts = append(srvOpts, tr.serverOptions()...)
	srvOpts = append(srvOpts, grpc.MaxRecvMsgSize(maxRequestBytes(cfg)), grpc.NumStreamWorkers(streamWorkers))
	sc.srv = grpc.NewServer(srvOpts...)
	sc.health = grpcsvc.New(st, log, subsCtx).Register(sc.srv)
	if sc.httpLis != nil {
		if sc.httpSrv, err = newHTTPServer(sc.srv, maxHTTPMessageBytes(cfg), log); err != nil {
			sc.lis.Close()
			sc.httpLis.Close()
			return nil, err
		}
	}
	// The servers' goroutines hold what they serve, not sc: a failing
	// start returns a nil sc while they end.
	served, srv, lis := make(chan error, 2), sc.srv, sc.lis
	sc.served = served
	go func() {
		if err := srv.Serve(lis); err != nil {
			served <- fmt.Errorf("grpc server: %w", err)
		}
	}()
	if err := sc.startOperations(rdb, adm); err != nil {
		srv.Stop()
		return nil, err
	}
	if httpSrv, httpLis := sc.httpSrv, sc.httpLis; httpSrv != nil {
		go func() {
			if err := serveHTTP(httpSrv, httpLis); err != nil {
				served <- err
			}
		}()
		log.Info("http listening", "addr", sc.httpLis.Addr().String())
	}
	log.Info("sidecar listening", "addr", sc.lis.Addr().String(), "topic", cfg.KafkaTopic, "embedded", cfg.Embedded())
	return sc, nil
}

// Addr is the address the gRPC server listens on.
func (sc *Sidecar) Addr() string { return sc.lis.Addr().String() }

func ensureTopic(ctx context.Context, log *slog.Logger, cfg Config, adm *kadm.Client) (partitions int32, created bool, err error) {
	err = waitFor(ctx, log, "kafka", func(ctx context.Context) error {
		n, c, err := kafka.EnsureTopic(ctx, adm, kafka.TopicSpec{
			Name: cfg.KafkaTopic, Partitions: cfg.KafkaPartitions, ReplicationFactor: cfg.KafkaReplicationFactor,
		})
		// An attempt that created the topic and then failed leaves it
		// this sidecar's creation for the next.
		partitions, created = n, created || c
		if errors.Is(err, kafka.ErrFiniteRetention) {
			return permanent{err}
		}
		return authFailure(err)
	})
	if err == nil {
		log.Info("event topic ready", "topic", cfg.KafkaTopic, "partitions", partitions, "created", created)
	}
	return partitions, created, err
}

// closeReserve is the part of a shutdown budget kept for closing the store
// and the clients once the calls in flight are done.
func closeReserve(budget time.Duration) time.Duration {
	return min(2*time.Second, budget/4)
}

// Shutdown stops the sidecar in one ordered sequence that ends within
// SIDECAR_SHUTDOWN_TIMEOUT: report not ready, end subscriptions, stop
// accepting calls and wait for the appends in flight, then close the store
// (which waits for commits after replies), the producer (every append has
// its acknowledgement by then) and the clients, last opened first, and
// export the spans still batched. Each wait is bounded by what is left of
// the budget; closing keeps a reserve of it. Later calls wait for the first
// to finish and do nothing.
func (sc *Sidecar) Shutdown() { sc.shutdownOnce.Do(sc.shutdown) }

func (sc *Sidecar) shutdown() {
	sc.log.Info("shutting down", "budget", sc.cfg.ShutdownTimeout)
	deadline := time.Now().Add(sc.cfg.ShutdownTimeout)
	callsDeadline := deadline.Add(-closeReserve(sc.cfg.ShutdownTimeout))

	// Report NOT_SERVING first so that probes stop sending traffic, and
	// end the checks that would report anything else.
	sc.ops.readiness.close()
	sc.health.Shutdown()
	// Subscriptions never end on their own; end them so that the graceful
	// stop waits only for appends in flight.
	sc.stopSubs()
	done := make(chan struct{})
	go func() {
		// Every HTTP call runs as a call of srv, and srv's graceful stop
		// cancels those instead of waiting for them: stop the HTTP server
		// first, which waits for its calls, then srv.
		if sc.httpSrv != nil {
			ctx, cancel := context.WithDeadline(context.Background(), callsDeadline)
			_ = sc.httpSrv.Shutdown(ctx)
			cancel()
		}
		sc.srv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Until(callsDeadline)):
		sc.log.Warn("in-flight calls outlived the shutdown budget, closing them")
		if sc.httpSrv != nil {
			sc.httpSrv.Close()
		}
		sc.srv.Stop()
	}

	// Appends cut off by Stop may still be producing; closing the clients
	// under them fails them without an acknowledgement, and their leases
	// are resolved by the next writer.
	closed := make(chan struct{})
	go func() { sc.close(); close(closed) }()
	select {
	case <-closed:
		sc.log.Info("sidecar stopped")
	case <-time.After(time.Until(deadline)):
		sc.log.Warn("closing the store and clients outlived the shutdown budget, leaving them")
	}
}

func (sc *Sidecar) close() {
	for i := len(sc.closers) - 1; i >= 0; i-- {
		sc.closers[i]()
	}
	sc.closers = nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// permanent marks an error that waiting will not fix.
type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// waitFor retries fn with backoff until it succeeds, fails permanently or
// startupWait passes.
func waitFor(ctx context.Context, log *slog.Logger, what string, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startupWait)
	defer cancel()
	delay := 100 * time.Millisecond
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 10*time.Second)
		err := fn(attemptCtx)
		cancelAttempt()
		var perm permanent
		switch {
		case err == nil:
			return nil
		case errors.As(err, &perm):
			return perm.error
		case ctx.Err() != nil:
			return fmt.Errorf("%s not reachable after %s: %w", what, startupWait, err)
		}
		log.Warn("waiting for "+what, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}
