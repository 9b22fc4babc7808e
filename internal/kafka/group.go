package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// GroupConfig tunes the consumers of persistent subscriptions.
type GroupConfig struct {
	// SessionTimeout is how long a member that stopped heartbeating keeps
	// its partitions, for example after its sidecar was killed. The broker
	// bounds it by group.min.session.timeout.ms (6s by default). Default
	// 10s.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often a member heartbeats; a rebalance is
	// noticed at the next heartbeat. Default 1s.
	HeartbeatInterval time.Duration
	// FetchMaxWait bounds how long the broker holds a fetch that has
	// nothing to return. Default 1s.
	FetchMaxWait time.Duration
	// FetchMaxBytes bounds one fetch response, and with it what a consumer
	// buffers beyond its window. Default 1 MiB; a single larger record is
	// still returned whole.
	FetchMaxBytes int32
}

func (g GroupConfig) withDefaults() GroupConfig {
	if g.SessionTimeout <= 0 {
		g.SessionTimeout = 10 * time.Second
	}
	if g.HeartbeatInterval <= 0 {
		g.HeartbeatInterval = time.Second
	}
	if g.FetchMaxWait <= 0 {
		g.FetchMaxWait = time.Second
	}
	if g.FetchMaxBytes <= 0 {
		g.FetchMaxBytes = 1 << 20
	}
	return g
}

// fetchOpts bound what one consumer holds outside its caller's hands: one
// fetch at a time of at most FetchMaxBytes.
func (g GroupConfig) fetchOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchMaxWait(g.FetchMaxWait),
		kgo.FetchMaxBytes(g.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(g.FetchMaxBytes),
		kgo.MaxConcurrentFetches(1),
		// Control records are handed out so that offsets stay contiguous
		// for the caller's ack tracking; the caller skips them.
		kgo.KeepControlRecords(),
	}
}

// Rebalance receives a group member's partition changes, keyed by topic.
// Calls are serial and never run while records of a Poll are being handed
// over. Each call gets the consumer, for commits: the callbacks can run
// before NewGroupConsumer has returned.
type Rebalance interface {
	// Assigned is called when partitions are added to the member, before
	// any of their records are polled.
	Assigned(ctx context.Context, c *Consumer, partitions map[string][]int32)
	// Revoked is called when partitions are taken away in an orderly
	// rebalance, or when the member leaves. The new owner starts from what
	// is committed when Revoked returns, so commit there, synchronously.
	Revoked(ctx context.Context, c *Consumer, partitions map[string][]int32)
	// Lost is called when the member was fenced out of the group: its
	// partitions may already have a new owner, a commit would fail.
	Lost(ctx context.Context, c *Consumer, partitions map[string][]int32)
}

// Consumer reads records for one subscription: as a member of a consumer
// group, or directly from given offsets.
type Consumer struct {
	cl    *kgo.Client
	group string
	topic string
}

// NewGroupConsumer joins group and consumes topics with it. Partitions
// without a committed offset start at start: 0 is the first offset; a
// higher value starts every such partition there (or at its end when it
// is shorter). Nothing is committed automatically: the caller commits with
// Commit, in rb.Revoked as well.
func NewGroupConsumer(c Config, g GroupConfig, group string, topics []string, start int64,
	rb Rebalance) (*Consumer, error) {
	c, g = c.withDefaults(), g.withDefaults()
	at := kgo.NewOffset().AtStart()
	if start > 0 {
		at = kgo.NewOffset().At(start)
	}
	opts := append(c.base(), g.fetchOpts()...)
	opts = append(opts,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		// A new group, and a partition added to the topic, start at the
		// first offset; a committed offset that fell off the log resumes
		// at the log start. Nothing is ever skipped.
		kgo.ConsumeStartOffset(at),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(g.SessionTimeout),
		kgo.HeartbeatInterval(g.HeartbeatInterval),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			rb.Assigned(ctx, &Consumer{cl: cl, group: group, topic: c.Topic}, ps)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			rb.Revoked(ctx, &Consumer{cl: cl, group: group, topic: c.Topic}, ps)
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			rb.Lost(ctx, &Consumer{cl: cl, group: group, topic: c.Topic}, ps)
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka group consumer: %w", err)
	}
	return &Consumer{cl: cl, group: group, topic: c.Topic}, nil
}

// NewDirectConsumer reads the event topic from the given offset of each
// partition, without a group. Partitions added later are read once named
// to AddPartitions.
func NewDirectConsumer(c Config, g GroupConfig, starts map[int32]int64) (*Consumer, error) {
	c, g = c.withDefaults(), g.withDefaults()
	ps := make(map[int32]kgo.Offset, len(starts))
	for p, o := range starts {
		ps[p] = kgo.NewOffset().At(o)
	}
	opts := append(c.base(), g.fetchOpts()...)
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.Topic: ps}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	return &Consumer{cl: cl, topic: c.Topic}, nil
}

// AddPartitions makes a direct consumer read more partitions of the event
// topic from their first offset.
func (c *Consumer) AddPartitions(partitions []int32) {
	ps := make(map[int32]kgo.Offset, len(partitions))
	for _, p := range partitions {
		ps[p] = kgo.NewOffset().AtStart()
	}
	c.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{c.topic: ps})
}

// PartitionEnd is the end offset (high watermark) of a partition as a
// fetch reported it.
type PartitionEnd struct {
	Topic     string
	Partition int32
	End       int64
}

// Poll waits for records, at most max of them, and hands them to fn in
// partition order, with the end offsets the fetches reported for their
// partitions. Until fn returns, no rebalance can run: fn must be quick and
// must not call Commit. Poll returns ctx's error when ctx ends, and any
// error that ends consumption for good.
func (c *Consumer) Poll(ctx context.Context, max int, fn func([]*kgo.Record, []PartitionEnd)) error {
	fs := c.cl.PollRecords(ctx, max)
	defer c.cl.AllowRebalance()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fetchErr(fs); err != nil {
		return err
	}
	rs := fs.Records()
	if len(rs) == 0 {
		return nil
	}
	var ends []PartitionEnd
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		ends = append(ends, PartitionEnd{Topic: p.Topic, Partition: p.Partition, End: p.HighWatermark})
	})
	fn(rs, ends)
	return nil
}

// Commit commits offsets, per topic and partition the offset of the next
// record to read, and waits for the broker's answer. It must not be called
// from fn of Poll.
func (c *Consumer) Commit(ctx context.Context, offsets map[string]map[int32]int64) error {
	if c.group == "" || len(offsets) == 0 {
		return nil
	}
	eos := make(map[string]map[int32]kgo.EpochOffset, len(offsets))
	for t, ps := range offsets {
		m := make(map[int32]kgo.EpochOffset, len(ps))
		for p, o := range ps {
			m[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
		}
		eos[t] = m
	}
	var cerr error
	c.cl.CommitOffsetsSync(ctx, eos, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest,
		resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("commit partition %d of %s: %w", p.Partition, t.Topic, err)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit offsets of group %q: %w", c.group, cerr)
	}
	return nil
}

// Close leaves the group, which runs a last Revoked, and closes the
// client. ctx bounds the wait for the leave; past it the leave goes on in
// the background and, if it never reaches the broker, the broker removes
// the member after the session timeout.
func (c *Consumer) Close(ctx context.Context) error {
	c.cl.AllowRebalance()
	var err error
	if c.group != "" {
		err = c.cl.LeaveGroupContext(ctx)
	}
	c.cl.Close()
	if err != nil {
		return fmt.Errorf("leave group %q: %w", c.group, err)
	}
	return nil
}
