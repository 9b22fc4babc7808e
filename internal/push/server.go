package push

import (
	"context"
	"embed"
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

//go:embed page
var page embed.FS

const (
	// maxClientMessage bounds a message from a client.
	maxClientMessage = 4096
	// maxSubmitBytes bounds a submission forwarded to Laravel.
	maxSubmitBytes = 64 << 10
	// maxContentIDBytes bounds a watched content id, as the sidecar
	// bounds stream names.
	maxContentIDBytes = 256
	// writeTimeout bounds sending one message to a client.
	writeTimeout = 10 * time.Second
	// pingInterval is how often an idle connection is checked.
	pingInterval = 30 * time.Second
)

// Handler serves the status page (GET /), the WebSockets (GET /ws), the
// submissions (POST /submit) and a health check (GET /healthz).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.Handle("POST /submit", http.MaxBytesHandler(s.submitProxy(), maxSubmitBytes))
	mux.HandleFunc("GET /healthz", s.serveHealth)
	return mux
}

func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	b, err := page.ReadFile("page/index.html")
	if err != nil {
		http.Error(w, "page missing", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

func (s *Service) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]bool{"live": s.Live()})
}

// submitProxy forwards a submission to Laravel's POST /content and its
// answer back, so that the page stays on one origin.
func (s *Service) submitProxy() http.Handler {
	target := *s.opts.SubmitURL
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := target
			pr.Out.URL = &u
			pr.Out.Host = ""
			pr.Out.Header.Set("Accept", "application/json")
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("submission not forwarded", "url", target.String(), "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(map[string]string{"message": "the content API cannot be reached"})
		},
	}
}

// clientMessage is what a client sends.
type clientMessage struct {
	Watch string `json:"watch"`
}

// serveWS runs one client's WebSocket: a reader of its watch requests and
// this goroutine, the writer of its statuses.
func (s *Service) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.opts.OriginPatterns})
	if err != nil {
		// Accept answered the request.
		s.log.Debug("websocket refused", "err", err)
		return
	}
	s.conns.Add(1)
	defer s.conns.Done()
	c.SetReadLimit(maxClientMessage)
	// The writer stops when the service closes; the reader only once the
	// handler returns, as coder/websocket drops the connection without a
	// close frame when a read's context ends.
	ctx, cancel := context.WithCancel(s.closing)
	defer cancel()
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()

	wt := newWatcher()
	defer func() { s.hub.remove(wt, wt.ids()) }()
	for _, id := range r.URL.Query()["watch"] {
		s.watch(ctx, wt, id)
	}
	go func() {
		defer cancel()
		s.readWatches(rctx, c, wt)
	}()

	err = s.write(ctx, c, wt)
	switch {
	case s.closing.Err() != nil:
		c.Close(websocket.StatusGoingAway, "the service is shutting down")
	case websocket.CloseStatus(err) != -1:
		// The client closed.
	default:
		c.CloseNow()
	}
}

// readWatches handles the client's messages until it leaves or sends
// something malformed.
func (s *Service) readWatches(ctx context.Context, c *websocket.Conn, wt *watcher) {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var m clientMessage
		if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
			c.Close(websocket.StatusUnsupportedData, `messages are JSON text like {"watch":"<content id>"}`)
			return
		}
		s.watch(ctx, wt, m.Watch)
	}
}

// watch adds id to the client's contents and offers its current status.
// The watcher is registered before the read, so a change that lands
// meanwhile is not missed; the version order sorts out which is newer.
func (s *Service) watch(ctx context.Context, wt *watcher, id string) {
	if id == "" || len(id) > maxContentIDBytes || !utf8.ValidString(id) || strings.ContainsFunc(id, isControl) {
		wt.fail("", "watch: a content id is 1 to 256 bytes of UTF-8 without control characters")
		return
	}
	added, ok := wt.watch(id, s.opts.MaxWatches)
	if !ok {
		wt.fail(id, "watch: this connection watches the most contents allowed")
		return
	}
	if !added {
		return
	}
	s.hub.add(id, wt)
	st, err := s.current(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("current status not read", "stream", id, "err", err)
			wt.fail(id, "the current status cannot be read; live changes still come")
		}
		return
	}
	wt.offer(st)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// write sends the watcher's messages until ctx ends or a send fails, and
// pings an idle client now and then. Each send has its own deadline rather
// than ctx: coder/websocket drops the connection when a write's context
// ends, and a send cut short by shutdown would lose the close frame.
func (s *Service) write(ctx context.Context, c *websocket.Conn, wt *watcher) error {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		for m := wt.next(); m != nil; m = wt.next() {
			wctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := wsjson.Write(wctx, c, m)
			cancel()
			if err != nil {
				return err
			}
		}
		select {
		case <-wt.wake:
		case <-ping.C:
			pctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
