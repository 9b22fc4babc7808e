package versions

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

var (
	//go:embed lua/advance.lua
	advanceSource string
	advanceScript = redis.NewScript(advanceSource)
)

// watermarkRebuildField names the rebuild that owns the watermarks; every
// other field of the hash is a partition.
const watermarkRebuildField = "rebuild"

// Watermarks are how far a rebuild has read the topic into the index.
type Watermarks struct {
	// Rebuild identifies the rebuild that owns them; empty when the index
	// has none.
	Rebuild string
	// Next is, per partition, the first offset the rebuild has not merged
	// yet. A partition without an entry was not read.
	Next map[int32]int64
}

// Watermarks returns the index's watermarks.
func (ix *Index) Watermarks(ctx context.Context) (Watermarks, error) {
	m, err := ix.rdb.HGetAll(ctx, ix.keys.watermarks()).Result()
	if err != nil {
		return Watermarks{}, fmt.Errorf("read watermarks: %w", err)
	}
	w := Watermarks{Rebuild: m[watermarkRebuildField], Next: make(map[int32]int64)}
	for k, v := range m {
		if k == watermarkRebuildField {
			continue
		}
		p, perr := strconv.ParseInt(k, 10, 32)
		o, oerr := strconv.ParseInt(v, 10, 64)
		if perr != nil || oerr != nil {
			return Watermarks{}, fmt.Errorf("read watermarks: bad entry %q: %q", k, v)
		}
		w.Next[int32(p)] = o
	}
	return w, nil
}

// StartRebuild makes rebuild id the owner of the watermarks, with nothing
// read yet, and marks every slot with id. A slot that loses its data
// afterwards loses the mark, which is how RebuildIntact tells that the
// watermarks no longer describe the index.
func (ix *Index) StartRebuild(ctx context.Context, id string) error {
	wm := ix.keys.watermarks()
	if err := ix.rdb.Del(ctx, wm).Err(); err != nil {
		return fmt.Errorf("start rebuild: %w", err)
	}
	if err := ix.rdb.HSet(ctx, wm, watermarkRebuildField, id).Err(); err != nil {
		return fmt.Errorf("start rebuild: %w", err)
	}
	pipe := ix.rdb.Pipeline()
	for s := range uint16(numSlots) {
		pipe.HSet(ctx, ix.keys.slotKey(s), slotRebuildField, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("start rebuild: mark slots: %w", err)
	}
	return nil
}

// RebuildIntact reports whether every slot still carries the mark of
// rebuild id, so that what the rebuild merged is still in the index and a
// new rebuild may resume from the watermarks. It costs one round trip per
// Redis node.
func (ix *Index) RebuildIntact(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	pipe := ix.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, numSlots)
	for s := range uint16(numSlots) {
		cmds[s] = pipe.HGet(ctx, ix.keys.slotKey(s), slotRebuildField)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return false, fmt.Errorf("check rebuild marks: %w", err)
	}
	for _, c := range cmds {
		if c.Err() != nil && c.Err() != redis.Nil {
			return false, fmt.Errorf("check rebuild marks: %w", c.Err())
		}
		if c.Val() != id {
			return false, nil
		}
	}
	return true, nil
}

// AdvanceWatermarks records next as how far rebuild id has merged the
// topic. Call it only after the merges up to next returned. It reports
// false, recording nothing, when a later rebuild took the watermarks over.
func (ix *Index) AdvanceWatermarks(ctx context.Context, id string, next map[int32]int64) (bool, error) {
	args := make([]any, 0, 1+2*len(next))
	args = append(args, id)
	for p, o := range next {
		args = append(args, strconv.FormatInt(int64(p), 10), o)
	}
	n, err := advanceScript.Run(ctx, ix.rdb, []string{ix.keys.watermarks()}, args...).Int()
	if err != nil {
		return false, fmt.Errorf("advance watermarks: %w", err)
	}
	return n == 1, nil
}
