package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// mergeBatchEvents is how many events a rebuild folds before it writes them
// to Redis.
const mergeBatchEvents = 20_000

// lostIndex starts a rebuild in the background unless one is running, and
// refuses appends until it is done.
func (s *Store) lostIndex() {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	if s.rebuilding {
		return
	}
	s.rebuilding = true
	s.ready.Store(false)
	s.log.Warn("version index lost its epoch: redis lost data; refusing appends and rebuilding",
		"topic", s.opts.Topic)

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			err := s.rebuild(s.ctx)
			if err == nil || s.ctx.Err() != nil {
				break
			}
			s.log.Warn("index rebuild failed, retrying", "topic", s.opts.Topic, "err", err)
			if sleep(s.ctx, time.Second) != nil {
				break
			}
		}
		s.rebuildMu.Lock()
		s.rebuilding = false
		s.rebuildMu.Unlock()
		if s.ctx.Err() == nil {
			s.ready.Store(true)
		}
	}()
}

// Rebuild rebuilds the index from the topic while the store runs, for
// operators. Appends are refused until it is done.
func (s *Store) Rebuild(ctx context.Context) error {
	s.ready.Store(false)
	defer s.ready.Store(true)
	return s.rebuild(ctx)
}

// rebuild reads every partition from its first offset and merges what it
// finds into the index, then waits for appends that may have been in flight
// when the index was lost, reads those too, and writes a new epoch.
func (s *Store) rebuild(ctx context.Context) error {
	defer s.measureRebuild()()
	started := time.Now()
	f := newFold(s)
	ends, err := s.reader.EndOffsets(ctx)
	if err != nil {
		return err
	}
	s.log.Info("index rebuild started", "topic", s.opts.Topic, "partitions", len(ends))
	if err := f.readTo(ctx, ends); err != nil {
		return err
	}

	if settle := s.opts.RebuildSettle; settle > 0 {
		if err := sleep(ctx, time.Until(started.Add(settle))); err != nil {
			return err
		}
		if ends, err = s.reader.EndOffsets(ctx); err != nil {
			return err
		}
		if err := f.readTo(ctx, ends); err != nil {
			return err
		}
	}

	epoch := uuid.NewString()
	if err := s.index.WriteEpoch(ctx, epoch); err != nil {
		return err
	}
	s.log.Info("index rebuild finished", "topic", s.opts.Topic, "epoch", epoch,
		"streams", len(f.versions), "records", f.records, "skipped", f.skipped,
		"duration", time.Since(started).Round(time.Millisecond))
	return nil
}

// fold accumulates what a rebuild reads, partition by partition.
type fold struct {
	s *Store
	// next is the offset to read next, per partition.
	next map[int32]int64
	// versions is the last version seen per stream, to tell a record that
	// continues its stream from one that repeats versions.
	versions map[string]int64
	pending  map[string]*versions.StreamUpdate
	events   int
	records  int
	skipped  int
}

func newFold(s *Store) *fold {
	return &fold{
		s:        s,
		next:     make(map[int32]int64),
		versions: make(map[string]int64),
		pending:  make(map[string]*versions.StreamUpdate),
	}
}

// readTo reads every partition up to ends and merges it into the index.
func (f *fold) readTo(ctx context.Context, ends map[int32]int64) error {
	for p, end := range ends {
		err := f.s.reader.Scan(ctx, p, f.next[p], end, func(r *kgo.Record) (bool, error) {
			f.next[p] = r.Offset + 1
			return true, f.add(ctx, r)
		})
		if err != nil {
			return fmt.Errorf("rebuild partition %d: %w", p, err)
		}
		f.next[p] = max(f.next[p], end)
	}
	return f.flush(ctx)
}

func (f *fold) add(ctx context.Context, r *kgo.Record) error {
	if r.Attrs.IsControl() {
		return nil
	}
	a, err := kafka.Decode(r)
	if errors.Is(err, kafka.ErrNotAnAppend) {
		f.skipped++
		return nil
	}
	if err != nil {
		return err
	}
	if a.FirstVersion != f.versions[a.StreamName]+1 || len(a.Events) == 0 {
		// A superseded record: its versions belong to an earlier record.
		f.s.log.Warn("rebuild skips a record that does not continue its stream",
			"stream", a.StreamName, "partition", r.Partition, "offset", r.Offset,
			"version", a.FirstVersion, "expected_version", f.versions[a.StreamName]+1)
		f.skipped++
		return nil
	}
	f.versions[a.StreamName] = a.FirstVersion + int64(len(a.Events)) - 1
	f.records++
	f.s.opts.Metrics.IndexRebuildRecords.Inc()

	u := f.pending[a.StreamName]
	if u == nil {
		u = &versions.StreamUpdate{Stream: a.StreamName, Partition: r.Partition}
		f.pending[a.StreamName] = u
	}
	ref := versions.RecordRef{FirstVersion: a.FirstVersion, Offset: r.Offset,
		Events: make([]versions.EventKey, len(a.Events))}
	for i, e := range a.Events {
		ref.Events[i] = versions.EventKey{ID: e.EventId, Hash: contentHash(e)}
	}
	u.Records = append(u.Records, ref)
	f.events += len(a.Events)
	if f.events >= mergeBatchEvents {
		return f.flush(ctx)
	}
	return nil
}

func (f *fold) flush(ctx context.Context) error {
	updates := make([]versions.StreamUpdate, 0, len(f.pending))
	for _, u := range f.pending {
		updates = append(updates, *u)
	}
	if err := f.s.index.Merge(ctx, updates); err != nil {
		return err
	}
	clear(f.pending)
	f.events = 0
	return nil
}
