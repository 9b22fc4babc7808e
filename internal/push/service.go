package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/content"
	"github.com/eventsidecar/sidecar/internal/subscriber"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Options tune a Service.
type Options struct {
	// SubmitURL is the Laravel API's POST /content, where the status
	// page's submissions go. Required.
	SubmitURL *url.URL
	// OriginPatterns are the origins, besides the service's own, whose
	// pages may open WebSockets (host patterns as in
	// websocket.AcceptOptions). Default none.
	OriginPatterns []string
	// MaxWatches bounds the contents one client watches. Default 100.
	MaxWatches int
	// LookupTimeout bounds the read of a content's current status.
	// Default 5s.
	LookupTimeout time.Duration
	// MaxInFlight is the subscription's window. Default 1024.
	MaxInFlight int32
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxWatches <= 0 {
		o.MaxWatches = 100
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = 5 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Service is the push service: the feed of status changes from the
// sidecar, and the HTTP handler of the WebSockets and the status page.
type Service struct {
	es   eventstorepb.EventStoreServiceClient
	opts Options
	log  *slog.Logger
	hub  *hub

	// live is set once the feed reached its first caught-up marker.
	live atomic.Bool

	// closing ends every WebSocket when the service closes.
	closing context.Context
	close   context.CancelFunc
	conns   sync.WaitGroup
}

// New returns a push service over the sidecar es.
func New(es eventstorepb.EventStoreServiceClient, opts Options) (*Service, error) {
	opts = opts.withDefaults()
	if opts.SubmitURL == nil || opts.SubmitURL.Scheme == "" || opts.SubmitURL.Host == "" {
		return nil, errors.New("push: the submit URL must be an absolute URL")
	}
	s := &Service{es: es, opts: opts, log: opts.Logger, hub: newHub()}
	s.closing, s.close = context.WithCancel(context.Background())
	return s, nil
}

// Run feeds status changes from the sidecar to the watchers until ctx
// ends. It returns an error only when the sidecar refuses the
// subscription for good.
func (s *Service) Run(ctx context.Context) error {
	// cursor is the next offset per partition: where a new session
	// resumes. Only the session goroutine touches it.
	cursor := make(map[int32]int64)
	sessions := 0
	open := func() *eventstorepb.SubscribeOpen {
		o := &eventstorepb.SubscribeOpen{EventTypes: content.EventTypes, MaxInFlight: s.opts.MaxInFlight,
			Start: eventstorepb.StartPosition_START_POSITION_END}
		if len(cursor) > 0 {
			o.Start = eventstorepb.StartPosition_START_POSITION_CURSOR
			for p, off := range cursor {
				o.Cursor = append(o.Cursor, &eventstorepb.Position{Partition: p, Offset: off})
			}
		}
		return o
	}
	return subscriber.Run(ctx, s.es, subscriber.Options{Open: open, Logger: s.log},
		func(ctx context.Context, sess *subscriber.Session) error {
			// A session that starts at the end after an earlier one
			// missed what was appended in between: watchers get their
			// content's status read again once it is live.
			refresh := len(cursor) == 0 && sessions > 0
			sessions++
			return s.feed(ctx, sess, cursor, refresh)
		})
}

func (s *Service) feed(ctx context.Context, sess *subscriber.Session, cursor map[int32]int64,
	refresh bool) error {
	for m := range sess.Messages() {
		if cu := m.GetCaughtUp(); cu != nil {
			for _, p := range cu.Positions {
				cursor[p.Partition] = max(cursor[p.Partition], p.Offset)
			}
			if !s.live.Swap(true) {
				s.log.Info("feed is live", "partitions", len(cu.Positions))
			}
			if refresh {
				refresh = false
				s.refresh(ctx)
			}
			continue
		}
		d := m.GetDelivery()
		for _, e := range d.Events {
			c, ok, err := content.Decode(e)
			if err != nil {
				s.log.Warn("event skipped", "stream", e.AggregateId, "version", e.AggregateVersion, "err", err)
				continue
			}
			if ok {
				s.hub.publish(content.StatusOf(c))
			}
		}
		cursor[d.Position.Partition] = max(cursor[d.Position.Partition], d.Position.Offset+1)
		if err := sess.Ack(d.Position); err != nil {
			return err
		}
	}
	return sess.Err()
}

// refresh reads the current status of every watched content again.
func (s *Service) refresh(ctx context.Context) {
	for _, id := range s.hub.watched() {
		st, err := s.current(ctx, id)
		if err != nil {
			s.log.Warn("status not refreshed", "stream", id, "err", err)
			continue
		}
		s.hub.publish(st)
	}
}

// current reads the content's stream and folds it into its status.
func (s *Service) current(ctx context.Context, id string) (content.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.LookupTimeout)
	defer cancel()
	stream, err := s.es.ReadStream(ctx, &eventstorepb.ReadStreamRequest{StreamName: id})
	if err != nil {
		return content.Status{}, err
	}
	st := content.Unknown(id)
	for {
		e, err := stream.Recv()
		if err == io.EOF {
			return st, nil
		}
		if status.Code(err) == codes.NotFound {
			return content.Unknown(id), nil
		}
		if err != nil {
			return content.Status{}, fmt.Errorf("read stream: %w", err)
		}
		c, ok, err := content.Decode(e)
		if err != nil {
			s.log.Warn("event skipped", "stream", id, "version", e.AggregateVersion, "err", err)
			continue
		}
		if ok {
			st = content.StatusOf(c)
		}
	}
}

// Live reports whether the feed has caught up with the topic since the
// service started.
func (s *Service) Live() bool { return s.live.Load() }

// Close ends every WebSocket and waits for their handlers, at most until
// ctx ends.
func (s *Service) Close(ctx context.Context) error {
	s.close()
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
