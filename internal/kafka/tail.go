package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TailOptions bound the memory of one tailing consumer.
type TailOptions struct {
	// From is the first offset read in every partition; 0 is the start.
	From int64
	// FetchMaxBytes bounds one fetch response. Default 4 MiB.
	FetchMaxBytes int32
}

// Tail reads every partition of the topic from opts.From, including
// partitions added while it runs, and calls fn for every record in
// partition order until ctx ends or fn fails. fn is called from one
// goroutine; while it works through one fetch the next is on its way, and
// while it blocks no more than about two fetches are buffered.
func Tail(ctx context.Context, c Config, opts TailOptions, fn func(*kgo.Record) error) error {
	c = c.withDefaults()
	if opts.FetchMaxBytes <= 0 {
		opts.FetchMaxBytes = 4 << 20
	}
	start := kgo.NewOffset().AtStart()
	if opts.From > 0 {
		start = kgo.NewOffset().At(opts.From)
	}
	cl, err := kgo.NewClient(append(c.base(),
		kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxBytes(opts.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(min(opts.FetchMaxBytes, 1<<20)),
		kgo.MaxConcurrentFetches(2),
	)...)
	if err != nil {
		return fmt.Errorf("kafka consumer: %w", err)
	}
	defer cl.Close()

	for {
		fs := cl.PollRecords(ctx, 512)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fetchErr(fs); err != nil {
			return err
		}
		for it := fs.RecordIter(); !it.Done(); {
			if err := fn(it.Next()); err != nil {
				return err
			}
		}
	}
}
