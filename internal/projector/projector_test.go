package projector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// The projector against a real PostgreSQL and a sidecar on each backend.

// harness is a sidecar, a fresh database and the projectors of a test.
type harness struct {
	t    *testing.T
	addr string
	es   eventstorepb.EventStoreServiceClient
	db   *pgxpool.Pool
	log  *recorder
	// suffix makes the test's group names its own: a real Kafka's groups
	// are shared by every test.
	suffix string
}

// group returns a group name of the test's own.
func (h *harness) group(name string) string { return name + "-" + h.suffix }

func newHarness(t *testing.T, b testenv.Backend) *harness {
	t.Helper()
	sc := testenv.Start(t, testenv.Config(t, b))
	h := &harness{t: t, addr: sc.Addr(), es: testenv.Client(t, sc.Addr()), db: testenv.PostgresPool(t), log: &recorder{},
		suffix: fmt.Sprintf("%08x", rand.Uint32())}
	return h
}

// projector returns a projector of the test's database over a sidecar
// connection with the given dial options.
func (h *harness) projector(group string, dial ...grpc.DialOption) *Projector {
	h.t.Helper()
	dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient(h.addr, dial...)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	return New(h.db, eventstorepb.NewEventStoreServiceClient(conn), Options{
		Group: group, BatchSize: 7, Logger: slog.New(h.log)})
}

// run runs p until the returned stop is called (or the test ends) and
// fails the test if Run returned an error.
func (h *harness) run(p *Projector) (stop func()) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("projector: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// store is what the test appended, folded the obvious way: the rows the
// table must end with.
type store struct {
	mu   sync.Mutex
	rows map[string]row
}

func (s *store) want() []row {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]row, 0, len(s.rows))
	for _, r := range s.rows {
		out = append(out, r)
	}
	sortRows(out)
	return out
}

// row is one row of the content table.
type row struct {
	ID        string
	AuthorID  *string
	Status    string
	Analysis  map[string]any
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (r row) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

func sortRows(rs []row) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].ID < rs[j-1].ID; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// at is a fixed append time per version, so that expected rows are known.
func at(version int64) int64 { return 1_700_000_000 + 10*version }

func submittedEvent(id, author string, version int64) *eventstorepb.Event {
	data, _ := json.Marshal(map[string]string{"content_id": id, "author_id": author, "content": "hello " + id})
	return &eventstorepb.Event{EventType: "ContentSubmitted", Data: data, CreatedAt: at(version),
		EventId: fmt.Sprintf("%s-%d", id, version)}
}

func analyzedEvent(id string, version int64, tokens int) *eventstorepb.Event {
	data, _ := json.Marshal(map[string]any{"content_id": id, "source_event_id": id + "-1",
		"analysis_result": map[string]any{"entities": [][]string{{"Paris", "GPE"}}, "is_toxic": tokens%2 == 0, "token_count": tokens}})
	return &eventstorepb.Event{EventType: "ContentAnalyzed", Data: data, CreatedAt: at(version),
		EventId: fmt.Sprintf("%s-%d", id, version)}
}

func (h *harness) append(stream string, expected int64, events ...*eventstorepb.Event) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.es.AppendToStream(ctx, &eventstorepb.AppendRequest{
		StreamName: stream, ExpectedVersion: expected, Events: events}); err != nil {
		h.t.Fatalf("append to %s: %v", stream, err)
	}
}

// submit starts a content stream and records the row it must make.
func (h *harness) submit(s *store, id, author string) {
	h.t.Helper()
	h.append(id, 0, submittedEvent(id, author, 1))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows = map[string]row{}
	}
	a := author
	s.rows[id] = row{ID: id, AuthorID: &a, Status: "PENDING", Version: 1,
		CreatedAt: time.Unix(at(1), 0).UTC(), UpdatedAt: time.Unix(at(1), 0).UTC()}
}

// analyze appends a ContentAnalyzed at the stream's next version.
func (h *harness) analyze(s *store, id string, tokens int) {
	h.t.Helper()
	s.mu.Lock()
	r := s.rows[id]
	s.mu.Unlock()
	v := r.Version + 1
	h.append(id, r.Version, analyzedEvent(id, v, tokens))
	r.Version, r.Status, r.UpdatedAt = v, "ANALYZED", time.Unix(at(v), 0).UTC()
	r.Analysis = map[string]any{"entities": []any{[]any{"Paris", "GPE"}}, "is_toxic": tokens%2 == 0,
		"token_count": float64(tokens)}
	s.mu.Lock()
	s.rows[id] = r
	s.mu.Unlock()
}

// snapshot reads a table, ordered by id.
func snapshot(t testing.TB, db *pgxpool.Pool, table string) []row {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id, author_id, status, analysis, version, created_at, updated_at
FROM `+pgx.Identifier{table}.Sanitize()+` ORDER BY id`)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		err := r.Scan(&x.ID, &x.AuthorID, &x.Status, &x.Analysis, &x.Version, &x.CreatedAt, &x.UpdatedAt)
		x.CreatedAt, x.UpdatedAt = x.CreatedAt.UTC(), x.UpdatedAt.UTC()
		return x, err
	})
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	sortRows(out)
	return out
}

// xmins returns each row's xmin: the transaction that last wrote it.
func xmins(t testing.TB, db *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT id, xmin::text FROM content`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rows.Next() {
		var id, x string
		if err := rows.Scan(&id, &x); err != nil {
			t.Fatal(err)
		}
		out[id] = x
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// waitTable waits until the content table holds exactly want.
func waitTable(t testing.TB, db *pgxpool.Pool, want []row) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got []row
	for time.Now().Before(deadline) {
		if tableExists(t, db, Live) {
			got = snapshot(t, db, Live)
			if reflect.DeepEqual(got, want) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("content table never became what was appended:\n%s", diffRows(got, want))
}

func tableExists(t testing.TB, db *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	if err := db.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func diffRows(got, want []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "got %d rows, want %d\n", len(got), len(want))
	g := map[string]row{}
	for _, r := range got {
		g[r.ID] = r
	}
	n := 0
	for _, w := range want {
		if r, ok := g[w.ID]; !ok || !reflect.DeepEqual(r, w) {
			fmt.Fprintf(&b, "  got  %v\n  want %v\n", r, w)
			if n++; n > 5 {
				break
			}
		}
	}
	return b.String()
}

// recorder is a slog handler that keeps the messages, for asserting that
// something was logged.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *recorder) count(msg string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestProjection(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		h := newHarness(t, b)
		var s store
		for i := range 12 {
			h.submit(&s, fmt.Sprintf("content-%02d", i), fmt.Sprintf("author-%d", i%3))
		}
		for i := range 6 {
			h.analyze(&s, fmt.Sprintf("content-%02d", i), i+3)
		}
		// Another stream's events are not content: they are filtered out.
		h.append("user-1", 0, &eventstorepb.Event{EventType: "UserRegistered", Data: []byte(`{}`)})

		h.run(h.projector(h.group("read-model")))
		waitTable(t, h.db, s.want())
		waitFor(t, "the caught-up log line", func() bool { return h.log.count("projection caught up") > 0 })

		// Live events after the catch-up.
		for i := 6; i < 12; i++ {
			h.analyze(&s, fmt.Sprintf("content-%02d", i), i+3)
		}
		h.submit(&s, "content-late", "author-9")
		waitTable(t, h.db, s.want())
	})
}

// ackDropper is a client stream interceptor that counts the deliveries a
// subscriber receives and the positions it acks, and drops the acks when
// drop is set, as a projector that crashes between its commit and its
// ack would.
type ackDropper struct {
	drop       bool
	deliveries atomic.Int64
	acked      atomic.Int64
}

func (a *ackDropper) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	return &droppingStream{ClientStream: cs, a: a}, err
}

type droppingStream struct {
	grpc.ClientStream
	a *ackDropper
}

func (s *droppingStream) SendMsg(m any) error {
	if ack := m.(*eventstorepb.SubscribeClientMessage).GetAck(); ack != nil {
		if s.a.drop {
			return nil
		}
		s.a.acked.Add(int64(len(ack.Positions)))
	}
	return s.ClientStream.SendMsg(m)
}

func (s *droppingStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil && m.(*eventstorepb.SubscribeServerMessage).GetDelivery() != nil {
		s.a.deliveries.Add(1)
	}
	return err
}

func TestRedeliveryChangesNothing(t *testing.T) {
	h := newHarness(t, testenv.Backend{Name: "embedded"})
	var s store
	const streams = 10
	for i := range streams {
		id := fmt.Sprintf("content-%02d", i)
		h.submit(&s, id, "author")
		h.analyze(&s, id, i)
	}
	const records = 2 * streams

	// The first projector commits every event and acks none of them.
	first := &ackDropper{drop: true}
	stop := h.run(h.projector(h.group("read-model"), grpc.WithStreamInterceptor(first.intercept)))
	waitTable(t, h.db, s.want())
	waitFor(t, "every delivery", func() bool { return first.deliveries.Load() >= records })
	stop()
	before := xmins(t, h.db)

	// The next member of the group gets every record again.
	second := &ackDropper{}
	h.run(h.projector(h.group("read-model"), grpc.WithStreamInterceptor(second.intercept)))
	waitFor(t, "the redeliveries to be acked", func() bool { return second.acked.Load() >= records })
	if got := second.deliveries.Load(); got < records {
		t.Fatalf("%d deliveries after the restart, want at least %d", got, records)
	}
	if got := snapshot(t, h.db, Live); !reflect.DeepEqual(got, s.want()) {
		t.Fatalf("redelivery changed the table:\n%s", diffRows(got, s.want()))
	}
	if after := xmins(t, h.db); !reflect.DeepEqual(after, before) {
		t.Fatalf("redelivered events rewrote rows: xmin before %v, after %v", before, after)
	}
}

// Streams are independent: any interleaving of their events, with older
// events of a stream delivered again after newer ones, ends with the same
// table as folding each stream alone.
func TestOutOfOrderAcrossStreams(t *testing.T) {
	db := testenv.PostgresPool(t)
	ctx := t.Context()
	if err := Migrate(ctx, db, slog.New(&recorder{})); err != nil {
		t.Fatal(err)
	}
	live := newTable(Live)

	// Each stream: ContentSubmitted, ContentAnalyzed, and for some a
	// second ContentAnalyzed.
	var streams [][]*eventstorepb.Event
	for i := range 40 {
		id := fmt.Sprintf("content-%02d", i)
		es := []*eventstorepb.Event{submittedEvent(id, fmt.Sprintf("author-%d", i%4), 1), analyzedEvent(id, 2, i)}
		if i%3 == 0 {
			es = append(es, analyzedEvent(id, 3, 100+i))
		}
		for v, e := range es {
			e.AggregateId, e.AggregateVersion = id, int64(v+1)
		}
		streams = append(streams, es)
	}
	fold := func(events []*eventstorepb.Event, batch int) {
		t.Helper()
		for len(events) > 0 {
			n := min(batch, len(events))
			d := &eventstorepb.Delivery{Events: events[:n]}
			cs, err := decodeDelivery(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := live.write(ctx, db, cs); err != nil {
				t.Fatal(err)
			}
			events = events[n:]
		}
	}
	for _, es := range streams {
		fold(es, 1)
	}
	want := snapshot(t, db, Live)

	for seed := range uint64(5) {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			if _, err := db.Exec(ctx, `TRUNCATE content`); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(seed, 42))
			next := make([]int, len(streams))
			var order []*eventstorepb.Event
			for left := true; left; {
				left = false
				for _, i := range rng.Perm(len(streams)) {
					if next[i] == len(streams[i]) {
						continue
					}
					left = true
					order = append(order, streams[i][next[i]])
					next[i]++
					// Now and then an event of the stream comes again.
					if rng.IntN(4) == 0 {
						order = append(order, streams[i][rng.IntN(next[i])])
					}
				}
			}
			fold(order, 1+rng.IntN(9))
			if got := snapshot(t, db, Live); !reflect.DeepEqual(got, want) {
				t.Fatalf("interleaving changed the table:\n%s", diffRows(got, want))
			}
		})
	}
}

func TestRebuild(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		h := newHarness(t, b)
		var s store
		for i := range 30 {
			id := fmt.Sprintf("content-%02d", i)
			h.submit(&s, id, fmt.Sprintf("author-%d", i%5))
			if i%3 != 0 {
				h.analyze(&s, id, i)
			}
		}
		h.run(h.projector(h.group("read-model")))
		waitTable(t, h.db, s.want())
		before := snapshot(t, h.db, Live)

		// A rebuild with nothing appended meanwhile ends with the same
		// table.
		rows, err := h.projector(h.group("read-model")).Rebuild(t.Context(), h.group("rebuild-1"))
		if err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		if rows != int64(len(before)) {
			t.Errorf("rebuild reports %d rows, want %d", rows, len(before))
		}
		if got := snapshot(t, h.db, Live); !reflect.DeepEqual(got, before) {
			t.Fatalf("the rebuilt table differs:\n%s", diffRows(got, before))
		}
		if tableExists(t, h.db, Shadow) {
			t.Errorf("%s still exists after the swap", Shadow)
		}
		wantIndexes(t, h.db, "content_pkey", "content_author_id_idx")
		if h.log.count("replay caught up") != 1 || h.log.count("rebuild finished") != 1 {
			t.Errorf("the rebuild did not log its caught-up marker and its end")
		}

		// A rebuild while the live projector folds new events loses none
		// of them.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				id := fmt.Sprintf("content-%02d", i)
				if i%3 == 0 {
					h.analyze(&s, id, 50+i)
				}
				h.submit(&s, fmt.Sprintf("during-%02d", i), "author-x")
			}
		}()
		if _, err := h.projector(h.group("read-model")).Rebuild(t.Context(), h.group("rebuild-2")); err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		wg.Wait()
		waitTable(t, h.db, s.want())

		// The live projector goes on writing into the new table.
		h.analyze(&s, "during-00", 7)
		waitTable(t, h.db, s.want())
	})
}

func wantIndexes(t testing.TB, db *pgxpool.Pool, names ...string) {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT indexname FROM pg_indexes WHERE tablename = 'content' ORDER BY indexname`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), names...)
	for i := 1; i < len(want); i++ {
		for j := i; j > 0 && want[j] < want[j-1]; j-- {
			want[j], want[j-1] = want[j-1], want[j]
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("indexes of content: %v, want %v", got, want)
	}
}

func TestOneRebuildAtATime(t *testing.T) {
	h := newHarness(t, testenv.Backend{Name: "embedded"})
	conn, err := h.db.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, rebuildLockKey); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, rebuildLockKey)
	if _, err := h.projector(h.group("read-model")).Rebuild(t.Context(), h.group("rebuild-1")); err != ErrRebuildRunning {
		t.Fatalf("rebuild while another runs: %v, want ErrRebuildRunning", err)
	}
}

// Deliveries that can never be folded are parked; the others of their
// batch are folded.
func TestUnfoldableDeliveriesAreParked(t *testing.T) {
	h := newHarness(t, testenv.Backend{Name: "embedded"})
	var s store
	h.submit(&s, "content-ok-1", "author")
	// Not JSON.
	h.append("content-bad-json", 0, &eventstorepb.Event{EventType: "ContentSubmitted", Data: []byte("not json")})
	h.submit(&s, "content-ok-2", "author")
	// Valid JSON that PostgreSQL's numeric cannot hold: refused by the
	// database, not by the decoder.
	h.append("content-ok-2", 1, &eventstorepb.Event{EventType: "ContentAnalyzed",
		Data: []byte(`{"content_id":"content-ok-2","analysis_result":{"token_count":1e1000000}}`)})
	h.submit(&s, "content-ok-3", "author")

	h.run(h.projector(h.group("read-model")))
	waitTable(t, h.db, s.want())
	waitFor(t, "two parked deliveries", func() bool {
		res, err := h.es.ListParked(t.Context(), &eventstorepb.ListParkedRequest{Group: h.group("read-model")})
		if err != nil {
			t.Fatalf("list parked: %v", err)
		}
		return len(res.Parked) == 2
	})
	res, _ := h.es.ListParked(t.Context(), &eventstorepb.ListParkedRequest{Group: h.group("read-model")})
	for _, p := range res.Parked {
		stream := p.Delivery.Events[0].AggregateId
		if stream != "content-bad-json" && stream != "content-ok-2" {
			t.Errorf("parked a delivery of %s: %s", stream, p.Reason)
		}
	}
}

func TestMigrateTwice(t *testing.T) {
	db := testenv.PostgresPool(t)
	log := slog.New(&recorder{})
	for range 2 {
		if err := Migrate(t.Context(), db, log); err != nil {
			t.Fatal(err)
		}
	}
	if !tableExists(t, db, Live) {
		t.Fatal("no content table after migrating")
	}
}
