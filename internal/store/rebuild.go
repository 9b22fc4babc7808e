package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
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
			err := s.rebuild(s.ctx, s.opts.RebuildSettle)
			if err == nil || s.ctx.Err() != nil {
				break
			}
			s.log.Warn("index rebuild failed, retrying", "topic", s.opts.Topic, "err", err)
			if sleep(s.ctx, time.Second) != nil {
				break
			}
		}
		// Ready is set under the lock: set after it, it could land after
		// a loss noticed in between had started the next rebuild, and
		// admit appends while that one runs.
		s.rebuildMu.Lock()
		s.rebuilding = false
		if s.ctx.Err() == nil {
			s.ready.Store(true)
		}
		s.rebuildMu.Unlock()
	}()
}

// rebuild rebuilds the index, waiting settle for appends in flight.
func (s *Store) rebuild(ctx context.Context, settle time.Duration) error {
	defer s.measureRebuild()()
	for {
		read := int64(0)
		_, err := RebuildIndex(ctx, s.index, s.reader, RebuildOptions{
			Topic: s.opts.Topic, Settle: settle, Logger: s.log,
			Progress: func(p RebuildProgress) {
				s.opts.Metrics.IndexRebuildRecords.Add(float64(p.Done - read))
				read = p.Done
			},
		})
		if !errors.Is(err, errLostDuringRebuild) {
			return err
		}
		// Starting over reads the whole topic: the loss took the
		// watermarks too.
		s.log.Warn("redis lost data during the index rebuild; rebuilding again", "topic", s.opts.Topic)
	}
}

// RebuildOptions configure RebuildIndex.
type RebuildOptions struct {
	// Topic names the event topic in logs.
	Topic string
	// Settle is how long after its start the rebuild waits for appends
	// that were in flight when the index was lost before it writes the
	// epoch; 0 or less waits not at all (for a rebuild whose process is
	// the index's only writer).
	Settle time.Duration
	// Full reads every partition from its first offset even when the
	// watermarks of an earlier rebuild would let it resume.
	Full bool
	// RefuseAppends removes the epoch once the rebuild owns the
	// watermarks, so that every sidecar refuses appends until the rebuild
	// has written a new one. It is for an index suspected to be stale (a
	// failover to a lagging replica), which merging beside live appends
	// would correct only after writers were given versions twice.
	RefuseAppends bool
	// Logger receives the rebuild's lifecycle logs. Default slog.Default().
	Logger *slog.Logger
	// Progress, when not nil, is called from the rebuilding goroutine
	// every progressEvery records and at the end of every partition read.
	Progress func(RebuildProgress)
}

// RebuildProgress is how far a rebuild has read.
type RebuildProgress struct {
	// Partition is the partition being read.
	Partition int32
	// Done is the number of offsets read, over all partitions.
	Done int64
	// Total is the number of offsets to read; it grows when the settle
	// pass finds records appended meanwhile.
	Total int64
}

// RebuildStats describe a finished rebuild.
type RebuildStats struct {
	// Epoch is the epoch the rebuild wrote.
	Epoch string
	// Resumed is set when the rebuild continued from the watermarks of an
	// earlier one instead of the start of the topic.
	Resumed bool
	// Streams, Records and Skipped count the streams seen, the records
	// merged and the records left out (superseded or foreign).
	Streams, Records, Skipped int
	Duration                  time.Duration
}

// progressEvery is how many records a rebuild reads between two progress
// reports.
const progressEvery = 1000

// RebuildIndex merges the topic that rd reads into ix and then writes a
// new epoch, which lets appends in again. Merging only raises versions, so
// it is safe beside live appends and other rebuilds.
//
// It resumes from the watermarks when an earlier rebuild left them and no
// slot of the index lost data since that rebuild started (every slot still
// carries its mark); otherwise, or with opts.Full, it reads every partition
// from its first offset. As it reads it advances the watermarks, so that a
// rebuild interrupted by a crash or a failure is resumed where it stopped.
// Before it writes the epoch it waits opts.Settle from its start and reads
// what landed meanwhile, so that an append that was in flight when the
// index was lost is indexed too.
func RebuildIndex(ctx context.Context, ix *versions.Index, rd *kafka.Reader, opts RebuildOptions) (RebuildStats, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	started := time.Now()
	ends, err := rd.EndOffsets(ctx)
	if err != nil {
		return RebuildStats{}, err
	}
	// The epoch is prepared in every slot before anything is read or
	// merged: a slot that loses its data during the rebuild loses the
	// prepared epoch too, and sealing leaves that slot without one.
	seal, epoch := uuid.NewString(), uuid.NewString()
	if err := ix.PrepareSeal(ctx, seal, epoch); err != nil {
		return RebuildStats{}, err
	}
	f := newFold(ix, rd, opts.Logger)
	f.progress = opts.Progress
	resumed, err := f.start(ctx, opts.Full, ends)
	if err != nil {
		return RebuildStats{}, err
	}
	// After the start, not before: a sidecar that rebuilds because the
	// epoch is gone then resumes from this rebuild's watermarks, never
	// from those of an earlier one.
	if opts.RefuseAppends {
		if err := ix.ClearEpoch(ctx); err != nil {
			return RebuildStats{}, err
		}
		opts.Logger.Info("epoch removed: every sidecar refuses appends until the rebuild ends", "topic", opts.Topic)
	}
	opts.Logger.Info("index rebuild started", "topic", opts.Topic, "partitions", len(ends),
		"resumed", resumed, "records_to_read", f.total)
	if err := f.readTo(ctx, ends); err != nil {
		return RebuildStats{}, err
	}

	if opts.Settle > 0 {
		if err := sleep(ctx, time.Until(started.Add(opts.Settle))); err != nil {
			return RebuildStats{}, err
		}
		if ends, err = rd.EndOffsets(ctx); err != nil {
			return RebuildStats{}, err
		}
		if err := f.readTo(ctx, ends); err != nil {
			return RebuildStats{}, err
		}
	}

	sealed, err := ix.SealRebuild(ctx, seal)
	if err != nil {
		return RebuildStats{}, err
	}
	if !sealed {
		return RebuildStats{}, errLostDuringRebuild
	}
	stats := RebuildStats{Epoch: epoch, Resumed: resumed, Streams: len(f.versions),
		Records: f.records, Skipped: f.skipped, Duration: time.Since(started)}
	opts.Logger.Info("index rebuild finished", "topic", opts.Topic, "epoch", epoch, "resumed", resumed,
		"streams", stats.Streams, "records", stats.Records, "skipped", stats.Skipped,
		"duration", stats.Duration.Round(time.Millisecond))
	return stats, nil
}

// errLostDuringRebuild is a rebuild that found some slot without its
// prepared epoch when it finished: Redis lost data while it ran, so what
// it merged may be gone, and that slot got no epoch.
var errLostDuringRebuild = errors.New("the index lost data while it was rebuilt")

// fold accumulates what a rebuild or a repair reads, partition by
// partition, and merges it into the index in batches.
type fold struct {
	ix  *versions.Index
	rd  *kafka.Reader
	log *slog.Logger
	// only, when set, limits the fold to one stream (a repair).
	only string
	// rebuild owns the watermarks the fold advances; empty for a repair.
	rebuild string
	// resumed is set when the fold started from watermarks: a stream's
	// first record in the fold then continues what the index holds.
	resumed bool
	// next is the offset to read next, per partition, and ends the offset
	// each partition is read to.
	next, ends map[int32]int64
	// versions is the last version merged per stream, to tell a record
	// that continues its stream from one that repeats versions.
	versions map[string]int64
	pending  map[string]*versions.StreamUpdate
	events   int

	records, skipped int
	progress         func(RebuildProgress)
	done, total      int64
}

func newFold(ix *versions.Index, rd *kafka.Reader, log *slog.Logger) *fold {
	return &fold{
		ix:       ix,
		rd:       rd,
		log:      log,
		next:     make(map[int32]int64),
		ends:     make(map[int32]int64),
		versions: make(map[string]int64),
		pending:  make(map[string]*versions.StreamUpdate),
	}
}

// start decides where the fold begins: at the watermarks of an earlier
// rebuild that the index still holds entirely, or at the start of every
// partition under a new rebuild id.
func (f *fold) start(ctx context.Context, full bool, ends map[int32]int64) (resumed bool, err error) {
	wm, err := f.ix.Watermarks(ctx)
	if err != nil {
		return false, err
	}
	if !full && wm.Rebuild != "" {
		if resumed, err = f.ix.RebuildIntact(ctx, wm.Rebuild); err != nil {
			return false, err
		}
	}
	if resumed {
		f.rebuild, f.resumed = wm.Rebuild, true
		for p := range ends {
			f.next[p] = min(wm.Next[p], ends[p])
		}
	} else {
		f.rebuild = uuid.NewString()
		if err := f.ix.StartRebuild(ctx, f.rebuild); err != nil {
			return false, err
		}
		for p := range ends {
			f.next[p] = 0
		}
	}
	for p, end := range ends {
		f.ends[p] = end
		f.total += max(end-f.next[p], 0)
	}
	return resumed, nil
}

// readTo reads every partition up to ends and merges it into the index.
func (f *fold) readTo(ctx context.Context, ends map[int32]int64) error {
	for p, end := range ends {
		// A partition added while the rebuild ran is read from its start.
		if end > f.ends[p] {
			f.total += end - f.ends[p]
			f.ends[p] = end
		}
	}
	for p, end := range ends {
		err := f.rd.Scan(ctx, p, f.next[p], end, func(r *kgo.Record) (bool, error) {
			f.done += r.Offset + 1 - f.next[p]
			f.next[p] = r.Offset + 1
			if err := f.add(ctx, r); err != nil {
				return false, err
			}
			if f.progress != nil && f.done%progressEvery == 0 {
				f.progress(RebuildProgress{Partition: p, Done: f.done, Total: f.total})
			}
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("rebuild partition %d: %w", p, err)
		}
		if end > f.next[p] {
			f.done += end - f.next[p]
			f.next[p] = end
		}
		if f.progress != nil {
			f.progress(RebuildProgress{Partition: p, Done: f.done, Total: f.total})
		}
	}
	return f.flush(ctx)
}

func (f *fold) add(ctx context.Context, r *kgo.Record) error {
	if r.Attrs.IsControl() || (f.only != "" && string(r.Key) != f.only) {
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
	if f.only != "" && a.StreamName != f.only {
		return nil
	}
	if len(a.Events) == 0 {
		f.skip(a, r, "an append without events")
		return nil
	}

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

func (f *fold) skip(a *eventstorepb.RecordedAppend, r *kgo.Record, why string) {
	f.log.Warn("rebuild skips a record: "+why, "stream", a.StreamName, "partition", r.Partition,
		"offset", r.Offset, "version", a.FirstVersion, "expected_version", f.versions[a.StreamName]+1)
	f.skipped++
}

// flush keeps, of every pending record, those that continue their stream,
// merges them and advances the watermarks to what was read.
//
// A record continues its stream when its first version follows the last
// one merged. A stream first met in a resumed fold continues what the
// index holds; a record the index has already, at its version, is kept as
// well (merging it again is harmless): live appends index records past the
// watermarks. Any other record repeats versions of an earlier one: an
// append that landed after its lease was resolved and the stream moved on.
func (f *fold) flush(ctx context.Context) error {
	updates := make([]versions.StreamUpdate, 0, len(f.pending))
	for _, u := range f.pending {
		updates = append(updates, *u)
	}
	var indexed []versions.Indexed
	if f.resumed && len(updates) > 0 {
		var err error
		if indexed, err = f.ix.Indexed(ctx, updates); err != nil {
			return err
		}
	}
	for i := range updates {
		u := &updates[i]
		last, seen := f.versions[u.Stream]
		if !seen && indexed != nil {
			last = indexed[i].Version
		}
		kept := u.Records[:0]
		for j, r := range u.Records {
			n := int64(len(r.Events))
			switch {
			case r.FirstVersion == last+1:
				last += n
			case indexed != nil && indexed[i].Has[j]:
				last = max(last, r.FirstVersion+n-1)
			default:
				f.log.Warn("rebuild skips a record that does not continue its stream",
					"stream", u.Stream, "partition", u.Partition, "offset", r.Offset,
					"version", r.FirstVersion, "expected_version", last+1)
				f.skipped++
				continue
			}
			kept = append(kept, r)
		}
		u.Records = kept
		f.versions[u.Stream] = last
		f.records += len(kept)
	}
	if err := f.ix.Merge(ctx, updates); err != nil {
		return err
	}
	clear(f.pending)
	f.events = 0

	if f.rebuild == "" {
		return nil
	}
	owned, err := f.ix.AdvanceWatermarks(ctx, f.rebuild, f.next)
	if err != nil {
		return err
	}
	if !owned {
		// A rebuild started later reads the topic again; this one goes on
		// merging, which is harmless, without claiming progress.
		f.log.Info("another rebuild took over the watermarks", "rebuild", f.rebuild)
		f.rebuild = ""
	}
	return nil
}
