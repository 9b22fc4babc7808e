package versions

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxVersion is the highest version the index represents exactly: Lua
// prints larger numbers in exponent form.
const MaxVersion = 1 << 46

var (
	//go:embed lua/reserve.lua
	reserveSource string
	//go:embed lua/commit.lua
	commitSource string
	//go:embed lua/release.lua
	releaseSource string
	//go:embed lua/merge.lua
	mergeSource string

	reserveScript = redis.NewScript(reserveSource)
	commitScript  = redis.NewScript(commitSource)
	releaseScript = redis.NewScript(releaseSource)
	mergeScript   = redis.NewScript(mergeSource)
)

// Index is the version index of one topic in Redis. It is safe for
// concurrent use.
type Index struct {
	rdb   redis.UniversalClient
	keys  keys
	batch *batcher
}

// New returns the index of topic in rdb. rdb may be a single node, a
// failover client or a cluster. Close it to stop its pipelining.
func New(rdb redis.UniversalClient, topic string) *Index {
	return &Index{rdb: rdb, keys: newKeys(topic), batch: newBatcher(rdb)}
}

// Close waits for the script calls in flight. It does not close rdb.
func (ix *Index) Close() { ix.batch.close() }

// EventKey identifies an event for deduplication: its id and a hash of its
// content.
type EventKey struct {
	ID   string
	Hash string
}

// ReserveRequest asks for the versions after a stream's current one.
type ReserveRequest struct {
	Stream   string
	Expected int64
	Events   []EventKey
	Token    string
	Now      time.Time
	Lease    time.Duration
	// Partition is used when the stream has none pinned yet.
	Partition int32
}

// Reservation is a claim on versions FirstVersion..FirstVersion+Count-1 of
// a stream. When Duplicate is set, nothing was reserved: every event landed
// before, and LastVersion is the version after that earlier append.
type Reservation struct {
	Stream       string
	Token        string
	FirstVersion int64
	Count        int
	Partition    int32
	// LastOffset is the offset of the stream's last committed record, or -1.
	LastOffset int64

	Duplicate   bool
	LastVersion int64
}

// Reserve checks the expectation and records a reservation with a lease.
// It returns a *ConflictError, a *ClashError, an *ExpiredError, ErrBusy,
// ErrNoIndex or a *StreamLostError when it reserves nothing.
func (ix *Index) Reserve(ctx context.Context, req ReserveRequest) (Reservation, error) {
	sk := ix.keys.stream(req.Stream)
	reply, err := ix.batch.run(ctx, reserveScript, sk.list(), reserveArgs(nil, req)...).StringSlice()
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	return parseReserve(req, reply)
}

func reserveArgs(args []any, req ReserveRequest) []any {
	args = append(args, req.Expected, len(req.Events), req.Token, req.Now.UnixMilli(),
		req.Lease.Milliseconds(), req.Partition, req.Stream)
	for _, e := range req.Events {
		args = append(args, e.ID, e.Hash)
	}
	return args
}

func parseReserve(req ReserveRequest, r []string) (Reservation, error) {
	bad := fmt.Errorf("reserve: unexpected reply %q", r)
	if len(r) == 0 {
		return Reservation{}, bad
	}
	switch {
	case r[0] == "OK" && len(r) == 4:
		return Reservation{
			Stream:       req.Stream,
			Token:        req.Token,
			FirstVersion: atoi(r[1]) + 1,
			Count:        len(req.Events),
			Partition:    int32(atoi(r[2])),
			LastOffset:   atoi(r[3]),
		}, nil
	case r[0] == "DUP" && len(r) == 3:
		return Reservation{
			Stream:      req.Stream,
			Partition:   int32(atoi(r[2])),
			Duplicate:   true,
			LastVersion: atoi(r[1]),
		}, nil
	case r[0] == "IDCLASH" && len(r) == 4:
		return Reservation{}, &ClashError{
			Stream: req.Stream, EventID: r[1], Version: atoi(r[2]), OtherContent: r[3] == "content",
		}
	case r[0] == "CONFLICT" && len(r) == 2:
		return Reservation{}, &ConflictError{Stream: req.Stream, Expected: req.Expected, Actual: atoi(r[1])}
	case r[0] == "BUSY":
		return Reservation{}, ErrBusy
	case r[0] == "EXPIRED" && len(r) == 6:
		return Reservation{}, &ExpiredError{Reservation: Reservation{
			Stream:       req.Stream,
			Token:        r[1],
			FirstVersion: atoi(r[2]),
			Count:        int(atoi(r[3])),
			Partition:    int32(atoi(r[4])),
			LastOffset:   atoi(r[5]),
		}}
	case r[0] == "NOINDEX":
		return Reservation{}, ErrNoIndex
	case r[0] == "LOSTSTREAM" && len(r) == 2:
		return Reservation{}, &StreamLostError{Stream: req.Stream, Partition: int32(atoi(r[1]))}
	}
	return Reservation{}, bad
}

// Commit records a reservation's record at offset and clears the
// reservation. events are the keys of the record's events, in order.
// It returns nil when the record is in the index now (committed by this
// call or before it, or late: its lease was released but nothing took its
// versions since), ErrNoIndex when the index was lost meanwhile (a rebuild
// will find the record), a *StreamLostError when the stream lost keys (its
// repair will find the record), and ErrSuperseded when the lease was
// resolved without the record and the stream moved on.
func (ix *Index) Commit(ctx context.Context, r Reservation, offset int64, events []EventKey) error {
	sk := ix.keys.stream(r.Stream)
	reply, err := ix.batch.run(ctx, commitScript, sk.list(), commitArgs(nil, r, offset, events)...).Text()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return parseCommit(r, reply)
}

func commitArgs(args []any, r Reservation, offset int64, events []EventKey) []any {
	args = append(args, r.Token, offset, r.FirstVersion, len(events), r.Partition, r.Stream)
	for _, e := range events {
		args = append(args, e.ID, e.Hash)
	}
	return args
}

func parseCommit(r Reservation, reply string) error {
	switch reply {
	case "OK":
		return nil
	case "NOINDEX":
		return ErrNoIndex
	case "LOSTSTREAM":
		return &StreamLostError{Stream: r.Stream, Partition: r.Partition}
	case "LOST":
		return ErrSuperseded
	}
	return fmt.Errorf("commit: unexpected reply %q", reply)
}

// Release clears a reservation whose record is known not to be in the
// topic. Releasing a reservation that is gone already is not an error.
func (ix *Index) Release(ctx context.Context, r Reservation) error {
	sk := ix.keys.stream(r.Stream)
	if err := ix.batch.run(ctx, releaseScript, []string{sk.meta}, r.Token).Err(); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// Stream is what the index knows of one stream.
type Stream struct {
	Name       string
	Version    int64
	Partition  int32
	LastOffset int64
}

// Lookup returns a stream's entry; found is false when the index has none.
// It returns ErrNoIndex when the stream's slot has lost its epoch, so that
// a lost index never reads as a missing stream.
func (ix *Index) Lookup(ctx context.Context, stream string) (s Stream, found bool, err error) {
	sk := ix.keys.stream(stream)
	pipe := ix.rdb.Pipeline()
	meta := pipe.HMGet(ctx, sk.meta, "v", "p", "o")
	epoch := pipe.Exists(ctx, sk.epoch)
	if _, err := pipe.Exec(ctx); err != nil {
		return Stream{}, false, fmt.Errorf("lookup: %w", err)
	}
	if epoch.Val() == 0 {
		return Stream{}, false, ErrNoIndex
	}
	m := meta.Val()
	if m[0] == nil {
		return Stream{Name: stream}, false, nil
	}
	return Stream{
		Name:       stream,
		Version:    atoi(m[0].(string)),
		Partition:  int32(atoi(m[1].(string))),
		LastOffset: atoi(m[2].(string)),
	}, true, nil
}

// HasEpoch reports whether the index is complete: every slot's epoch key is
// present. It costs one round trip per Redis node.
func (ix *Index) HasEpoch(ctx context.Context) (bool, error) {
	pipe := ix.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, numSlots)
	for s := range uint16(numSlots) {
		cmds[s] = pipe.Exists(ctx, ix.keys.epochKey(s))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("check epoch: %w", err)
	}
	for _, c := range cmds {
		if c.Val() == 0 {
			return false, nil
		}
	}
	return true, nil
}

// WriteEpoch marks the index complete with a new epoch in every slot.
func (ix *Index) WriteEpoch(ctx context.Context, epoch string) error {
	pipe := ix.rdb.Pipeline()
	for s := range uint16(numSlots) {
		pipe.Set(ctx, ix.keys.epochKey(s), epoch, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("write epoch: %w", err)
	}
	return nil
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

var (
	// ErrBusy means another append to the stream holds a live lease.
	ErrBusy = errors.New("stream is busy with another append")
	// ErrNoIndex means the index lost data and must be rebuilt first.
	ErrNoIndex = errors.New("version index is incomplete")
	// ErrSuperseded means a reservation's lease ran out and was resolved
	// before its record landed; the record does not count.
	ErrSuperseded = errors.New("reservation was superseded after its lease expired")
)

// ConflictError is a failed expected-version check.
type ConflictError struct {
	Stream   string
	Expected int64
	Actual   int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("stream %q: expected version %s, actual version %d",
		e.Stream, expectedString(e.Expected), e.Actual)
}

func expectedString(v int64) string {
	switch v {
	case -1:
		return "any"
	case -2:
		return "stream exists"
	}
	return strconv.FormatInt(v, 10)
}

// ClashError is an event id that the stream holds already, either with other
// content or as part of another append.
type ClashError struct {
	Stream       string
	EventID      string
	Version      int64
	OtherContent bool
}

func (e *ClashError) Error() string {
	if e.OtherContent {
		return fmt.Sprintf("stream %q: event id %q exists at version %d with other content",
			e.Stream, e.EventID, e.Version)
	}
	return fmt.Sprintf("stream %q: event id %q exists at version %d, in an append with other events",
		e.Stream, e.EventID, e.Version)
}

// StreamLostError is a stream that lost some of its keys in the index, or
// whose repair is running: answering from what is left could give out a
// version twice. Partition is where the stream's records are, -1 when the
// index no longer knows.
type StreamLostError struct {
	Stream    string
	Partition int32
}

func (e *StreamLostError) Error() string {
	return fmt.Sprintf("stream %q lost its entry in the version index", e.Stream)
}

// ExpiredError is a reservation whose lease ran out. Whether its record
// landed must be found out in the partition before the stream moves on.
type ExpiredError struct {
	Reservation Reservation
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("stream %q: lease of the append from version %d expired",
		e.Reservation.Stream, e.Reservation.FirstVersion)
}
