// Package verify checks an event topic and its version index against the
// store's invariants, for operators and for the fault suite.
//
// It reads every partition from its first offset with a plain consumer,
// not through the store, and folds the records per stream the way a
// rebuild does: a record counts when it continues its stream. What does
// not fit is reported as a problem:
//
//   - gap: versions missing between two records of a stream.
//   - duplicate_version: a record repeats versions of an earlier record
//     with the same events: one append written twice.
//   - duplicate_event_id: an event id counted at two versions of a stream.
//   - out_of_order: a record that fills versions missing before it, or
//     events whose versions do not follow their record's first version.
//   - split_partition: a stream with records in more than one partition.
//     Its records have no order across those partitions, so a record
//     filling a gap is not out_of_order there.
//   - superseded: a record whose versions other events hold already; it
//     landed after its lease was resolved, and readers skip it.
//   - undecodable: a record in the store's format that does not decode.
//   - index_version, index_partition, index_offset: the index entry of a
//     stream disagrees with the topic; index_missing and index_extra: a
//     stream only in the topic or only in the index; index_no_epoch: the
//     index is incomplete and waits for a rebuild.
//
// Verifying a topic that is being appended to is sound: the topic is read
// to the end offsets at the start, and a stream whose index entry is ahead
// of what was read is read further before it counts as a problem.
//
// Memory grows with the number of distinct event ids in the topic: every
// id is kept to find duplicates.
package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/versions"
)

// Kind names a kind of problem.
type Kind string

// The kinds of problems; the package doc says what each means.
const (
	Gap              Kind = "gap"
	DuplicateVersion Kind = "duplicate_version"
	DuplicateEventID Kind = "duplicate_event_id"
	OutOfOrder       Kind = "out_of_order"
	SplitPartition   Kind = "split_partition"
	Superseded       Kind = "superseded"
	Undecodable      Kind = "undecodable"
	IndexVersion     Kind = "index_version"
	IndexPartition   Kind = "index_partition"
	IndexOffset      Kind = "index_offset"
	IndexMissing     Kind = "index_missing"
	IndexExtra       Kind = "index_extra"
	IndexNoEpoch     Kind = "index_no_epoch"
)

// Problem is one finding. Partition and Offset locate the record it is
// about, -1 when it is about no single record.
type Problem struct {
	Kind      Kind   `json:"kind"`
	Stream    string `json:"stream,omitempty"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Version is the first version concerned, 0 when none is.
	Version int64  `json:"version,omitempty"`
	Detail  string `json:"detail"`
}

func (p Problem) String() string {
	s := string(p.Kind)
	if p.Stream != "" {
		s += fmt.Sprintf(" stream=%q", p.Stream)
	}
	if p.Partition >= 0 {
		s += fmt.Sprintf(" partition=%d", p.Partition)
	}
	if p.Offset >= 0 {
		s += fmt.Sprintf(" offset=%d", p.Offset)
	}
	if p.Version > 0 {
		s += fmt.Sprintf(" version=%d", p.Version)
	}
	return s + ": " + p.Detail
}

// Options configure Run.
type Options struct {
	// Kafka is how to reach the topic; Brokers and Topic are required.
	// Run only reads.
	Kafka kafka.Config
	// Index is the topic's version index; nil checks the topic only.
	Index *versions.Index
	// MaxProblems is how many problems the report keeps in detail; the
	// counts cover all of them. Default 100.
	MaxProblems int
	// KeepEvents keeps every counted event of every stream in the report,
	// for callers that compare the topic with what they appended.
	KeepEvents bool
	// Progress, when not nil, is called from Run's goroutine about every
	// thousand records and at the end of each pass over the topic.
	Progress func(Progress)
	// Logger receives the pass boundaries. Default slog.Default().
	Logger *slog.Logger
}

// Progress is how far Run has read.
type Progress struct {
	// Done and Total count offsets over all partitions; Total grows when
	// Run reads further for streams appended to meanwhile.
	Done, Total int64
}

// Report is the outcome of Run.
type Report struct {
	Topic      string `json:"topic"`
	Partitions int    `json:"partitions"`
	Streams    int    `json:"streams"`
	// Records counts the store's records, Fences the fences the append
	// protocol wrote to resolve unknown outcomes, and Foreign the records
	// of other writers; fences and foreign records hold no events.
	Records int `json:"records"`
	Events  int `json:"events"`
	Fences  int `json:"fences"`
	Foreign int `json:"foreign"`
	// IndexChecked is set when the index was compared with the topic.
	// Reservations counts streams holding a lease, Expired those whose
	// lease ran out and awaits the next writer; neither is a problem.
	IndexChecked bool `json:"index_checked"`
	Reservations int  `json:"reservations"`
	Expired      int  `json:"expired"`
	// ProblemCount counts every problem, ByKind per kind; Problems holds
	// the first Options.MaxProblems, in the order found.
	ProblemCount int          `json:"problem_count"`
	ByKind       map[Kind]int `json:"by_kind"`
	Problems     []Problem    `json:"problems"`
	// StreamEvents holds, with Options.KeepEvents, every stream's counted
	// events in the order read.
	StreamEvents map[string][]Event `json:"-"`
}

// Event is a counted event, kept with Options.KeepEvents.
type Event struct {
	ID        string
	Version   int64
	Partition int32
	Offset    int64
}

// OK reports whether the verification found no problem.
func (r *Report) OK() bool { return r.ProblemCount == 0 }

// maxRounds bounds how often Run reads further for streams whose index
// entry is ahead of the topic it read.
const maxRounds = 3

// Run verifies the topic, and the index when opts.Index is set. It returns
// an error only when it could not read; problems are in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if len(opts.Kafka.Brokers) == 0 || opts.Kafka.Topic == "" {
		return nil, errors.New("verify: brokers and a topic are required")
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 100
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cl, err := kafka.NewAdminClient(opts.Kafka)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer cl.Close()
	v := &verifier{opts: opts, topic: opts.Kafka.Topic, cl: cl, adm: kadm.NewClient(cl),
		streams: make(map[string]*stream), next: make(map[int32]int64),
		report: &Report{Topic: opts.Kafka.Topic, ByKind: make(map[Kind]int)}}
	if err := v.read(ctx); err != nil {
		return nil, err
	}
	if opts.Index != nil {
		if err := v.checkIndex(ctx); err != nil {
			return nil, err
		}
	}
	v.finish()
	return v.report, nil
}

type verifier struct {
	opts    Options
	topic   string
	cl      *kgo.Client
	adm     *kadm.Client
	streams map[string]*stream
	// next is the offset to read next, per partition.
	next   map[int32]int64
	report *Report
	// done and total count the offsets read and to read.
	done, total int64
}

func (v *verifier) problem(p Problem) {
	v.report.ProblemCount++
	v.report.ByKind[p.Kind]++
	if len(v.report.Problems) < v.opts.MaxProblems {
		v.report.Problems = append(v.report.Problems, p)
	}
}

// read reads every partition from where the last read stopped to the end
// offsets as they are now, and returns the streams it touched.
func (v *verifier) read(ctx context.Context) error {
	_, err := v.readMore(ctx)
	return err
}

func (v *verifier) readMore(ctx context.Context) (map[string]bool, error) {
	ends, err := v.endOffsets(ctx)
	if err != nil {
		return nil, err
	}
	v.report.Partitions = max(v.report.Partitions, len(ends))
	from := make(map[int32]kgo.Offset)
	for p, end := range ends {
		if end > v.next[p] {
			from[p] = kgo.NewOffset().At(v.next[p])
			v.total += end - v.next[p]
		}
	}
	touched := make(map[string]bool)
	v.opts.Logger.Debug("verify reads the topic", "topic", v.topic, "partitions", len(ends),
		"offsets", v.total-v.done)
	if len(from) == 0 {
		v.progress()
		return touched, nil
	}

	// A consumer with the admin client's options: the same seeds, TLS and
	// SASL.
	cl, err := kgo.NewClient(append(v.cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{v.topic: from}),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(16<<20),
	)...)
	if err != nil {
		return nil, fmt.Errorf("verify: consumer: %w", err)
	}
	defer cl.Close()
	for len(from) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var fetchErr error
		fs.EachError(func(_ string, p int32, err error) {
			fetchErr = cmp.Or(fetchErr, fmt.Errorf("verify: fetch partition %d: %w", p, err))
		})
		if fetchErr != nil {
			return nil, fetchErr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end := ends[r.Partition]
			if _, reading := from[r.Partition]; !reading || r.Offset < v.next[r.Partition] || r.Offset >= end {
				return
			}
			v.done += r.Offset + 1 - v.next[r.Partition]
			v.next[r.Partition] = r.Offset + 1
			if name := v.add(r); name != "" {
				touched[name] = true
			}
			if r.Offset == end-1 {
				delete(from, r.Partition)
			}
			if v.done%1000 == 0 {
				v.progress()
			}
		})
	}
	v.progress()
	return touched, nil
}

func (v *verifier) progress() {
	if v.opts.Progress != nil {
		v.opts.Progress(Progress{Done: v.done, Total: v.total})
	}
}

func (v *verifier) endOffsets(ctx context.Context) (map[int32]int64, error) {
	listed, err := v.adm.ListEndOffsets(ctx, v.topic)
	if err != nil {
		return nil, fmt.Errorf("verify: list end offsets: %w", err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("verify: list end offsets: %w", err)
	}
	ends := make(map[int32]int64)
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) == 0 {
		return nil, fmt.Errorf("verify: topic %q not found", v.topic)
	}
	return ends, nil
}

// add folds one record; it returns the stream it belongs to, "" for a
// record of no stream.
func (v *verifier) add(r *kgo.Record) string {
	if r.Attrs.IsControl() {
		return ""
	}
	if kafka.IsFence(r) {
		v.report.Fences++
		return ""
	}
	a, err := kafka.Decode(r)
	if errors.Is(err, kafka.ErrNotAnAppend) {
		v.report.Foreign++
		return ""
	}
	if err != nil {
		v.problem(Problem{Kind: Undecodable, Stream: string(r.Key), Partition: r.Partition, Offset: r.Offset,
			Detail: err.Error()})
		return ""
	}
	v.report.Records++
	s := v.streams[a.StreamName]
	if s == nil {
		s = newStream(a.StreamName, r.Partition, v.opts.KeepEvents)
		v.streams[a.StreamName] = s
	}
	s.add(v, a, r)
	return a.StreamName
}

// finish reports what only the whole topic shows and sorts the report.
func (v *verifier) finish() {
	v.report.Streams = len(v.streams)
	for _, name := range slices.Sorted(maps.Keys(v.streams)) {
		s := v.streams[name]
		for _, g := range s.missing {
			v.problem(Problem{Kind: Gap, Stream: name, Partition: s.partition, Offset: g.offset, Version: g.from,
				Detail: fmt.Sprintf("versions %d..%d are missing; the record at this offset starts at %d",
					g.from, g.to, g.to+1)})
		}
		if v.opts.KeepEvents {
			if v.report.StreamEvents == nil {
				v.report.StreamEvents = make(map[string][]Event)
			}
			v.report.StreamEvents[name] = s.kept
		}
	}
}
