package sidecar_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/sidecar/internal/sidecar"
)

func TestConfigValuesThatDoNotParseNameTheirVariable(t *testing.T) {
	tests := []struct {
		name, variable, value, want string
	}{
		{"a duration", "SIDECAR_APPEND_LEASE", "soon", "a duration"},
		{"an integer", "SIDECAR_KAFKA_PARTITIONS", "many", "an integer"},
		{"a boolean", "SIDECAR_KAFKA_TLS", "yes", "true or false"},
		{"an OpenTelemetry boolean", "OTEL_SDK_DISABLED", "perhaps", "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := sidecar.LoadConfig(t.Context(), map[string]string{tt.variable: tt.value})
			if err == nil {
				t.Fatalf("%s=%s was accepted", tt.variable, tt.value)
			}
			want := tt.variable + ": must be " + tt.want
			got := err.Error()
			if !strings.HasPrefix(got, want) || !strings.Contains(got, `"`+tt.value+`"`) {
				t.Fatalf("error %q, want one starting %q and quoting %q", got, want, tt.value)
			}
		})
	}
}

func TestConfigReportsUnknownSidecarVariables(t *testing.T) {
	env := map[string]string{
		"SIDECAR_APPEND_LEASE": "20s", "SIDECAR_LEAES": "5s", "SIDECAR_OTEL_SDK_DISABLED": "true",
		"OTEL_SDK_DISABLED": "true", "OTEL_SERVICE_NAME": "moderation", "PUSH_ADDR": "127.0.0.1:1",
	}
	cfg, unknown, err := sidecar.LoadConfig(t.Context(), env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"SIDECAR_LEAES", "SIDECAR_OTEL_SDK_DISABLED"}; !slices.Equal(unknown, want) {
		t.Fatalf("unknown %q, want %q", unknown, want)
	}
	if cfg.AppendLease != 20*time.Second || !cfg.OTelSDKDisabled {
		t.Fatalf("lease %s and SDK disabled %v, want 20s and true", cfg.AppendLease, cfg.OTelSDKDisabled)
	}
}

func TestConfigRefusesEmptyBrokers(t *testing.T) {
	for _, brokers := range []string{",,", "127.0.0.1:19092, ", "127.0.0.1", ":9092"} {
		_, _, err := sidecar.LoadConfig(t.Context(), map[string]string{
			"SIDECAR_KAFKA_BROKERS": brokers, "SIDECAR_REDIS_URL": "redis://127.0.0.1:6379/0"})
		if err == nil || !strings.Contains(err.Error(), "SIDECAR_KAFKA_BROKERS: broker") {
			t.Errorf("SIDECAR_KAFKA_BROKERS=%q: %v, want each broker host:port", brokers, err)
		}
	}
	if _, _, err := sidecar.LoadConfig(t.Context(), map[string]string{
		"SIDECAR_KAFKA_BROKERS": "kafka-0:9092,10.0.0.2:9093", "SIDECAR_REDIS_URL": "redis://127.0.0.1:6379/0"}); err != nil {
		t.Errorf("two brokers: %v", err)
	}
}

func TestConfigRefusesAHealthIntervalTooShortToCheck(t *testing.T) {
	for _, interval := range []string{"1ns", "50ms", "-1s"} {
		_, _, err := sidecar.LoadConfig(t.Context(), map[string]string{"SIDECAR_HEALTH_INTERVAL": interval})
		if err == nil || !strings.Contains(err.Error(), "SIDECAR_HEALTH_INTERVAL: must be at least 100ms") {
			t.Errorf("SIDECAR_HEALTH_INTERVAL=%s: %v, want it refused", interval, err)
		}
	}
	if _, _, err := sidecar.LoadConfig(t.Context(), map[string]string{"SIDECAR_HEALTH_INTERVAL": "0s"}); err != nil {
		t.Errorf("SIDECAR_HEALTH_INTERVAL=0s: %v, want the default", err)
	}
}
