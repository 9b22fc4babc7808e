package content

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

func event(typ, data string) *eventstorepb.Event {
	return &eventstorepb.Event{EventId: "e-1", AggregateId: "c-1", AggregateVersion: 2, EventType: typ,
		Data: []byte(data), CreatedAt: 1_700_000_000}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		e    *eventstorepb.Event
		// ok false: not folded; bad: the error mentions it.
		ok   bool
		bad  string
		want Change
	}{
		{"submitted", event(EventSubmitted, `{"content_id":"c-1","author_id":"a-1","content":"hi"}`), true, "",
			Change{Submitted: &Submitted{AuthorID: "a-1"}}},
		{"submitted without content_id", event(EventSubmitted, `{"author_id":"a-1"}`), true, "",
			Change{Submitted: &Submitted{AuthorID: "a-1"}}},
		{"analyzed", event(EventAnalyzed, `{"content_id":"c-1","source_event_id":"e-0","analysis_result":`+
			`{ "entities": [["Paris", "GPE"]], "is_toxic": false, "token_count": 3 }}`), true, "",
			Change{Analyzed: &Analyzed{Result: json.RawMessage(`{"entities":[["Paris","GPE"]],"is_toxic":false,"token_count":3}`)}}},
		{"another type", event("UserRegistered", `not json`), false, "", Change{}},
		{"not json", event(EventSubmitted, `not json`), true, "data", Change{}},
		{"no author", event(EventSubmitted, `{"content_id":"c-1"}`), true, "author_id", Change{}},
		{"empty author", event(EventSubmitted, `{"author_id":""}`), true, "author_id", Change{}},
		{"author with NUL", event(EventSubmitted, `{"author_id":"a\u0000b"}`), true, "NUL", Change{}},
		{"other stream's content_id", event(EventSubmitted, `{"content_id":"c-2","author_id":"a"}`), true,
			"content_id", Change{}},
		{"no result", event(EventAnalyzed, `{"content_id":"c-1"}`), true, "analysis_result", Change{}},
		{"result not an object", event(EventAnalyzed, `{"analysis_result":[1]}`), true, "analysis_result", Change{}},
		{"result with NUL", event(EventAnalyzed, `{"analysis_result":{"entities":[["a\u0000","X"]]}}`), true,
			"NUL", Change{}},
		{"an escaped backslash is not NUL", event(EventAnalyzed, `{"analysis_result":{"t":"\\u0000"}}`), true, "",
			Change{Analyzed: &Analyzed{Result: json.RawMessage(`{"t":"\\u0000"}`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok, err := Decode(tt.e)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if tt.bad != "" {
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("err %v, want ErrMalformed about %s", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			tt.want.ContentID, tt.want.Version, tt.want.At = "c-1", 2, time.Unix(1_700_000_000, 0).UTC()
			if got, want := mustJSON(c), mustJSON(tt.want); got != want {
				t.Fatalf("change %s, want %s", got, want)
			}
		})
	}
}

func TestDecodeRefusesBadStreams(t *testing.T) {
	for name, e := range map[string]*eventstorepb.Event{
		"no aggregate id": {EventType: EventSubmitted, AggregateVersion: 1, Data: []byte(`{"author_id":"a"}`)},
		"no version":      {EventType: EventSubmitted, AggregateId: "c", Data: []byte(`{"author_id":"a"}`)},
	} {
		if _, _, err := Decode(e); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestStatusOf(t *testing.T) {
	c, _, err := Decode(event(EventAnalyzed, `{"analysis_result":{"is_toxic":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := mustJSON(StatusOf(c))
	want := `{"content_id":"c-1","status":"ANALYZED","version":2,"analysis":{"is_toxic":true},"updated_at":"2023-11-14T22:13:20Z"}`
	if got != want {
		t.Fatalf("status %s, want %s", got, want)
	}
	if got := mustJSON(Unknown("c-9")); got != `{"content_id":"c-9","status":"UNKNOWN","version":0}` {
		t.Fatalf("unknown status %s", got)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// FuzzDecode feeds event data from anywhere to the decoder: it never
// panics, and what it accepts PostgreSQL can store.
func FuzzDecode(f *testing.F) {
	f.Add(EventSubmitted, []byte(`{"content_id":"c-1","author_id":"a"}`))
	f.Add(EventAnalyzed, []byte(`{"analysis_result":{"entities":[["x","Y"]],"is_toxic":false,"token_count":1}}`))
	f.Add(EventAnalyzed, []byte(`{"analysis_result":{"a":"\u0000"}}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		c, ok, err := Decode(&eventstorepb.Event{EventType: typ, AggregateId: "c-1", AggregateVersion: 1, Data: data})
		if err != nil || !ok {
			return
		}
		switch {
		case c.Submitted != nil:
			if strings.ContainsRune(c.Submitted.AuthorID, 0) {
				t.Fatalf("accepted an author id with NUL")
			}
		case c.Analyzed != nil:
			if !json.Valid(c.Analyzed.Result) || c.Analyzed.Result[0] != '{' {
				t.Fatalf("accepted a result that is not a JSON object: %q", c.Analyzed.Result)
			}
		default:
			t.Fatal("a folded change without a kind")
		}
	})
}
