package store

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrUnavailable wraps every failure that a retry of the same request may
// overcome: Kafka or Redis unreachable, the index being rebuilt, an append
// whose outcome could not be resolved yet.
var ErrUnavailable = errors.New("unavailable")

// ErrRebuilding means the index is being rebuilt from the topic.
var ErrRebuilding = fmt.Errorf("%w: the version index is being rebuilt from the topic", ErrUnavailable)

// InvalidError is a malformed request. Field names the offending field as
// the client wrote it, for example "events[2].event_type".
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TooLargeError is an append beyond a configured size limit.
type TooLargeError struct {
	Field  string
	Size   int
	Limit  int
	Detail string
}

func (e *TooLargeError) Error() string {
	if e.Limit == 0 {
		return e.Field + ": " + e.Detail
	}
	return fmt.Sprintf("%s: %s is %d, the limit is %d", e.Field, e.Detail, e.Size, e.Limit)
}

func unavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnavailable, fmt.Sprintf(format, args...))
}

// ErrRefused means Kafka refused an append for good, for example for its
// size or for missing permissions. Nothing was written.
var ErrRefused = errors.New("kafka refused the append")

func refused(err error) error {
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return &TooLargeError{Field: "events", Detail: "the append is larger than the topic accepts: " + err.Error()}
	}
	return fmt.Errorf("%w: %v", ErrRefused, err)
}
