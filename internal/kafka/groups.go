package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrGroupActive is a change to a group's offsets while it has members:
// they would overwrite it with their next commit.
var ErrGroupActive = errors.New("group has members")

// ErrUnknownGroup is a group that never committed in the event topic.
var ErrUnknownGroup = errors.New("unknown group")

// GroupLag is where one consumer group stands in the event topic.
type GroupLag struct {
	Group string
	// State is the broker's state of the group: Empty, Stable,
	// PreparingRebalance, CompletingRebalance or Dead.
	State   string
	Members int
	// Partitions are sorted by topic, then partition; they cover the
	// event topic and the group's replay log.
	Partitions []PartitionLag
}

// PartitionLag is a group's position in one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset, -1 for none.
	Committed int64
	End       int64
	// Lag is the number of records after the committed offset (after the
	// start when nothing is committed); -1 when it is unknown.
	Lag int64
	// Member is the client id and host of the partition's owner, if any.
	Member string
}

// GroupLags returns every group that consumes the event topic, with its
// lag per partition, sorted by group name.
//
// Groups of the cluster whose lag Kafka does not give (their coordinator
// is loading, or they are being deleted) are left out and returned in
// unread with the reason, by name: which topics they consume is not known,
// and a group of another topic must not hide the groups of this one.
func GroupLags(ctx context.Context, adm *kadm.Client, topic string) (lags []GroupLag, unread map[string]error, err error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list groups: %w", err)
	}
	if len(listed) == 0 {
		return nil, nil, nil
	}
	described, err := adm.Lag(ctx, listed.Groups()...)
	if err != nil {
		return nil, nil, fmt.Errorf("group lag: %w", err)
	}
	lags, unread = lagsOf(described, topic)
	return lags, unread, nil
}

// lagsOf picks the groups of topic out of the described groups of a
// cluster, and those that could not be described.
func lagsOf(described kadm.DescribedGroupLags, topic string) (lags []GroupLag, unread map[string]error) {
	for name, l := range described {
		if err := l.Error(); err != nil {
			if unread == nil {
				unread = map[string]error{}
			}
			unread[name] = err
			continue
		}
		if _, ours := l.Lag[topic]; !ours {
			continue
		}
		g := GroupLag{Group: name, State: l.State, Members: len(l.Members)}
		for _, t := range []string{topic, ReplayTopic(topic, name)} {
			for _, p := range sortedPartitions(l.Lag[t]) {
				ml := l.Lag[t][p]
				pl := PartitionLag{Topic: t, Partition: p, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
				if ml.Member != nil {
					pl.Member = ml.Member.ClientID + "@" + ml.Member.ClientHost
				}
				g.Partitions = append(g.Partitions, pl)
			}
		}
		lags = append(lags, g)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i].Group < lags[j].Group })
	return lags, unread
}

// ResetTarget is where a reset moves a group: exactly one of its fields
// is set.
type ResetTarget struct {
	// Start is the first offset of every partition: the group receives
	// every event again.
	Start bool
	// End is the end of every partition: the group skips what it has not
	// read yet.
	End bool
	// Time is the first record stamped at or after it, in every partition.
	Time time.Time
}

// ResetGroup commits new offsets in the event topic for group, which must
// have no members (ErrGroupActive) and must have committed there before
// (ErrUnknownGroup). The group's replay log is left alone. It returns the
// committed offsets.
func ResetGroup(ctx context.Context, adm *kadm.Client, topic, group string, to ResetTarget) (map[int32]int64, error) {
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %q: %w", group, err)
	}
	d := described[group]
	if errors.Is(d.Err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("%w: group %q does not exist", ErrUnknownGroup, group)
	}
	if d.Err != nil {
		return nil, fmt.Errorf("describe group %q: %w", group, d.Err)
	}
	if len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead") {
		return nil, fmt.Errorf("%w: group %q is %s with %d members; stop its subscribers first, their commits would undo the reset",
			ErrGroupActive, group, d.State, len(d.Members))
	}
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of group %q: %w", group, err)
	}
	if _, ok := fetched[topic]; !ok {
		return nil, fmt.Errorf("%w: group %q has no committed offsets in topic %q", ErrUnknownGroup, group, topic)
	}

	var listed kadm.ListedOffsets
	switch {
	case to.Start:
		listed, err = adm.ListStartOffsets(ctx, topic)
	case to.End:
		listed, err = adm.ListEndOffsets(ctx, topic)
	default:
		listed, err = adm.ListOffsetsAfterMilli(ctx, to.Time.UnixMilli(), topic)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %q: %w", topic, err)
	}
	offsets := make(kadm.Offsets)
	out := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) {
		offsets.Add(kadm.Offset{Topic: topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
		out[o.Partition] = o.Offset
	})
	if err := adm.CommitAllOffsets(ctx, group, offsets); err != nil {
		return nil, fmt.Errorf("commit offsets of group %q: %w", group, err)
	}
	return out, nil
}
