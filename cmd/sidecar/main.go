// Command sidecar serves the event store's gRPC contract on localhost,
// over Kafka (the events) and Redis (the version index). With neither
// configured it runs both embedded in its own process.
//
// Every setting is an environment variable with the prefix SIDECAR_; see
// sidecar.Config. This is the only package that reads the environment.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-envconfig"

	"github.com/eventsidecar/sidecar/internal/sidecar"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sidecar:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := sidecar.LoadConfig(ctx, envconfig.OsLookuper())
	if err != nil {
		return err
	}
	log := sidecar.NewLogger(cfg, os.Stderr)
	return sidecar.Run(ctx, cfg, log)
}
