package sidecar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"
)

// The HTTP server serves the gRPC server's services, the event store and
// the health check, as JSON (or binary protobuf) in the Connect protocol,
// for clients without gRPC such as PHP under php-fpm. vanguard transcodes
// every call into a gRPC call to the same grpc.Server, so both transports
// share one implementation, one set of status codes and one shutdown.
//
// A unary method is one POST of a JSON body to /eventstore.EventStoreService/
// <Method> with Content-Type application/json; an error answers with the
// HTTP status Connect assigns to its gRPC code and a body
// {"code":"aborted","message":...}. A server-streaming method (ReadStream,
// SubscribeToAll) takes Content-Type application/connect+json and frames
// every message in a 5-byte envelope; the last frame carries the error, if
// any. Bidirectional methods (Subscribe) need HTTP/2, which the server does
// not offer: use gRPC for them.

const (
	// httpHeaderTimeout bounds how long a client may take to send the
	// headers of a request.
	httpHeaderTimeout = 10 * time.Second
	// httpIdleTimeout closes kept-alive connections that carry nothing.
	httpIdleTimeout = 2 * time.Minute
)

// maxHTTPMessageBytes bounds one message the transcoder buffers: JSON of
// the largest request, whose data is base64, is about 1.4 times its
// protobuf encoding.
func maxHTTPMessageBytes(cfg Config) int {
	return max(16<<20, 2*maxRequestBytes(cfg))
}

// newHTTPServer returns the HTTP server of srv's services, which buffers
// messages of up to maxMessage bytes. It has no read or write timeout: a
// server-streaming call lasts as long as the client wants.
func newHTTPServer(srv *grpc.Server, maxMessage int, log *slog.Logger) (*http.Server, error) {
	tc, err := vanguardgrpc.NewTranscoder(srv,
		vanguard.WithCodec(newRequestJSONCodec),
		vanguard.WithDefaultServiceOptions(vanguard.WithMaxMessageBufferBytes(uint32(maxMessage))),
	)
	if err != nil {
		return nil, fmt.Errorf("http transcoder: %w", err)
	}
	return &http.Server{
		Handler:           connectByDefault(refuseEmptyBody(tc)),
		ReadHeaderTimeout: httpHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, nil
}

// connectByDefault marks a POST without Connect-Protocol-Version as a
// Connect call. vanguard reads such a request as REST, for which the
// contract has no routes; the mark lets a plain JSON POST (curl, any HTTP
// client) reach the method its path names.
func connectByDefault(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" {
			r.Header.Set("Connect-Protocol-Version", "1")
		}
		next.ServeHTTP(w, r)
	})
}

// refuseEmptyBody answers a POST without a body INVALID_ARGUMENT. Every
// method of the contract takes a request message, and vanguard passes an
// empty body on as no message at all, which gRPC answers INTERNAL.
func refuseEmptyBody(next http.Handler) http.Handler {
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ContentLength <= 0 {
			first := make([]byte, 1)
			n, _ := io.ReadFull(r.Body, first)
			if n == 0 {
				err := connect.NewError(connect.CodeInvalidArgument,
					errors.New("request body: empty; send the request message, {} in JSON for one with no fields"))
				// A write fails only when the client has gone.
				_ = errs.Write(w, r, err)
				return
			}
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(first), r.Body), r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

// listenHTTP opens the HTTP listener of cfg, nil when the HTTP server is
// disabled.
func listenHTTP(cfg Config, log *slog.Logger) (net.Listener, error) {
	if cfg.HTTPAddr == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("SIDECAR_HTTP_ADDR: %w", err)
	}
	if host, _, _ := net.SplitHostPort(cfg.HTTPAddr); !isLoopback(host) {
		log.Warn("http listens beyond loopback; the contract has no authentication", "addr", cfg.HTTPAddr)
	}
	return lis, nil
}

// serveHTTP serves until the server is shut down; only a failure is an
// error.
func serveHTTP(srv *http.Server, lis net.Listener) error {
	err := srv.Serve(lis)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("http server: %w", err)
}

// HTTPAddr is the address the HTTP server listens on, empty when it is
// disabled.
func (sc *Sidecar) HTTPAddr() string {
	if sc.httpLis == nil {
		return ""
	}
	return sc.httpLis.Addr().String()
}
