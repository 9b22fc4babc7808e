package grpcsvc

import (
	"context"
	"fmt"

	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// errStopping ends subscriptions when the sidecar shuts down, so that
// clients reconnect to another one.
var errStopping = fmt.Errorf("%w: the sidecar is shutting down", store.ErrUnavailable)

// Subscribe serves a persistent subscription. The first client message
// opens it; later ones ack and nack deliveries while they stream out.
func (svc *Service) Subscribe(stream eventstorepb.EventStoreService_SubscribeServer) error {
	first, err := stream.Recv()
	if refused(err) {
		return err
	}
	if err != nil {
		// The client left before opening.
		return nil
	}
	open := first.GetOpen()
	if open == nil {
		return toStatus(&store.InvalidError{Field: "open", Reason: "the first message of a subscription must be open"})
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(svc.stopping, cancel)
	defer stop()

	sub, err := svc.store.Subscribe(ctx, open)
	if err != nil {
		return toStatus(err)
	}
	defer sub.Close()

	// The reader is not waited for: grpc ends its Recv once this handler
	// has returned. A malformed message from the client ends the stream
	// through cancel.
	readErr := make(chan error, 1)
	go func() {
		if err := readAcks(ctx, stream, sub); err != nil {
			readErr <- err
			cancel()
		}
	}()

	for {
		m, err := sub.Next(ctx)
		if err != nil {
			select {
			case rerr := <-readErr:
				return toStatus(rerr)
			default:
			}
			switch {
			case stream.Context().Err() != nil:
				return nil
			case svc.stopping.Err() != nil:
				return toStatus(errStopping)
			}
			return toStatus(err)
		}
		if err := stream.Send(m); err != nil {
			// The client is gone; its unacked deliveries come again.
			return nil
		}
	}
}

// readAcks applies the client's acks and nacks until the client stops
// sending. It returns the error that ends the subscription.
func readAcks(ctx context.Context, stream eventstorepb.EventStoreService_SubscribeServer, sub *store.Subscription) error {
	for {
		m, err := stream.Recv()
		if refused(err) {
			return err
		}
		if err != nil {
			// The client half-closed or left: deliveries go on until the
			// window is full or the stream ends.
			return nil
		}
		switch k := m.Kind.(type) {
		case *eventstorepb.SubscribeClientMessage_Ack:
			sub.Ack(k.Ack.GetPositions())
		case *eventstorepb.SubscribeClientMessage_Nack:
			if err := sub.Nack(ctx, k.Nack); err != nil {
				return err
			}
		case *eventstorepb.SubscribeClientMessage_Open:
			return &store.InvalidError{Field: "open", Reason: "the subscription is already open"}
		default:
			return &store.InvalidError{Field: "kind", Reason: "a message holds one of open, ack or nack"}
		}
	}
}

// subscribeToAllInGroup serves SubscribeToAll with a group.
func (svc *Service) subscribeToAllInGroup(ctx context.Context, req *eventstorepb.SubscribeRequest,
	stream eventstorepb.EventStoreService_SubscribeToAllServer) error {
	return svc.store.SubscribeToAllInGroup(ctx, req.Group, req.FromSequenceId, stream.Send)
}

// ListParked lists a group's parked deliveries, oldest first.
func (svc *Service) ListParked(ctx context.Context, req *eventstorepb.ListParkedRequest) (*eventstorepb.ListParkedResponse, error) {
	parked, err := svc.store.ListParked(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &eventstorepb.ListParkedResponse{Parked: parked}, nil
}

// ReplayParked hands a group's parked deliveries back to the group.
func (svc *Service) ReplayParked(ctx context.Context, req *eventstorepb.ReplayParkedRequest) (*eventstorepb.ReplayParkedResponse, error) {
	n, err := svc.store.ReplayParked(ctx, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &eventstorepb.ReplayParkedResponse{Replayed: n}, nil
}
