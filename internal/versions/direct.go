package versions

import (
	"context"
	"fmt"
)

// ReserveDirect is Reserve sent as one EVALSHA on a round trip of its own,
// sharing no pipeline with concurrent calls: what a bare go-redis client
// pays for the reserve script. It is for benchmarks that set an append
// against the Redis work inside it. Its arguments must stay in step with
// Reserve's.
func (ix *Index) ReserveDirect(ctx context.Context, req ReserveRequest) (Reservation, error) {
	sk := ix.keys.stream(req.Stream)
	args := make([]any, 0, 7+2*len(req.Events))
	args = append(args, req.Expected, len(req.Events), req.Token, req.Now.UnixMilli(),
		req.Lease.Milliseconds(), req.Partition, req.Stream)
	for _, e := range req.Events {
		args = append(args, e.ID, e.Hash)
	}
	reply, err := reserveScript.Run(ctx, ix.rdb, sk.list(), args...).StringSlice()
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve: %w", err)
	}
	return parseReserve(req, reply)
}

// CommitDirect is Commit sent the same way as ReserveDirect. Any reply
// but OK is an error. Its arguments must stay in step with Commit's.
func (ix *Index) CommitDirect(ctx context.Context, r Reservation, offset int64, events []EventKey) error {
	sk := ix.keys.stream(r.Stream)
	args := make([]any, 0, 6+2*len(events))
	args = append(args, r.Token, offset, r.FirstVersion, len(events), r.Partition, r.Stream)
	for _, e := range events {
		args = append(args, e.ID, e.Hash)
	}
	reply, err := commitScript.Run(ctx, ix.rdb, sk.list(), args...).Text()
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if reply != "OK" {
		return fmt.Errorf("commit: reply %q", reply)
	}
	return nil
}
