package main

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/eventsidecar/sidecar/internal/envconf"
)

// Config is every setting of the projector, read from PROJECTOR_*
// variables.
type Config struct {
	// SidecarAddr is the sidecar's gRPC address.
	SidecarAddr string `env:"SIDECAR_ADDR, default=127.0.0.1:50051"`
	// DatabaseURL is the PostgreSQL database of the read model, as a
	// postgres:// URL or a key=value connection string.
	DatabaseURL string `env:"DATABASE_URL, default=postgres://postgres@127.0.0.1:15432/readmodel?sslmode=disable"`
	// Group is the consumer group of the live projection.
	Group string `env:"GROUP, default=read-model"`
	// MaxInFlight is the subscription's window: deliveries sent and not
	// yet acked, at most 10000.
	MaxInFlight int32 `env:"MAX_IN_FLIGHT, default=512"`
	// BatchSize is the most deliveries folded in one transaction.
	BatchSize int `env:"BATCH_SIZE, default=256"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL, default=info"`
	// LogFormat is json, text, or auto (text on a terminal, else json).
	LogFormat string `env:"LOG_FORMAT, default=auto"`
}

// LoadConfig reads the configuration from env and validates it; every
// error names the variable. It also returns the PROJECTOR_ variables of env
// that no setting reads, sorted, for a warning at start.
func LoadConfig(ctx context.Context, env envconf.Env) (Config, []string, error) {
	var c Config
	unknown, err := envconf.Load(ctx, env, "PROJECTOR_", &c)
	if err != nil {
		return c, unknown, err
	}
	return c, unknown, c.Validate()
}

// Validate checks every setting and names the variable of each bad one.
func (c Config) Validate() error {
	problems := envconf.Problems{Prefix: "PROJECTOR_"}
	bad := problems.Add
	if c.SidecarAddr == "" {
		bad("SIDECAR_ADDR", "must not be empty")
	}
	if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
		bad("DATABASE_URL", "%v", err)
	}
	if c.Group == "" {
		bad("GROUP", "must not be empty")
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 10_000 {
		bad("MAX_IN_FLIGHT", "must be between 1 and 10000, got %d", c.MaxInFlight)
	}
	if c.BatchSize < 1 {
		bad("BATCH_SIZE", "must be at least 1, got %d", c.BatchSize)
	}
	return problems.Err()
}
