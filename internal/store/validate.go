package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/eventsidecar/sidecar/internal/versions"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// Limits bound what one append may hold. Every limit is checked before
// anything is reserved.
type Limits struct {
	// MaxStreamNameBytes bounds a stream name and an event's aggregate id.
	// Default 256.
	MaxStreamNameBytes int
	// MaxEventTypeBytes bounds an event type. Default 256.
	MaxEventTypeBytes int
	// MaxEventIDBytes bounds an event id. Default 128.
	MaxEventIDBytes int
	// MaxEventBytes bounds one event's data plus metadata. Default 512 KiB.
	MaxEventBytes int
	// MaxAppendBytes bounds the record of one append; keep it below the
	// topic's max.message.bytes. Default 1000000, under Kafka's default.
	MaxAppendBytes int
	// MaxEvents bounds the number of events in one append. Default 1000.
	MaxEvents int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxStreamNameBytes, 256)
	def(&l.MaxEventTypeBytes, 256)
	def(&l.MaxEventIDBytes, 128)
	def(&l.MaxEventBytes, 512<<10)
	def(&l.MaxAppendBytes, 1_000_000)
	def(&l.MaxEvents, 1000)
	return l
}

// recordOverhead is what a record holds besides its events: the stream
// name twice (key and value), the token, versions and headers.
const recordOverhead = 256

// validate checks an append request against the contract and the limits.
// It names the first offending field.
func (l Limits) validate(req *eventstorepb.AppendRequest) error {
	if err := checkName("stream_name", req.StreamName, l.MaxStreamNameBytes); err != nil {
		return err
	}
	switch ev := req.ExpectedVersion; {
	case ev < -2:
		return invalid("expected_version", "%d is not a version (>= 0), -1 (any) or -2 (stream exists)", ev)
	case ev > versions.MaxVersion:
		return invalid("expected_version", "%d is above the highest supported version %d", ev, int64(versions.MaxVersion))
	}
	if len(req.Events) == 0 {
		return invalid("events", "an append needs at least one event")
	}
	if len(req.Events) > l.MaxEvents {
		return &TooLargeError{Field: "events", Size: len(req.Events), Limit: l.MaxEvents, Detail: "the number of events"}
	}

	ids := make(map[string]int, len(req.Events))
	total := recordOverhead + 2*len(req.StreamName)
	for i, e := range req.Events {
		// Field names are formatted only for an error: this loop runs for
		// every event of every append.
		field := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
		if err := checkName("event_type", e.EventType, l.MaxEventTypeBytes); err != nil {
			return inEvent(i, err)
		}
		if e.EventId != "" {
			if err := checkName("event_id", e.EventId, l.MaxEventIDBytes); err != nil {
				return inEvent(i, err)
			}
			if j, dup := ids[e.EventId]; dup {
				return invalid(field("event_id"), "%q is also the id of events[%d]", e.EventId, j)
			}
			ids[e.EventId] = i
		}
		if e.AggregateId != "" {
			if err := checkName("aggregate_id", e.AggregateId, l.MaxStreamNameBytes); err != nil {
				return inEvent(i, err)
			}
		}
		if e.CreatedAt < 0 {
			return invalid(field("created_at"), "%d is before 1970", e.CreatedAt)
		}
		if err := checkMetadata("metadata", e.Metadata); err != nil {
			return inEvent(i, err)
		}
		if n := len(e.Data) + len(e.Metadata); n > l.MaxEventBytes {
			// Named by the larger of the two.
			name := "data"
			if len(e.Metadata) > len(e.Data) {
				name = "metadata"
			}
			return &TooLargeError{Field: field(name), Size: n, Limit: l.MaxEventBytes,
				Detail: "the size of data plus metadata in bytes"}
		}
		total += proto.Size(e) + 48
	}
	if total > l.MaxAppendBytes {
		return &TooLargeError{Field: "events", Size: total, Limit: l.MaxAppendBytes,
			Detail: "the encoded size of the append in bytes"}
	}
	return nil
}

// inEvent names the field of an *InvalidError as a field of events[i].
func inEvent(i int, err error) error {
	if ie, ok := err.(*InvalidError); ok {
		ie.Field = fmt.Sprintf("events[%d].%s", i, ie.Field)
	}
	return err
}

// checkName accepts non-empty valid UTF-8 without control characters.
// Braces and any other printable character are allowed.
func checkName(field, s string, limit int) error {
	switch {
	case s == "":
		return invalid(field, "must not be empty")
	case len(s) > limit:
		return invalid(field, "is %d bytes long, the limit is %d", len(s), limit)
	case !utf8.ValidString(s):
		return invalid(field, "is not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "has a control character %U at byte %d", r, i)
		}
	}
	return nil
}

// checkMetadata accepts empty metadata or a JSON object whose
// schema_version, when present, is a positive integer: a JSON number
// without fraction or exponent, 1 or more. A string such as "2" is not one.
func checkMetadata(field, md string) error {
	if md == "" {
		return nil
	}
	if !utf8.ValidString(md) {
		return invalid(field, "is not valid UTF-8")
	}
	b := []byte(md)
	if !json.Valid(b) {
		// Decoding says what is wrong; valid metadata never pays for it.
		err := json.Unmarshal(b, new(json.RawMessage))
		return invalid(field, "is not valid JSON: %v", err)
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); t[0] != '{' {
		return invalid(field, "is JSON but not an object")
	}
	// Without the key, written plainly or with escapes, there is nothing
	// more to check.
	if !bytes.Contains(b, []byte("schema_version")) && bytes.IndexByte(b, '\\') < 0 {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return invalid(field, "is not a JSON object: %v", err)
	}
	raw, ok := obj["schema_version"]
	if !ok {
		return nil
	}
	if !positiveInteger(raw) {
		shown := string(raw)
		if len(shown) > 32 {
			shown = shown[:32] + "..."
		}
		return invalid(field, "schema_version %s is not a positive integer", shown)
	}
	return nil
}

// positiveInteger reports whether a JSON value is an integer of 1 or more
// written as digits only.
func positiveInteger(raw []byte) bool {
	if len(raw) == 0 || raw[0] < '1' || raw[0] > '9' {
		return false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(string(raw), 10, 64)
	return err == nil
}
