package push

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/sidecar/internal/content"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

// The push service over a sidecar, with real WebSocket clients.

type harness struct {
	t   *testing.T
	es  eventstorepb.EventStoreServiceClient
	svc *Service
	srv *httptest.Server
}

// The tests share one sidecar; each runs its own push service and uses
// content ids of its own.
func TestPush(t *testing.T) {
	sc := testenv.Start(t, testenv.Config(t, testenv.Backend{Name: "embedded"}))
	es := testenv.Client(t, sc.Addr())
	tests := []struct {
		name string
		fn   func(t *testing.T, es eventstorepb.EventStoreServiceClient)
	}{
		{"status changes are pushed", testStatusChangesArePushed},
		{"a late client gets the current status", testLateClientGetsTheCurrentStatus},
		{"every watcher gets the change", testEveryWatcherGetsTheChange},
		{"bad watches", testBadWatches},
		{"submit is forwarded", testSubmitIsForwarded},
		{"submit without Laravel", testSubmitWithoutLaravel},
		{"the page is served", testPageIsServed},
		{"close ends websockets", testCloseEndsWebSockets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, es) })
	}
	t.Run("the feed resumes where it stopped", func(t *testing.T) { testFeedResumes(t, es, sc.Addr()) })
}

// newHarness starts a push service over es.
func newHarness(t *testing.T, es eventstorepb.EventStoreServiceClient, submit *url.URL) *harness {
	t.Helper()
	if submit == nil {
		submit, _ = url.Parse("http://127.0.0.1:1/content")
	}
	svc, err := New(es, Options{SubmitURL: submit, MaxWatches: 3, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		ctx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelClose()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	h := &harness{t: t, es: es, svc: svc, srv: srv}
	deadline := time.Now().Add(30 * time.Second)
	for !svc.Live() {
		if time.Now().After(deadline) {
			t.Fatal("the feed never caught up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

// ids returns two content ids no other test uses.
func ids() (string, string) {
	p := fmt.Sprintf("content-%08x", rand.Uint32())
	return p + "-a", p + "-b"
}

func (h *harness) append(stream string, expected int64, e *eventstorepb.Event) {
	h.t.Helper()
	if _, err := h.es.AppendToStream(h.t.Context(), &eventstorepb.AppendRequest{
		StreamName: stream, ExpectedVersion: expected, Events: []*eventstorepb.Event{e}}); err != nil {
		h.t.Fatalf("append to %s: %v", stream, err)
	}
}

func submitted(id string) *eventstorepb.Event {
	return &eventstorepb.Event{EventType: content.EventSubmitted,
		Data: fmt.Appendf(nil, `{"content_id":%q,"author_id":"a","content":"Alice went to Paris."}`, id)}
}

func analyzed(id string, tokens int) *eventstorepb.Event {
	return &eventstorepb.Event{EventType: content.EventAnalyzed,
		Data: fmt.Appendf(nil, `{"content_id":%q,"source_event_id":"x","analysis_result":`+
			`{"entities":[["Alice","PERSON"],["Paris","GPE"]],"is_toxic":false,"token_count":%d}}`, id, tokens)}
}

// client is a WebSocket client of the push service.
type client struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan map[string]any
	done chan error
}

func (h *harness) dial(query string) *client {
	h.t.Helper()
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/ws" + query
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", u, err)
	}
	c := &client{t: h.t, conn: conn, msgs: make(chan map[string]any, 100), done: make(chan error, 1)}
	go func() {
		for {
			var m map[string]any
			if err := wsjson.Read(context.Background(), conn, &m); err != nil {
				c.done <- err
				close(c.msgs)
				return
			}
			c.msgs <- m
		}
	}()
	h.t.Cleanup(func() { conn.CloseNow() })
	return c
}

func (c *client) watch(id string) {
	c.t.Helper()
	if err := wsjson.Write(c.t.Context(), c.conn, map[string]string{"watch": id}); err != nil {
		c.t.Fatalf("send watch: %v", err)
	}
}

func (c *client) next() map[string]any {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatalf("connection ended: %v", <-c.done)
		}
		return m
	case <-time.After(30 * time.Second):
		c.t.Fatal("no message within 30s")
		return nil
	}
}

// expectStatus takes the next message and checks it is id's status.
func (c *client) expectStatus(id, status string, version float64) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["type"] != "status" || m["content_id"] != id || m["status"] != status || m["version"] != version {
		c.t.Fatalf("got %v, want the status %s version %v of %s", m, status, version, id)
	}
	return m
}

// quiet checks that nothing arrives for a while.
func (c *client) quiet() {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if ok {
			c.t.Fatalf("unexpected message %v", m)
		}
	case <-time.After(300 * time.Millisecond):
	}
}

func testStatusChangesArePushed(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	a, b := ids()
	c := h.dial("")
	c.watch(a)
	c.expectStatus(a, "UNKNOWN", 0)

	h.append(a, 0, submitted(a))
	c.expectStatus(a, "PENDING", 1)
	h.append(a, 1, analyzed(a, 5))
	m := c.expectStatus(a, "ANALYZED", 2)
	want := map[string]any{"entities": []any{[]any{"Alice", "PERSON"}, []any{"Paris", "GPE"}},
		"is_toxic": false, "token_count": float64(5)}
	if got := m["analysis"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("analysis %v, want %v", got, want)
	}

	// Other contents' changes are not sent to this client.
	h.append(b, 0, submitted(b))
	c.quiet()
}

func testLateClientGetsTheCurrentStatus(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	a, b := ids()
	h.append(a, 0, submitted(a))
	h.append(a, 1, analyzed(a, 7))
	h.append(b, 0, submitted(b))

	c := h.dial("?watch=" + a + "&watch=" + b)
	got := map[string]string{}
	for range 2 {
		m := c.next()
		got[m["content_id"].(string)] = fmt.Sprintf("%v %v", m["status"], m["version"])
	}
	if want := map[string]string{a: "ANALYZED 2", b: "PENDING 1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("current statuses %v, want %v", got, want)
	}
	// The status it got is not sent again, the next change is.
	h.append(b, 1, analyzed(b, 3))
	c.expectStatus(b, "ANALYZED", 2)
	c.quiet()
}

func testEveryWatcherGetsTheChange(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	a, _ := ids()
	var cs []*client
	for range 3 {
		c := h.dial("?watch=" + a)
		c.expectStatus(a, "UNKNOWN", 0)
		cs = append(cs, c)
	}
	h.append(a, 0, submitted(a))
	for _, c := range cs {
		c.expectStatus(a, "PENDING", 1)
	}
}

func testBadWatches(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	a, _ := ids()
	c := h.dial("")
	c.watch("")
	if m := c.next(); m["type"] != "error" {
		t.Fatalf("empty id: got %v, want an error", m)
	}
	for i := range 3 {
		id := fmt.Sprintf("%s-%d", a, i)
		c.watch(id)
		c.expectStatus(id, "UNKNOWN", 0)
	}
	c.watch(a + "-4")
	if m := c.next(); m["type"] != "error" || m["content_id"] != a+"-4" {
		t.Fatalf("a watch beyond the limit: got %v, want an error", m)
	}

	// Not JSON ends the connection with a reason.
	if err := c.conn.Write(t.Context(), websocket.MessageText, []byte("watch "+a)); err != nil {
		t.Fatal(err)
	}
	for range c.msgs {
	}
	if err := <-c.done; websocket.CloseStatus(err) != websocket.StatusUnsupportedData {
		t.Fatalf("after a malformed message: %v, want close status %d", err, websocket.StatusUnsupportedData)
	}
}

// A client that reads slowly gets the latest status, never an older one
// after a newer one.
func TestWatcherKeepsTheLatestStatus(t *testing.T) {
	w := newWatcher()
	for _, v := range []int64{1, 3, 2} {
		w.offer(content.Status{ContentID: "c", State: content.StatePending, Version: v})
	}
	w.offer(content.Status{ContentID: "d", State: content.StateUnknown})
	m, ok := w.next().(statusMessage)
	if !ok || m.ContentID != "c" || m.Version != 3 {
		t.Fatalf("first message %+v, want c at version 3", m)
	}
	if m, ok := w.next().(statusMessage); !ok || m.ContentID != "d" {
		t.Fatalf("second message %+v, want d", m)
	}
	if m := w.next(); m != nil {
		t.Fatalf("third message %+v, want none", m)
	}
	w.offer(content.Status{ContentID: "c", Version: 3})
	if m := w.next(); m != nil {
		t.Fatalf("a status at the version sent was queued again: %+v", m)
	}
}

func testSubmitIsForwarded(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	var mu sync.Mutex
	var got struct {
		method, path, accept, body string
	}
	laravel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got.method, got.path, got.accept, got.body = r.Method, r.URL.Path, r.Header.Get("Accept"), string(b)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"content_id":"c-1","version":1}`)
	}))
	defer laravel.Close()
	u, _ := url.Parse(laravel.URL + "/content")
	h := newHarness(t, es, u)

	res, err := http.Post(h.srv.URL+"/submit", "application/json", strings.NewReader(`{"author_id":"a","content":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || string(body) != `{"content_id":"c-1","version":1}` {
		t.Fatalf("answer %d %s, want Laravel's 202", res.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.method != "POST" || got.path != "/content" || got.accept != "application/json" ||
		got.body != `{"author_id":"a","content":"hi"}` {
		t.Fatalf("Laravel got %+v", got)
	}
}

func testSubmitWithoutLaravel(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	res, err := http.Post(h.srv.URL+"/submit", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	json.NewDecoder(res.Body).Decode(&body)
	if res.StatusCode != http.StatusBadGateway || body["message"] == "" {
		t.Fatalf("answer %d %v, want 502 with a message", res.StatusCode, body)
	}
}

func testPageIsServed(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	res, err := http.Get(h.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(b), `id="submit"`) ||
		!strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / answered %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

func testCloseEndsWebSockets(t *testing.T, es eventstorepb.EventStoreServiceClient) {
	h := newHarness(t, es, nil)
	a, _ := ids()
	c := h.dial("?watch=" + a)
	c.expectStatus(a, "UNKNOWN", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range c.msgs {
	}
	if err := <-c.done; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("after Close: %v, want close status %d", err, websocket.StatusGoingAway)
	}
}

// cutter is a client stream interceptor that breaks the feed's Subscribe
// stream on demand and holds its reopening until released, as a lost
// sidecar connection would.
type cutter struct {
	cut     chan struct{}
	release chan struct{}
	opens   atomic.Int32
}

func (c *cutter) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if method != eventstorepb.EventStoreService_Subscribe_FullMethodName {
		return streamer(ctx, desc, cc, method, opts...)
	}
	// Only the first stream is cut; a nil channel never is.
	var cut chan struct{}
	if c.opens.Add(1) == 1 {
		cut = c.cut
	} else {
		<-c.release
	}
	cs, err := streamer(ctx, desc, cc, method, opts...)
	return &cutStream{ClientStream: cs, cut: cut}, err
}

type cutStream struct {
	grpc.ClientStream
	cut chan struct{}
}

func (s *cutStream) RecvMsg(m any) error {
	got := make(chan error, 1)
	go func() { got <- s.ClientStream.RecvMsg(m) }()
	select {
	case err := <-got:
		return err
	case <-s.cut:
		return status.Error(codes.Unavailable, "connection cut by the test")
	}
}

func testFeedResumes(t *testing.T, es eventstorepb.EventStoreServiceClient, addr string) {
	cut := &cutter{cut: make(chan struct{}), release: make(chan struct{})}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(cut.intercept))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := newHarness(t, eventstorepb.NewEventStoreServiceClient(conn), nil)
	h.es = es
	a, b := ids()
	c := h.dial("?watch=" + a + "&watch=" + b)
	c.next()
	c.next()
	// The feed delivers a change, so it knows a position past the end it
	// started at.
	h.append(b, 0, submitted(b))
	c.expectStatus(b, "PENDING", 1)

	close(cut.cut)
	waitFor(t, "the feed to reopen", func() bool { return cut.opens.Load() > 1 })
	// Appended while the feed is away: only a resumed subscription sees it.
	h.append(a, 0, submitted(a))
	close(cut.release)
	c.expectStatus(a, "PENDING", 1)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
