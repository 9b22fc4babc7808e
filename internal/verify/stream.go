package verify

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// stream is what the fold knows of one stream.
type stream struct {
	name      string
	partition int32
	split     bool
	// version is the last version counted and lastOffset the offset of the
	// record that holds it.
	version    int64
	lastOffset int64
	// ids maps every counted event id to its version.
	ids map[string]int64
	// missing are the versions skipped so far, in order.
	missing []span

	keep bool
	kept []Event
}

// span is a run of missing versions, noticed at the record at offset.
type span struct {
	from, to, offset int64
}

func newStream(name string, partition int32, keep bool) *stream {
	return &stream{name: name, partition: partition, lastOffset: -1, ids: make(map[string]int64), keep: keep}
}

// add folds one record of the stream, in partition order.
func (s *stream) add(v *verifier, a *eventstorepb.RecordedAppend, r *kgo.Record) {
	at := func(kind Kind, version int64, format string, args ...any) {
		v.problem(Problem{Kind: kind, Stream: s.name, Partition: r.Partition, Offset: r.Offset,
			Version: version, Detail: fmt.Sprintf(format, args...)})
	}
	if r.Partition != s.partition && !s.split {
		s.split = true
		at(SplitPartition, a.FirstVersion, "the stream's first record is in partition %d", s.partition)
	}
	n := int64(len(a.Events))
	if n == 0 {
		at(Undecodable, a.FirstVersion, "the record holds no events")
		return
	}
	first, last := a.FirstVersion, a.FirstVersion+n-1
	switch {
	case first == s.version+1:
		s.count(v, a, r)
	case first > s.version+1:
		// Reported at the end, unless a later record fills it.
		s.missing = append(s.missing, span{from: s.version + 1, to: first - 1, offset: r.Offset})
		s.count(v, a, r)
	case s.fills(first, last):
		// Records of a split stream have no order across its partitions:
		// which comes first is how the partitions were read.
		if !s.split {
			at(OutOfOrder, first, "versions %d..%d fill a gap but come after version %d", first, last, s.version)
		}
		s.count(v, a, r)
	case s.repeats(a):
		at(DuplicateVersion, first, "versions %d..%d again, with the same events: one append written twice",
			first, last)
	default:
		at(Superseded, first, "versions %d..%d are held by earlier records; the stream was at version %d",
			first, last, s.version)
	}
}

// count adds a record's events to the stream.
func (s *stream) count(v *verifier, a *eventstorepb.RecordedAppend, r *kgo.Record) {
	for i, e := range a.Events {
		version := a.FirstVersion + int64(i)
		if e.AggregateVersion != version {
			v.problem(Problem{Kind: OutOfOrder, Stream: s.name, Partition: r.Partition, Offset: r.Offset,
				Version: version, Detail: fmt.Sprintf("event %q carries version %d at version %d of its record",
					e.EventId, e.AggregateVersion, version)})
		}
		if prev, seen := s.ids[e.EventId]; seen {
			v.problem(Problem{Kind: DuplicateEventID, Stream: s.name, Partition: r.Partition, Offset: r.Offset,
				Version: version, Detail: fmt.Sprintf("event id %q is at version %d already", e.EventId, prev)})
		} else {
			s.ids[e.EventId] = version
		}
		v.report.Events++
		if s.keep {
			s.kept = append(s.kept, Event{ID: e.EventId, Version: version, Partition: r.Partition, Offset: r.Offset})
		}
	}
	if last := a.FirstVersion + int64(len(a.Events)) - 1; last > s.version {
		s.version, s.lastOffset = last, r.Offset
	}
}

// fills reports whether versions first..last lie in one missing span, and
// removes them from it.
func (s *stream) fills(first, last int64) bool {
	for i, g := range s.missing {
		if first < g.from || last > g.to {
			continue
		}
		var rest []span
		if first > g.from {
			rest = append(rest, span{from: g.from, to: first - 1, offset: g.offset})
		}
		if last < g.to {
			rest = append(rest, span{from: last + 1, to: g.to, offset: g.offset})
		}
		s.missing = append(s.missing[:i], append(rest, s.missing[i+1:]...)...)
		return true
	}
	return false
}

// repeats reports whether every event of a is counted already at the
// version a gives it.
func (s *stream) repeats(a *eventstorepb.RecordedAppend) bool {
	for i, e := range a.Events {
		if s.ids[e.EventId] != a.FirstVersion+int64(i) {
			return false
		}
	}
	return true
}
