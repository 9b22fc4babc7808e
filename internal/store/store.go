package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/metrics"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// Options configure a Store.
type Options struct {
	// Topic is the event topic. Required.
	Topic string
	// Lease is how long an append's reservation blocks its stream when its
	// sidecar dies. Default 10s.
	Lease time.Duration
	// DeliveryTimeout bounds the produce of one append; it must be below
	// Lease. Default 5s.
	DeliveryTimeout time.Duration
	// RebuildSettle is how long a rebuild waits for appends that were in
	// flight when the index was lost before it writes the epoch. Default
	// Lease; 0 is replaced by the default, a negative value waits not at all
	// (for a store that is the index's only writer).
	RebuildSettle time.Duration
	// NewTopic says that this process created the topic just before it
	// opened the store. The rebuild that Open makes of the new topic's
	// index then does not wait for appends in flight: none can be, to a
	// topic that did not exist.
	NewTopic bool
	// PartitionRefresh is how often the topic's partition count is read.
	// Default 10s.
	PartitionRefresh time.Duration
	// Limits bound appends.
	Limits Limits
	// Subscriptions tune persistent subscriptions.
	Subscriptions SubscriptionOptions
	// Logger receives lifecycle and retry logs. Default slog.Default().
	Logger *slog.Logger
	// Metrics receives the store's metrics. Default: metrics registered
	// nowhere.
	Metrics *metrics.Metrics
	// Tracer makes the spans of appends and deliveries. Default: a tracer
	// that records nothing.
	Tracer trace.Tracer
	// Propagator writes the trace context of each append into its record,
	// and reads it back to link the deliveries of the record to it.
	// Default nil: records carry no trace context.
	Propagator propagation.TextMapPropagator
}

func (o Options) withDefaults() Options {
	if o.Lease <= 0 {
		o.Lease = 10 * time.Second
	}
	if o.DeliveryTimeout <= 0 {
		o.DeliveryTimeout = 5 * time.Second
	}
	if o.RebuildSettle == 0 {
		o.RebuildSettle = o.Lease
	}
	if o.PartitionRefresh <= 0 {
		o.PartitionRefresh = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New(nil)
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer(TracerName)
	}
	o.Limits = o.Limits.withDefaults()
	o.Subscriptions = o.Subscriptions.withDefaults()
	return o
}

// Store appends to and reads from the event store. It is safe for
// concurrent use.
type Store struct {
	opts     Options
	index    *versions.Index
	producer *kafka.Producer
	reader   *kafka.Reader
	kcfg     kafka.Config
	log      *slog.Logger

	locks *streamLocks
	// traced is set when the store was given a tracer.
	traced     bool
	hasher     kgo.TopicPartitioner
	partitions atomic.Int32
	ready      atomic.Bool
	// ends are the partitions' end offsets at the last refresh, for the
	// groups' lag; nil before the first.
	ends atomic.Pointer[map[int32]int64]

	// groups holds a *groupState per consumer group seen.
	groups sync.Map

	// rebuildMu guards rebuilding, and ready as a rebuild ends; at most
	// one rebuild runs at a time.
	rebuildMu  sync.Mutex
	rebuilding bool
	// repairs holds the streams this process repairs, at most one repair
	// per stream at a time.
	repairs sync.Map

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a store over an index and a topic. kcfg is used to open
// consumers for subscriptions. Call Open before the first append.
func New(index *versions.Index, producer *kafka.Producer, reader *kafka.Reader,
	kcfg kafka.Config, opts Options) (*Store, error) {
	traced := opts.Tracer != nil
	opts = opts.withDefaults()
	if opts.Topic == "" {
		return nil, errors.New("store: topic is required")
	}
	if opts.DeliveryTimeout >= opts.Lease {
		return nil, fmt.Errorf("store: delivery timeout %s must be below the lease %s",
			opts.DeliveryTimeout, opts.Lease)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		opts:     opts,
		index:    index,
		producer: producer,
		reader:   reader,
		kcfg:     kcfg,
		log:      opts.Logger,
		locks:    newStreamLocks(),
		traced:   traced,
		hasher:   kgo.StickyKeyPartitioner(nil).ForTopic(opts.Topic),
		ctx:      ctx,
		cancel:   cancel,
	}, nil
}

// Open makes the store ready: it learns the partition count and, when the
// index has no epoch, rebuilds it from the topic before returning.
func (s *Store) Open(ctx context.Context, partitions int32) error {
	s.partitions.Store(partitions)
	ok, err := s.index.HasEpoch(ctx)
	if err != nil {
		return fmt.Errorf("%w: redis: %v", ErrUnavailable, err)
	}
	if !ok {
		s.log.Info("version index has no epoch, rebuilding it from the topic", "topic", s.opts.Topic)
		settle := s.opts.RebuildSettle
		if s.opts.NewTopic {
			settle = -1
		}
		if err := s.rebuild(ctx, settle); err != nil {
			return err
		}
	}
	s.ready.Store(true)

	s.wg.Add(1)
	go s.refreshPartitions()
	return nil
}

// Ready reports whether appends are admitted: the index is complete.
func (s *Store) Ready() bool { return s.ready.Load() }

// Close stops the store's background work and waits for it. It does not
// close the clients it was given.
func (s *Store) Close() {
	s.cancel()
	s.wg.Wait()
}

// refreshPartitions follows the topic's partition count, so that new
// streams spread over partitions added to the topic.
func (s *Store) refreshPartitions() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PartitionRefresh)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ends, err := s.reader.EndOffsets(s.ctx)
		if err != nil {
			s.log.Warn("reading the partition count failed, retrying", "topic", s.opts.Topic, "err", err)
			continue
		}
		s.ends.Store(&ends)
		if n := int32(len(ends)); n > s.partitions.Load() && s.producerKnows(n) {
			s.log.Info("topic has new partitions", "topic", s.opts.Topic,
				"partitions", n, "previous", s.partitions.Load())
			s.partitions.Store(n)
		}
	}
}

// endOf is the end offset of partition at the last refresh, -1 when
// unknown.
func (s *Store) endOf(partition int32) int64 {
	ends := s.ends.Load()
	if ends == nil {
		return -1
	}
	if end, ok := (*ends)[partition]; ok {
		return end
	}
	return -1
}

// producerKnows refreshes the producer's metadata until it has n
// partitions, so that no stream is pinned to a partition the producer
// would refuse. Reporting false leaves the count for the next tick.
func (s *Store) producerKnows(n int32) bool {
	for range 50 {
		if s.producer.Knows(s.opts.Topic, n-1) {
			return true
		}
		s.producer.Refresh()
		if sleep(s.ctx, 100*time.Millisecond) != nil {
			return false
		}
	}
	return false
}

// partitionFor is the partition a new stream is pinned to: Kafka's default
// key hash over the partition count at this moment.
func (s *Store) partitionFor(stream string) int32 {
	n := int(s.partitions.Load())
	if n <= 1 {
		return 0
	}
	return int32(s.hasher.Partition(&kgo.Record{Key: []byte(stream)}, n))
}
