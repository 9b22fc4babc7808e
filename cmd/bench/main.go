// Command bench measures the sidecar against the raw Kafka and Redis
// clients it is built on, on real Kafka and Redis, and prints one table
// of every figure of the run, with the targets beside them. See package
// internal/bench for what each scenario does.
//
// It exits 1 when a scenario failed or a row is missing, whatever the
// figures; missed targets show as FAIL in the table only.
package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/eventsidecar/sidecar/internal/bench"
	"github.com/eventsidecar/sidecar/internal/vcs"
)

type cli struct {
	Brokers []string `default:"127.0.0.1:19092" help:"Kafka seed brokers."`
	Redis   string   `default:"redis://127.0.0.1:16379/0" help:"Redis URL of the version index."`
	Sidecar string   `default:".bin/sidecar" type:"path" help:"Sidecar binary run as the process under test."`
	Smoke   bool     `help:"Run every scenario at tiny sizes, in seconds, to check the harness."`
	Profile string   `type:"path" placeholder:"DIR" help:"Instead of benchmarking, run the sidecar in process and write CPU profiles to DIR."`
	WorkDir string   `default:".bench" type:"path" help:"Directory for the sidecars' logs."`
	Out     string   `type:"path" help:"Also write the table to this file."`
	Commit  string   `help:"Name of the code measured, for the header; default the sidecar binary's VCS revision."`
	Keep    bool     `help:"Keep the run's topics and index keys."`
}

func main() {
	var c cli
	kong.Parse(&c, kong.Name("bench"), kong.Description(
		"Benchmarks the sidecar against raw franz-go and go-redis on real Kafka and Redis."))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c cli) error {
	sizes := bench.FullSizes()
	if c.Smoke {
		sizes = bench.SmokeSizes()
	}
	cfg := bench.Config{
		Brokers:    c.Brokers,
		RedisURL:   c.Redis,
		SidecarBin: c.Sidecar,
		Sizes:      sizes,
		Commit:     c.Commit,
		WorkDir:    c.WorkDir,
		Keep:       c.Keep,
		Log:        slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	if cfg.Commit == "" {
		cfg.Commit = revision(c.Sidecar)
	}

	var rep *bench.Report
	var err error
	if c.Profile != "" {
		rep, err = bench.Profile(ctx, cfg, c.Profile)
	} else {
		rep, err = bench.Run(ctx, cfg)
	}
	if rep != nil {
		rep.WriteMarkdown(os.Stdout)
		if c.Out != "" {
			f, ferr := os.Create(c.Out)
			if ferr != nil {
				return ferr
			}
			rep.WriteMarkdown(f)
			if ferr := f.Close(); ferr != nil {
				return ferr
			}
		}
	}
	if err != nil {
		return err
	}
	if problems := rep.Problems(); len(problems) > 0 && c.Profile == "" {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "bench: incomplete:", p)
		}
		return fmt.Errorf("%d rows missing or failed", len(problems))
	}
	return nil
}

// revision is the VCS revision the binary bin was built from, marked
// when the checkout had changes.
func revision(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	rev, modified := vcs.Revision(info)
	if rev == "" {
		return "unknown"
	}
	rev = rev[:min(12, len(rev))]
	if modified {
		rev += " with uncommitted changes"
	}
	return rev
}
