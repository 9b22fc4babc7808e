package versions

import (
	"context"
	"fmt"
	"iter"

	"github.com/redis/go-redis/v9"
)

// dropBatch is how many keys one pipeline of a drop unlinks.
const dropBatch = 1000

// Drop removes topic's index as far as the caller knows it: the
// watermarks, the epoch and ledger of every slot and every key of each
// stream in streams, with UNLINK, and
// returns how many keys it removed. It is for benchmarks and tests that
// throw a topic away and know the streams they wrote; unlike a SCAN, it
// costs the shared Redis nothing beyond those keys. A sidecar still
// serving the topic finds its index lost and rebuilds it.
func Drop(ctx context.Context, rdb redis.UniversalClient, topic string, streams iter.Seq[string]) (int, error) {
	k := newKeys(topic)
	d := dropper{ctx: ctx, pipe: rdb.Pipeline()}
	d.unlink(k.watermarks())
	for s := range uint16(numSlots) {
		d.unlink(k.epochKey(s))
		d.unlink(k.slotKey(s))
	}
	for name := range streams {
		// Keys a stream shares with its slot come again; unlinking a key
		// that is gone counts nothing.
		for _, key := range k.stream(name).list() {
			d.unlink(key)
		}
	}
	d.flush()
	return d.removed, d.err
}

// dropper unlinks keys in pipelines of dropBatch.
type dropper struct {
	ctx     context.Context
	pipe    redis.Pipeliner
	removed int
	err     error
}

func (d *dropper) unlink(key string) {
	if d.err != nil {
		return
	}
	d.pipe.Unlink(d.ctx, key)
	if d.pipe.Len() >= dropBatch {
		d.flush()
	}
}

func (d *dropper) flush() {
	if d.err != nil || d.pipe.Len() == 0 {
		return
	}
	cmds, err := d.pipe.Exec(d.ctx)
	if err != nil {
		d.err = fmt.Errorf("drop index: %w", err)
		return
	}
	for _, c := range cmds {
		d.removed += int(c.(*redis.IntCmd).Val())
	}
}
