// Package embedded runs the event store's dependencies inside the sidecar's
// process: franz-go's kfake as a single Kafka broker persisted to a data
// directory, and miniredis as Redis. Kafka keeps every event across
// restarts, also after kill -9; miniredis keeps nothing, so the version
// index is rebuilt from the log at every start.
//
// It is meant for development and demos on one machine, not production:
// kfake does not replicate, and miniredis is slow and single-threaded.
package embedded

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Services are the running embedded broker and Redis.
type Services struct {
	// Brokers is the broker's address.
	Brokers []string
	// RedisAddr is miniredis's address.
	RedisAddr string

	kafka *kfake.Cluster
	redis *miniredis.Miniredis
}

// Start starts both services with Kafka's data under dataDir/kafka.
func Start(dataDir string, log *slog.Logger) (*Services, error) {
	dir := filepath.Join(dataDir, "kafka")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	kc, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.DataDir(dir),
		kfake.SyncWrites(),
		kfake.BrokerConfigs(map[string]string{
			// Committed offsets of idle groups must not expire: ten years.
			"offsets.retention.minutes": "5256000",
			"log.retention.ms":          "-1",
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka in %s: %w", dir, err)
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		kc.Close()
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	s := &Services{Brokers: kc.ListenAddrs(), RedisAddr: mr.Addr(), kafka: kc, redis: mr}
	log.Info("running embedded: kfake as kafka, miniredis as redis; not for production",
		"data_dir", dir, "brokers", s.Brokers, "redis", s.RedisAddr)
	return s, nil
}

// Close stops Redis, then Kafka, which flushes its data to disk.
func (s *Services) Close() {
	s.redis.Close()
	s.kafka.Close()
}
