package sidecar_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventsidecar/sidecar/internal/sidecar"
	"github.com/eventsidecar/sidecar/internal/testenv"
	"github.com/eventsidecar/sidecar/proto/eventstorepb"
)

const password = "s3cret-Pa55word"

// syncBuffer collects a logger's output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged starts a sidecar with cfg logging at debug into the returned
// buffer. It returns Start's error instead of failing.
func startLogged(t *testing.T, cfg sidecar.Config) (*sidecar.Sidecar, *syncBuffer, error) {
	t.Helper()
	return startWithin(t, cfg, 90*time.Second)
}

// startWithin is startLogged with a bound on how long Start waits for
// Kafka and Redis, for a start that is to fail.
func startWithin(t *testing.T, cfg sidecar.Config, wait time.Duration) (*sidecar.Sidecar, *syncBuffer, error) {
	t.Helper()
	cfg.LogLevel, cfg.LogFormat = "debug", "json"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("configuration: %v", err)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	sc, err := sidecar.Start(ctx, cfg, sidecar.NewLogger(cfg, logs))
	if err == nil {
		t.Cleanup(sc.Shutdown)
	}
	return sc, logs, err
}

// noSecret fails when s holds the password.
func noSecret(t testing.TB, what, s string) {
	t.Helper()
	if strings.Contains(s, password) {
		t.Fatalf("%s shows the password: %s", what, s)
	}
}

func TestConfigValidatesSecurity(t *testing.T) {
	base := map[string]string{
		"SIDECAR_KAFKA_BROKERS": "127.0.0.1:9092",
		"SIDECAR_REDIS_URL":     "redis://127.0.0.1:6379/0",
	}
	tests := []struct {
		name string
		env  map[string]string
		want string // the variable the error names; empty for no error
	}{
		{"plain", map[string]string{"SIDECAR_KAFKA_SASL_MECHANISM": "PLAIN",
			"SIDECAR_KAFKA_SASL_USERNAME": "u", "SIDECAR_KAFKA_SASL_PASSWORD": password}, ""},
		{"scram 512 with tls", map[string]string{"SIDECAR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
			"SIDECAR_KAFKA_SASL_USERNAME": "u", "SIDECAR_KAFKA_SASL_PASSWORD": password, "SIDECAR_KAFKA_TLS": "true"}, ""},
		{"unknown mechanism", map[string]string{"SIDECAR_KAFKA_SASL_MECHANISM": "GSSAPI"}, "SIDECAR_KAFKA_SASL_MECHANISM"},
		{"mechanism without user", map[string]string{"SIDECAR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
			"SIDECAR_KAFKA_SASL_PASSWORD": password}, "SIDECAR_KAFKA_SASL_USERNAME"},
		{"mechanism without password", map[string]string{"SIDECAR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
			"SIDECAR_KAFKA_SASL_USERNAME": "u"}, "SIDECAR_KAFKA_SASL_PASSWORD"},
		{"password without mechanism", map[string]string{"SIDECAR_KAFKA_SASL_PASSWORD": password}, "SIDECAR_KAFKA_SASL_MECHANISM"},
		{"ca file without tls", map[string]string{"SIDECAR_KAFKA_TLS_CA_FILE": "/etc/ssl/ca.pem"}, "SIDECAR_KAFKA_TLS_CA_FILE"},
		{"missing ca file", map[string]string{"SIDECAR_KAFKA_TLS": "true",
			"SIDECAR_KAFKA_TLS_CA_FILE": "/nonexistent/ca.pem"}, "SIDECAR_KAFKA_TLS_CA_FILE"},
		{"cert without key", map[string]string{"SIDECAR_KAFKA_TLS": "true",
			"SIDECAR_KAFKA_TLS_CERT_FILE": "/etc/ssl/cert.pem"}, "SIDECAR_KAFKA_TLS_KEY_FILE"},
		{"redis ca without rediss", map[string]string{"SIDECAR_REDIS_TLS_CA_FILE": "/etc/ssl/ca.pem"}, "SIDECAR_REDIS_TLS_CA_FILE"},
		{"sasl when embedded", map[string]string{"SIDECAR_KAFKA_BROKERS": "", "SIDECAR_REDIS_URL": "",
			"SIDECAR_KAFKA_SASL_MECHANISM": "PLAIN", "SIDECAR_KAFKA_SASL_USERNAME": "u",
			"SIDECAR_KAFKA_SASL_PASSWORD": password}, "SIDECAR_KAFKA_SASL_MECHANISM"},
		{"tls when embedded", map[string]string{"SIDECAR_KAFKA_BROKERS": "", "SIDECAR_REDIS_URL": "",
			"SIDECAR_KAFKA_TLS": "true"}, "SIDECAR_KAFKA_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			_, _, err := sidecar.LoadConfig(t.Context(), env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want+":") {
				t.Fatalf("error %v does not name %s", err, tt.want)
			}
			noSecret(t, "the error", err.Error())
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	cfg := sidecar.Config{KafkaSASLPassword: password, RedisURL: "redis://app:" + password + "@127.0.0.1:1/0"}
	for _, s := range []string{
		fmt.Sprint(cfg.KafkaSASLPassword), fmt.Sprintf("%s", cfg.KafkaSASLPassword),
		fmt.Sprintf("%#v", cfg.KafkaSASLPassword), fmt.Sprintf("%+v", struct{ P sidecar.Secret }{cfg.KafkaSASLPassword}),
	} {
		noSecret(t, "formatting", s)
	}
	if cfg.KafkaSASLPassword.Reveal() != password {
		t.Fatal("Reveal does not return the secret")
	}

	// Whatever quotes a secret, the sidecar's logger does not.
	cfg.LogLevel, cfg.LogFormat = "debug", "json"
	var buf syncBuffer
	log := sidecar.NewLogger(cfg, &buf)
	log.Info("connecting to "+cfg.RedisURL, "url", cfg.RedisURL, "password", cfg.KafkaSASLPassword,
		"err", fmt.Errorf("dial %s: refused", cfg.RedisURL), slog.Group("g", "pass", password))
	log.With("url", cfg.RedisURL).Warn("with")
	noSecret(t, "the log", buf.String())
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Fatalf("nothing redacted in %s", buf.String())
	}
}

// freePort returns a loopback port nobody listens on at the moment.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedisServer runs a redis-server of the test's own on a free port,
// with a password for the default user and a second user "app", and stops
// it when the test ends. The shared Redis is never touched.
func startRedisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (scripts/redis.sh install): %v", err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--requirepass", password, "--user", "app", "on", ">"+password, "~*", "&*", "+@all")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	defer rdb.Close()
	eventually(t, "redis-server to answer", func() bool { return rdb.Ping(t.Context()).Err() == nil })
	return addr
}

func TestRedisAuth(t *testing.T) {
	addr := startRedisServer(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	backend := testenv.Backend{Name: "auth", Brokers: kc.ListenAddrs()}

	for _, tt := range []struct {
		name, url string
		ok        bool
	}{
		{"default user", "redis://:" + password + "@" + addr + "/0", true},
		{"acl user", "redis://app:" + password + "@" + addr + "/1", true},
		{"no password", "redis://" + addr + "/0", false},
		{"wrong password", "redis://app:not-" + password + "@" + addr + "/0", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := backend
			b.RedisURL = tt.url
			sc, logs, err := startLogged(t, testenv.Config(t, b))
			noSecret(t, "the log", logs.String())
			if !tt.ok {
				if err == nil {
					t.Fatal("started without the right password")
				}
				noSecret(t, "the error", err.Error())
				return
			}
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			mustAppend(t, testenv.Client(t, sc.Addr()), "content-1", 0, event("ContentSubmitted", "{}"))
			noSecret(t, "the log", logs.String())
		})
	}
}

func TestRedisURLErrorsHideThePassword(t *testing.T) {
	for _, url := range []string{
		"redis://app:" + password + "@127.0.0.1:bad-port/0",
		"redis://app:" + password + "@127.0.0.1:6379/not-a-db",
		"http://app:" + password + "@127.0.0.1:6379/0",
	} {
		cfg := testenv.Config(t, testenv.Backend{Name: "bad", Brokers: []string{"127.0.0.1:1"}, RedisURL: url})
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "SIDECAR_REDIS_URL") {
			t.Fatalf("%v does not name SIDECAR_REDIS_URL", err)
		}
		noSecret(t, "the error", err.Error())
	}
}

// testCA is a certificate authority of the test with one server
// certificate for 127.0.0.1 and localhost.
type testCA struct {
	caFile string
	server tls.Certificate
}

func newTestCA(t testing.TB) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return testCA{caFile: caFile, server: tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}}
}

func TestRedisTLS(t *testing.T) {
	ca := newTestCA(t)
	mr := miniredis.NewMiniRedis()
	if err := mr.StartTLS(&tls.Config{Certificates: []tls.Certificate{ca.server}}); err != nil {
		t.Fatal(err)
	}
	defer mr.Close()
	mr.RequireUserAuth("app", password)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()

	cfg := testenv.Config(t, testenv.Backend{Name: "tls", Brokers: kc.ListenAddrs(),
		RedisURL: "rediss://app:" + password + "@" + mr.Addr() + "/0"})
	if _, _, err := startLogged(t, cfg); err == nil {
		t.Fatal("started without trusting the test CA")
	} else {
		noSecret(t, "the error", err.Error())
	}

	cfg.RedisTLSCAFile = ca.caFile
	sc, logs, err := startLogged(t, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	mustAppend(t, testenv.Client(t, sc.Addr()), "content-1", 0, event("ContentSubmitted", "{}"))
	noSecret(t, "the log", logs.String())
}

func TestKafkaSASL(t *testing.T) {
	for _, mechanism := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mechanism, func(t *testing.T) {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
				kfake.Superuser(mechanism, "sidecar", password))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			mr := miniredis.RunT(t)
			cfg := testenv.Config(t, testenv.Backend{Name: "sasl", Brokers: kc.ListenAddrs(),
				RedisURL: "redis://" + mr.Addr() + "/0"})
			cfg.KafkaSASLMechanism, cfg.KafkaSASLUsername = mechanism, "sidecar"

			// kfake drops the connection of a failed authentication where
			// Kafka answers SASL_AUTHENTICATION_FAILED first, so the start
			// cannot tell it from an outage: bound its wait.
			cfg.KafkaSASLPassword = "not-" + password
			if _, logs, err := startWithin(t, cfg, 3*time.Second); err == nil {
				t.Fatal("started with a wrong password")
			} else {
				noSecret(t, "the error", err.Error())
				noSecret(t, "the log", logs.String())
			}

			cfg.KafkaSASLPassword = password
			sc, logs, err := startLogged(t, cfg)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			mustAppend(t, testenv.Client(t, sc.Addr()), "content-1", 0, event("ContentSubmitted", "{}"))
			got := subscribe(t, testenv.Client(t, sc.Addr()), 0, 0, func(es []*eventstorepb.Event) bool { return len(es) == 1 })
			if len(got) != 1 {
				t.Fatalf("subscription got %d events", len(got))
			}
			noSecret(t, "the log", logs.String())
		})
	}
}

func TestKafkaTLS(t *testing.T) {
	ca := newTestCA(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{ca.server}}))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	mr := miniredis.RunT(t)
	cfg := testenv.Config(t, testenv.Backend{Name: "tls", Brokers: kc.ListenAddrs(),
		RedisURL: "redis://" + mr.Addr() + "/0"})
	cfg.KafkaTLS = true
	if _, _, err := startLogged(t, cfg); err == nil {
		t.Fatal("started without trusting the test CA")
	}

	cfg.KafkaTLSCAFile = ca.caFile
	sc, _, err := startLogged(t, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	mustAppend(t, testenv.Client(t, sc.Addr()), "content-1", 0, event("ContentSubmitted", "{}"))
}

func TestMetricsBeyondLoopbackWarns(t *testing.T) {
	cfg := testenv.Config(t, testenv.Backend{Name: "embedded"})
	cfg.MetricsAddr = "0.0.0.0:0"
	_, logs, err := startLogged(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "metrics and health endpoints listen beyond loopback") {
		t.Fatalf("no warning in %s", logs.String())
	}
}
