package faults

import (
	"fmt"
	"sort"

	"github.com/eventsidecar/sidecar/internal/verify"
)

// place is where the topic holds an event.
type place struct {
	stream  string
	version int64
}

// compare checks the writers' log against the events the topic counts per
// stream and returns every broken promise.
func compare(rep *verify.Report, appends []*Append) []string {
	var bad []string
	where := make(map[string][]place)
	for stream, events := range rep.StreamEvents {
		for _, e := range events {
			where[e.ID] = append(where[e.ID], place{stream, e.Version})
		}
	}

	sent := make(map[string]bool)
	for _, a := range appends {
		for _, id := range a.IDs {
			sent[id] = true
		}
		if a.Acked {
			bad = append(bad, checkAcked(a, where)...)
		} else {
			bad = append(bad, checkUnknown(a, where)...)
		}
	}
	for id, ps := range where {
		if !sent[id] {
			bad = append(bad, fmt.Sprintf("event %s is in stream %q at version %d, but no writer sent it",
				id, ps[0].stream, ps[0].version))
		}
	}
	sort.Strings(bad)
	return bad
}

// checkAcked: every event of an acknowledged append is in its stream once,
// at the versions the acknowledgement gave.
func checkAcked(a *Append, where map[string][]place) []string {
	first := a.Version - int64(len(a.IDs)) + 1
	for i, id := range a.IDs {
		want := place{a.Stream, first + int64(i)}
		if ps := where[id]; len(ps) != 1 || ps[0] != want {
			return []string{fmt.Sprintf("append %d of %s to %q, acknowledged at version %d: event %d (%s) is at %v, want once at version %d",
				a.Seq, a.Writer, a.Stream, a.Version, i, id, ps, want.version)}
		}
	}
	return nil
}

// checkUnknown: an append never acknowledged is in its stream at most
// once, and whole: all of its events at consecutive versions, or none.
func checkUnknown(a *Append, where map[string][]place) []string {
	found := 0
	for _, id := range a.IDs {
		if len(where[id]) > 0 {
			found++
		}
	}
	if found == 0 {
		return nil
	}
	desc := fmt.Sprintf("append %d of %s to %q, outcome unknown", a.Seq, a.Writer, a.Stream)
	if found < len(a.IDs) {
		return []string{fmt.Sprintf("%s: %d of its %d events landed", desc, found, len(a.IDs))}
	}
	first := where[a.IDs[0]]
	for i, id := range a.IDs {
		ps := where[id]
		if len(ps) != 1 || ps[0].stream != a.Stream || ps[0].version != first[0].version+int64(i) {
			return []string{fmt.Sprintf("%s: event %d (%s) is at %v, want once after version %d",
				desc, i, id, ps, first[0].version)}
		}
	}
	return nil
}
