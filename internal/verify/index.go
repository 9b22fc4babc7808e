package verify

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/eventsidecar/sidecar/internal/versions"
)

// checkIndex compares the index entry of every stream with the topic.
// A stream whose entry is ahead of what was read was appended to since:
// the topic is read further, up to maxRounds times, before that counts as
// a problem. An entry one append behind the topic, with that append's
// reservation in place, is an append between produce and commit (or one
// whose sidecar died there, which its next writer commits): no problem.
func (v *verifier) checkIndex(ctx context.Context) error {
	ix := v.opts.Index
	complete, err := ix.HasEpoch(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if !complete {
		v.problem(Problem{Kind: IndexNoEpoch, Partition: -1, Offset: -1,
			Detail: "the index lacks its epoch: Redis lost data or the index was never built; " +
				"a sidecar rebuilds it from the topic before it admits appends, so its entries were not compared"})
		return nil
	}
	v.report.IndexChecked = true

	pending := slices.Sorted(maps.Keys(v.streams))
	err = ix.EachStream(ctx, func(name string) error {
		if v.streams[name] == nil {
			pending = append(pending, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify: list the index's streams: %w", err)
	}

	for round := 0; len(pending) > 0; round++ {
		entries, err := ix.Inspect(ctx, pending)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		var ahead []string
		var later []Problem
		for _, e := range entries {
			if round == 0 && e.Reserved {
				v.report.Reservations++
				if e.LeaseDeadline.Before(time.Now()) {
					v.report.Expired++
				}
			}
			p, isAhead := v.compare(e)
			switch {
			case isAhead && round < maxRounds:
				ahead = append(ahead, e.Stream)
			case p != nil:
				later = append(later, *p)
			}
		}
		for _, p := range later {
			v.problem(p)
		}
		if len(ahead) > 0 {
			if _, err := v.readMore(ctx); err != nil {
				return err
			}
		}
		pending = ahead
	}
	return nil
}

// compare checks one entry against the stream read from the topic. It
// returns the problem, if any, and whether the entry is ahead of the
// topic read so far.
func (v *verifier) compare(e versions.Entry) (p *Problem, ahead bool) {
	s := v.streams[e.Stream]
	bad := func(kind Kind, format string, args ...any) *Problem {
		p := &Problem{Kind: kind, Stream: e.Stream, Partition: -1, Offset: -1, Detail: fmt.Sprintf(format, args...)}
		if s != nil {
			p.Partition, p.Offset = s.partition, s.lastOffset
		}
		return p
	}
	if s == nil {
		if !e.Found || e.Version == 0 {
			// A new stream's first append, reserved and not yet read.
			return nil, false
		}
		return bad(IndexExtra, "the index has version %d, the topic has no record of the stream", e.Version), true
	}

	version := e.Version
	switch {
	case version > s.version:
		return bad(IndexVersion, "the index has version %d, the topic %d", version, s.version), true
	case version < s.version && pendingCommit(e, s):
		return nil, false
	case !e.Found:
		return bad(IndexMissing, "the topic has the stream at version %d, the index has no entry", s.version), false
	case version < s.version:
		return bad(IndexVersion, "the index has version %d, the topic %d", version, s.version), false
	case e.Partition != s.partition:
		return bad(IndexPartition, "the index pins the stream to partition %d, its records are in %d",
			e.Partition, s.partition), false
	case e.LastOffset != s.lastOffset:
		return bad(IndexOffset, "the index has the stream's last record at offset %d, the topic at %d",
			e.LastOffset, s.lastOffset), false
	}
	return nil, false
}

// pendingCommit reports whether the entry's reservation accounts for the
// versions the topic has beyond the entry: the reserved record landed and
// awaits its commit.
func pendingCommit(e versions.Entry, s *stream) bool {
	r := e.Reservation
	return e.Reserved && r.FirstVersion == e.Version+1 && r.FirstVersion+int64(r.Count)-1 == s.version &&
		r.Partition == s.partition
}
