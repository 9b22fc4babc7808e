package sidecar

import (
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/eventsidecar/sidecar/internal/kafka"
)

// KafkaClientConfig is how operator commands reach the configured Kafka:
// as a serving sidecar does, with its TLS and SASL settings. franz-go's own
// logs are discarded.
func (c Config) KafkaClientConfig(log *slog.Logger) (kafka.Config, error) {
	opts, err := c.kafkaOptions(log)
	if err != nil {
		return kafka.Config{}, err
	}
	return kafka.Config{Brokers: c.KafkaBrokers, Topic: c.KafkaTopic, Extra: opts}, nil
}

// RedisClient returns a client of the configured Redis, single node or
// cluster, with its TLS settings, for operator commands.
func (c Config) RedisClient() (redis.UniversalClient, error) {
	return NewRedisClient(c.RedisURL, c.redisTLS)
}
