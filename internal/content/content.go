// Package content is the moderation domain's events as the read side sees
// them: what a ContentSubmitted and a ContentAnalyzed event carry, and the
// status of a piece of content that they add up to. The projector folds
// the same changes into PostgreSQL that the push service folds into the
// status it sends to the app, so both agree on what an event means.
//
// A piece of content is one stream, named by the content's id; the events
// of the stream carry that id as their aggregate id. Its status is PENDING
// after ContentSubmitted and ANALYZED, with the analyzer's result, after
// ContentAnalyzed. Other event types leave the status as it is.
package content

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Event types the read side folds.
const (
	// EventSubmitted starts a content's stream; Laravel appends it.
	EventSubmitted = "ContentSubmitted"
	// EventAnalyzed carries the analyzer's result.
	EventAnalyzed = "ContentAnalyzed"
)

// EventTypes are the event types the read side folds, for a
// subscription's server-side filter.
var EventTypes = []string{EventSubmitted, EventAnalyzed}

// State is where a piece of content is in moderation.
type State string

// The states of a piece of content.
const (
	// StatePending follows ContentSubmitted: the content is under review.
	StatePending State = "PENDING"
	// StateAnalyzed follows ContentAnalyzed: the result is there.
	StateAnalyzed State = "ANALYZED"
	// StateUnknown is the status of a content id without events.
	StateUnknown State = "UNKNOWN"
)

// Change is what one event does to a content's status. Exactly one of
// Submitted and Analyzed is set.
type Change struct {
	// ContentID is the stream: the event's aggregate id.
	ContentID string
	// Version is the event's version in the stream.
	Version int64
	// At is when the event was appended.
	At time.Time

	Submitted *Submitted
	Analyzed  *Analyzed
}

// Submitted is the data of a ContentSubmitted event that the read side
// keeps. The text itself stays in the stream.
type Submitted struct {
	AuthorID string
}

// Analyzed is the data of a ContentAnalyzed event.
type Analyzed struct {
	// Result is the analyzer's analysis_result, a JSON object (entities,
	// is_toxic, token_count), kept as it came.
	Result json.RawMessage
}

// State returns the state the change leads to.
func (c Change) State() State {
	if c.Analyzed != nil {
		return StateAnalyzed
	}
	return StatePending
}

// ErrMalformed is wrapped by the errors of Decode for events of a folded
// type whose data is not what the type promises. Retrying cannot help:
// a subscriber parks such a delivery.
var ErrMalformed = errors.New("malformed content event")

// Decode returns the change e makes. It returns ok false for an event of
// a type the read side does not fold, and an error wrapping ErrMalformed
// for a folded one it cannot read.
func Decode(e *eventstorepb.Event) (c Change, ok bool, err error) {
	if e.EventType != EventSubmitted && e.EventType != EventAnalyzed {
		return Change{}, false, nil
	}
	c = Change{ContentID: e.AggregateId, Version: e.AggregateVersion, At: time.Unix(e.CreatedAt, 0).UTC()}
	if err := checkText("aggregate_id", c.ContentID); err != nil {
		return Change{}, true, malformed(e, err)
	}
	if c.Version < 1 {
		return Change{}, true, malformed(e, fmt.Errorf("aggregate_version %d is not positive", c.Version))
	}
	switch e.EventType {
	case EventSubmitted:
		c.Submitted, err = decodeSubmitted(c.ContentID, e.Data)
	default:
		c.Analyzed, err = decodeAnalyzed(c.ContentID, e.Data)
	}
	if err != nil {
		return Change{}, true, malformed(e, err)
	}
	return c, true, nil
}

func malformed(e *eventstorepb.Event, err error) error {
	return fmt.Errorf("%w: %s %s version %d: %v", ErrMalformed, e.EventType, e.EventId, e.AggregateVersion, err)
}

func decodeSubmitted(contentID string, data []byte) (*Submitted, error) {
	var d struct {
		ContentID *string `json:"content_id"`
		AuthorID  *string `json:"author_id"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if err := checkContentID(d.ContentID, contentID); err != nil {
		return nil, err
	}
	if d.AuthorID == nil {
		return nil, errors.New("data.author_id is missing")
	}
	if err := checkText("data.author_id", *d.AuthorID); err != nil {
		return nil, err
	}
	return &Submitted{AuthorID: *d.AuthorID}, nil
}

func decodeAnalyzed(contentID string, data []byte) (*Analyzed, error) {
	var d struct {
		ContentID *string        `json:"content_id"`
		Result    jsonObjectText `json:"analysis_result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	if err := checkContentID(d.ContentID, contentID); err != nil {
		return nil, err
	}
	if d.Result == nil {
		return nil, errors.New("data.analysis_result is missing")
	}
	return &Analyzed{Result: json.RawMessage(d.Result)}, nil
}

// checkContentID accepts a missing content_id; one that is there must
// name the event's own stream.
func checkContentID(got *string, contentID string) error {
	if got != nil && *got != contentID {
		return errors.New("data.content_id is not the stream's aggregate id")
	}
	return nil
}

// checkText refuses what PostgreSQL's text type cannot hold.
func checkText(field, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", field)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", field)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s contains a NUL character", field)
	}
	return nil
}

// jsonObjectText is a JSON object kept as compact text, refusing what
// PostgreSQL's jsonb cannot hold: a NUL character in a string.
type jsonObjectText []byte

func (o *jsonObjectText) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		return errors.New("data.analysis_result is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return errors.New("data.analysis_result contains a NUL character")
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	*o = buf.Bytes()
	return nil
}
