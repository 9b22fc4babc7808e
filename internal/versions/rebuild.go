package versions

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// RecordRef is one record of a stream, as a rebuild finds it in the topic.
type RecordRef struct {
	FirstVersion int64
	Offset       int64
	// Events are the record's events, in version order.
	Events []EventKey
}

// StreamUpdate is what a rebuild learned about one stream: records after
// the ones it merged before, in order.
type StreamUpdate struct {
	Stream    string
	Partition int32
	Records   []RecordRef
}

// Merge adds what a rebuild read to the index, one script call per stream,
// pipelined. Merging never lowers a stream's version and writes only
// values derived from the topic, so it is safe to repeat and to run beside
// live appends.
func (ix *Index) Merge(ctx context.Context, updates []StreamUpdate) error {
	if len(updates) == 0 {
		return nil
	}
	if err := mergeScript.Load(ctx, ix.rdb).Err(); err != nil {
		return fmt.Errorf("merge: load script: %w", err)
	}
	pipe := ix.rdb.Pipeline()
	for _, u := range updates {
		if len(u.Records) == 0 {
			continue
		}
		sk := ix.keys.stream(u.Stream)
		last := u.Records[len(u.Records)-1]
		lastVersion := last.FirstVersion + int64(len(last.Events)) - 1
		args := []any{lastVersion, u.Partition, last.Offset, len(u.Records)}
		for _, r := range u.Records {
			args = append(args, r.FirstVersion, r.Offset)
		}
		for _, r := range u.Records {
			for i, e := range r.Events {
				args = append(args, e.ID, strconv.FormatInt(r.FirstVersion+int64(i), 10)+":"+e.Hash)
			}
		}
		mergeScript.EvalSha(ctx, pipe, []string{sk.meta, sk.ids, sk.offsets}, args...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// A script flush between the load and the pipeline: send the
		// source instead. Merging twice is harmless.
		return ix.mergeEval(ctx, updates)
	}
	if err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return fmt.Errorf("merge: %w", c.Err())
		}
	}
	return nil
}

func (ix *Index) mergeEval(ctx context.Context, updates []StreamUpdate) error {
	for _, u := range updates {
		if err := ix.Merge(ctx, []StreamUpdate{u}); err != nil {
			return err
		}
	}
	return nil
}
