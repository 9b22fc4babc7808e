// Command projector keeps the read model's PostgreSQL table content up to
// date from the sidecar's persistent subscription; see internal/projector.
//
// Without arguments it runs the projection. `projector rebuild` replays the
// whole topic into a new table and swaps it in; `projector migrate` only
// migrates the schema. Every setting is an environment variable with the
// prefix PROJECTOR_; see Config. This is the only package that reads the
// environment.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventsidecar/sidecar/internal/envconf"
	"github.com/eventsidecar/sidecar/internal/logging"
	"github.com/eventsidecar/sidecar/internal/projector"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// cli is the command tree. Each command is a struct with a Run method, in
// a file named after it.
type cli struct {
	Serve   serveCmd   `cmd:"" default:"1" help:"Run the projection (the default command)."`
	Rebuild rebuildCmd `cmd:"" help:"Replay the whole topic into a new table and swap it in for the live one."`
	Migrate migrateCmd `cmd:"" help:"Migrate the schema and exit."`
}

// env is what every command's Run receives.
type env struct {
	ctx context.Context
	cfg Config
	log *slog.Logger
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()

	var c cli
	k := kong.Parse(&c,
		kong.Name("projector"),
		kong.Description("Read-model projector: folds content events into PostgreSQL. Settings come from PROJECTOR_* variables."),
		kong.UsageOnError(),
	)
	cfg, unknown, err := LoadConfig(ctx, envconf.Environ())
	if err != nil {
		envconf.WarnUnknown(slog.Default(), unknown)
		fmt.Fprintln(os.Stderr, "projector:", err)
		os.Exit(2)
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "projector: PROJECTOR_LOG_*:", err)
		os.Exit(2)
	}
	slog.SetDefault(log)
	envconf.WarnUnknown(log, unknown)
	if err := k.Run(&env{ctx: ctx, cfg: cfg, log: log}); err != nil {
		log.Error("projector failed", "err", err)
		os.Exit(1)
	}
}

// open connects to PostgreSQL and dials the sidecar; close releases both.
func (e *env) open() (p *projector.Projector, pool *pgxpool.Pool, close func(), err error) {
	pcfg, err := pgxpool.ParseConfig(e.cfg.DatabaseURL)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("PROJECTOR_DATABASE_URL: %w", err)
	}
	pool, err = pgxpool.NewWithConfig(e.ctx, pcfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: %w", err)
	}
	conn, err := grpc.NewClient(e.cfg.SidecarAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		pool.Close()
		return nil, nil, nil, fmt.Errorf("PROJECTOR_SIDECAR_ADDR: %w", err)
	}
	p = projector.New(pool, eventstorepb.NewEventStoreServiceClient(conn), projector.Options{
		Group:       e.cfg.Group,
		MaxInFlight: e.cfg.MaxInFlight,
		BatchSize:   e.cfg.BatchSize,
		Logger:      e.log,
	})
	return p, pool, func() {
		// The subscription ended with the context: close the sidecar
		// connection first, then the database pool.
		conn.Close()
		pool.Close()
	}, nil
}
