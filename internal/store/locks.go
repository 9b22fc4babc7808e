package store

import (
	"context"
	"sync"
)

// streamLocks serializes the appends of this process per stream, so local
// writers of one stream queue in memory instead of contending in Redis.
type streamLocks struct {
	mu sync.Mutex
	m  map[string]*streamLock
}

type streamLock struct {
	held chan struct{}
	refs int
}

func newStreamLocks() *streamLocks {
	return &streamLocks{m: make(map[string]*streamLock)}
}

// lock waits for the stream's lock or ctx, whichever comes first.
func (l *streamLocks) lock(ctx context.Context, stream string) (unlock func(), err error) {
	l.mu.Lock()
	sl, ok := l.m[stream]
	if !ok {
		sl = &streamLock{held: make(chan struct{}, 1)}
		l.m[stream] = sl
	}
	sl.refs++
	l.mu.Unlock()

	select {
	case sl.held <- struct{}{}:
		return func() { <-sl.held; l.unref(stream, sl) }, nil
	case <-ctx.Done():
		l.unref(stream, sl)
		return nil, ctx.Err()
	}
}

func (l *streamLocks) unref(stream string, sl *streamLock) {
	l.mu.Lock()
	sl.refs--
	if sl.refs == 0 {
		delete(l.m, stream)
	}
	l.mu.Unlock()
}

// wait returns once no append of this process holds the stream, so that a
// read sees every append this process acknowledged, commit included.
func (l *streamLocks) wait(ctx context.Context, stream string) error {
	unlock, err := l.lock(ctx, stream)
	if err != nil {
		return err
	}
	unlock()
	return nil
}
