// Command push serves the push service: status changes of contents over
// WebSocket, and the status page; see internal/push. Every setting is an
// environment variable with the prefix PUSH_; see Config. This is the only
// package that reads the environment.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventsidecar/sidecar/internal/envconf"
	"github.com/eventsidecar/sidecar/internal/logging"
	"github.com/eventsidecar/sidecar/internal/push"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	cfg, unknown, err := LoadConfig(ctx, envconf.Environ())
	if err != nil {
		envconf.WarnUnknown(slog.Default(), unknown)
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(2)
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "push: PUSH_LOG_*:", err)
		os.Exit(2)
	}
	slog.SetDefault(log)
	envconf.WarnUnknown(log, unknown)
	if err := run(ctx, cfg, log); err != nil {
		log.Error("push service failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	conn, err := grpc.NewClient(cfg.SidecarAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("PUSH_SIDECAR_ADDR: %w", err)
	}
	defer conn.Close()
	svc, err := push.New(eventstorepb.NewEventStoreServiceClient(conn), push.Options{
		SubmitURL:      cfg.SubmitURL,
		OriginPatterns: cfg.OriginPatterns,
		MaxWatches:     cfg.MaxWatches,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("PUSH_ADDR: %w", err)
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	feedCtx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	fed := make(chan error, 1)
	go func() { fed <- svc.Run(feedCtx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	log.Info("listening", "addr", lis.Addr().String(), "page", "http://"+lis.Addr().String()+"/",
		"submit_url", cfg.SubmitURL.String())

	var failed error
	select {
	case <-ctx.Done():
	case err := <-served:
		failed = fmt.Errorf("http server: %w", err)
	case err := <-fed:
		failed = fmt.Errorf("feed: %w", err)
	}

	// Shutdown: stop taking requests, close the WebSockets (the clients
	// reconnect elsewhere), then stop the feed.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if err := svc.Close(sctx); err != nil {
		log.Warn("websockets still open at the shutdown timeout", "err", err)
	}
	stopFeed()
	if failed == nil {
		<-fed
	}
	log.Info("stopped")
	return failed
}
