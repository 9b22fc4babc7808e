package main

import (
	"context"
	"net/url"
	"time"

	"github.com/eventsidecar/sidecar/internal/envconf"
)

// Config is every setting of the push service, read from PUSH_* variables.
type Config struct {
	// Addr is where the page, the WebSockets and the submissions are
	// served.
	Addr string `env:"ADDR, default=127.0.0.1:8090"`
	// SidecarAddr is the sidecar's gRPC address.
	SidecarAddr string `env:"SIDECAR_ADDR, default=127.0.0.1:50051"`
	// SubmitURL is the Laravel API's POST /content, where the page's
	// submissions are forwarded.
	SubmitURL *url.URL `env:"SUBMIT_URL, default=http://127.0.0.1:8000/content"`
	// OriginPatterns are other origins whose pages may open WebSockets,
	// comma separated host patterns (for example app.example.com or
	// *.example.com). The service's own origin is always allowed.
	OriginPatterns []string `env:"ORIGIN_PATTERNS"`
	// MaxWatches bounds the contents one WebSocket watches.
	MaxWatches int `env:"MAX_WATCHES, default=100"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL, default=info"`
	// LogFormat is json, text, or auto (text on a terminal, else json).
	LogFormat string `env:"LOG_FORMAT, default=auto"`
	// ShutdownTimeout bounds the shutdown after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT, default=10s"`
}

// LoadConfig reads the configuration from env and validates it; every
// error names the variable. It also returns the PUSH_ variables of env
// that no setting reads, sorted, for a warning at start.
func LoadConfig(ctx context.Context, env envconf.Env) (Config, []string, error) {
	var c Config
	unknown, err := envconf.Load(ctx, env, "PUSH_", &c)
	if err != nil {
		return c, unknown, err
	}
	return c, unknown, c.Validate()
}

// Validate checks every setting and names the variable of each bad one.
func (c Config) Validate() error {
	problems := envconf.Problems{Prefix: "PUSH_"}
	bad := problems.Add
	if c.Addr == "" {
		bad("ADDR", "must not be empty")
	}
	if c.SidecarAddr == "" {
		bad("SIDECAR_ADDR", "must not be empty")
	}
	if c.SubmitURL == nil || (c.SubmitURL.Scheme != "http" && c.SubmitURL.Scheme != "https") || c.SubmitURL.Host == "" {
		bad("SUBMIT_URL", "must be an absolute http or https URL, got %v", c.SubmitURL)
	}
	if c.MaxWatches < 1 {
		bad("MAX_WATCHES", "must be at least 1, got %d", c.MaxWatches)
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "must be positive, got %s", c.ShutdownTimeout)
	}
	return problems.Err()
}
