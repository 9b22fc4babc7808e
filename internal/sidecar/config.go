package sidecar

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/eventsidecar/sidecar/internal/envconf"
)

// Config is every setting of the sidecar, read from SIDECAR_* variables.
type Config struct {
	// GRPCAddr is where the gRPC service listens.
	GRPCAddr string `env:"GRPC_ADDR, default=127.0.0.1:50051"`
	// HTTPAddr is where the same service is served as JSON over HTTP (the
	// Connect protocol), for clients without gRPC such as PHP. Empty
	// disables it.
	HTTPAddr string `env:"HTTP_ADDR, default=127.0.0.1:8080"`
	// HealthAddr is a second gRPC listener that serves only the standard
	// health service, for probes that cannot reach loopback (the kubelet's).
	// Empty, the default, disables it.
	HealthAddr string `env:"HEALTH_ADDR"`
	// HealthInterval is how often Kafka and Redis are checked for the
	// health service and /readyz; 0 takes the default.
	HealthInterval time.Duration `env:"HEALTH_INTERVAL, default=2s"`
	// MetricsAddr serves /metrics, /healthz and /readyz over HTTP; empty
	// disables it.
	MetricsAddr string `env:"METRICS_ADDR, default=127.0.0.1:9090"`

	// KafkaBrokers are the seed brokers, comma separated. Empty together
	// with RedisURL runs the embedded broker and Redis.
	KafkaBrokers []string `env:"KAFKA_BROKERS"`
	// KafkaTopic is the event topic.
	KafkaTopic string `env:"KAFKA_TOPIC, default=events"`
	// KafkaPartitions is the partition count of a topic the sidecar creates.
	KafkaPartitions int32 `env:"KAFKA_PARTITIONS, default=16"`
	// KafkaReplicationFactor of a topic the sidecar creates; -1 takes the
	// broker's default.
	KafkaReplicationFactor int16 `env:"KAFKA_REPLICATION_FACTOR, default=-1"`

	// RedisURL is the version index's Redis: redis://[user:pass@]host:port/db
	// for one node, or redis+cluster://[user:pass@]host:port,host:port,...
	// for a Redis Cluster, the hosts being seed nodes (any masters; the
	// client discovers the rest) and the query go-redis's cluster options,
	// for example ?dial_timeout=3s. A cluster has only database 0.
	//
	// It may hold a password; the password never shows in logs or errors.
	// rediss:// and rediss+cluster:// connect over TLS.
	RedisURL string `env:"REDIS_URL"`
	// RedisTLSCAFile is a PEM file of the CAs that sign Redis's
	// certificate, for a rediss:// URL. Empty trusts the system's CAs.
	RedisTLSCAFile string `env:"REDIS_TLS_CA_FILE"`

	// KafkaTLS connects to the brokers over TLS. Default false.
	KafkaTLS bool `env:"KAFKA_TLS, default=false"`
	// KafkaTLSCAFile is a PEM file of the CAs that sign the brokers'
	// certificates. Empty trusts the system's CAs.
	KafkaTLSCAFile string `env:"KAFKA_TLS_CA_FILE"`
	// KafkaTLSCertFile is a PEM client certificate, for brokers that
	// authenticate clients by certificate; it needs KafkaTLSKeyFile.
	KafkaTLSCertFile string `env:"KAFKA_TLS_CERT_FILE"`
	// KafkaTLSKeyFile is the PEM key of KafkaTLSCertFile.
	KafkaTLSKeyFile string `env:"KAFKA_TLS_KEY_FILE"`
	// KafkaSASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty,
	// the default, disables SASL. PLAIN belongs over TLS.
	KafkaSASLMechanism string `env:"KAFKA_SASL_MECHANISM"`
	// KafkaSASLUsername is the SASL user.
	KafkaSASLUsername string `env:"KAFKA_SASL_USERNAME"`
	// KafkaSASLPassword is the SASL password; it never shows in logs or
	// errors.
	KafkaSASLPassword Secret `env:"KAFKA_SASL_PASSWORD"`

	// DataDir holds the embedded broker's data.
	DataDir string `env:"DATA_DIR, default=./data"`

	// AppendLease is how long a dead sidecar's append can block its stream.
	AppendLease time.Duration `env:"APPEND_LEASE, default=10s"`
	// DeliveryTimeout bounds one produce; it must be below AppendLease.
	DeliveryTimeout time.Duration `env:"DELIVERY_TIMEOUT, default=5s"`
	// ProduceLinger is how long records wait to be batched.
	ProduceLinger time.Duration `env:"PRODUCE_LINGER, default=0s"`

	// MaxStreamNameBytes bounds stream names.
	MaxStreamNameBytes int `env:"MAX_STREAM_NAME_BYTES, default=256"`
	// MaxEventBytes bounds one event's data plus metadata.
	MaxEventBytes int `env:"MAX_EVENT_BYTES, default=524288"`
	// MaxAppendBytes bounds one append's record; keep it below the topic's
	// max.message.bytes.
	MaxAppendBytes int `env:"MAX_APPEND_BYTES, default=1000000"`
	// MaxAppendEvents bounds the events of one append.
	MaxAppendEvents int `env:"MAX_APPEND_EVENTS, default=1000"`

	// MetadataRefresh is how often the topic's partition count is read, so
	// that appends and groups use partitions added to the topic.
	MetadataRefresh time.Duration `env:"METADATA_REFRESH, default=5s"`

	// SubscribeMaxInFlight is the window of a persistent subscription that
	// asks for none: how many deliveries may be sent and not yet acked.
	SubscribeMaxInFlight int `env:"SUBSCRIBE_MAX_IN_FLIGHT, default=256"`
	// SubscribeCommitInterval is how often groups commit acked offsets.
	SubscribeCommitInterval time.Duration `env:"SUBSCRIBE_COMMIT_INTERVAL, default=1s"`
	// GroupSessionTimeout is how long a member that stopped heartbeating,
	// for example in a killed sidecar, keeps its partitions. It must be
	// within the broker's group.min.session.timeout.ms (6s by default) and
	// group.max.session.timeout.ms.
	GroupSessionTimeout time.Duration `env:"GROUP_SESSION_TIMEOUT, default=10s"`
	// GroupHeartbeatInterval is how often members heartbeat: a rebalance is
	// noticed at the next heartbeat.
	GroupHeartbeatInterval time.Duration `env:"GROUP_HEARTBEAT_INTERVAL, default=1s"`
	// FetchMaxWait bounds how long a subscription's fetch waits for new
	// records.
	FetchMaxWait time.Duration `env:"FETCH_MAX_WAIT, default=1s"`

	// Tracing is auto, otlp, stdout or off. auto, the default, follows
	// OpenTelemetry's convention: spans go over OTLP/gRPC when
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
	// set, and nowhere otherwise. otlp exports even without an endpoint
	// (to the exporter's default, localhost:4317); stdout writes spans to
	// standard output. OTEL_SDK_DISABLED=true turns tracing off whatever
	// this says.
	Tracing string `env:"TRACING, default=auto"`
	// OTLPEndpoint, OTLPTracesEndpoint and OTelSDKDisabled are
	// OpenTelemetry's own variables, read without the SIDECAR_ prefix and
	// only to decide whether to trace: the exporter reads them, and every
	// other OTEL_* variable, itself.
	OTLPEndpoint       string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	OTLPTracesEndpoint string `env:"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"`
	OTelSDKDisabled    bool   `env:"OTEL_SDK_DISABLED, default=false"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL, default=info"`
	// LogFormat is json, text, or auto (text on a terminal, else json).
	LogFormat string `env:"LOG_FORMAT, default=auto"`
	// ShutdownTimeout bounds the whole shutdown after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT, default=20s"`
}

// minHealthInterval is the shortest SIDECAR_HEALTH_INTERVAL.
const minHealthInterval = 100 * time.Millisecond

// maxAppendBytes is the highest SIDECAR_MAX_APPEND_BYTES: a record must
// fit in one of the producer's batches with room to spare.
const maxAppendBytes = 15 << 20

// Embedded reports whether the sidecar runs its own broker and Redis.
func (c Config) Embedded() bool {
	return len(c.KafkaBrokers) == 0 && c.RedisURL == ""
}

// LoadConfig reads the configuration from env (the process's, in the
// command) and validates it; every error names the variable. It also
// returns the SIDECAR_ variables of env that no setting reads, sorted, for
// the command to warn about. OpenTelemetry's OTEL_ variables are read by
// their own names.
func LoadConfig(ctx context.Context, env envconf.Env) (Config, []string, error) {
	var c Config
	unknown, err := envconf.Load(ctx, env, "SIDECAR_", &c, envconf.Unprefixed("OTEL_"))
	if err != nil {
		return c, unknown, err
	}
	return c, unknown, c.Validate()
}

// Validate checks every setting and names the variable of each bad one.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("SIDECAR_%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if (len(c.KafkaBrokers) == 0) != (c.RedisURL == "") {
		bad("KAFKA_BROKERS", "set it together with SIDECAR_REDIS_URL, or neither to run embedded")
	}
	for i, b := range c.KafkaBrokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			bad("KAFKA_BROKERS", "broker %d must be host:port, got %q", i+1, b)
		}
	}
	if c.RedisURL != "" {
		if _, _, err := parseRedisURL(c.RedisURL); err != nil {
			bad("REDIS_URL", "%v", err)
		}
	}
	if c.KafkaTopic == "" || !validTopic(c.KafkaTopic) {
		bad("KAFKA_TOPIC", "%q is not a Kafka topic name (1-249 of [a-zA-Z0-9._-])", c.KafkaTopic)
	}
	if c.KafkaPartitions < 1 {
		bad("KAFKA_PARTITIONS", "must be at least 1, got %d", c.KafkaPartitions)
	}
	if c.KafkaReplicationFactor == 0 || c.KafkaReplicationFactor < -1 {
		bad("KAFKA_REPLICATION_FACTOR", "must be -1 (broker default) or at least 1, got %d", c.KafkaReplicationFactor)
	}
	if c.AppendLease < time.Second {
		bad("APPEND_LEASE", "must be at least 1s, got %s", c.AppendLease)
	}
	if c.DeliveryTimeout <= 0 || c.DeliveryTimeout >= c.AppendLease {
		bad("DELIVERY_TIMEOUT", "must be positive and below SIDECAR_APPEND_LEASE (%s), got %s", c.AppendLease, c.DeliveryTimeout)
	}
	for name, v := range map[string]int{
		"MAX_STREAM_NAME_BYTES": c.MaxStreamNameBytes, "MAX_EVENT_BYTES": c.MaxEventBytes,
		"MAX_APPEND_BYTES": c.MaxAppendBytes, "MAX_APPEND_EVENTS": c.MaxAppendEvents,
	} {
		if v < 1 {
			bad(name, "must be at least 1, got %d", v)
		}
	}
	if c.MaxAppendBytes > maxAppendBytes {
		bad("MAX_APPEND_BYTES", "must be at most %d (15 MiB), got %d", maxAppendBytes, c.MaxAppendBytes)
	}
	if c.MaxAppendEvents > 5000 {
		bad("MAX_APPEND_EVENTS", "must be at most 5000, got %d", c.MaxAppendEvents)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		bad("LOG_FORMAT", "must be json, text or auto, got %q", c.LogFormat)
	}
	switch c.Tracing {
	case "", TracingAuto, TracingOTLP, TracingStdout, TracingOff:
	default:
		bad("TRACING", "must be auto, otlp, stdout or off, got %q", c.Tracing)
	}
	c.validateSecurity(bad)
	if c.HealthInterval < 0 || (c.HealthInterval > 0 && c.HealthInterval < minHealthInterval) {
		// It is also each check's deadline: shorter, Redis and Kafka
		// rarely answer in time.
		bad("HEALTH_INTERVAL", "must be at least %s (0 takes the default), got %s", minHealthInterval, c.HealthInterval)
	}
	if c.ShutdownTimeout <= 0 {
		bad("SHUTDOWN_TIMEOUT", "must be positive, got %s", c.ShutdownTimeout)
	}
	c.validateSubscriptions(bad)
	return errors.Join(errs...)
}

func validTopic(t string) bool {
	if len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
