package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TopicSpec is how the event topic is created when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
}

// ErrFiniteRetention is an existing topic that would delete events.
var ErrFiniteRetention = errors.New("topic would expire events")

// EnsureTopic creates the topic when it is missing, with retention off, and
// refuses an existing topic whose settings would delete events. It returns
// the topic's partition count, and whether this call created the topic.
func EnsureTopic(ctx context.Context, adm *kadm.Client, spec TopicSpec) (partitions int32, created bool, err error) {
	retain := "-1"
	del := "delete"
	resp, err := adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, map[string]*string{
		"retention.ms":    &retain,
		"retention.bytes": &retain,
		"cleanup.policy":  &del,
	}, spec.Name)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, false, fmt.Errorf("create topic %q: %w", spec.Name, err)
	}
	if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return 0, false, fmt.Errorf("create topic %q: %w", spec.Name, resp.Err)
	}
	created = err == nil && resp.Err == nil
	if err := checkRetention(ctx, adm, spec.Name); err != nil {
		return 0, created, err
	}
	partitions, err = PartitionCount(ctx, adm, spec.Name)
	return partitions, created, err
}

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %q: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return 0, fmt.Errorf("describe topic %q: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

func checkRetention(ctx context.Context, adm *kadm.Client, topic string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe configs of topic %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("describe configs of topic %q: %w", topic, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("describe configs of topic %q: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		v := c.MaybeValue()
		switch {
		case (c.Key == "retention.ms" || c.Key == "retention.bytes") && v != "-1":
			return fmt.Errorf("%w: topic %q has %s=%s; an event store must keep every event, set it to -1",
				ErrFiniteRetention, topic, c.Key, v)
		case c.Key == "cleanup.policy" && v != "delete":
			return fmt.Errorf("%w: topic %q has cleanup.policy=%s; compaction drops events, use delete with retention -1",
				ErrFiniteRetention, topic, v)
		}
	}
	return nil
}
