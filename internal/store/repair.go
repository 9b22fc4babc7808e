package store

import (
	"context"
	"errors"
	"time"

	"github.com/eventsidecar/sidecar/internal/versions"
)

// lostStream starts the repair of a stream that lost keys in the index,
// unless this process repairs it already. Appends to the stream are
// refused until the repair is done; other streams go on.
func (s *Store) lostStream(stream string, partition int32) {
	if _, running := s.repairs.LoadOrStore(stream, struct{}{}); running {
		return
	}
	s.log.Warn("version index lost keys of a stream: redis lost data; refusing appends to it and repairing it from the topic",
		"stream", stream, "partition", partition)

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.repairs.Delete(stream)
		for {
			err := s.repairStream(s.ctx, stream, partition)
			if err == nil || s.ctx.Err() != nil {
				return
			}
			s.log.Warn("stream repair failed, retrying", "stream", stream, "err", err)
			if sleep(s.ctx, time.Second) != nil {
				return
			}
		}
	}()
}

// repairStream reads a stream's records from the topic into the index
// again. The stream is marked under repair first, so that no append
// admits a version from what is partly merged; then its partition (every
// partition when the index lost it too) is read from the start, the repair
// waits one settle period for appends that were in flight when the keys
// were lost, reads what landed meanwhile, and ends the repair.
func (s *Store) repairStream(ctx context.Context, stream string, partition int32) error {
	started := time.Now()
	// A repair that ended between the append that found the stream lost
	// and this call left nothing to do.
	lost, known, err := s.index.StreamLost(ctx, stream)
	if err != nil {
		return err
	}
	if !lost {
		return nil
	}
	if known >= 0 {
		partition = known
	}
	if err := s.index.MarkRepair(ctx, stream); err != nil {
		return err
	}
	f := newFold(s.index, s.reader, s.log)
	f.only = stream
	read := func() error {
		ends, err := s.reader.EndOffsets(ctx)
		if err != nil {
			return err
		}
		if _, ok := ends[partition]; ok {
			ends = map[int32]int64{partition: ends[partition]}
		}
		return f.readTo(ctx, ends)
	}
	if err := read(); err != nil {
		return err
	}
	if settle := s.opts.RebuildSettle; settle > 0 {
		if err := sleep(ctx, time.Until(started.Add(settle))); err != nil {
			return err
		}
		if err := read(); err != nil {
			return err
		}
	}

	found := f.records > 0
	if err := s.index.EndRepair(ctx, stream, found); err != nil {
		return err
	}
	s.log.Info("stream repaired from the topic", "stream", stream, "version", f.versions[stream],
		"records", f.records, "skipped", f.skipped, "duration", time.Since(started).Round(time.Millisecond))
	return nil
}

// isStreamLost reports a stream that lost keys in the index, and starts
// its repair.
func (s *Store) isStreamLost(err error) bool {
	var lost *versions.StreamLostError
	if !errors.As(err, &lost) {
		return false
	}
	s.lostStream(lost.Stream, lost.Partition)
	return true
}

// streamLostError is what a client is told about a stream under repair.
func streamLostError(stream string) error {
	return unavailable("the version index lost stream %q; it is being repaired from the topic", stream)
}

// checkStreamLost returns an error wrapping ErrUnavailable, and starts a
// repair, when the stream lost keys in the index. Reads call it when the
// index seems not to know a stream, which may be what losing keys looks
// like.
func (s *Store) checkStreamLost(ctx context.Context, stream string) error {
	lost, partition, err := s.index.StreamLost(ctx, stream)
	if err != nil {
		return unavailable("redis: %v", err)
	}
	if lost {
		s.lostStream(stream, partition)
		return streamLostError(stream)
	}
	return nil
}
