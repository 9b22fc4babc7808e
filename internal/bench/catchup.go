package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

const (
	catchUpTarget  = 0.8
	catchUpStreams = 1000
)

const (
	rowCatchUpSidecar = "catch-up, sidecar SubscribeToAll from the start"
	rowCatchUpRaw     = "catch-up, raw franz-go consumer of the same topic"
	rowCatchUpRatio   = "catch-up, sidecar / raw consumer"
)

// catchUp fills a topic and reads it from the start, once with a plain
// franz-go consumer and once through the sidecar.
func (h *harness) catchUp(ctx context.Context) error {
	h.rep.expect(rowCatchUpSidecar, rowCatchUpRaw, rowCatchUpRatio)
	c, err := h.startChild(ctx, "catchup")
	if err != nil {
		return err
	}
	defer h.stopChild(c, "catch-up")
	n := h.sz.CatchUp
	began := time.Now()
	if err := h.fill(ctx, c.topic, n); err != nil {
		return err
	}
	h.log.Info("catch-up topic filled", "events", n, "took", time.Since(began).Round(time.Millisecond))

	raw, err := h.consumeRaw(ctx, c.topic, n)
	if err != nil {
		return err
	}
	cpuBefore, _, err := c.usage()
	if err != nil {
		return err
	}
	viaSidecar, err := subscribeCount(ctx, c, n)
	if err != nil {
		return err
	}
	cpuAfter, _, err := c.usage()
	if err != nil {
		return err
	}

	rawRate, sidecarRate := float64(n)/raw.Seconds(), float64(n)/viaSidecar.Seconds()
	h.rep.add(rowCatchUpSidecar, fmt.Sprintf("%s events/s · %s events in %s · sidecar CPU %.1f s",
		count(sidecarRate), count(float64(n)), viaSidecar.Round(time.Millisecond), (cpuAfter-cpuBefore).Seconds()))
	h.rep.add(rowCatchUpRaw, fmt.Sprintf("%s records/s · %s records in %s",
		count(rawRate), count(float64(n)), raw.Round(time.Millisecond)))
	rt := sidecarRate / rawRate
	h.rep.judge(rowCatchUpRatio, ratio(rt), "≥ "+ratio(catchUpTarget), rt >= catchUpTarget)
	return nil
}

// fill produces n one-event appends in the sidecar's record format, over
// catchUpStreams streams in their partitions.
func (h *harness) fill(ctx context.Context, topic string, n int) error {
	cl, err := h.bulkProducer()
	if err != nil {
		return err
	}
	defer cl.Close()
	part := newPartitioner(topic, partitions)
	streams, parts := make([]string, catchUpStreams), make([]int32, catchUpStreams)
	for i := range streams {
		streams[i] = fmt.Sprintf("catchup-%d", i)
		parts[i] = part.of(streams[i])
	}

	var mu sync.Mutex
	var firstErr error
	pay := newPayload()
	for i := range n {
		s := i % catchUpStreams
		r, err := sidecarRecord(topic, parts[s], streams[s], int64(i/catchUpStreams)+1, pay.next())
		if err != nil {
			return err
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("fill catch-up topic: %w", firstErr)
	}
	return nil
}

// consumeRaw reads the topic from the start with franz-go's defaults and
// returns how long n records took, from the client's creation.
func (h *harness) consumeRaw(ctx context.Context, topic string, n int) (time.Duration, error) {
	began := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.cfg.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("fetch partition %d: %w", p, err) })
		if ferr != nil {
			return 0, ferr
		}
		got += fs.NumRecords()
	}
	return time.Since(began), nil
}

// subscribeCount subscribes to all from the start and returns how long n
// events took to arrive, from the call.
func subscribeCount(ctx context.Context, c *child, n int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	began := time.Now()
	sub, err := c.es.SubscribeToAll(ctx, &eventstorepb.SubscribeRequest{})
	if err != nil {
		return 0, err
	}
	for got := 0; got < n; got++ {
		if _, err := sub.Recv(); err != nil {
			return 0, fmt.Errorf("subscription ended after %d of %d events: %w", got, n, err)
		}
	}
	return time.Since(began), nil
}
