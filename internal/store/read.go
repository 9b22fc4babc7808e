package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// readAhead is how many records of a stream are fetched at once.
const readAhead = 16

// ErrStreamNotFound is a stream without events.
var ErrStreamNotFound = errors.New("stream not found")

// StreamInfo is what the index knows of a stream.
type StreamInfo struct {
	Name        string
	Version     int64
	Partition   int32
	FirstOffset int64
	LastOffset  int64
}

// GetStream returns a stream's version and positions without reading
// events. It returns an error wrapping ErrStreamNotFound for a stream
// without events.
func (s *Store) GetStream(ctx context.Context, stream string) (StreamInfo, error) {
	if err := checkName("stream_name", stream, s.opts.Limits.MaxStreamNameBytes); err != nil {
		return StreamInfo{}, err
	}
	if !s.ready.Load() {
		return StreamInfo{}, ErrRebuilding
	}
	if err := s.awaitStream(ctx, stream); err != nil {
		return StreamInfo{}, err
	}
	st, found, err := s.index.Lookup(ctx, stream)
	if errors.Is(err, versions.ErrNoIndex) {
		s.lostIndex()
		return StreamInfo{}, ErrRebuilding
	}
	if err != nil {
		return StreamInfo{}, unavailable("redis: %v", err)
	}
	if !found || st.Version == 0 {
		if err := s.checkStreamLost(ctx, stream); err != nil {
			return StreamInfo{}, err
		}
		return StreamInfo{}, fmt.Errorf("%w: %q has no events", ErrStreamNotFound, stream)
	}
	first, err := s.index.FirstOffset(ctx, stream)
	if err != nil {
		return StreamInfo{}, unavailable("redis: %v", err)
	}
	if first < 0 {
		// A version without an offset index: the stream lost keys.
		if err := s.checkStreamLost(ctx, stream); err != nil {
			return StreamInfo{}, err
		}
	}
	return StreamInfo{Name: stream, Version: st.Version, Partition: st.Partition,
		FirstOffset: first, LastOffset: st.LastOffset}, nil
}

// ReadRequest is a range of one stream.
type ReadRequest struct {
	Stream string
	// From is the first version returned; 0 is the first event forwards
	// and the last backwards.
	From int64
	// Max bounds the events returned; 0 is no bound.
	Max       int64
	Backwards bool
}

// ReadStream calls fn with the stream's events in the requested range and
// direction. It reads the stream's records by their offsets from the index,
// so its cost follows the stream's length, not the partition's. It returns
// an error wrapping ErrStreamNotFound for a stream without events.
func (s *Store) ReadStream(ctx context.Context, req ReadRequest, fn func(*eventstorepb.Event) error) error {
	if err := checkName("stream_name", req.Stream, s.opts.Limits.MaxStreamNameBytes); err != nil {
		return err
	}
	if req.From < 0 {
		return invalid("from_version", "%d is negative", req.From)
	}
	if req.Max < 0 {
		return invalid("max_count", "%d is negative", req.Max)
	}
	info, err := s.GetStream(ctx, req.Stream)
	if err != nil {
		return err
	}
	low, high, ok := readRange(req, info.Version)
	if !ok {
		return nil
	}
	refs, err := s.index.Records(ctx, req.Stream, low, high)
	if err != nil {
		return unavailable("redis: %v", err)
	}
	if req.Backwards {
		for i, j := 0, len(refs)-1; i < j; i, j = i+1, j-1 {
			refs[i], refs[j] = refs[j], refs[i]
		}
	}
	return s.fetchEach(ctx, info.Partition, refs, func(a *eventstorepb.RecordedAppend) error {
		for i := range a.Events {
			if req.Backwards {
				i = len(a.Events) - 1 - i
			}
			e := a.Events[i]
			if e.AggregateVersion < low || e.AggregateVersion > high {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// readRange turns a request into the versions low..high to return; ok is
// false for a range past the end.
func readRange(req ReadRequest, version int64) (low, high int64, ok bool) {
	if req.Backwards {
		high = req.From
		if high == 0 || high > version {
			high = version
		}
		low = 1
		if req.Max > 0 && high-req.Max+1 > 1 {
			low = high - req.Max + 1
		}
		return low, high, true
	}
	low = max(req.From, 1)
	if low > version {
		return 0, 0, false
	}
	high = version
	if req.Max > 0 && low+req.Max-1 < high {
		high = low + req.Max - 1
	}
	return low, high, true
}

// fetchEach fetches the records at refs, readAhead at a time, and calls fn
// with each in the order of refs.
func (s *Store) fetchEach(ctx context.Context, partition int32, refs []versions.RecordRef,
	fn func(*eventstorepb.RecordedAppend) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		a   *eventstorepb.RecordedAppend
		err error
	}
	pending := make([]chan result, len(refs))
	start := func(i int) {
		ch := make(chan result, 1)
		pending[i] = ch
		go func() {
			r, err := s.reader.Fetcher.Record(ctx, partition, refs[i].Offset)
			if err != nil {
				ch <- result{err: err}
				return
			}
			a, err := kafka.Decode(r)
			ch <- result{a: a, err: err}
		}()
	}
	for i := 0; i < min(readAhead, len(refs)); i++ {
		start(i)
	}
	for i := range refs {
		res := <-pending[i]
		if next := i + readAhead; next < len(refs) {
			start(next)
		}
		if res.err != nil {
			return unavailable("kafka: reading stream record at offset %d: %v", refs[i].Offset, res.err)
		}
		if err := fn(res.a); err != nil {
			return err
		}
	}
	return nil
}
