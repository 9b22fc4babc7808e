// Command sidecar serves the event store's gRPC contract on localhost,
// over Kafka (the events) and Redis (the version index). With neither
// configured it runs both embedded in its own process.
//
// Without arguments it serves. Its other commands are tools for operators;
// `sidecar --help` lists them. Every setting is an environment variable
// with the prefix SIDECAR_; see sidecar.Config. This is the only package
// that reads the environment.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/eventsidecar/sidecar/internal/envconf"
	"github.com/eventsidecar/sidecar/internal/logging"
	"github.com/eventsidecar/sidecar/internal/sidecar"
)

// cli is the command tree. Each command is a struct with a Run method, in
// a file named after it.
type cli struct {
	Serve  serveCmd  `cmd:"" default:"1" help:"Serve the gRPC contract (the default command)."`
	Groups groupsCmd `cmd:"" help:"Inspect and reset the consumer groups of the event topic."`
	Topic  topicCmd  `cmd:"" help:"Inspect the event topic and add partitions to it."`
	Verify verifyCmd `cmd:"" help:"Check the event topic and the version index against the store's invariants."`
	Index  indexCmd  `cmd:"" help:"Inspect the version index in Redis and rebuild it from the event topic."`

	Version kong.VersionFlag `help:"Print the version and exit."`
}

// env is what every command's Run receives: the validated configuration
// and the logger.
type env struct {
	ctx context.Context
	cfg sidecar.Config
	log *slog.Logger
}

func main() {
	ctx := onSignal()

	var c cli
	k := kong.Parse(&c,
		kong.Name("sidecar"),
		kong.Description("Event-sourcing sidecar over Kafka and Redis. Settings come from SIDECAR_* variables."),
		kong.UsageOnError(),
		kong.Vars{"version": version()},
	)
	cfg, unknown, err := sidecar.LoadConfig(ctx, envconf.Environ())
	if err != nil {
		envconf.WarnUnknown(slog.Default(), unknown)
		fmt.Fprintln(os.Stderr, "sidecar:", err)
		os.Exit(2)
	}
	e := &env{ctx: ctx, cfg: cfg, log: sidecar.NewLogger(cfg, os.Stderr)}
	slog.SetDefault(e.log)
	logging.RouteRedis(e.log)
	envconf.WarnUnknown(e.log, unknown)
	if err := k.Run(e); err != nil {
		fmt.Fprintln(os.Stderr, "sidecar:", err)
		os.Exit(1)
	}
}

// onSignal returns a context that ends at the first SIGINT or SIGTERM. A
// second signal ends the process at once, with the status a shell reports
// for death by that signal. The channel holds both, so a second signal that
// comes right after the first is not lost.
func onSignal() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "sidecar: second %v, exiting without finishing the shutdown\n", sig)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	return ctx
}

type serveCmd struct{}

func (serveCmd) Run(e *env) error {
	return sidecar.Run(e.ctx, e.cfg, e.log)
}
