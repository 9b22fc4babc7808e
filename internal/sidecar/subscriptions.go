package sidecar

import (
	"time"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/store"
)

// subscriptionOptions are the store's settings for persistent
// subscriptions. Zero values take the store's defaults.
func (c Config) subscriptionOptions() store.SubscriptionOptions {
	return store.SubscriptionOptions{
		MaxInFlight:       c.SubscribeMaxInFlight,
		CommitInterval:    c.SubscribeCommitInterval,
		ReplicationFactor: c.KafkaReplicationFactor,
		Group: kafka.GroupConfig{
			SessionTimeout:    c.GroupSessionTimeout,
			HeartbeatInterval: c.GroupHeartbeatInterval,
			FetchMaxWait:      c.FetchMaxWait,
		},
	}
}

// validateSubscriptions checks the subscription settings. Zero takes the
// default, for configurations built in code.
func (c Config) validateSubscriptions(bad func(name, format string, args ...any)) {
	if c.SubscribeMaxInFlight < 0 || c.SubscribeMaxInFlight > store.MaxInFlightLimit {
		bad("SUBSCRIBE_MAX_IN_FLIGHT", "must be between 1 and %d, got %d", store.MaxInFlightLimit, c.SubscribeMaxInFlight)
	}
	for name, d := range map[string]time.Duration{
		"METADATA_REFRESH": c.MetadataRefresh, "SUBSCRIBE_COMMIT_INTERVAL": c.SubscribeCommitInterval,
		"GROUP_SESSION_TIMEOUT": c.GroupSessionTimeout, "GROUP_HEARTBEAT_INTERVAL": c.GroupHeartbeatInterval,
		"FETCH_MAX_WAIT": c.FetchMaxWait,
	} {
		if d < 0 {
			bad(name, "must be positive, got %s", d)
		}
	}
	if c.MetadataRefresh > 0 && c.MetadataRefresh < time.Second {
		bad("METADATA_REFRESH", "must be at least 1s, got %s", c.MetadataRefresh)
	}
	if c.GroupSessionTimeout > 0 && c.GroupHeartbeatInterval >= c.GroupSessionTimeout {
		bad("GROUP_HEARTBEAT_INTERVAL", "must be below SIDECAR_GROUP_SESSION_TIMEOUT (%s), got %s",
			c.GroupSessionTimeout, c.GroupHeartbeatInterval)
	}
}
