package versions

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Status is what operators see of the index.
type Status struct {
	// Slots is the number of Redis Cluster hash slots, each with its own
	// epoch key.
	Slots int
	// EpochSlots is how many slots have their epoch: all of them in a
	// complete index.
	EpochSlots int
	// Epochs counts the slots per epoch value; one value after a rebuild.
	Epochs map[string]int
	// LedgerStreams is the number of streams in the slots' ledgers: every
	// stream that has events.
	LedgerStreams int64
	Watermarks    Watermarks
}

// Status reads the epoch and the ledger of every slot and the watermarks.
// It costs a few round trips per Redis node.
func (ix *Index) Status(ctx context.Context) (Status, error) {
	pipe := ix.rdb.Pipeline()
	epochs := make([]*redis.StringCmd, numSlots)
	sizes := make([]*redis.IntCmd, numSlots)
	marked := make([]*redis.BoolCmd, numSlots)
	for s := range uint16(numSlots) {
		epochs[s] = pipe.Get(ctx, ix.keys.epochKey(s))
		sizes[s] = pipe.HLen(ctx, ix.keys.slotKey(s))
		marked[s] = pipe.HExists(ctx, ix.keys.slotKey(s), slotRebuildField)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return Status{}, fmt.Errorf("index status: %w", err)
	}
	st := Status{Slots: numSlots, Epochs: make(map[string]int)}
	for s := range numSlots {
		if e, err := epochs[s].Result(); err == nil {
			st.EpochSlots++
			st.Epochs[e]++
		}
		st.LedgerStreams += sizes[s].Val()
		if marked[s].Val() {
			st.LedgerStreams--
		}
	}
	wm, err := ix.Watermarks(ctx)
	if err != nil {
		return Status{}, err
	}
	st.Watermarks = wm
	return st, nil
}

// CountStreams counts the streams that have an entry in the index by
// scanning the keys, on every master of a cluster. It reads the whole
// keyspace, so on a large Redis it takes a while; progress, when not nil,
// is called with the count so far every 10 000 streams.
func (ix *Index) CountStreams(ctx context.Context, progress func(int64)) (int64, error) {
	var (
		mu    sync.Mutex
		total int64
	)
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, ix.keys.streamPattern(), 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			total++
			if total%10_000 == 0 && progress != nil {
				progress(total)
			}
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := ix.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		return 0, fmt.Errorf("count streams: unsupported redis client %T", ix.rdb)
	}
	if err != nil {
		return 0, fmt.Errorf("count streams: %w", err)
	}
	return total, nil
}

// ClearEpoch removes the epoch of every slot: every sidecar refuses
// appends until a rebuild writes a new one.
func (ix *Index) ClearEpoch(ctx context.Context) error {
	pipe := ix.rdb.Pipeline()
	for s := range uint16(numSlots) {
		pipe.Del(ctx, ix.keys.epochKey(s))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("clear epoch: %w", err)
	}
	return nil
}
