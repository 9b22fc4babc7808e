package store

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/metrics"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// resolve settles a reservation whose lease expired: its sidecar died or
// lost track of it. The partition is the truth: a record with the
// reservation's token is committed, no record means the reservation is
// released.
func (s *Store) resolve(ctx context.Context, res versions.Reservation) error {
	s.log.Info("resolving an expired lease against the partition",
		"stream", res.Stream, "partition", res.Partition, "version", res.FirstVersion)
	offset, err := s.settle(ctx, res)
	if err != nil {
		return unavailable("resolving the expired lease of stream %q: %v", res.Stream, err)
	}
	if offset < 0 {
		s.opts.Metrics.LeasesExpired.WithLabelValues(metrics.ResolutionReleased).Inc()
		s.log.Info("expired lease released: its record never landed", "stream", res.Stream, "version", res.FirstVersion)
	} else {
		s.opts.Metrics.LeasesExpired.WithLabelValues(metrics.ResolutionCommitted).Inc()
		s.log.Info("expired lease committed: its record landed", "stream", res.Stream,
			"version", res.FirstVersion, "offset", offset)
	}
	return nil
}

// settle writes a fence to the reservation's partition, looks for the
// reservation's record between the stream's last known one and the fence,
// and commits the reservation when the record is there, releasing it
// otherwise. It returns the record's offset, or -1 when it was released.
//
// Without the fence the answer would not be final: a produce this process
// abandoned at its delivery timeout may still sit in the broker, and land
// after a scan to the end of the partition found nothing and the
// reservation was released; the next writer then gets the same versions.
// Written by the same producer after the abandoned produce, the fence
// makes the broker refuse it (see kafka.NewFence), and it bounds the scan.
// For a lease of another sidecar that expired, the fence still bounds the
// scan at a point every replica has; that sidecar's own produce is bounded
// by its delivery timeout, well below the lease.
func (s *Store) settle(ctx context.Context, res versions.Reservation) (int64, error) {
	fence, err := s.producer.Produce(ctx, kafka.NewFence(s.opts.Topic, res.Partition, res.Stream, res.Token))
	if err != nil {
		return 0, fmt.Errorf("write fence: %w", err)
	}
	rec, err := s.findToken(ctx, res, fence)
	if err != nil {
		return 0, err
	}
	if rec == nil {
		if err := s.index.Release(ctx, res); err != nil {
			return 0, err
		}
		return -1, nil
	}
	a, err := kafka.Decode(rec)
	if err != nil {
		return 0, err
	}
	keys := make([]versions.EventKey, len(a.Events))
	for i, e := range a.Events {
		keys[i] = versions.EventKey{ID: e.EventId, Hash: contentHash(e)}
	}
	if err := s.index.Commit(ctx, res, rec.Offset, keys); err != nil {
		return 0, err
	}
	return rec.Offset, nil
}

// findToken scans the stream's partition from its last known record up to
// the fence at offset until for the record carrying the reservation's
// token.
func (s *Store) findToken(ctx context.Context, res versions.Reservation, until int64) (*kgo.Record, error) {
	var found *kgo.Record
	err := s.reader.Scan(ctx, res.Partition, res.LastOffset+1, until, func(r *kgo.Record) (bool, error) {
		if kafka.Token(r) == res.Token {
			found = r
			return false, nil
		}
		return true, nil
	})
	return found, err
}
