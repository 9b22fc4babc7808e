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
		keys, args := mergeCall(ix.keys.stream(u.Stream), u)
		mergeScript.EvalSha(ctx, pipe, keys, args...)
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

// mergeEval merges one stream at a time, each call sending the script's
// source when Redis does not have it cached.
func (ix *Index) mergeEval(ctx context.Context, updates []StreamUpdate) error {
	for _, u := range updates {
		if len(u.Records) == 0 {
			continue
		}
		keys, args := mergeCall(ix.keys.stream(u.Stream), u)
		if err := mergeScript.Run(ctx, ix.rdb, keys, args...).Err(); err != nil {
			return fmt.Errorf("merge: %w", err)
		}
	}
	return nil
}

func mergeCall(sk streamKeys, u StreamUpdate) (keys []string, args []any) {
	last := u.Records[len(u.Records)-1]
	lastVersion := last.FirstVersion + int64(len(last.Events)) - 1
	args = []any{lastVersion, u.Partition, last.Offset, len(u.Records), u.Stream}
	for _, r := range u.Records {
		args = append(args, r.FirstVersion, r.Offset)
	}
	for _, r := range u.Records {
		for i, e := range r.Events {
			args = append(args, e.ID, strconv.FormatInt(r.FirstVersion+int64(i), 10)+":"+e.Hash)
		}
	}
	return []string{sk.meta, sk.ids, sk.offsets, sk.slot}, args
}

// Indexed is what the index holds of one stream update: the stream's
// version, and for each record whether the index has it at its version.
type Indexed struct {
	Version int64
	Has     []bool
}

// Indexed tells, for each update, what the index holds already, so that a
// rebuild resuming in the middle of the topic can tell a record that the
// index has from one that was superseded. It costs one round trip per
// Redis node.
func (ix *Index) Indexed(ctx context.Context, updates []StreamUpdate) ([]Indexed, error) {
	pipe := ix.rdb.Pipeline()
	vs := make([]*redis.StringCmd, len(updates))
	scores := make([][]*redis.FloatCmd, len(updates))
	for i, u := range updates {
		sk := ix.keys.stream(u.Stream)
		vs[i] = pipe.HGet(ctx, sk.meta, "v")
		scores[i] = make([]*redis.FloatCmd, len(u.Records))
		for j, r := range u.Records {
			scores[i][j] = pipe.ZScore(ctx, sk.offsets, strconv.FormatInt(r.Offset, 10))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("read indexed records: %w", err)
	}
	out := make([]Indexed, len(updates))
	for i, u := range updates {
		out[i].Version = atoi(vs[i].Val())
		out[i].Has = make([]bool, len(u.Records))
		for j, r := range u.Records {
			score, err := scores[i][j].Result()
			out[i].Has[j] = err == nil && int64(score) == r.FirstVersion
		}
	}
	return out, nil
}
