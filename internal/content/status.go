package content

import (
	"encoding/json"
	"time"
)

// Status is a content's moderation status as of a version of its stream.
type Status struct {
	ContentID string `json:"content_id"`
	State     State  `json:"status"`
	// Version is the version of the last event folded into the status; 0
	// for StateUnknown.
	Version int64 `json:"version"`
	// Analysis is the analyzer's result once the state is StateAnalyzed.
	Analysis json.RawMessage `json:"analysis,omitempty"`
	// UpdatedAt is when the last folded event was appended.
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// Unknown is the status of a content id whose stream has no events.
func Unknown(contentID string) Status {
	return Status{ContentID: contentID, State: StateUnknown}
}

// StatusOf is the status that c leads to, whatever came before: every
// folded event sets the whole status.
func StatusOf(c Change) Status {
	at := c.At
	s := Status{ContentID: c.ContentID, State: c.State(), Version: c.Version, UpdatedAt: &at}
	if c.Analyzed != nil {
		s.Analysis = c.Analyzed.Result
	}
	return s
}
