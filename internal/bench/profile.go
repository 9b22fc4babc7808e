package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// profileLevels are the writer counts profiled: those of the targets.
var profileLevels = []int{addedP50Writers, targetWritersRatio}

// traceDuration is how long each level is traced: traces are large.
const traceDuration = 2 * time.Second

// Profile runs the sidecar inside this process and writes CPU profiles
// to dir: append-<writers>.pprof for the append loop at each profiled
// level and catchup.pprof for a catch-up subscription, and an execution
// trace of each level, append-<writers>.trace, which shows where an
// append waits (go tool trace -pprof=sync, net or sched). Everything the
// harness does as the sidecar's client runs under the pprof label
// side=client. The report holds the figures seen while profiling.
func Profile(ctx context.Context, cfg Config, dir string) (*Report, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	h, err := newHarness(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	h.rep.Header = []string{
		"profile run, sidecar in process; commit: " + cfg.Commit,
		"machine: " + machine() + "; load average at start: " + loadAverage(),
	}

	topic, err := h.newTopic(ctx, "profile", true)
	if err != nil {
		return nil, err
	}
	scfg, _, err := sidecar.LoadConfig(ctx, h.sidecarEnv(topic))
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "sidecar.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Started outside the label, so that the sidecar's goroutines carry
	// none.
	sc, err := sidecar.Start(ctx, scfg, slog.New(slog.NewJSONHandler(logf, nil)))
	if err != nil {
		return nil, err
	}
	defer sc.Shutdown()

	pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
		err = h.profileClient(ctx, sc.Addr(), topic, dir)
	})
	return h.rep, err
}

// profileClient is the client side of Profile; goroutines it starts
// inherit its label.
func (h *harness) profileClient(ctx context.Context, addr, topic, dir string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	a := &child{topic: topic, conn: conn, es: eventstorepb.NewEventStoreServiceClient(conn),
		health: healthpb.NewHealthClient(conn)}
	d := time.Duration(h.sz.Rounds) * h.sz.Round

	for _, n := range profileLevels {
		t := h.sidecarLoop(a, n)
		var warm run
		warm.loop(ctx, n, h.sz.Warmup, t.fn)
		file := filepath.Join(dir, fmt.Sprintf("append-%d.pprof", n))
		if err := cpuProfile(file, func() { t.run.loop(ctx, n, d, t.fn) }); err != nil {
			return err
		}
		h.rep.addRun(fmt.Sprintf("append, %s, profiled: sidecar", writers(n)),
			throughput(&t.run, "events")+" · "+file, &t.run)

		var traced run
		file = filepath.Join(dir, fmt.Sprintf("append-%d.trace", n))
		if err := executionTrace(file, func() { traced.loop(ctx, n, traceDuration, t.fn) }); err != nil {
			return err
		}
		h.rep.addRun(fmt.Sprintf("append, %s, traced: sidecar", writers(n)),
			throughput(&traced, "events")+" · "+file, &traced)
	}

	// The catch-up reads the profile topic from the start: the appends
	// above and the records filled here, a quarter of the benchmark's.
	if err := h.fill(ctx, topic, max(h.sz.CatchUp/4, 1)); err != nil {
		return err
	}
	total, err := h.topicRecords(ctx, topic)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "catchup.pprof")
	var took time.Duration
	err = cpuProfile(file, func() { took, err = subscribeCount(ctx, a, int(total)) })
	if err != nil {
		return err
	}
	h.rep.add("catch-up, profiled: sidecar SubscribeToAll", fmt.Sprintf("%s events/s · %s events · %s",
		count(float64(total)/took.Seconds()), count(float64(total)), file))
	return nil
}

// cpuProfile writes a CPU profile of fn to file.
func cpuProfile(file string, fn func()) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	fn()
	pprof.StopCPUProfile()
	return nil
}

// executionTrace writes an execution trace of fn to file.
func executionTrace(file string, fn func()) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := trace.Start(f); err != nil {
		return err
	}
	fn()
	trace.Stop()
	return nil
}

// topicRecords is how many records the topic holds, over its partitions.
func (h *harness) topicRecords(ctx context.Context, topic string) (int64, error) {
	ends, err := h.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var total int64
	var firstErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = o.Err
		}
		total += o.Offset
	})
	return total, firstErr
}
