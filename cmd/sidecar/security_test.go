package main

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/eventsidecar/sidecar/internal/kafka"
	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/internal/testenv"
)

// envFrom is the environment of a command run with the variables vars.
func envFrom(t *testing.T, ctx context.Context, vars map[string]string) *env {
	t.Helper()
	cfg, _, err := sidecar.LoadConfig(ctx, vars)
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: ctx, cfg: cfg, log: testenv.Logger(t)}
}

func TestOperatorCommandsTakeTheKafkaSecuritySettings(t *testing.T) {
	const user, password = "operator", "ops-secret"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", user, password))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	plain := map[string]string{
		"SIDECAR_KAFKA_BROKERS": strings.Join(kc.ListenAddrs(), ","),
		"SIDECAR_REDIS_URL":     "redis://127.0.0.1:1/0",
		"SIDECAR_KAFKA_TOPIC":   "secured",
	}
	secured := map[string]string{
		"SIDECAR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
		"SIDECAR_KAFKA_SASL_USERNAME":  user,
		"SIDECAR_KAFKA_SASL_PASSWORD":  password,
	}
	for k, v := range plain {
		secured[k] = v
	}
	e := envFrom(t, t.Context(), secured)

	// The commands' client authenticates as a serving sidecar's does.
	cl, err := e.kafkaClient()
	if err != nil {
		t.Fatal(err)
	}
	mechs, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	cl.Close()
	if len(mechs) != 1 || mechs[0].Name() != "SCRAM-SHA-256" {
		t.Fatalf("SASL mechanisms %v, want SCRAM-SHA-256", mechs)
	}

	// Against a broker that only talks SASL, the commands work.
	adm, closeAdm, err := e.admin()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = kafka.EnsureTopic(t.Context(), adm, kafka.TopicSpec{Name: "secured", Partitions: 3, ReplicationFactor: 1})
	closeAdm()
	if err != nil {
		t.Fatalf("create the topic over SASL: %v", err)
	}
	if out, err := runCLI(t, e, "topic", "describe"); err != nil || !strings.Contains(out, "3 partitions") {
		t.Fatalf("topic describe over SASL: %v\n%s", err, out)
	}
	if out, err := runCLI(t, e, "groups", "list"); err != nil || !strings.Contains(out, "no group consumes") {
		t.Fatalf("groups list over SASL: %v\n%s", err, out)
	}

	// Without the settings the broker does not answer: the commands above
	// did use them.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if out, err := runCLI(t, envFrom(t, ctx, plain), "topic", "describe"); err == nil {
		t.Fatalf("topic describe without SASL succeeded:\n%s", out)
	}
}

func TestOperatorCommandsTakeTheKafkaTLSSettings(t *testing.T) {
	e := envFrom(t, t.Context(), map[string]string{
		"SIDECAR_KAFKA_BROKERS": "127.0.0.1:9093",
		"SIDECAR_REDIS_URL":     "rediss://127.0.0.1:6380/0",
		"SIDECAR_KAFKA_TLS":     "true",
	})
	cl, err := e.kafkaClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config); tc == nil || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLS configuration %v, want the sidecar's (TLS 1.2 at least)", tc)
	}
}
