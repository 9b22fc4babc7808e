package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

// ErrShrink is a request for fewer partitions than the topic has: Kafka
// cannot remove partitions, and moving streams would break their order.
var ErrShrink = errors.New("partitions cannot be removed")

// Knows reports whether the producer's metadata has partition of topic,
// so that a record for it is not failed as an invalid choice.
func (p *Producer) Knows(topic string, partition int32) bool {
	leader, _, err := p.cl.PartitionLeader(topic, partition)
	return err == nil && leader >= 0
}

// PartitionInfo describes one partition of a topic.
type PartitionInfo struct {
	Partition int32
	Leader    int32
	Replicas  []int32
	ISR       []int32
	// Start and End are the first offset and the offset of the next record.
	Start, End int64
}

// TopicInfo describes a topic for operators.
type TopicInfo struct {
	Name       string
	Partitions []PartitionInfo
	// Configs are the topic's settings that decide whether events are kept.
	Configs map[string]string
}

// DescribeTopic returns the partitions of topic with their offsets and the
// settings that decide whether events are kept.
func DescribeTopic(ctx context.Context, adm *kadm.Client, topic string) (TopicInfo, error) {
	info := TopicInfo{Name: topic, Configs: make(map[string]string)}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return info, fmt.Errorf("describe topic %q: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		return info, fmt.Errorf("describe topic %q: not in the metadata", topic)
	}
	if d.Err != nil {
		return info, fmt.Errorf("describe topic %q: %w", topic, d.Err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return info, fmt.Errorf("list start offsets of %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return info, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	for _, p := range d.Partitions.Sorted() {
		pi := PartitionInfo{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, ISR: p.ISR}
		if o, ok := starts.Lookup(topic, p.Partition); ok {
			pi.Start = o.Offset
		}
		if o, ok := ends.Lookup(topic, p.Partition); ok {
			pi.End = o.Offset
		}
		info.Partitions = append(info.Partitions, pi)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return info, fmt.Errorf("describe configs of %q: %w", topic, err)
	}
	if rc, err := rcs.On(topic, nil); err == nil && rc.Err == nil {
		for _, c := range rc.Configs {
			switch c.Key {
			case "retention.ms", "retention.bytes", "cleanup.policy", "min.insync.replicas", "max.message.bytes":
				info.Configs[c.Key] = c.MaybeValue()
			}
		}
	}
	return info, nil
}

// SetPartitions raises the partition count of topic to total. Existing
// streams stay where they are (their partition is pinned in the index);
// new streams spread over all partitions once the sidecars notice, within
// their metadata refresh interval. It returns the previous count; asking
// for the current count changes nothing, asking for fewer is ErrShrink.
func SetPartitions(ctx context.Context, adm *kadm.Client, topic string, total int32) (int32, error) {
	current, err := PartitionCount(ctx, adm, topic)
	if err != nil {
		return 0, err
	}
	switch {
	case total < current:
		return current, fmt.Errorf("%w: topic %q has %d partitions, %d were asked for", ErrShrink, topic, current, total)
	case total == current:
		return current, nil
	}
	resps, err := adm.UpdatePartitions(ctx, int(total), topic)
	if err == nil {
		var r kadm.CreatePartitionsResponse
		if r, err = resps.On(topic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		return current, fmt.Errorf("raise the partitions of %q to %d: %w", topic, total, err)
	}
	return current, nil
}

func sortedPartitions[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}
