package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A group's parked deliveries live in two single-partition topics beside
// the event topic, both kept forever like the event topic itself:
//
//	<topic>.parked.<group>  every parked record, in the order it was parked
//	<topic>.replay.<group>  the parked records handed back to the group by
//	                        a replay, which the group consumes with the
//	                        event topic
//
// A parked record is the original record (key, value, headers) with
// headers saying where it came from, why and when it was parked. A replay
// record is a parked record plus the offset it had in the parked log; the
// last replay record thus tells how far the parked log has been replayed,
// without any other state.

// Parked-record header keys.
const (
	HeaderParkedGroup     = "es-parked-group"
	HeaderParkedReason    = "es-parked-reason"
	HeaderParkedAt        = "es-parked-at"
	HeaderOriginPartition = "es-origin-partition"
	HeaderOriginOffset    = "es-origin-offset"
	HeaderRedeliveries    = "es-redeliveries"
	// HeaderParkedOffset is the offset of a replay record's parked record.
	HeaderParkedOffset = "es-parked-offset"
)

// ParkedTopic is the topic of group's parked records.
func ParkedTopic(topic, group string) string { return topic + ".parked." + group }

// ReplayTopic is the topic of group's replayed records.
func ReplayTopic(topic, group string) string { return topic + ".replay." + group }

// MaxGroupLen is the longest group name that still makes valid topic
// names of its parked and replay logs for topic.
func MaxGroupLen(topic string) int { return 249 - len(ParkedTopic(topic, "")) }

// Parked is what a parked record says about itself.
type Parked struct {
	Group  string
	Reason string
	At     time.Time
	// Partition and Offset are the record's position in the event topic.
	Partition int32
	Offset    int64
	// Redeliveries counts the deliveries before the one that was parked.
	Redeliveries int32
	// ParkedOffset is the offset in the parked log; set on replay records.
	ParkedOffset int64
}

// EnsureGroupTopics creates group's parked and replay logs when missing:
// one partition each, retention off.
func (rd *Reader) EnsureGroupTopics(ctx context.Context, group string, replicationFactor int16) error {
	retain, del := "-1", "delete"
	configs := map[string]*string{"retention.ms": &retain, "retention.bytes": &retain, "cleanup.policy": &del}
	for _, t := range []string{ParkedTopic(rd.cfg.Topic, group), ReplayTopic(rd.cfg.Topic, group)} {
		resp, err := rd.adm.CreateTopic(ctx, 1, replicationFactor, configs, t)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %q: %w", t, err)
		}
	}
	return nil
}

// NewParkedRecord returns the record to append to group's parked log for
// r, a record of the event topic or of the group's replay log.
func NewParkedRecord(topic string, r *kgo.Record, p Parked) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, "es-parked-") && !strings.HasPrefix(h.Key, "es-origin-") &&
			h.Key != HeaderRedeliveries {
			headers = append(headers, h)
		}
	}
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderParkedGroup, Value: []byte(p.Group)},
		kgo.RecordHeader{Key: HeaderParkedReason, Value: []byte(p.Reason)},
		kgo.RecordHeader{Key: HeaderParkedAt, Value: strconv.AppendInt(nil, p.At.Unix(), 10)},
		kgo.RecordHeader{Key: HeaderOriginPartition, Value: strconv.AppendInt(nil, int64(p.Partition), 10)},
		kgo.RecordHeader{Key: HeaderOriginOffset, Value: strconv.AppendInt(nil, p.Offset, 10)},
		kgo.RecordHeader{Key: HeaderRedeliveries, Value: strconv.AppendInt(nil, int64(p.Redeliveries), 10)},
	)
	return &kgo.Record{Topic: ParkedTopic(topic, p.Group), Key: r.Key, Value: r.Value, Headers: headers}
}

// NewReplayRecord returns the record that hands parked back to its group.
func NewReplayRecord(topic, group string, parked *kgo.Record) *kgo.Record {
	headers := append(parked.Headers[:len(parked.Headers):len(parked.Headers)],
		kgo.RecordHeader{Key: HeaderParkedOffset, Value: strconv.AppendInt(nil, parked.Offset, 10)})
	return &kgo.Record{Topic: ReplayTopic(topic, group), Key: parked.Key, Value: parked.Value, Headers: headers}
}

// ParkedInfo reads the parked headers of a parked or replay record. It
// reports false for a record without them.
func ParkedInfo(r *kgo.Record) (Parked, bool) {
	p := Parked{ParkedOffset: -1}
	found := 0
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderParkedGroup:
			p.Group = v
		case HeaderParkedReason:
			p.Reason = v
		case HeaderParkedAt:
			sec, _ := strconv.ParseInt(v, 10, 64)
			p.At = time.Unix(sec, 0).UTC()
		case HeaderOriginPartition:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return p, false
			}
			p.Partition = int32(n)
			found++
		case HeaderOriginOffset:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return p, false
			}
			p.Offset = n
			found++
		case HeaderRedeliveries:
			n, _ := strconv.ParseInt(v, 10, 32)
			p.Redeliveries = int32(n)
		case HeaderParkedOffset:
			p.ParkedOffset, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return p, found == 2
}

// ReplayCursor returns the first offset of group's parked log that no
// replay has handed back yet: the parked offset of the last replay record,
// plus one.
func (rd *Reader) ReplayCursor(ctx context.Context, group string) (int64, error) {
	replay := ReplayTopic(rd.cfg.Topic, group)
	ends, err := rd.TopicEndOffsets(ctx, replay)
	if err != nil {
		return 0, err
	}
	end := ends[0]
	if end == 0 {
		return 0, nil
	}
	cursor := int64(0)
	err = rd.ScanTopic(ctx, replay, 0, end-1, end, func(r *kgo.Record) (bool, error) {
		if p, ok := ParkedInfo(r); ok && p.ParkedOffset >= 0 {
			cursor = p.ParkedOffset + 1
		}
		return false, nil
	})
	return cursor, err
}

// ProduceAll writes rs and waits until every in-sync replica has all of
// them. Records keep their own topic and partition.
func (p *Producer) ProduceAll(ctx context.Context, rs []*kgo.Record) error {
	return p.cl.ProduceSync(ctx, rs...).FirstErr()
}
