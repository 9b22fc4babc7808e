package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// partitions is the partition count of every topic the harness creates:
// the sidecar's default for a topic it creates.
const partitions = 16

// opTimeout bounds one operation of a loop, so that a hung call shows as
// an error instead of a hung run.
const opTimeout = 30 * time.Second

// scenarioTimeout bounds one scenario, so that a sidecar that hangs ends
// the scenario instead of the run.
const scenarioTimeout = 20 * time.Minute

// Sizes are how long and how much each scenario runs.
type Sizes struct {
	// Name is "full" or "smoke", for the header.
	Name string
	// Levels are the writer counts of the append scenario.
	Levels []int
	// Rounds of Round each per loop and level, after Warmup.
	Rounds int
	Round  time.Duration
	Warmup time.Duration
	// Contended is how long the contended loop runs.
	Contended time.Duration
	// EndToEnd is how many events the end-to-end writer appends.
	EndToEnd int
	// ReadEvents is the length of the stream read; ReadNoise the records
	// of other streams in its partition, one case each; ReadRepeats the
	// reads per case.
	ReadEvents  int
	ReadNoise   []int
	ReadRepeats int
	// CatchUp is how many events the catch-up topic holds.
	CatchUp int
}

// FullSizes are the sizes of `make bench`: a few minutes.
func FullSizes() Sizes {
	return Sizes{
		Name:        "full",
		Levels:      []int{1, 8, 64, 128},
		Rounds:      3,
		Round:       3 * time.Second,
		Warmup:      time.Second,
		Contended:   10 * time.Second,
		EndToEnd:    1000,
		ReadEvents:  100,
		ReadNoise:   []int{10_000, 100_000, 1_000_000},
		ReadRepeats: 30,
		CatchUp:     1_000_000,
	}
}

// SmokeSizes run every scenario at a size that takes seconds, to show the
// harness works; their figures mean little.
func SmokeSizes() Sizes {
	return Sizes{
		Name:        "smoke",
		Levels:      []int{1, 8, 64, 128},
		Rounds:      1,
		Round:       150 * time.Millisecond,
		Warmup:      30 * time.Millisecond,
		Contended:   300 * time.Millisecond,
		EndToEnd:    20,
		ReadEvents:  10,
		ReadNoise:   []int{100, 1000, 5000},
		ReadRepeats: 3,
		CatchUp:     5000,
	}
}

// Config is where the harness runs and what it runs.
type Config struct {
	// Brokers and RedisURL are the real Kafka and Redis.
	Brokers  []string
	RedisURL string
	// SidecarBin is the sidecar binary run as the child under test.
	SidecarBin string
	Sizes      Sizes
	// Commit names the code measured, for the header.
	Commit string
	// WorkDir receives the children's logs and the profiles.
	WorkDir string
	// Keep leaves the topics and their index keys in place.
	Keep bool
	// Log receives progress lines.
	Log *slog.Logger
}

// harness holds the clients and names of one run.
type harness struct {
	cfg Config
	sz  Sizes
	log *slog.Logger
	// id prefixes every topic of the run.
	id string

	rdb   *redis.Client
	admCl *kgo.Client
	adm   *kadm.Client
	rep   *Report
	// topics are the run's topics, and indexed the streams written to the
	// index of each that a sidecar serves, for the clean-up.
	topics  []string
	indexed map[string][]string
}

func newHarness(ctx context.Context, cfg Config) (*harness, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	h := &harness{
		cfg:     cfg,
		sz:      cfg.Sizes,
		log:     cfg.Log,
		id:      "bench-" + strconv.FormatInt(time.Now().Unix(), 36) + strconv.FormatUint(rand.Uint64N(1<<20), 36),
		rdb:     redis.NewClient(ropts),
		rep:     &Report{},
		indexed: make(map[string][]string),
	}
	if err := h.rdb.Ping(ctx).Err(); err != nil {
		h.rdb.Close()
		return nil, fmt.Errorf("redis %s: %w", cfg.RedisURL, err)
	}
	h.admCl, err = kafka.NewAdminClient(kafka.Config{Brokers: cfg.Brokers})
	if err != nil {
		h.rdb.Close()
		return nil, err
	}
	h.adm = kadm.NewClient(h.admCl)
	return h, nil
}

// newTopic creates a topic of the run, like the one the sidecar creates,
// and marks its empty index complete when a sidecar is to serve it.
func (h *harness) newTopic(ctx context.Context, role string, served bool) (string, error) {
	name := h.id + "-" + role
	h.topics = append(h.topics, name)
	// A topic just created may be unknown to the broker's metadata for a
	// moment.
	for attempt := 0; ; attempt++ {
		_, _, err := kafka.EnsureTopic(ctx, h.adm, kafka.TopicSpec{
			Name: name, Partitions: partitions, ReplicationFactor: -1,
		})
		if err == nil {
			break
		}
		if attempt == 50 || ctx.Err() != nil {
			return "", err
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !served {
		return name, nil
	}
	h.indexed[name] = []string{}
	if err := versions.New(h.rdb, name).WriteEpoch(ctx, h.id); err != nil {
		return "", err
	}
	return name, nil
}

// track notes streams written to topic's index, for the clean-up.
func (h *harness) track(topic string, streams ...string) {
	h.indexed[topic] = append(h.indexed[topic], streams...)
}

// sidecarEnv is the sidecar's configuration for topic: its defaults but
// for where Kafka and Redis are and for ports of its own, so that
// several sidecars run side by side.
func (h *harness) sidecarEnv(topic string) map[string]string {
	return map[string]string{
		"SIDECAR_KAFKA_BROKERS":    strings.Join(h.cfg.Brokers, ","),
		"SIDECAR_REDIS_URL":        h.cfg.RedisURL,
		"SIDECAR_KAFKA_TOPIC":      topic,
		"SIDECAR_KAFKA_PARTITIONS": strconv.Itoa(partitions),
		"SIDECAR_GRPC_ADDR":        "127.0.0.1:0",
		"SIDECAR_HTTP_ADDR":        "127.0.0.1:0",
		"SIDECAR_METRICS_ADDR":     "127.0.0.1:0",
		"SIDECAR_LOG_FORMAT":       "json",
	}
}

// startChild starts a sidecar child process on a new topic of the run.
func (h *harness) startChild(ctx context.Context, role string) (*child, error) {
	topic, err := h.newTopic(ctx, role, true)
	if err != nil {
		return nil, err
	}
	c, err := startChild(ctx, h.cfg.SidecarBin, h.sidecarEnv(topic), h.cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	h.log.Info("sidecar started", "topic", topic, "pid", c.cmd.Process.Pid, "log", c.log)
	return c, nil
}

// stopChild stops c; a failed stop is a failure of scenario.
func (h *harness) stopChild(c *child, scenario string) {
	if err := c.stop(); err != nil {
		h.rep.fail(scenario, err)
	}
}

// scenario runs fn and records its error, so that one failed scenario
// leaves the others' figures.
func (h *harness) scenario(ctx context.Context, name string, fn func(context.Context) error) {
	if ctx.Err() != nil {
		return
	}
	h.log.Info("scenario started", "scenario", name, "load_average", loadAverage())
	ctx, cancel := context.WithTimeout(ctx, scenarioTimeout)
	defer cancel()
	began, cpu := time.Now(), readCPUTimes()
	if err := fn(ctx); err != nil {
		h.log.Error("scenario failed", "scenario", name, "err", err)
		h.rep.fail(name, err)
		return
	}
	h.log.Info("scenario done", "scenario", name, "took", time.Since(began).Round(time.Millisecond),
		"machine_busy", fmt.Sprintf("%.0f%%", 100*busySince(cpu)))
}

// close deletes the run's topics and index keys unless they are kept, and
// closes the clients.
func (h *harness) close() {
	defer h.rdb.Close()
	defer h.admCl.Close()
	if h.cfg.Keep || len(h.topics) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := h.adm.DeleteTopics(ctx, h.topics...); err != nil {
		h.log.Warn("deleting the run's topics failed", "topics", h.topics, "err", err)
	}
	keys := 0
	for t, streams := range h.indexed {
		n, err := versions.Drop(ctx, h.rdb, t, slices.Values(streams))
		if err != nil {
			h.log.Warn("deleting the run's index keys failed", "topic", t, "err", err)
		}
		keys += n
	}
	h.log.Info("run cleaned up", "topics", len(h.topics), "index_keys", keys)
}

// Run runs every scenario once and returns the report. Its error is for a
// run that could not start; a scenario that fails is an ERROR row.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	h, err := newHarness(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	started, startCPU := time.Now(), readCPUTimes()
	h.rep.Header = []string{
		"commit: " + cfg.Commit,
		"machine: " + machine(),
		"load average at start: " + loadAverage(),
		fmt.Sprintf("sizes: %s; append loops %d rounds of %s after %s warm-up; %d-byte random payloads; %d partitions per topic",
			h.sz.Name, h.sz.Rounds, h.sz.Round, h.sz.Warmup, payloadBytes, partitions),
	}

	a, err := h.startChild(ctx, "append")
	if err != nil {
		return nil, err
	}
	h.scenario(ctx, "end to end", func(ctx context.Context) error { return h.endToEnd(ctx, a) })
	h.scenario(ctx, "append", func(ctx context.Context) error { return h.appends(ctx, a) })
	h.scenario(ctx, "contended append", func(ctx context.Context) error { return h.contended(ctx, a) })
	h.stopChild(a, "append")
	h.scenario(ctx, "read", h.reads)
	h.scenario(ctx, "catch-up", h.catchUp)

	h.rep.Header = append(h.rep.Header,
		"load average at end: "+loadAverage(),
		fmt.Sprintf("machine CPUs busy during the run: %.0f %% (this run, Kafka, Redis and whatever else runs)",
			100*busySince(startCPU)),
		"took: "+time.Since(started).Round(time.Second).String())
	if err := ctx.Err(); err != nil {
		return h.rep, errors.New("interrupted")
	}
	return h.rep, nil
}
