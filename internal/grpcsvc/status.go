package grpcsvc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/store"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// toStatus maps the store's errors to gRPC status codes. It is the only
// place that decides what a client sees of an error.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		// Already a status: a request the codec refused.
		return err
	}
	var (
		conflict *versions.ConflictError
		clash    *versions.ClashError
		invalid  *store.InvalidError
		tooLarge *store.TooLargeError
	)
	switch {
	case errors.As(err, &conflict):
		return status.Error(codes.Aborted, conflict.Error())
	case errors.As(err, &clash):
		return status.Error(codes.AlreadyExists, clash.Error())
	case errors.As(err, &invalid):
		return status.Error(codes.InvalidArgument, invalid.Error())
	case errors.As(err, &tooLarge):
		return status.Error(codes.ResourceExhausted, tooLarge.Error())
	case errors.Is(err, store.ErrStreamNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrRefused):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded before the append was reserved")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled before the append was reserved")
	}
	return status.Error(codes.Internal, "internal error: "+err.Error())
}
