package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRouteRedisLogsAsJSON(t *testing.T) {
	var out bytes.Buffer
	RouteRedis(slog.New(slog.NewJSONHandler(&out, nil)))
	t.Cleanup(func() { RouteRedis(slog.Default()) })

	// Nothing listens on port 1: the pool gives up dialing and says so.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	for range 3 {
		_ = rdb.Ping(t.Context()).Err()
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if out.Len() == 0 {
		t.Fatal("go-redis logged nothing through the logger")
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] != "redis client" || rec["level"] != "WARN" {
			t.Fatalf("line %q is not a warning of the redis client in JSON: %v", line, err)
		}
	}
}
