package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/verify"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// Config configures Run.
type Config struct {
	// Bin is the sidecar binary. Required.
	Bin string
	// Services are the run's own Kafka and Redis. Required.
	Services Services
	// Dir receives the sidecars' logs, the writers' log and the verify
	// output. Required.
	Dir string
	// Topic is the event topic, new for each run. Required.
	Topic string
	// Partitions of the topic. Default 4.
	Partitions int
	// Sidecars is how many sidecar processes serve the load. Default 2.
	Sidecars int
	// Solo streams have one writer each; Contended streams have Writers
	// writers each, spread over the sidecars. Defaults 32, 8 and 3.
	Solo, Contended, Writers int
	// Duration is how long faults are injected under load. Default 90s.
	Duration time.Duration
	// FaultEvery is the mean pause between two faults. Default 4s.
	FaultEvery time.Duration
	// Pause is the mean pause between two appends of one writer.
	// Default 250ms.
	Pause time.Duration
	// Lease and DeliveryTimeout of the sidecars. Defaults 3s and 1.5s.
	Lease, DeliveryTimeout time.Duration
	// Logf receives the run's progress. Required.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Partitions, 4)
	def(&c.Sidecars, 2)
	def(&c.Solo, 32)
	def(&c.Contended, 8)
	def(&c.Writers, 3)
	defDur(&c.Duration, 90*time.Second)
	defDur(&c.FaultEvery, 4*time.Second)
	defDur(&c.Pause, 250*time.Millisecond)
	defDur(&c.Lease, 3*time.Second)
	defDur(&c.DeliveryTimeout, 1500*time.Millisecond)
	return c
}

// Result is what a run found.
type Result struct {
	// Acked and Unknown count append attempts: acknowledged, and of
	// unknown outcome. UnknownAppends counts the logical appends that
	// were never acknowledged but had an attempt of unknown outcome.
	Acked, Unknown, UnknownAppends int
	// Faults counts the faults injected, by kind.
	Faults map[string]int
	// Report is the verification of the topic and the index.
	Report *verify.Report
	// Violations are the broken promises; a correct store has none.
	Violations []string
}

// The kinds of faults.
const (
	KillSidecar  = "kill -9 a sidecar"
	KillAll      = "kill -9 every sidecar"
	FlushRedis   = "FLUSHALL redis"
	RestartRedis = "restart redis empty"
	RestartKafka = "stop and start kafka"
)

// Kinds are every kind of fault a run injects.
var Kinds = []string{KillSidecar, KillAll, FlushRedis, RestartRedis, RestartKafka}

// schedule is the order faults come in; it repeats.
var schedule = []string{KillSidecar, FlushRedis, RestartKafka, KillSidecar, RestartRedis, KillAll,
	FlushRedis, KillSidecar, RestartRedis, RestartKafka}

// Run runs the fault suite. It returns an error when the run itself could
// not be carried out; broken promises are in the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Services.Check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	cfg.Logf("fault suite: services in %s, logs in %s, topic %s", cfg.Services.Dir, cfg.Dir, cfg.Topic)
	if err := cfg.Services.Start(ctx); err != nil {
		return nil, err
	}

	log, err := NewLog(filepath.Join(cfg.Dir, "writers.jsonl"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	sidecars, err := startSidecars(ctx, cfg)
	for _, s := range sidecars {
		defer s.close()
	}
	if err != nil {
		return nil, err
	}

	res := &Result{Faults: make(map[string]int)}
	streams := runLoad(ctx, cfg, sidecars, log, res)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	if err := settle(ctx, cfg, sidecars, log, res); err != nil {
		return nil, err
	}
	finalAppends(ctx, cfg, sidecars, streams, log, res)

	if err := verifyAll(ctx, cfg, log, res); err != nil {
		return nil, err
	}
	for _, s := range sidecars {
		if s.crashes > 0 {
			res.Violations = append(res.Violations, fmt.Sprintf("sidecar %s exited on its own %d times; see %s",
				s.name, s.crashes, s.logf.Name()))
		}
	}
	return res, nil
}

func startSidecars(ctx context.Context, cfg Config) ([]*sidecar, error) {
	env := []string{
		"SIDECAR_KAFKA_BROKERS=" + strings.Join(cfg.Services.Brokers(), ","),
		"SIDECAR_REDIS_URL=" + cfg.Services.RedisURL(),
		"SIDECAR_KAFKA_TOPIC=" + cfg.Topic,
		fmt.Sprintf("SIDECAR_KAFKA_PARTITIONS=%d", cfg.Partitions),
		"SIDECAR_KAFKA_REPLICATION_FACTOR=1",
		"SIDECAR_APPEND_LEASE=" + cfg.Lease.String(),
		"SIDECAR_DELIVERY_TIMEOUT=" + cfg.DeliveryTimeout.String(),
		"SIDECAR_HTTP_ADDR=127.0.0.1:0",
		"SIDECAR_METRICS_ADDR=127.0.0.1:0",
		"SIDECAR_LOG_FORMAT=json",
		"SIDECAR_LOG_LEVEL=info",
		"SIDECAR_SHUTDOWN_TIMEOUT=5s",
	}
	var out []*sidecar
	for i := range cfg.Sidecars {
		name := string(rune('a' + i))
		s, err := newSidecar(name, cfg.Bin, filepath.Join(cfg.Dir, "sidecar-"+name+".log"), slices.Clone(env))
		if err != nil {
			return out, err
		}
		out = append(out, s)
		if err := s.start(); err != nil {
			return out, err
		}
	}
	for _, s := range out {
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		err := s.waitServing(wctx)
		cancel()
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// runLoad runs the writers and the faults for cfg.Duration and returns the
// streams written.
func runLoad(ctx context.Context, cfg Config, sidecars []*sidecar, log *Log, res *Result) []string {
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var writers sync.WaitGroup
	var streams []string
	startWriter := func(name, stream string, sc *sidecar) {
		w := &writer{name: name, stream: stream, client: sc.client, log: log,
			timeout: 2*cfg.Lease + cfg.DeliveryTimeout, pause: cfg.Pause}
		writers.Go(func() { w.run(loadCtx) })
	}
	for i := range cfg.Solo {
		stream := fmt.Sprintf("solo-%d", i)
		streams = append(streams, stream)
		startWriter(fmt.Sprintf("s%d", i), stream, sidecars[i%len(sidecars)])
	}
	for i := range cfg.Contended {
		stream := fmt.Sprintf("contended-%d", i)
		streams = append(streams, stream)
		for k := range cfg.Writers {
			startWriter(fmt.Sprintf("c%d.%d", i, k), stream, sidecars[(i+k)%len(sidecars)])
		}
	}
	cfg.Logf("load: %d writers on %d streams through %d sidecars", cfg.Solo+cfg.Contended*cfg.Writers,
		len(streams), len(sidecars))

	deadline := time.Now().Add(cfg.Duration)
	for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		sleepJitter(ctx, cfg.FaultEvery)
		kind := schedule[n%len(schedule)]
		started := time.Now()
		if err := inject(ctx, cfg, kind, sidecars); err != nil {
			res.Violations = append(res.Violations, fmt.Sprintf("fault %q could not be injected: %v", kind, err))
			continue
		}
		res.Faults[kind]++
		acks, unknown, _ := log.Counts()
		cfg.Logf("fault %d: %s (%s); %d appends acknowledged, %d of unknown outcome so far",
			n+1, kind, time.Since(started).Round(time.Millisecond), acks, unknown)
	}
	stopLoad()
	writers.Wait()
	return streams
}

func inject(ctx context.Context, cfg Config, kind string, sidecars []*sidecar) error {
	restart := func(s *sidecar) error {
		s.kill()
		return s.start()
	}
	switch kind {
	case KillSidecar:
		return restart(sidecars[rand.IntN(len(sidecars))])
	case KillAll:
		for _, s := range sidecars {
			if err := restart(s); err != nil {
				return err
			}
		}
		return nil
	case FlushRedis:
		return cfg.Services.FlushRedis(ctx)
	case RestartRedis:
		return cfg.Services.RestartRedis(ctx)
	case RestartKafka:
		return cfg.Services.RestartKafka(ctx)
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// settle brings every service and sidecar back and waits until an append
// goes through each sidecar: the index may be rebuilding.
func settle(ctx context.Context, cfg Config, sidecars []*sidecar, log *Log, res *Result) error {
	if err := cfg.Services.Start(ctx); err != nil {
		return err
	}
	for _, s := range sidecars {
		if !s.running() {
			if err := s.start(); err != nil {
				return err
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		err := s.waitServing(wctx)
		cancel()
		if err != nil {
			return err
		}
		w := &writer{name: "probe-" + s.name, stream: "probe-" + s.name, client: s.client, log: log,
			timeout: 2*cfg.Lease + cfg.DeliveryTimeout, version: -1}
		pctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		w.appendOne(pctx, 1)
		cancel()
		if err := lastAttempt(log, w.name, w.stream); err != nil {
			res.Violations = append(res.Violations, fmt.Sprintf("sidecar %s took no append within 90s after the faults: %v",
				s.name, err))
		}
	}
	acks, unknown, _ := log.Counts()
	cfg.Logf("faults stopped; services back; %d appends acknowledged, %d of unknown outcome", acks, unknown)
	return nil
}

// finalAppends appends once more to every stream, at any version, and
// records a violation for every stream where that does not succeed within
// the lease and the time to resolve it.
func finalAppends(ctx context.Context, cfg Config, sidecars []*sidecar, streams []string, log *Log, res *Result) {
	budget := cfg.Lease + 2*cfg.DeliveryTimeout + time.Second
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, stream := range streams {
		sc := sidecars[i%len(sidecars)]
		wg.Go(func() {
			fctx, cancel := context.WithTimeout(ctx, budget)
			defer cancel()
			w := &writer{name: "final", stream: stream, client: sc.client, log: log, timeout: budget, version: -1}
			started := time.Now()
			w.appendOne(fctx, 1)
			if err := lastAttempt(log, "final", stream); err != nil {
				mu.Lock()
				res.Violations = append(res.Violations, fmt.Sprintf("stream %q is blocked: no append succeeded within %s: %v",
					stream, time.Since(started).Round(time.Millisecond), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cfg.Logf("final append to each of %d streams done", len(streams))
}

// lastAttempt reports whether the writer's only append to stream was
// acknowledged.
func lastAttempt(log *Log, writer, stream string) error {
	log.mu.Lock()
	defer log.mu.Unlock()
	a := log.appends[appendKey(writer, stream, 0)]
	switch {
	case a == nil:
		return errors.New("no attempt was made")
	case !a.Acked:
		return fmt.Errorf("%d attempts of unknown outcome", a.Unknown)
	}
	return nil
}

// verifyAll runs `sidecar verify`, then verifies again with the package to
// compare the topic with the log.
func verifyAll(ctx context.Context, cfg Config, log *Log, res *Result) error {
	cmd := exec.CommandContext(ctx, cfg.Bin, "verify", "--max-problems", "50")
	cmd.Env = append(os.Environ(),
		"SIDECAR_KAFKA_BROKERS="+strings.Join(cfg.Services.Brokers(), ","),
		"SIDECAR_REDIS_URL="+cfg.Services.RedisURL(),
		"SIDECAR_KAFKA_TOPIC="+cfg.Topic,
		"SIDECAR_LOG_FORMAT=json",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	_ = os.WriteFile(filepath.Join(cfg.Dir, "verify.txt"), out.Bytes(), 0o644)
	cfg.Logf("sidecar verify:\n%s", indent(out.String()))
	var exit *exec.ExitError
	switch {
	case errors.As(runErr, &exit):
		res.Violations = append(res.Violations, fmt.Sprintf("sidecar verify exited with status %d", exit.ExitCode()))
	case runErr != nil:
		return fmt.Errorf("sidecar verify: %w", runErr)
	}

	rdb := redis.NewClient(&redis.Options{Addr: cfg.Services.RedisAddr()})
	defer rdb.Close()
	index := versions.New(rdb, cfg.Topic)
	defer index.Close()
	rep, err := verify.Run(ctx, verify.Options{
		Kafka: kafka.Config{Brokers: cfg.Services.Brokers(), Topic: cfg.Topic},
		Index: index, KeepEvents: true, MaxProblems: 50,
	})
	if err != nil {
		return err
	}
	res.Report = rep
	for _, p := range rep.Problems {
		res.Violations = append(res.Violations, "verify: "+p.String())
	}
	if more := rep.ProblemCount - len(rep.Problems); more > 0 {
		res.Violations = append(res.Violations, fmt.Sprintf("verify: %d more problems", more))
	}

	appends := log.Appends()
	res.Violations = append(res.Violations, compare(rep, appends)...)
	acks, unknown, violations := log.Counts()
	res.Acked, res.Unknown = acks, unknown
	for _, a := range appends {
		if !a.Acked && a.Unknown > 0 {
			res.UnknownAppends++
		}
	}
	for _, v := range violations {
		res.Violations = append(res.Violations, fmt.Sprintf("writer %s, stream %q, append %d: %s %s",
			v.Writer, v.Stream, v.Seq, v.Code, v.Message))
	}
	return nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// Summary is the result in a few lines, for the test log.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "appends acknowledged: %d\n", r.Acked)
	fmt.Fprintf(&b, "append attempts of unknown outcome: %d (appends never acknowledged: %d)\n",
		r.Unknown, r.UnknownAppends)
	kinds := make([]string, 0, len(r.Faults))
	for k := range r.Faults {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "faults injected: %-22s %d\n", k, r.Faults[k])
	}
	if r.Report != nil {
		fmt.Fprintf(&b, "topic: %d streams, %d records, %d events\n", r.Report.Streams, r.Report.Records, r.Report.Events)
	}
	fmt.Fprintf(&b, "violations: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
	return b.String()
}
