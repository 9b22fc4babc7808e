package store

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/sidecar/internal/versions"
)

// streamLocks serializes the appends of this process per stream, so local
// writers of one stream queue in memory instead of contending in Redis. A
// stream's entry also holds the commit of its last append while that
// commit waits for the next reservation to travel with.
type streamLocks struct {
	mu sync.Mutex
	m  map[string]*streamLock
}

type streamLock struct {
	held chan struct{}
	// refs counts the waiters and holders of the lock, and a pending commit.
	refs int
	// pending is only read or written by the lock's holder.
	pending *pendingCommit
}

// pendingCommit is a landed, acknowledged append whose commit is deferred:
// the stream's next reservation carries it, or its timer sends it alone.
type pendingCommit struct {
	commit versions.Commit
	// span is the append's, for the commit's own span.
	span  trace.Span
	timer *time.Timer
}

func newStreamLocks() *streamLocks {
	return &streamLocks{m: make(map[string]*streamLock)}
}

// held is a stream's lock, held.
type held struct {
	locks  *streamLocks
	stream string
	sl     *streamLock
}

// lock waits for the stream's lock or ctx, whichever comes first.
func (l *streamLocks) lock(ctx context.Context, stream string) (held, error) {
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
		return held{locks: l, stream: stream, sl: sl}, nil
	case <-ctx.Done():
		l.unref(stream, sl)
		return held{}, ctx.Err()
	}
}

func (h held) unlock() {
	<-h.sl.held
	h.locks.unref(h.stream, h.sl)
}

// takePending returns the stream's pending commit, if any, and stops its
// timer. The caller must send the commit.
func (h held) takePending() *pendingCommit {
	p := h.sl.pending
	if p == nil {
		return nil
	}
	p.timer.Stop()
	h.sl.pending = nil
	h.locks.unref(h.stream, h.sl)
	return p
}

// setPending leaves p for the stream's next holder; the entry stays while
// p is pending. The stream must have no pending commit.
func (h held) setPending(p *pendingCommit) {
	h.locks.mu.Lock()
	h.sl.refs++
	h.locks.mu.Unlock()
	h.sl.pending = p
}

func (l *streamLocks) unref(stream string, sl *streamLock) {
	l.mu.Lock()
	sl.refs--
	if sl.refs == 0 {
		delete(l.m, stream)
	}
	l.mu.Unlock()
}
