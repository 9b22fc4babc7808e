package versions

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/repair.lua
	repairSource string
	repairScript = redis.NewScript(repairSource)
	//go:embed lua/check.lua
	checkSource string
	checkScript = redis.NewScript(checkSource)
)

// StreamLost tells, without changing anything, whether a stream lost keys
// or is under repair, as a reservation would find; partition is where its
// records are, -1 when the index does not know.
func (ix *Index) StreamLost(ctx context.Context, stream string) (lost bool, partition int32, err error) {
	sk := ix.keys.stream(stream)
	r, err := checkScript.Run(ctx, ix.rdb, []string{sk.meta, sk.ids, sk.offsets, sk.slot}, stream).Slice()
	if err != nil {
		return false, 0, fmt.Errorf("check stream: %w", err)
	}
	if len(r) != 2 {
		return false, 0, fmt.Errorf("check stream: unexpected reply %v", r)
	}
	n, _ := r[0].(int64)
	p, _ := r[1].(string)
	return n == 1, int32(atoi(p)), nil
}

// repairField marks a stream under repair in its meta hash.
const repairField = "rr"

// MarkRepair blocks a stream that lost keys until EndRepair: every
// reservation and every commit without its reservation answers a
// *StreamLostError meanwhile, so nobody appends to a stream whose entry is
// only partly merged again.
func (ix *Index) MarkRepair(ctx context.Context, stream string) error {
	if err := ix.rdb.HSet(ctx, ix.keys.stream(stream).meta, repairField, "1").Err(); err != nil {
		return fmt.Errorf("mark repair: %w", err)
	}
	return nil
}

// EndRepair unblocks a stream after every record of it in the topic was
// merged again. found tells whether the topic holds any record of the
// stream; without one, what is left of the stream in the index is removed
// and the stream is new again.
func (ix *Index) EndRepair(ctx context.Context, stream string, found bool) error {
	sk := ix.keys.stream(stream)
	flag := "0"
	if found {
		flag = "1"
	}
	err := repairScript.Run(ctx, ix.rdb, []string{sk.meta, sk.ids, sk.offsets, sk.slot}, stream, flag).Err()
	if err != nil {
		return fmt.Errorf("end repair: %w", err)
	}
	return nil
}
