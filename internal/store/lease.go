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

// settle looks for the reservation's record after the stream's last known
// one and commits the reservation when the record is there, releasing it
// otherwise. It returns the record's offset, or -1 when it was released.
func (s *Store) settle(ctx context.Context, res versions.Reservation) (int64, error) {
	rec, err := s.findToken(ctx, res)
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

// findToken scans the stream's partition from its last known record to the
// end for the record carrying the reservation's token.
func (s *Store) findToken(ctx context.Context, res versions.Reservation) (*kgo.Record, error) {
	ends, err := s.reader.EndOffsets(ctx)
	if err != nil {
		return nil, err
	}
	end, ok := ends[res.Partition]
	if !ok {
		return nil, fmt.Errorf("partition %d is not in the topic", res.Partition)
	}
	var found *kgo.Record
	err = s.reader.Scan(ctx, res.Partition, res.LastOffset+1, end, func(r *kgo.Record) (bool, error) {
		if kafka.Token(r) == res.Token {
			found = r
			return false, nil
		}
		return true, nil
	})
	return found, err
}
