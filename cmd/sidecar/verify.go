package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/eventsidecar/sidecar/internal/verify"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// verifyCmd reads the whole event topic and checks it, and the version
// index, against the store's invariants.
type verifyCmd struct {
	MaxProblems int  `name:"max-problems" default:"20" help:"Print the first N problems in detail; the counts cover all of them."`
	SkipIndex   bool `name:"skip-index" help:"Check the topic only, not the version index in Redis."`
	JSON        bool `name:"json" help:"Print the report as JSON."`
}

func (c verifyCmd) Help() string {
	return "Reads every partition from its first offset with a plain consumer and reports, per stream, " +
		"gaps, duplicate versions, duplicate event ids, events out of order, streams split across " +
		"partitions, superseded records, and index entries that disagree with the topic. " +
		"Exits with status 1 when it finds any problem. It only reads, and is safe beside running sidecars."
}

func (c verifyCmd) Run(e *env) error {
	if e.cfg.Embedded() {
		return errors.New("verify reads a Kafka cluster and its Redis: set SIDECAR_KAFKA_BROKERS and " +
			"SIDECAR_REDIS_URL to those of the sidecars (the embedded store verifies its index at every start)")
	}
	// The same TLS, SASL and cluster settings as a serving sidecar.
	kcfg, err := e.cfg.KafkaClientConfig(e.log)
	if err != nil {
		return err
	}
	opts := verify.Options{Kafka: kcfg, MaxProblems: c.MaxProblems, Logger: e.log}
	if !c.SkipIndex {
		rdb, err := e.cfg.RedisClient()
		if err != nil {
			return fmt.Errorf("SIDECAR_REDIS_URL: %w", err)
		}
		defer rdb.Close()
		opts.Index = versions.New(rdb, e.cfg.KafkaTopic)
		defer opts.Index.Close()
	}
	p := newProgress(os.Stderr, e.log)
	opts.Progress = p.update
	rep, err := verify.Run(e.ctx, opts)
	p.finish()
	if err != nil {
		return err
	}

	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(os.Stdout, rep)
	}
	if !rep.OK() {
		return fmt.Errorf("verify found %d problems in topic %s", rep.ProblemCount, rep.Topic)
	}
	return nil
}

func printReport(w io.Writer, rep *verify.Report) {
	fmt.Fprintf(w, "topic %s: %d partitions, %d streams, %d records, %d events, %d fences, %d foreign records\n",
		rep.Topic, rep.Partitions, rep.Streams, rep.Records, rep.Events, rep.Fences, rep.Foreign)
	if rep.IndexChecked {
		fmt.Fprintf(w, "index: compared with the topic; %d streams hold a lease, %d of them expired and await their next writer\n",
			rep.Reservations, rep.Expired)
	}
	if rep.OK() {
		fmt.Fprintln(w, "problems: none")
		return
	}
	kinds := make([]string, 0, len(rep.ByKind))
	for _, k := range slices.Sorted(maps.Keys(rep.ByKind)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, rep.ByKind[k]))
	}
	fmt.Fprintf(w, "problems: %d (%s)\n", rep.ProblemCount, strings.Join(kinds, ", "))
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if more := rep.ProblemCount - len(rep.Problems); more > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", more)
	}
}

// progress shows how far verify has read: a bar on a terminal, a log line
// every progressEvery otherwise.
type progress struct {
	bar  *progressbar.ProgressBar
	log  *slog.Logger
	last time.Time
}

const progressEvery = 5 * time.Second

func newProgress(w *os.File, log *slog.Logger) *progress {
	p := &progress{log: log, last: time.Now()}
	if term.IsTerminal(int(w.Fd())) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("reading the topic"),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) update(v verify.Progress) {
	if p.bar != nil {
		if p.bar.GetMax64() != v.Total {
			p.bar.ChangeMax64(v.Total)
		}
		_ = p.bar.Set64(v.Done)
		return
	}
	if time.Since(p.last) >= progressEvery {
		p.last = time.Now()
		p.log.Info("verify progress", "offsets_read", v.Done, "offsets_total", v.Total)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
