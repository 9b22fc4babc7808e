package sidecar

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Secret is a setting that must never show in logs or errors: it formats
// as "[redacted]" however it is printed. Reveal returns the value.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret's value, for the client that needs it.
func (s Secret) Reveal() string { return string(s) }

// SASL mechanisms of SIDECAR_KAFKA_SASL_MECHANISM.
const (
	saslPlain       = "PLAIN"
	saslScramSHA256 = "SCRAM-SHA-256"
	saslScramSHA512 = "SCRAM-SHA-512"
)

// validateSecurity checks the TLS and SASL settings; it appends to bad.
func (c Config) validateSecurity(bad func(name, format string, args ...any)) {
	if len(c.KafkaBrokers) == 0 {
		if c.KafkaTLS {
			bad("KAFKA_TLS", "applies to SIDECAR_KAFKA_BROKERS, which is not set (embedded mode)")
		}
		if c.KafkaSASLMechanism != "" {
			bad("KAFKA_SASL_MECHANISM", "applies to SIDECAR_KAFKA_BROKERS, which is not set (embedded mode)")
		}
	}
	switch c.KafkaSASLMechanism {
	case "":
		if c.KafkaSASLUsername != "" || c.KafkaSASLPassword != "" {
			bad("KAFKA_SASL_MECHANISM", "must be set (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) when SIDECAR_KAFKA_SASL_USERNAME or SIDECAR_KAFKA_SASL_PASSWORD is")
		}
	case saslPlain, saslScramSHA256, saslScramSHA512:
		if c.KafkaSASLUsername == "" {
			bad("KAFKA_SASL_USERNAME", "must be set for SASL %s", c.KafkaSASLMechanism)
		}
		if c.KafkaSASLPassword == "" {
			bad("KAFKA_SASL_PASSWORD", "must be set for SASL %s", c.KafkaSASLMechanism)
		}
	default:
		bad("KAFKA_SASL_MECHANISM", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.KafkaSASLMechanism)
	}

	if !c.KafkaTLS {
		for name, v := range map[string]string{
			"KAFKA_TLS_CA_FILE": c.KafkaTLSCAFile, "KAFKA_TLS_CERT_FILE": c.KafkaTLSCertFile,
			"KAFKA_TLS_KEY_FILE": c.KafkaTLSKeyFile,
		} {
			if v != "" {
				bad(name, "is set but SIDECAR_KAFKA_TLS is not true")
			}
		}
	} else {
		c.validateKafkaTLS(bad)
	}

	if c.RedisTLSCAFile != "" {
		if !strings.HasPrefix(c.RedisURL, "rediss") {
			bad("REDIS_TLS_CA_FILE", "is set but SIDECAR_REDIS_URL is not a rediss:// URL")
		} else if _, err := loadCAs(c.RedisTLSCAFile); err != nil {
			bad("REDIS_TLS_CA_FILE", "%v", err)
		}
	}
}

func (c Config) validateKafkaTLS(bad func(name, format string, args ...any)) {
	if c.KafkaTLSCAFile != "" {
		if _, err := loadCAs(c.KafkaTLSCAFile); err != nil {
			bad("KAFKA_TLS_CA_FILE", "%v", err)
		}
	}
	switch cert, key := c.KafkaTLSCertFile, c.KafkaTLSKeyFile; {
	case cert == "" && key != "":
		bad("KAFKA_TLS_CERT_FILE", "must be set together with SIDECAR_KAFKA_TLS_KEY_FILE")
	case cert != "" && key == "":
		bad("KAFKA_TLS_KEY_FILE", "must be set together with SIDECAR_KAFKA_TLS_CERT_FILE")
	case cert != "":
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			bad("KAFKA_TLS_CERT_FILE", "%v", err)
		}
	}
}

// kafkaOptions are the TLS and SASL options of the Kafka clients.
func (c Config) kafkaOptions(log *slog.Logger) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if c.KafkaTLS {
		tc, err := c.kafkaTLS()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.saslMechanism(); m != nil {
		if !c.KafkaTLS && c.KafkaSASLMechanism == saslPlain {
			log.Warn("SASL PLAIN without TLS sends the Kafka password in clear; set SIDECAR_KAFKA_TLS=true")
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (c Config) saslMechanism() sasl.Mechanism {
	user, pass := c.KafkaSASLUsername, c.KafkaSASLPassword.Reveal()
	switch c.KafkaSASLMechanism {
	case saslPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case saslScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case saslScramSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return nil
}

// kafkaTLS is the TLS configuration of the Kafka clients. franz-go sets
// the server name of each connection from the broker's host.
func (c Config) kafkaTLS() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.KafkaTLSCAFile != "" {
		pool, err := loadCAs(c.KafkaTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("SIDECAR_KAFKA_TLS_CA_FILE: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.KafkaTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.KafkaTLSCertFile, c.KafkaTLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("SIDECAR_KAFKA_TLS_CERT_FILE: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// redisTLS adds SIDECAR_REDIS_TLS_CA_FILE to the TLS configuration of a
// rediss:// URL; tc is nil for redis://.
func (c Config) redisTLS(tc *tls.Config) error {
	if tc == nil || c.RedisTLSCAFile == "" {
		return nil
	}
	pool, err := loadCAs(c.RedisTLSCAFile)
	if err != nil {
		return fmt.Errorf("SIDECAR_REDIS_TLS_CA_FILE: %w", err)
	}
	tc.RootCAs = pool
	return nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s has no PEM certificate", file)
	}
	return pool, nil
}

// secrets are the configured values that must not show anywhere: the
// passwords, and the Redis URL's password.
func (c Config) secrets() []string {
	var out []string
	if p := c.KafkaSASLPassword.Reveal(); p != "" {
		out = append(out, p)
	}
	if _, rest, ok := strings.Cut(c.RedisURL, "://"); ok {
		userinfo, _, found := strings.Cut(rest, "@")
		if found {
			if _, pass, ok := strings.Cut(userinfo, ":"); ok && pass != "" {
				out = append(out, pass)
				if u, err := url.PathUnescape(pass); err == nil && u != pass {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

// redact replaces every secret of c in s.
func (c Config) redact(s string) string {
	for _, secret := range c.secrets() {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// redactedError is an error whose text has the configuration's secrets
// replaced; it still unwraps to the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with the configuration's secrets replaced.
func (c Config) redactErr(err error) error {
	if err == nil || len(c.secrets()) == 0 {
		return err
	}
	if msg := c.redact(err.Error()); msg != err.Error() {
		return &redactedError{msg: msg, err: err}
	}
	return err
}

// authFailure marks failures of authentication or of TLS verification as
// permanent: retrying with the same settings will not fix them.
func authFailure(err error) error {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		tlsRecord  tls.RecordHeaderError
		verifyFail *tls.CertificateVerificationError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState),
		errors.Is(err, kerr.UnsupportedSaslMechanism),
		errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &tlsRecord), errors.As(err, &verifyFail):
		return permanent{err}
	}
	// go-redis returns the server's error replies as plain errors.
	if msg := err.Error(); strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") ||
		strings.Contains(msg, "invalid username-password pair") {
		return permanent{err}
	}
	return err
}

// redactingHandler replaces the configuration's secrets in every message
// and string attribute before its handler sees them.
type redactingHandler struct {
	slog.Handler
	cfg Config
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.cfg.redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.redactAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redactingHandler) redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.cfg.redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		out := make([]any, len(attrs))
		for i, ga := range attrs {
			out[i] = h.redactAttr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.cfg.redact(err.Error()))
		}
		if s := fmt.Sprint(v.Any()); h.cfg.redact(s) != s {
			return slog.String(a.Key, h.cfg.redact(s))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i] = h.redactAttr(a)
	}
	return redactingHandler{h.Handler.WithAttrs(out), h.cfg}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.Handler.WithGroup(name), h.cfg}
}
