package bench

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

const (
	contendWriters = 16
	contendStreams = 4
)

var rowContended = fmt.Sprintf("contended append, %d writers on %d streams", contendWriters, contendStreams)

// contended runs writers that share streams, each expecting the version
// it saw last: after a conflict it reads the stream's version and tries
// again, as a client that reloads its aggregate would.
func (h *harness) contended(ctx context.Context, a *child) error {
	h.rep.expect(rowContended)
	streams := make([]string, contendStreams)
	for i := range streams {
		streams[i] = fmt.Sprintf("contended-%d", i)
	}
	h.track(a.topic, streams...)
	expected, pays := make([]int64, contendWriters), make([]*payload, contendWriters)
	for w := range pays {
		pays[w] = newPayload()
	}

	var r run
	r.loop(ctx, contendWriters, h.sz.Contended, func(ctx context.Context, w int) error {
		stream := streams[w%contendStreams]
		resp, err := a.es.AppendToStream(ctx, &eventstorepb.AppendRequest{
			StreamName:      stream,
			ExpectedVersion: expected[w],
			Events:          []*eventstorepb.Event{newEvent(pays[w].next())},
		})
		if status.Code(err) == codes.Aborted {
			info, err := a.es.GetStream(ctx, &eventstorepb.GetStreamRequest{StreamName: stream})
			if err != nil {
				return fmt.Errorf("get stream after a conflict: %w", err)
			}
			expected[w] = info.CurrentVersion
			return errConflict
		}
		if err != nil {
			return err
		}
		expected[w] = resp.CurrentVersion
		return nil
	})

	// Every successful append is one version of its stream: a check that
	// the loop counted what the sidecar stored.
	var stored int64
	for _, s := range streams {
		info, err := a.es.GetStream(ctx, &eventstorepb.GetStreamRequest{StreamName: s})
		if status.Code(err) == codes.NotFound {
			continue
		}
		if err != nil {
			return err
		}
		stored += info.CurrentVersion
	}
	if stored != int64(r.ops) {
		return fmt.Errorf("the streams hold %d events, the writers counted %d successful appends", stored, r.ops)
	}

	attempts := r.ops + r.conflicts
	h.rep.addRun(rowContended, fmt.Sprintf("%s appends/s · conflicts %.1f %% of %s attempts · %s",
		count(r.rate()), 100*float64(r.conflicts)/float64(max(attempts, 1)), count(float64(attempts)),
		latencies(&r)), &r)
	return nil
}
