package versions

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Script calls from concurrent appends are sent in pipelines: while
// maxInFlight pipelines are on the wire, new calls queue, and the next
// pipeline takes everything queued. One round trip then serves many
// appends, with no timer: a lone call goes out at once.
const (
	maxInFlight = 4
	maxBatch    = 512
	// batchTimeout bounds one pipeline; callers stop waiting on their own
	// context earlier.
	batchTimeout = 10 * time.Second
)

type call struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
	done   chan struct{}
}

// batcher sends script calls in pipelines. It is safe for concurrent use.
type batcher struct {
	rdb   redis.UniversalClient
	queue chan *call
	slots chan struct{}

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newBatcher(rdb redis.UniversalClient) *batcher {
	b := &batcher{
		rdb:   rdb,
		queue: make(chan *call, 4*maxBatch),
		slots: make(chan struct{}, maxInFlight),
		stop:  make(chan struct{}),
	}
	b.wg.Add(1)
	go b.loop()
	return b
}

// run sends one script call and waits for its reply or ctx.
func (b *batcher) run(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	c := &call{script: s, keys: keys, args: args, done: make(chan struct{})}
	if b.direct(ctx, c) {
		return c.cmd
	}
	select {
	case b.queue <- c:
	case <-ctx.Done():
		return errCmd(ctx, ctx.Err())
	case <-b.stop:
		return errCmd(ctx, redis.ErrClosed)
	}
	select {
	case <-c.done:
		return c.cmd
	case <-ctx.Done():
		return errCmd(ctx, ctx.Err())
	}
}

// direct sends c from the calling goroutine when the batcher is idle,
// nothing queued and nothing on the wire: a pipeline would hold c alone,
// and the hand-offs to the loop and back are most of a lone call's
// overhead. Under load calls go through the loop, which pipelines them.
// It reports whether it sent c.
func (b *batcher) direct(ctx context.Context, c *call) bool {
	if len(b.queue) > 0 || len(b.slots) > 0 {
		return false
	}
	select {
	case <-b.stop:
		return false
	default:
	}
	select {
	case b.slots <- struct{}{}:
	default:
		return false
	}
	defer func() { <-b.slots }()
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	b.send(ctx, []*call{c})
	return true
}

func errCmd(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

func (b *batcher) loop() {
	defer b.wg.Done()
	for {
		var first *call
		select {
		case first = <-b.queue:
		case <-b.stop:
			return
		}
		// Wait for a free slot first: calls arriving meanwhile join
		// this batch.
		b.slots <- struct{}{}
		batch := []*call{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case c := <-b.queue:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() { <-b.slots }()
			b.exec(batch)
		}()
	}
}

func (b *batcher) exec(batch []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	b.send(ctx, batch)
}

// send sends a batch in one pipeline and completes its calls.
func (b *batcher) send(ctx context.Context, batch []*call) {
	if len(batch) == 1 {
		c := batch[0]
		c.cmd = c.script.Run(ctx, b.rdb, c.keys, c.args...)
		close(c.done)
		return
	}
	pipe := b.rdb.Pipeline()
	for _, c := range batch {
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	for _, c := range batch {
		if err := c.cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script cache was flushed (or Redis restarted): Run
			// sends the source and caches it again.
			c.cmd = c.script.Run(ctx, b.rdb, c.keys, c.args...)
		}
		close(c.done)
	}
}

// close stops taking calls and waits for the pipelines in flight.
func (b *batcher) close() {
	b.stopOnce.Do(func() { close(b.stop) })
	b.wg.Wait()
}
