// Package subscriber is the client side of the sidecar's persistent
// subscriptions (the Subscribe RPC) for the product's Go services, the
// projector and the push service. A Session is one open Subscribe stream:
// its messages come over a channel, and acks and nacks go back over the
// same stream. Run opens sessions one after another, with backoff, for as
// long as the sidecar can be reached, so that a sidecar restart only
// pauses a subscriber: its unacked deliveries come again in the next
// session.
package subscriber

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Session is one open Subscribe stream. Messages is read from one
// goroutine; Ack and Nack may be called from any.
type Session struct {
	stream eventstorepb.EventStoreService_SubscribeClient
	cancel context.CancelFunc
	msgs   chan *eventstorepb.SubscribeServerMessage
	done   chan struct{}
	// err is why the stream ended; set before msgs is closed.
	err      error
	received atomic.Int64

	sendMu sync.Mutex
}

// Open opens a Subscribe stream and sends open as its first message. An
// error of the open itself, such as a malformed group, arrives as the
// session's Err once Messages is closed.
func Open(ctx context.Context, client eventstorepb.EventStoreServiceClient,
	open *eventstorepb.SubscribeOpen) (*Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := client.Subscribe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Session{stream: stream, cancel: cancel,
		msgs: make(chan *eventstorepb.SubscribeServerMessage), done: make(chan struct{})}
	if err := s.send(&eventstorepb.SubscribeClientMessage{
		Kind: &eventstorepb.SubscribeClientMessage_Open{Open: open}}); err != nil {
		cancel()
		return nil, err
	}
	go s.receive(ctx)
	return s, nil
}

// receive hands the stream's messages to Messages until the stream ends
// or the session is closed.
func (s *Session) receive(ctx context.Context) {
	// done closes before msgs, so that Err, called once msgs is closed,
	// always sees why.
	defer close(s.msgs)
	defer close(s.done)
	for {
		m, err := s.stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = ErrEnded
			}
			s.err = err
			return
		}
		s.received.Add(1)
		select {
		case s.msgs <- m:
		case <-ctx.Done():
			s.err = ctx.Err()
			return
		}
	}
}

// ErrEnded is the Err of a session whose stream the sidecar ended
// without an error, as it does when it shuts down cleanly.
var ErrEnded = errors.New("subscription ended by the sidecar")

// Messages are the stream's deliveries and caught-up markers, in the
// order the sidecar sent them. The channel is closed when the stream
// ends; Err then says why.
func (s *Session) Messages() <-chan *eventstorepb.SubscribeServerMessage { return s.msgs }

// Err is why the stream ended, once Messages is closed.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Ack acknowledges deliveries by their positions.
func (s *Session) Ack(positions ...*eventstorepb.Position) error {
	if len(positions) == 0 {
		return nil
	}
	return s.send(&eventstorepb.SubscribeClientMessage{
		Kind: &eventstorepb.SubscribeClientMessage_Ack{Ack: &eventstorepb.Ack{Positions: positions}}})
}

// Nack rejects one delivery.
func (s *Session) Nack(pos *eventstorepb.Position, action eventstorepb.NackAction, reason string) error {
	return s.send(&eventstorepb.SubscribeClientMessage{
		Kind: &eventstorepb.SubscribeClientMessage_Nack{Nack: &eventstorepb.Nack{
			Position: pos, Action: action, Reason: reason}}})
}

func (s *Session) send(m *eventstorepb.SubscribeClientMessage) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.stream.Send(m); err != nil {
		if errors.Is(err, io.EOF) {
			// The stream ended; Recv has the reason.
			err = ErrEnded
		}
		return fmt.Errorf("send to the subscription: %w", err)
	}
	return nil
}

// Close ends the stream and waits for its receiver. The sidecar commits
// what was acked and hands the unacked deliveries out again.
func (s *Session) Close() {
	s.cancel()
	<-s.done
}

// Options tune Run.
type Options struct {
	// Open returns the open message of each new session, so that a
	// subscriber can resume where the last one ended. Required.
	Open func() *eventstorepb.SubscribeOpen
	// Logger receives a warning per session that ends with an error.
	// Default: slog.Default().
	Logger *slog.Logger
	// MinBackoff is the wait before reopening after a failure; it doubles
	// up to MaxBackoff while sessions fail before their first message.
	// Defaults 200ms and 10s.
	MinBackoff, MaxBackoff time.Duration
}

// Run opens a session and calls fn with it, again and again: fn consumes
// the session's messages and returns when they end (with the session's
// Err) or when it is done. Run returns nil when fn returns nil or ctx
// ends, and fn's error when it is not worth retrying (see Retryable);
// after any other error it reopens after a backoff.
func Run(ctx context.Context, client eventstorepb.EventStoreServiceClient, opts Options,
	fn func(context.Context, *Session) error) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	minWait, maxWait := opts.MinBackoff, opts.MaxBackoff
	if minWait <= 0 {
		minWait = 200 * time.Millisecond
	}
	if maxWait < minWait {
		maxWait = max(10*time.Second, minWait)
	}
	wait := minWait
	for {
		open := opts.Open()
		sess, err := Open(ctx, client, open)
		if err == nil {
			err = fn(ctx, sess)
			if sess.received.Load() > 0 {
				wait = minWait
			}
			sess.Close()
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if !Retryable(err) {
			return err
		}
		log.Warn("subscription ended; reopening", "group", open.GetGroup(), "backoff", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		wait = min(2*wait, maxWait)
	}
}

// Retryable reports whether a session that ended with err is worth
// reopening: the sidecar was unreachable, shutting down, or does not
// serve Subscribe yet (UNIMPLEMENTED, while a deployment rolls out). A
// refused open (INVALID_ARGUMENT and the like) and errors that are not
// gRPC statuses are final.
func Retryable(err error) bool {
	if errors.Is(err, ErrEnded) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.Unimplemented, codes.Internal, codes.Unknown, codes.Aborted,
		codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}
