package grpcsvc

import (
	"context"

	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// ReadStream streams one stream's events in version order.
func (svc *Service) ReadStream(req *eventstorepb.ReadStreamRequest, stream eventstorepb.EventStoreService_ReadStreamServer) error {
	switch req.Direction {
	case eventstorepb.ReadDirection_READ_DIRECTION_FORWARDS, eventstorepb.ReadDirection_READ_DIRECTION_BACKWARDS:
	default:
		return toStatus(&store.InvalidError{Field: "direction", Reason: "must be FORWARDS or BACKWARDS"})
	}
	err := svc.store.ReadStream(stream.Context(), store.ReadRequest{
		Stream:    req.StreamName,
		From:      req.FromVersion,
		Max:       req.MaxCount,
		Backwards: req.Direction == eventstorepb.ReadDirection_READ_DIRECTION_BACKWARDS,
	}, stream.Send)
	return toStatus(err)
}

// GetStream returns a stream's version and positions.
func (svc *Service) GetStream(ctx context.Context, req *eventstorepb.GetStreamRequest) (*eventstorepb.StreamInfo, error) {
	info, err := svc.store.GetStream(ctx, req.StreamName)
	if err != nil {
		return nil, toStatus(err)
	}
	return &eventstorepb.StreamInfo{
		StreamName:     info.Name,
		CurrentVersion: info.Version,
		Partition:      info.Partition,
		First:          &eventstorepb.Position{Partition: info.Partition, Offset: info.FirstOffset},
		Last:           &eventstorepb.Position{Partition: info.Partition, Offset: info.LastOffset},
	}, nil
}
