package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// readRatioMax is how far the slowest read may be from the fastest to
// count as "near 1".
const readRatioMax = 1.5

// noiseChunk bounds the records of one produce call of noise.
const noiseChunk = 5000

func (h *harness) readRowNames() (cases []string, ratioRow string) {
	for _, others := range h.sz.ReadNoise {
		cases = append(cases, fmt.Sprintf("read %d-event stream, %s other records in its partition",
			h.sz.ReadEvents, count(float64(others))))
	}
	last := h.sz.ReadNoise[len(h.sz.ReadNoise)-1]
	return cases, fmt.Sprintf("read ratio p50, %s / %s other records",
		count(float64(last)), count(float64(h.sz.ReadNoise[0])))
}

// reads times ReadStream of a stream whose records are spread over a
// partition that grows with other streams' records between the cases:
// each case's stream is appended among that many records, all in one
// partition, and read right after.
func (h *harness) reads(ctx context.Context) error {
	cases, ratioRow := h.readRowNames()
	h.rep.expect(append(cases, ratioRow)...)
	b, err := h.startChild(ctx, "read")
	if err != nil {
		return err
	}
	defer h.stopChild(b, "read")
	noise, err := h.bulkProducer()
	if err != nil {
		return err
	}
	defer noise.Close()

	part := newPartitioner(b.topic, partitions)
	partition := part.of("needle-0")
	var first, last time.Duration
	for i, others := range h.sz.ReadNoise {
		stream := sameKey(part, fmt.Sprintf("needle-%d", i), partition)
		h.track(b.topic, stream)
		if err := h.buildNeedle(ctx, b, noise, stream, partition, others); err != nil {
			return err
		}
		records, err := h.endOffset(ctx, b.topic, partition)
		if err != nil {
			return err
		}
		var r run
		for range h.sz.ReadRepeats {
			began := time.Now()
			if err := readWhole(ctx, b, stream, h.sz.ReadEvents); err != nil {
				return err
			}
			r.add(time.Since(began))
		}
		h.rep.add(cases[i], latencies(&r)+fmt.Sprintf(" · partition of %s records · %d reads",
			count(float64(records)), h.sz.ReadRepeats))
		if i == 0 {
			first = r.quantile(0.5)
		}
		last = r.quantile(0.5)
	}
	rt := float64(last) / float64(first)
	h.rep.judge(ratioRow, ratio(rt), fmt.Sprintf("near 1 (≤ %s)", ratio(readRatioMax)), rt <= readRatioMax)
	return nil
}

// sameKey returns a stream name starting with base whose partition is p.
func sameKey(part partitioner, base string, p int32) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s-%d", base, i)
		if part.of(name) == p {
			return name
		}
	}
}

// buildNeedle appends the stream's events through the sidecar with an
// equal share of others records of other streams before each.
func (h *harness) buildNeedle(ctx context.Context, b *child, noise *kgo.Client, stream string,
	partition int32, others int) error {
	pay := newPayload()
	n := h.sz.ReadEvents
	for v := range n {
		share := others / n
		if v == 0 {
			share += others % n
		}
		if err := produceNoise(ctx, noise, pay, b.topic, partition, share); err != nil {
			return err
		}
		resp, err := b.es.AppendToStream(ctx, &eventstorepb.AppendRequest{
			StreamName: stream, ExpectedVersion: int64(v), Events: []*eventstorepb.Event{newEvent(pay.next())},
		})
		if err != nil {
			return fmt.Errorf("append to %s: %w", stream, err)
		}
		if resp.Partition != partition {
			return fmt.Errorf("stream %s is in partition %d, not %d", stream, resp.Partition, partition)
		}
	}
	return nil
}

// produceNoise writes count one-event appends of new streams to partition.
func produceNoise(ctx context.Context, cl *kgo.Client, pay *payload, topic string, partition int32, count int) error {
	for count > 0 {
		recs := make([]*kgo.Record, min(count, noiseChunk))
		for i := range recs {
			r, err := sidecarRecord(topic, partition, "noise-"+uuid.NewString(), 1, pay.next())
			if err != nil {
				return err
			}
			recs[i] = r
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return fmt.Errorf("produce noise: %w", err)
		}
		count -= len(recs)
	}
	return nil
}

// readWhole reads the stream forwards and checks it holds versions 1..n.
func readWhole(ctx context.Context, b *child, stream string, n int) error {
	rs, err := b.es.ReadStream(ctx, &eventstorepb.ReadStreamRequest{StreamName: stream})
	if err != nil {
		return err
	}
	var v int64
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		v++
		if e.AggregateVersion != v {
			return fmt.Errorf("read %s: version %d where %d belongs", stream, e.AggregateVersion, v)
		}
	}
	if v != int64(n) {
		return fmt.Errorf("read %s: %d events, want %d", stream, v, n)
	}
	return nil
}

// bulkProducer writes many records quickly: batched, into the partition
// each record names.
func (h *harness) bulkProducer() (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(h.cfg.Brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
}

func (h *harness) endOffset(ctx context.Context, topic string, partition int32) (int64, error) {
	ends, err := h.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	o, ok := ends.Lookup(topic, partition)
	if !ok || o.Err != nil {
		return 0, fmt.Errorf("end offset of %s/%d: %v", topic, partition, o.Err)
	}
	return o.Offset, nil
}
