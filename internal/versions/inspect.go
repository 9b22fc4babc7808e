package versions

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// inspectBatch is how many streams one pipelined round trip of Inspect
// reads.
const inspectBatch = 512

// Entry is a stream's entry in the index as it stands, read without any of
// the checks an append makes, for tools that compare the index with the
// topic.
type Entry struct {
	Stream string
	// Found is false when the index holds no version for the stream.
	Found      bool
	Version    int64
	Partition  int32
	LastOffset int64
	// Reservation, when Reserved, is the append holding the stream's
	// lease and LeaseDeadline when that lease ends.
	Reserved      bool
	Reservation   Reservation
	LeaseDeadline time.Time
	// Epoch reports whether the stream's slot has its epoch.
	Epoch bool
}

// Inspect reads the entries of streams, in order, in pipelined batches. It
// only reads.
func (ix *Index) Inspect(ctx context.Context, streams []string) ([]Entry, error) {
	out := make([]Entry, 0, len(streams))
	for len(streams) > 0 {
		n := min(len(streams), inspectBatch)
		batch, err := ix.inspect(ctx, streams[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, batch...)
		streams = streams[n:]
	}
	return out, nil
}

func (ix *Index) inspect(ctx context.Context, streams []string) ([]Entry, error) {
	pipe := ix.rdb.Pipeline()
	metas := make([]*redis.SliceCmd, len(streams))
	epochs := make([]*redis.IntCmd, len(streams))
	for i, s := range streams {
		sk := ix.keys.stream(s)
		metas[i] = pipe.HMGet(ctx, sk.meta, "v", "p", "o", "rt", "rv", "rn", "rp", "rd")
		epochs[i] = pipe.Exists(ctx, sk.epoch)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("inspect index: %w", err)
	}
	out := make([]Entry, len(streams))
	for i, s := range streams {
		m := metas[i].Val()
		if len(m) != 8 {
			return nil, fmt.Errorf("inspect index of %q: %w", s, metas[i].Err())
		}
		field := func(j int) string { v, _ := m[j].(string); return v }
		e := Entry{Stream: s, Found: m[0] != nil, Epoch: epochs[i].Val() == 1, LastOffset: -1}
		if e.Found {
			e.Version = atoi(field(0))
			e.Partition = int32(atoi(field(1)))
			if m[2] != nil {
				e.LastOffset = atoi(field(2))
			}
		}
		if m[3] != nil {
			e.Reserved = true
			e.Reservation = Reservation{Stream: s, Token: field(3), FirstVersion: atoi(field(4)),
				Count: int(atoi(field(5))), Partition: int32(atoi(field(6))), LastOffset: e.LastOffset}
			e.LeaseDeadline = time.UnixMilli(atoi(field(7)))
		}
		out[i] = e
	}
	return out, nil
}

// EachStream calls fn with the name of every stream that has an entry in
// the index, in no particular order, scanning every node of a cluster. A
// stream may be reported twice when the keyspace changes during the scan.
// It only reads.
func (ix *Index) EachStream(ctx context.Context, fn func(stream string) error) error {
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		it := c.Scan(ctx, 0, ix.keys.streamPattern(), 1000).Iterator()
		for it.Next(ctx) {
			name, ok := ix.keys.streamOfMeta(it.Val())
			if !ok {
				continue
			}
			if err := fn(name); err != nil {
				return err
			}
		}
		return it.Err()
	}
	if cc, ok := ix.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, ix.rdb)
}

// streamOfMeta returns the stream whose meta key is key.
func (k keys) streamOfMeta(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, k.prefix+"{")
	if !ok {
		return "", false
	}
	tag, ok := strings.CutSuffix(rest, "}:m")
	if !ok || strings.ContainsAny(tag, "{}") {
		return "", false
	}
	return unescapeTag(tag)
}

// unescapeTag reverses escapeTag.
func unescapeTag(tag string) (string, bool) {
	if !strings.Contains(tag, "%") {
		return tag, true
	}
	var b strings.Builder
	for i := 0; i < len(tag); i++ {
		if tag[i] != '%' {
			b.WriteByte(tag[i])
			continue
		}
		if i+3 > len(tag) {
			return "", false
		}
		c, err := strconv.ParseUint(tag[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), true
}
