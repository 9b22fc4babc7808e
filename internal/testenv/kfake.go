package testenv

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventsidecar/sidecar/internal/sidecar"
)

// OwnKafka starts a kfake broker and a miniredis for the test, stopped when
// it ends, and points cfg at them: the embedded backend, but reachable by
// the test itself, for tests that look at Kafka beside the sidecar. It
// returns the broker's address.
func OwnKafka(t testing.TB, cfg *sidecar.Config) []string {
	t.Helper()
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.BrokerConfigs(map[string]string{
			"offsets.retention.minutes": "5256000",
			"log.retention.ms":          "-1",
		}),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(kc.Close)
	mr := miniredis.RunT(t)
	cfg.KafkaBrokers = kc.ListenAddrs()
	cfg.RedisURL = "redis://" + mr.Addr()
	// The index is rebuilt at start, waiting one lease for appends in
	// flight: there are none, keep it short.
	cfg.AppendLease, cfg.DeliveryTimeout = 2*time.Second, time.Second
	return cfg.KafkaBrokers
}
