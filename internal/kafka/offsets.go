package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Admin is the admin client the reader uses, for operator tools.
func (rd *Reader) Admin() *kadm.Client { return rd.adm }

// StartOffsets returns, per partition of the event topic, its first
// offset.
func (rd *Reader) StartOffsets(ctx context.Context) (map[int32]int64, error) {
	return rd.listed(ctx, "start", rd.cfg.Topic, rd.adm.ListStartOffsets)
}

// TopicEndOffsets is EndOffsets for another topic.
func (rd *Reader) TopicEndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	return rd.listed(ctx, "end", topic, rd.adm.ListEndOffsets)
}

func (rd *Reader) listed(ctx context.Context, what, topic string,
	list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	listed, err := list(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list %s offsets of %s: %w", what, topic, err)
	}
	out := make(map[int32]int64)
	var firstErr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("list %s offset of %s partition %d: %w", what, topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out, firstErr
}

// CommittedOffsets returns the offsets group committed in the event topic,
// per partition; partitions without a commit are missing.
func (rd *Reader) CommittedOffsets(ctx context.Context, group string) (map[int32]int64, error) {
	resps, err := rd.adm.FetchOffsetsForTopics(ctx, group, rd.cfg.Topic)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", group, err)
	}
	out := make(map[int32]int64)
	var firstErr error
	resps.Each(func(o kadm.OffsetResponse) {
		switch {
		case o.Topic != rd.cfg.Topic:
		case o.Err != nil:
			if firstErr == nil {
				firstErr = fmt.Errorf("fetch offset of group %q partition %d: %w", group, o.Partition, o.Err)
			}
		case o.At >= 0:
			out[o.Partition] = o.At
		}
	})
	return out, firstErr
}
