package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// idSpace is the namespace of the load's deterministic event ids.
var idSpace = uuid.MustParse("6f1d1c1e-4a4b-4c7e-9a55-2f1f0e0d0c0b")

// Entry is one line of the writers' log.
type Entry struct {
	Time time.Time `json:"time"`
	// Kind is "ack", "unknown" or "violation".
	Kind   string `json:"kind"`
	Writer string `json:"writer"`
	Stream string `json:"stream"`
	// Seq numbers the writer's logical appends to the stream; retries of
	// one logical append share it and its event ids.
	Seq int `json:"seq"`
	// Version is the acknowledged version: the stream's version after the
	// append, the version of its last event.
	Version int64    `json:"version,omitempty"`
	IDs     []string `json:"ids"`
	Code    string   `json:"code,omitempty"`
	Message string   `json:"message,omitempty"`
}

// Append is what the log says of one logical append.
type Append struct {
	Writer, Stream string
	Seq            int
	IDs            []string
	// Acked is set once any attempt was acknowledged, with Version.
	Acked   bool
	Version int64
	// Unknown counts the attempts whose outcome was unknown.
	Unknown int
}

// Log records what the writers learned, in memory and as JSON lines in a
// file. It is safe for concurrent use.
type Log struct {
	mu      sync.Mutex
	w       *bufio.Writer
	f       *os.File
	appends map[string]*Append
	// violations are outcomes no correct store gives, such as an event id
	// clash for a retry with the same content.
	violations []Entry
	acks       int
	unknown    int
}

// NewLog writes the log to path.
func NewLog(path string) (*Log, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Log{f: f, w: bufio.NewWriter(f), appends: make(map[string]*Append)}, nil
}

// Close flushes the log file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		return err
	}
	return l.f.Close()
}

func appendKey(writer, stream string, seq int) string {
	return writer + "\x00" + stream + "\x00" + strconv.Itoa(seq)
}

func (l *Log) record(e Entry) {
	e.Time = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, _ := json.Marshal(e)
	l.w.Write(append(b, '\n'))

	key := appendKey(e.Writer, e.Stream, e.Seq)
	a := l.appends[key]
	if a == nil {
		a = &Append{Writer: e.Writer, Stream: e.Stream, Seq: e.Seq, IDs: e.IDs}
		l.appends[key] = a
	}
	switch e.Kind {
	case "ack":
		l.acks++
		if a.Acked && a.Version != e.Version {
			v := e
			v.Message = fmt.Sprintf("acknowledged at version %d before, now at %d", a.Version, e.Version)
			l.violations = append(l.violations, v)
		}
		a.Acked, a.Version = true, e.Version
	case "unknown":
		l.unknown++
		a.Unknown++
	case "violation":
		l.violations = append(l.violations, e)
	}
}

// Appends returns every logical append the log knows.
func (l *Log) Appends() []*Append {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*Append, 0, len(l.appends))
	for _, a := range l.appends {
		out = append(out, a)
	}
	return out
}

// Counts returns the acknowledged attempts, the attempts of unknown
// outcome and the violations seen by the writers.
func (l *Log) Counts() (acks, unknown int, violations []Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks, l.unknown, append([]Entry(nil), l.violations...)
}

// writer appends to one stream, one logical append after another, until
// its context ends.
type writer struct {
	name    string
	stream  string
	client  eventstorepb.EventStoreServiceClient
	log     *Log
	timeout time.Duration
	pause   time.Duration
	// version is the stream's version as far as the writer knows.
	version int64
	seq     int
}

var actualVersion = regexp.MustCompile(`actual version (\d+)`)

// run appends until ctx ends. An append in progress when ctx ends is left
// with the outcome its last attempt had.
func (w *writer) run(ctx context.Context) {
	for ctx.Err() == nil {
		w.appendOne(ctx, 1+rand.IntN(3))
		sleepJitter(ctx, w.pause)
	}
}

// ids are the event ids of the writer's logical append seq: the same on
// every attempt and on every run.
func (w *writer) ids(seq, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewSHA1(idSpace, []byte(fmt.Sprintf("%s/%s/%d/%d", w.stream, w.name, seq, i))).String()
	}
	return ids
}

// appendOne makes one logical append, retrying it with the same event ids
// until it is acknowledged or ctx ends.
func (w *writer) appendOne(ctx context.Context, n int) {
	seq := w.seq
	w.seq++
	ids := w.ids(seq, n)
	events := make([]*eventstorepb.Event, n)
	for i, id := range ids {
		events[i] = &eventstorepb.Event{EventId: id, EventType: "FaultTested", CreatedAt: 1,
			Data: []byte(fmt.Sprintf(`{"writer":%q,"seq":%d,"i":%d}`, w.name, seq, i)), Metadata: `{"schema_version":1}`}
	}
	base := Entry{Writer: w.name, Stream: w.stream, Seq: seq, IDs: ids}
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.timeout)
		resp, err := w.client.AppendToStream(actx, &eventstorepb.AppendRequest{
			StreamName: w.stream, ExpectedVersion: w.version, Events: events})
		cancel()
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.OK:
			e := base
			e.Kind, e.Version = "ack", resp.CurrentVersion
			w.log.record(e)
			w.version = resp.CurrentVersion
			return
		case codes.Aborted:
			// Another writer moved the stream on: try again at its
			// version, with the same ids. Had an earlier attempt
			// landed, the store answers with that attempt's version.
			m := actualVersion.FindStringSubmatch(st.Message())
			if m == nil {
				w.violation(base, st, "a conflict that does not name the actual version")
				return
			}
			w.version, _ = strconv.ParseInt(m[1], 10, 64)
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
			e := base
			e.Kind, e.Code, e.Message = "unknown", st.Code().String(), st.Message()
			w.log.record(e)
			sleepJitter(ctx, 100*time.Millisecond)
		default:
			w.violation(base, st, "an answer no retry of a valid append should get")
			return
		}
	}
}

func (w *writer) violation(e Entry, st *status.Status, why string) {
	e.Kind, e.Code, e.Message = "violation", st.Code().String(), why+": "+st.Message()
	w.log.record(e)
}

// sleepJitter sleeps between d/2 and 3d/2, or until ctx ends.
func sleepJitter(ctx context.Context, d time.Duration) {
	d = d/2 + time.Duration(rand.Int64N(int64(d)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
