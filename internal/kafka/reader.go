package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Reader reads ranges of partitions of the event topic, and single records
// through its Fetcher.
type Reader struct {
	cfg Config
	adm *kadm.Client
	// Fetcher reads records by position.
	Fetcher *Fetcher
}

// NewReader returns a reader that uses cl, a client of the topic's
// cluster, for offset look-ups and fetches by position.
func NewReader(c Config, cl *kgo.Client) *Reader {
	return &Reader{cfg: c.withDefaults(), adm: kadm.NewClient(cl), Fetcher: NewFetcher(cl, c.Topic)}
}

// EndOffsets returns, per partition, the offset the next record will get.
func (rd *Reader) EndOffsets(ctx context.Context) (map[int32]int64, error) {
	ends, err := rd.adm.ListEndOffsets(ctx, rd.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	out := make(map[int32]int64)
	var firstErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("list end offset of partition %d: %w", o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out, firstErr
}

// Scan calls fn for every record of partition in [from, until), in order,
// control records included (fn tells them by r.Attrs.IsControl). It stops
// early when fn returns false or an error.
func (rd *Reader) Scan(ctx context.Context, partition int32, from, until int64,
	fn func(*kgo.Record) (bool, error)) error {
	return rd.ScanTopic(ctx, rd.cfg.Topic, partition, from, until, fn)
}

// ScanTopic is Scan over a partition of another topic.
func (rd *Reader) ScanTopic(ctx context.Context, topic string, partition int32, from, until int64,
	fn func(*kgo.Record) (bool, error)) error {
	if from >= until {
		return nil
	}
	cl, err := kgo.NewClient(append(rd.cfg.base(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			topic: {partition: kgo.NewOffset().At(from)},
		}),
		kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(4<<20),
	)...)
	if err != nil {
		return fmt.Errorf("kafka reader: %w", err)
	}
	defer cl.Close()

	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fetchErr(fs); err != nil {
			return err
		}
		done := false
		var fnErr error
		fs.EachRecord(func(r *kgo.Record) {
			if done || r.Offset < from {
				return
			}
			if r.Offset >= until {
				done = true
				return
			}
			more, err := fn(r)
			if err != nil || !more || r.Offset == until-1 {
				done, fnErr = true, err
			}
		})
		if done {
			return fnErr
		}
	}
}

// fetchErr returns the first error of a poll that is not a retried,
// transient one.
func fetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(topic string, p int32, err error) {
		if first == nil {
			first = fmt.Errorf("fetch partition %d: %w", p, err)
		}
	})
	return first
}
