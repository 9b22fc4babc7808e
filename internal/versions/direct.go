package versions

import (
	"context"
	"fmt"
)

// ReserveDirect is Reserve sent as one EVALSHA on a round trip of its own,
// sharing no pipeline with concurrent calls: what a bare go-redis client
// pays for the reserve script. It is for benchmarks that set an append
// against the Redis work inside it.
func (ix *Index) ReserveDirect(ctx context.Context, req ReserveRequest) (Reservation, error) {
	sk := ix.keys.stream(req.Stream)
	reply, err := reserveScript.Run(ctx, ix.rdb, sk.list(), reserveArgs(nil, req)...).StringSlice()
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	return parseReserve(req, reply)
}

// CommitDirect is Commit sent the same way as ReserveDirect. Any reply
// but OK is an error.
func (ix *Index) CommitDirect(ctx context.Context, r Reservation, offset int64, events []EventKey) error {
	sk := ix.keys.stream(r.Stream)
	reply, err := commitScript.Run(ctx, ix.rdb, sk.list(), commitArgs(nil, r, offset, events)...).Text()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if reply != "OK" {
		return fmt.Errorf("commit: reply %q", reply)
	}
	return nil
}

// CommitAndReserveDirect is CommitAndReserve sent the same way as
// ReserveDirect: the one script call of an append to a stream whose
// previous append's commit is pending. A commit reply but OK is an error.
func (ix *Index) CommitAndReserveDirect(ctx context.Context, c Commit, req ReserveRequest) (Reservation, error) {
	sk := ix.keys.stream(req.Stream)
	reply, err := commitReserveScript.Run(ctx, ix.rdb, sk.list(), commitReserveArgs(c, req)...).Slice()
	if err != nil {
		return Reservation{}, fmt.Errorf("commit and reserve: %w", err)
	}
	commitReply, reserveReply, ok := splitCommitReserve(reply)
	if !ok || commitReply != "OK" {
		return Reservation{}, fmt.Errorf("commit and reserve: reply %q", reply)
	}
	return parseReserve(req, reserveReply)
}
