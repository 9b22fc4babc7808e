package sidecar

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventsidecar/sidecar/internal/kafka"
)

func TestLoggerFormats(t *testing.T) {
	for _, tt := range []struct {
		format string
		json   bool
	}{
		{"json", true},
		{"text", false},
		// A buffer is not a terminal.
		{"auto", true},
	} {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			NewLogger(Config{LogLevel: "info", LogFormat: tt.format}, &buf).Info("sidecar listening", "addr", "127.0.0.1:1")
			var entry map[string]any
			isJSON := json.Unmarshal(buf.Bytes(), &entry) == nil
			if isJSON != tt.json {
				t.Fatalf("format %s wrote %q", tt.format, buf.String())
			}
			if isJSON && (entry["msg"] != "sidecar listening" || entry["addr"] != "127.0.0.1:1") {
				t.Fatalf("unexpected entry %v", entry)
			}
		})
	}
}

// franzLines runs an admin client of a kfake broker through the bridge
// of cfg and returns its log lines.
func franzLines(t *testing.T, cfg Config) []map[string]any {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	var buf bytes.Buffer
	cfg.LogFormat = "json"
	log := NewLogger(cfg, &buf)
	// A produce: franz-go logs the producer ID's initialization at info.
	p, err := kafka.NewProducer(kafka.Config{Brokers: kc.ListenAddrs(), Topic: "events", Logger: franzLogger(cfg, log)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(t.Context(), &kgo.Record{Value: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	// A warning of franz-go's own, as it logs a retried failure.
	franzLogger(cfg, log).With("component", "franz-go").Warn("unable to open connection to broker")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, entry)
	}
	return lines
}

func TestFranzLogsBridgedAtWarnUnlessDebug(t *testing.T) {
	levels := func(lines []map[string]any) map[string]int {
		n := map[string]int{}
		for _, l := range lines {
			if l["component"] != "franz-go" {
				t.Fatalf("line without component=franz-go: %v", l)
			}
			n[l["level"].(string)]++
		}
		return n
	}
	info := levels(franzLines(t, Config{LogLevel: "info"}))
	if info["INFO"] != 0 || info["DEBUG"] != 0 || info["WARN"] != 1 {
		t.Fatalf("at info the bridge passed %v, want the one warning only", info)
	}
	debug := levels(franzLines(t, Config{LogLevel: "debug"}))
	if debug["DEBUG"] == 0 || debug["INFO"] == 0 {
		t.Fatalf("at debug the bridge passed %v, want franz-go's info and debug lines too", debug)
	}
}
