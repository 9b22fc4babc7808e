package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventsidecar/sidecar/internal/store"
)

// Health service names. The empty name is the standard one for the whole
// server; probes that ask for no service get it.
const (
	// ReadyService is SERVING only while Kafka, Redis and the index are
	// ready. The event store's own name answers the same.
	ReadyService = ""
	// LiveService is SERVING from the moment the sidecar serves until it
	// shuts down, whatever Kafka and Redis do: a liveness probe on it
	// restarts a stuck process, not one waiting for its dependencies.
	LiveService = "liveness"

	storeService = "eventstore.EventStoreService"
)

// notStarted is the reason for not being ready before the first check.
const notStarted = "starting"

// defaultHealthInterval is how often the dependencies are checked when the
// configuration says 0.
const defaultHealthInterval = 2 * time.Second

// readiness checks Kafka, Redis and the index every interval and sets the
// health service's status and /readyz from the result.
type readiness struct {
	interval time.Duration
	log      *slog.Logger
	health   *health.Server
	store    *store.Store
	rdb      redis.UniversalClient
	adm      *kadm.Client
	topic    string
	// onChange, when set, is told every new state.
	onChange func(ready bool)

	// notReady is why the sidecar is not ready; empty when it is.
	notReady atomic.Pointer[string]
	stop     context.CancelFunc
	done     sync.WaitGroup
}

func newReadiness(interval time.Duration, log *slog.Logger, hs *health.Server, st *store.Store,
	rdb redis.UniversalClient, adm *kadm.Client, topic string) *readiness {
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	r := &readiness{interval: interval, log: log, health: hs, store: st, rdb: rdb, adm: adm, topic: topic}
	starting := notStarted
	r.notReady.Store(&starting)
	return r
}

// start sets the first status at once, then keeps checking until close.
func (r *readiness) start() {
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.health.SetServingStatus(ReadyService, healthpb.HealthCheckResponse_NOT_SERVING)
	r.health.SetServingStatus(storeService, healthpb.HealthCheckResponse_NOT_SERVING)
	r.health.SetServingStatus(LiveService, healthpb.HealthCheckResponse_SERVING)
	r.update(r.check(ctx))

	r.done.Add(1)
	go func() {
		defer r.done.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r.update(r.check(ctx))
		}
	}()
}

// close stops the checks and reports not ready from then on.
func (r *readiness) close() {
	if r.stop == nil {
		return
	}
	r.stop()
	r.done.Wait()
	stopping := "shutting down"
	r.notReady.Store(&stopping)
}

// Ready reports whether the sidecar is ready, and why not when it is not.
func (r *readiness) Ready() (bool, string) {
	why := *r.notReady.Load()
	return why == "", why
}

// check returns why the sidecar is not ready, or nil. Each dependency has
// the interval to answer, so a hung one shows within two intervals.
func (r *readiness) check(ctx context.Context) error {
	if !r.store.Ready() {
		return errors.New("the version index is being rebuilt")
	}
	ctx, cancel := context.WithTimeout(ctx, r.interval)
	defer cancel()
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	md, err := r.adm.Metadata(ctx, r.topic)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if len(md.Brokers) == 0 {
		return errors.New("kafka: no brokers in the metadata")
	}
	switch t, ok := md.Topics[r.topic]; {
	case !ok:
		return fmt.Errorf("kafka: topic %q is not in the metadata", r.topic)
	case t.Err != nil:
		return fmt.Errorf("kafka: topic %q: %w", r.topic, t.Err)
	}
	return nil
}

func (r *readiness) update(err error) {
	why := ""
	if err != nil {
		why = err.Error()
	}
	prev := *r.notReady.Swap(&why)
	switch {
	case prev == why:
		return
	case err == nil:
		r.log.Info("ready")
	case prev == "" || prev == notStarted:
		r.log.Warn("not ready", "err", err)
	default:
		// Still not ready, for another reason.
		r.log.Debug("not ready", "err", err)
		return
	}

	status := healthpb.HealthCheckResponse_SERVING
	if err != nil {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	r.health.SetServingStatus(ReadyService, status)
	r.health.SetServingStatus(storeService, status)
	if r.onChange != nil {
		r.onChange(err == nil)
	}
}
