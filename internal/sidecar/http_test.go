package sidecar_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/internal/testenv"
)

// The HTTP server: the same service as JSON in the Connect protocol, as a
// PHP client calls it.

func startHTTP(t *testing.T, b testenv.Backend) string {
	t.Helper()
	cfg := testenv.Config(t, b)
	cfg.HTTPAddr = "127.0.0.1:0"
	sc := testenv.Start(t, cfg)
	if sc.HTTPAddr() == "" {
		t.Fatal("HTTPAddr is empty with SIDECAR_HTTP_ADDR set")
	}
	return "http://" + sc.HTTPAddr() + "/eventstore.EventStoreService/"
}

// connectError is the body of a failed unary Connect call.
type connectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// postJSON calls a unary method and returns the HTTP status and body.
func postJSON(t testing.TB, url string, req any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, url, "application/json", body)
}

// post sends body as it is.
func post(t testing.TB, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", url, err)
	}
	return resp.StatusCode, out
}

func wantHTTPError(t testing.TB, status int, body []byte, wantStatus int, wantCode string, contains ...string) {
	t.Helper()
	var ce connectError
	if err := json.Unmarshal(body, &ce); err != nil {
		t.Fatalf("status %d, body %q is not a Connect error: %v", status, body, err)
	}
	if status != wantStatus || ce.Code != wantCode {
		t.Fatalf("got status %d code %q (%s), want %d %q", status, ce.Code, ce.Message, wantStatus, wantCode)
	}
	for _, s := range contains {
		if !strings.Contains(ce.Message, s) {
			t.Fatalf("message %q does not mention %q", ce.Message, s)
		}
	}
}

func jsonEvent(typ, data string) map[string]any {
	return map[string]any{
		"eventType": typ,
		"data":      base64.StdEncoding.EncodeToString([]byte(data)),
		"metadata":  `{"schema_version":1}`,
	}
}

// streamFrames reads the envelopes of a Connect stream and sends each to
// frames, the end-of-stream one last; the channel closes when the body
// ends.
func streamFrames(r io.Reader, frames chan<- map[string]any) {
	defer close(frames)
	br := bufio.NewReader(r)
	for {
		var head [5]byte
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint32(head[1:]))
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			return
		}
		m["_end"] = head[0]&0x02 != 0
		frames <- m
	}
}

// readStreamHTTP calls ReadStream in Connect's streaming protocol: the
// request and every response message in a 5-byte envelope (flags, then
// the length, big-endian), the last one flagged as the end of the stream
// and holding the error, if any.
func readStreamHTTP(t testing.TB, url string, req any) (events []map[string]any, end map[string]any) {
	t.Helper()
	msg, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"ReadStream",
		bytes.NewReader(append(frame, msg...)))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/connect+json")
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatalf("POST ReadStream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		out, _ := io.ReadAll(resp.Body)
		t.Fatalf("ReadStream answered %d: %s", resp.StatusCode, out)
	}
	r := bufio.NewReader(resp.Body)
	for {
		var head [5]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			t.Fatalf("ReadStream: no end of stream: %v", err)
		}
		payload := make([]byte, binary.BigEndian.Uint32(head[1:]))
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("ReadStream: short frame: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatalf("ReadStream: frame %q: %v", payload, err)
		}
		if head[0]&0x02 != 0 {
			return events, m
		}
		events = append(events, m)
	}
}

func TestHTTP(t *testing.T) {
	testenv.ForEach(t, func(t *testing.T, b testenv.Backend) {
		url := startHTTP(t, b)

		t.Run("append", func(t *testing.T) {
			status, body := postJSON(t, url+"AppendToStream", map[string]any{
				"streamName": "http-append", "expectedVersion": 0,
				"events": []any{jsonEvent("Submitted", `{"n":1}`), jsonEvent("Submitted", `{"n":2}`)},
			})
			if status != http.StatusOK {
				t.Fatalf("append answered %d: %s", status, body)
			}
			var resp struct {
				Success        bool   `json:"success"`
				CurrentVersion string `json:"currentVersion"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatalf("append body %q: %v", body, err)
			}
			if !resp.Success || resp.CurrentVersion != "2" {
				t.Fatalf("append answered %s, want success at version 2", body)
			}
		})

		t.Run("conflict", func(t *testing.T) {
			req := map[string]any{"streamName": "http-conflict", "expectedVersion": 0,
				"events": []any{jsonEvent("Submitted", `{}`)}}
			if status, body := postJSON(t, url+"AppendToStream", req); status != http.StatusOK {
				t.Fatalf("first append answered %d: %s", status, body)
			}
			status, body := postJSON(t, url+"AppendToStream", map[string]any{
				"streamName": "http-conflict", "expectedVersion": 3,
				"events": []any{jsonEvent("Submitted", `{}`)}})
			wantHTTPError(t, status, body, http.StatusConflict, "aborted",
				`stream "http-conflict"`, "expected version 3", "actual version 1")
		})

		t.Run("invalid", func(t *testing.T) {
			status, body := postJSON(t, url+"AppendToStream", map[string]any{
				"streamName": "http-invalid", "expectedVersion": 0, "events": []any{}})
			wantHTTPError(t, status, body, http.StatusBadRequest, "invalid_argument", "events")
		})

		t.Run("malformed json", func(t *testing.T) {
			status, body := postJSON(t, url+"AppendToStream", map[string]any{
				"streamName": "http-malformed", "expectedVersion": "not a number"})
			wantHTTPError(t, status, body, http.StatusBadRequest, "invalid_argument")
		})

		t.Run("empty body", func(t *testing.T) {
			for _, ct := range []string{"application/json", "application/proto"} {
				status, body := post(t, url+"GetStream", ct, nil)
				wantHTTPError(t, status, body, http.StatusBadRequest, "invalid_argument", "request body", "empty")
			}
		})

		t.Run("empty streaming body", func(t *testing.T) {
			status, body := post(t, url+"ReadStream", "application/connect+json", nil)
			if status != http.StatusOK {
				t.Fatalf("ReadStream with an empty body answered %d: %s", status, body)
			}
			frames := make(chan map[string]any, 4)
			streamFrames(bytes.NewReader(body), frames)
			var last map[string]any
			for f := range frames {
				last = f
			}
			errBody, _ := last["error"].(map[string]any)
			if errBody["code"] != "invalid_argument" || !strings.Contains(fmt.Sprint(errBody["message"]), "empty") {
				t.Fatalf("ReadStream with an empty body ended with %v, want invalid_argument", last)
			}
		})

		t.Run("protobuf that does not decode", func(t *testing.T) {
			status, body := post(t, url+"GetStream", "application/proto", []byte{0xff, 0xff, 0xff})
			wantHTTPError(t, status, body, http.StatusBadRequest, "invalid_argument", "eventstore.GetStreamRequest")
		})

		t.Run("get stream", func(t *testing.T) {
			status, body := postJSON(t, url+"GetStream", map[string]any{"streamName": "http-append"})
			if status != http.StatusOK {
				t.Fatalf("GetStream answered %d: %s", status, body)
			}
			var info struct {
				StreamName     string `json:"streamName"`
				CurrentVersion string `json:"currentVersion"`
			}
			if err := json.Unmarshal(body, &info); err != nil {
				t.Fatalf("GetStream body %q: %v", body, err)
			}
			if info.StreamName != "http-append" || info.CurrentVersion != "2" {
				t.Fatalf("GetStream answered %s, want http-append at version 2", body)
			}
		})

		t.Run("get stream not found", func(t *testing.T) {
			status, body := postJSON(t, url+"GetStream", map[string]any{"streamName": "http-nobody"})
			wantHTTPError(t, status, body, http.StatusNotFound, "not_found")
		})

		t.Run("read stream", func(t *testing.T) {
			events, end := readStreamHTTP(t, url, map[string]any{"streamName": "http-append"})
			if len(end) != 0 {
				t.Fatalf("ReadStream ended with %v, want a clean end", end)
			}
			if len(events) != 2 {
				t.Fatalf("ReadStream returned %d events, want 2: %v", len(events), events)
			}
			for i, e := range events {
				data, _ := base64.StdEncoding.DecodeString(e["data"].(string))
				if want := fmt.Sprintf(`{"n":%d}`, i+1); string(data) != want || e["aggregateVersion"] != fmt.Sprint(i+1) {
					t.Fatalf("event %d is version %v with data %s, want version %d with %s",
						i, e["aggregateVersion"], data, i+1, want)
				}
			}
		})

		t.Run("read stream backwards", func(t *testing.T) {
			for _, direction := range []any{"READ_DIRECTION_BACKWARDS", 1} {
				events, end := readStreamHTTP(t, url, map[string]any{"streamName": "http-append", "direction": direction,
					"fieldOfANewerContract": true})
				if len(end) != 0 || len(events) != 2 || events[0]["aggregateVersion"] != "2" {
					t.Fatalf("ReadStream backwards by %v returned %v, ended with %v; want versions 2, 1", direction, events, end)
				}
			}
		})

		t.Run("read stream in an unknown direction", func(t *testing.T) {
			for _, direction := range []string{"BACKWARDS", "sideways"} {
				events, end := readStreamHTTP(t, url, map[string]any{"streamName": "http-append", "direction": direction})
				errBody, _ := end["error"].(map[string]any)
				if len(events) != 0 || errBody["code"] != "invalid_argument" ||
					!strings.Contains(fmt.Sprint(errBody["message"]), "direction: unknown value") {
					t.Fatalf("ReadStream in direction %q returned %v and ended with %v, want invalid_argument naming direction",
						direction, events, end)
				}
			}
		})

		t.Run("read stream not found", func(t *testing.T) {
			events, end := readStreamHTTP(t, url, map[string]any{"streamName": "http-nobody"})
			errBody, _ := end["error"].(map[string]any)
			if len(events) != 0 || errBody["code"] != "not_found" {
				t.Fatalf("ReadStream of a missing stream returned %v and ended with %v, want not_found", events, end)
			}
		})

		t.Run("health", func(t *testing.T) {
			healthURL := strings.Replace(url, "eventstore.EventStoreService", "grpc.health.v1.Health", 1)
			status, body := postJSON(t, healthURL+"Check", map[string]any{})
			if status != http.StatusOK || !strings.Contains(string(body), "SERVING") {
				t.Fatalf("health check answered %d: %s", status, body)
			}
		})
	})
}

func TestHTTPDisabled(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	cfg.HTTPAddr = ""
	if addr := testenv.Start(t, cfg).HTTPAddr(); addr != "" {
		t.Fatalf("HTTPAddr is %q with SIDECAR_HTTP_ADDR empty", addr)
	}
}

// A start that fails after the gRPC and HTTP listeners opened closes them
// and returns the failure, naming the setting.
func TestStartFailingLate(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tt := range []struct {
		name, setting string
		set           func(*sidecar.Config)
	}{
		{"metrics address taken", "SIDECAR_METRICS_ADDR", func(c *sidecar.Config) { c.MetricsAddr = busy.Addr().String() }},
		{"health address not an address", "SIDECAR_HEALTH_ADDR", func(c *sidecar.Config) { c.HealthAddr = "nonsense" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
			cfg.HTTPAddr = "127.0.0.1:0"
			tt.set(&cfg)
			sc, err := sidecar.Start(t.Context(), cfg, testenv.Logger(t))
			if err == nil {
				sc.Shutdown()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tt.setting) {
				t.Fatalf("start: %v, want %s named", err, tt.setting)
			}
		})
	}
}

// A subscription over HTTP must end cleanly at shutdown: the HTTP server
// stops before the gRPC server, whose graceful stop would cut it off.
func TestHTTPShutdownEndsSubscriptions(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	cfg.HTTPAddr = "127.0.0.1:0"
	sc, err := sidecar.Start(t.Context(), cfg, testenv.Logger(t))
	if err != nil {
		t.Fatalf("start sidecar: %v", err)
	}
	url := "http://" + sc.HTTPAddr() + "/eventstore.EventStoreService/"
	if status, body := postJSON(t, url+"AppendToStream", map[string]any{"streamName": "http-sub",
		"expectedVersion": 0, "events": []any{jsonEvent("Submitted", `{}`)}}); status != http.StatusOK {
		sc.Shutdown()
		t.Fatalf("append answered %d: %s", status, body)
	}

	msg := []byte(`{"fromSequenceId":0}`)
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"SubscribeToAll",
		bytes.NewReader(append(frame, msg...)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/connect+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		sc.Shutdown()
		t.Fatalf("POST SubscribeToAll: %v", err)
	}
	defer resp.Body.Close()
	frames := make(chan map[string]any, 16)
	go streamFrames(resp.Body, frames)
	if first := <-frames; first == nil || first["_end"] == true || first["aggregateId"] != "http-sub" {
		sc.Shutdown()
		t.Fatalf("first frame is %v, want the event of http-sub", first)
	}

	sc.Shutdown()
	var last map[string]any
	for f := range frames {
		last = f
	}
	if last == nil || last["_end"] != true || last["error"] != nil {
		t.Fatalf("the subscription ended with %v, want a clean end of stream", last)
	}
}
