package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchPartitionBytes bounds what one fetch returns; the broker returns at
// least the whole batch holding the offset, whatever this says.
const fetchPartitionBytes = 64 << 10

// Fetcher reads single records by position with plain Fetch requests sent
// to each partition's leader, so that records far apart in a partition
// cost one request each instead of a scan. It is safe for concurrent use.
type Fetcher struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string

	// mu guards the leaders and the topic id, learned from metadata and
	// relearned after a leadership error.
	mu      sync.Mutex
	leaders map[int32]int32
	topicID [16]byte
}

// NewFetcher returns a fetcher over cl, which must be connected to the
// topic's cluster; it may be shared with other admin use.
func NewFetcher(cl *kgo.Client, topic string) *Fetcher {
	return &Fetcher{cl: cl, adm: kadm.NewClient(cl), topic: topic}
}

// Record returns the record at offset in partition. It fails when the
// offset holds no record (a control record, or past the end).
func (f *Fetcher) Record(ctx context.Context, partition int32, offset int64) (*kgo.Record, error) {
	for attempt := 0; ; attempt++ {
		r, err := f.fetch(ctx, partition, offset)
		if err == nil || attempt == 2 || !isLeadershipErr(err) {
			return r, err
		}
		f.forget()
	}
}

func (f *Fetcher) fetch(ctx context.Context, partition int32, offset int64) (*kgo.Record, error) {
	leader, id, err := f.leader(ctx, partition)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 4 << 20
	req.IsolationLevel = 1
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = f.topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = fetchPartitionBytes
	rp.CurrentLeaderEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)

	resp, err := f.cl.Broker(int(leader)).Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("fetch partition %d offset %d: %w", partition, offset, err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(fr.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch partition %d offset %d: %w", partition, offset, err)
	}
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("fetch partition %d offset %d: malformed response", partition, offset)
	}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
		Offset:         offset,
		IsolationLevel: kgo.ReadCommitted(),
		Topic:          f.topic,
		Partition:      partition,
	}, &fr.Topics[0].Partitions[0], kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		return nil, fmt.Errorf("fetch partition %d offset %d: %w", partition, offset, fp.Err)
	}
	for _, r := range fp.Records {
		if r.Offset == offset {
			return r, nil
		}
	}
	return nil, fmt.Errorf("fetch partition %d offset %d: %w", partition, offset, ErrNoRecord)
}

// ErrNoRecord is an offset that holds no readable record.
var ErrNoRecord = errors.New("no record at this offset")

func (f *Fetcher) leader(ctx context.Context, partition int32) (int32, [16]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.leaders[partition]; ok {
		return l, f.topicID, nil
	}
	md, err := f.adm.Metadata(ctx, f.topic)
	if err != nil {
		return 0, f.topicID, fmt.Errorf("metadata of topic %q: %w", f.topic, err)
	}
	td, ok := md.Topics[f.topic]
	if !ok || td.Err != nil {
		return 0, f.topicID, fmt.Errorf("metadata of topic %q: %w", f.topic, td.Err)
	}
	f.topicID = td.ID
	f.leaders = make(map[int32]int32, len(td.Partitions))
	for _, p := range td.Partitions {
		f.leaders[p.Partition] = p.Leader
	}
	l, ok := f.leaders[partition]
	if !ok || l < 0 {
		delete(f.leaders, partition)
		return 0, f.topicID, fmt.Errorf("partition %d of topic %q has no leader", partition, f.topic)
	}
	return l, f.topicID, nil
}

func (f *Fetcher) forget() {
	f.mu.Lock()
	f.leaders = nil
	f.mu.Unlock()
}

func isLeadershipErr(err error) bool {
	return errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.UnknownTopicOrPartition) ||
		errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.UnknownTopicID) ||
		errors.Is(err, kerr.LeaderNotAvailable)
}
