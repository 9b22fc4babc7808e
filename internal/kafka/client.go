package kafka

import (
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Config is how the sidecar reaches Kafka.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic is the event topic.
	Topic string
	// Logger receives franz-go's own log lines; nil discards them.
	Logger *slog.Logger
	// MetadataMaxAge bounds how long a new partition goes unnoticed.
	// Default 10s.
	MetadataMaxAge time.Duration
	// DeliveryTimeout bounds how long a record may take to be acknowledged;
	// it must stay below the append lease. Default 5s.
	DeliveryTimeout time.Duration
	// Linger is how long a partition waits for more records before a
	// produce request is built. Default 0: send at once.
	Linger time.Duration
	// Extra options, for example TLS or SASL.
	Extra []kgo.Opt
}

func (c Config) withDefaults() Config {
	if c.MetadataMaxAge == 0 {
		c.MetadataMaxAge = 10 * time.Second
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 5 * time.Second
	}
	return c
}

// base are the options every client of the sidecar shares.
func (c Config) base() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.MetadataMaxAge(c.MetadataMaxAge),
		kgo.MetadataMinAge(time.Second),
	}
	if c.Logger != nil {
		opts = append(opts, kgo.WithLogger(kslog.New(c.Logger.With("component", "franz-go"))))
	}
	return append(opts, c.Extra...)
}

// NewAdminClient returns a plain client for admin requests.
func NewAdminClient(c Config) (*kgo.Client, error) {
	c = c.withDefaults()
	return kgo.NewClient(c.base()...)
}
