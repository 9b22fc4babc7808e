package subscriber

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{ErrEnded, true},
		{fmt.Errorf("send to the subscription: %w", ErrEnded), true},
		{status.Error(codes.Unavailable, "sidecar down"), true},
		{status.Error(codes.Unimplemented, "old sidecar"), true},
		{fmt.Errorf("wrapped: %w", status.Error(codes.Unavailable, "x")), true},
		{status.Error(codes.InvalidArgument, "open.group"), false},
		{status.Error(codes.FailedPrecondition, "x"), false},
		{errors.New("the subscriber's own error"), false},
		{io.ErrUnexpectedEOF, false},
	}
	for _, tt := range tests {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// A subscription the sidecar refuses for good ends Run with the refusal;
// a subscriber that is done ends it with nil.
func TestRunEnds(t *testing.T) {
	sc := testenv.Start(t, testenv.Config(t, testenv.Backend{Name: "embedded"}))
	es := testenv.Client(t, sc.Addr())
	log := slog.New(slog.DiscardHandler)

	bad := &eventstorepb.SubscribeOpen{Group: strings.Repeat("g", 300)}
	err := Run(t.Context(), es, Options{Open: func() *eventstorepb.SubscribeOpen { return bad }, Logger: log},
		func(ctx context.Context, s *Session) error {
			for range s.Messages() {
			}
			return s.Err()
		})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Run with a malformed group: %v, want INVALID_ARGUMENT", err)
	}

	live := &eventstorepb.SubscribeOpen{Start: eventstorepb.StartPosition_START_POSITION_END}
	err = Run(t.Context(), es, Options{Open: func() *eventstorepb.SubscribeOpen { return live }, Logger: log},
		func(ctx context.Context, s *Session) error {
			for m := range s.Messages() {
				if m.GetCaughtUp() != nil {
					return nil
				}
			}
			return s.Err()
		})
	if err != nil {
		t.Fatalf("Run until caught up: %v", err)
	}
}
