// Package grpcsvc serves the event store's gRPC contract. Handlers call the
// store and return its domain errors through one mapping to status codes.
package grpcsvc

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Service implements eventstore.EventStoreService over a store.
type Service struct {
	eventstorepb.UnimplementedEventStoreServiceServer
	store *store.Store
	log   *slog.Logger
	// stopping ends every subscription when the sidecar shuts down.
	stopping context.Context
}

// New returns the service of st. Subscriptions end when stopping does.
func New(st *store.Store, log *slog.Logger, stopping context.Context) *Service {
	return &Service{store: st, log: log, stopping: stopping}
}

// Register adds the service, the standard health service and reflection
// to srv. The returned health server is for the caller to flip.
func (svc *Service) Register(srv *grpc.Server) *health.Server {
	eventstorepb.RegisterEventStoreServiceServer(srv, svc)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return hs
}

// AppendToStream appends events to one stream.
func (svc *Service) AppendToStream(ctx context.Context, req *eventstorepb.AppendRequest) (*eventstorepb.AppendResponse, error) {
	res, err := svc.store.Append(ctx, req)
	if err != nil {
		svc.log.Debug("append failed", "stream", req.StreamName, "err", err)
		return nil, toStatus(err)
	}
	svc.log.Debug("append", "stream", req.StreamName, "version", res.Version,
		"partition", res.Partition, "offset", res.Offset, "duplicate", res.Duplicate)
	return &eventstorepb.AppendResponse{
		Success:        true,
		CurrentVersion: res.Version,
		Partition:      res.Partition,
		Offset:         res.Offset,
	}, nil
}

// SubscribeToAll streams every event from the requested offset on.
func (svc *Service) SubscribeToAll(req *eventstorepb.SubscribeRequest, stream eventstorepb.EventStoreService_SubscribeToAllServer) error {
	if req.FromSequenceId < 0 {
		return toStatus(&store.InvalidError{Field: "from_sequence_id", Reason: "must not be negative"})
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(svc.stopping, cancel)
	defer stop()
	svc.log.Info("subscriber connected", "from_offset", req.FromSequenceId, "group", req.Group)
	var err error
	if req.Group != "" {
		err = svc.subscribeToAllInGroup(ctx, req, stream)
	} else {
		err = svc.store.SubscribeToAll(ctx, req.FromSequenceId, func(event []byte) error {
			return stream.SendMsg(encoded(event))
		})
	}
	svc.log.Info("subscriber left", "group", req.Group, "err", err)
	if ctx.Err() != nil {
		return nil
	}
	return toStatus(err)
}
