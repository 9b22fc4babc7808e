package versions

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Records returns the stream's records that hold versions low..high, in
// version order, from the stream's offset index. It costs two look-ups in
// a sorted set of one entry per record, whatever the partition holds.
func (ix *Index) Records(ctx context.Context, stream string, low, high int64) ([]RecordRef, error) {
	sk := ix.keys.stream(stream)
	pipe := ix.rdb.Pipeline()
	// The record holding low starts at or before it.
	first := pipe.ZRevRangeByScoreWithScores(ctx, sk.offsets, &redis.ZRangeBy{
		Max: strconv.FormatInt(low, 10), Min: "-inf", Count: 1,
	})
	rest := pipe.ZRangeByScoreWithScores(ctx, sk.offsets, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(low, 10), Max: strconv.FormatInt(high, 10),
	})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read offset index: %w", err)
	}
	zs := append(first.Val(), rest.Val()...)
	refs := make([]RecordRef, 0, len(zs))
	for _, z := range zs {
		off, err := strconv.ParseInt(z.Member.(string), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read offset index of %q: bad offset %q", stream, z.Member)
		}
		refs = append(refs, RecordRef{FirstVersion: int64(z.Score), Offset: off})
	}
	return refs, nil
}

// FirstOffset returns the offset of the stream's first record, or -1.
func (ix *Index) FirstOffset(ctx context.Context, stream string) (int64, error) {
	zs, err := ix.rdb.ZRangeWithScores(ctx, ix.keys.stream(stream).offsets, 0, 0).Result()
	if err != nil {
		return 0, fmt.Errorf("read offset index: %w", err)
	}
	if len(zs) == 0 {
		return -1, nil
	}
	return strconv.ParseInt(zs[0].Member.(string), 10, 64)
}
