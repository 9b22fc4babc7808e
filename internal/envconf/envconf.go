// Package envconf reads a service's configuration from environment
// variables that share a prefix, and gathers its problems so that each
// names its variable.
//
// Every service loads through Load, so they all report a value that does
// not parse the same way, by the variable's name, the value and what was
// expected, and all list the variables with their prefix that they do not
// read, for a warning at start.
package envconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/sethvargo/go-envconfig"
)

// Env is a set of environment variables by name: the process's, from
// Environ, or a test's map.
type Env map[string]string

// Environ returns the process's environment.
func Environ() Env {
	env := Env{}
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		env[name] = value
	}
	return env
}

// Lookup returns the value of the variable name and whether it is set.
func (e Env) Lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// Option changes how Load names variables.
type Option func(*naming)

// Unprefixed reads the keys that begin with p by their own names, without
// the service's prefix: the sidecar reads OpenTelemetry's OTEL_ variables
// this way. By default every key gets the prefix.
func Unprefixed(p string) Option {
	return func(n *naming) { n.own = append(n.own, p) }
}

// naming turns the key of an env tag into the variable's name.
type naming struct {
	prefix string
	own    []string
}

func (n naming) name(key string) string {
	for _, p := range n.own {
		if strings.HasPrefix(key, p) {
			return key
		}
	}
	return n.prefix + key
}

// Load fills target, a pointer to a struct with env tags, from env: the
// key of each tag is read as the variable prefix+key. A value that does not
// parse is an error that names the variable, the value and what was
// expected.
//
// Load also returns the variables of env that begin with prefix and that
// no field of target reads, sorted, so that the service can warn about
// them; they come with an error too, as a misspelt name is a likely cause
// of one. An empty prefix reports none.
func Load(ctx context.Context, env Env, prefix string, target any, opts ...Option) (
	unknown []string, err error,
) {
	n := naming{prefix: prefix}
	for _, o := range opts {
		o(&n)
	}
	vars := variables(target, n)
	unknown = unknownIn(env, prefix, vars)

	l := &lookuper{env: env, naming: n}
	err = envconfig.ProcessWith(ctx, &envconfig.Config{Target: target, Lookuper: l})
	if err != nil {
		return unknown, l.blame(err, vars)
	}
	return unknown, nil
}

// WarnUnknown logs one warning for each variable that Load reported
// unknown. They are not refused: a rollout may set variables that only a
// newer version reads.
func WarnUnknown(log *slog.Logger, unknown []string) {
	for _, name := range unknown {
		log.Warn("unknown configuration variable", "variable", name)
	}
}

// lookuper reads a service's variables from env and remembers the last one
// read. go-envconfig decodes each value right after reading it and stops at
// the first error, so an error about a value is about that variable.
type lookuper struct {
	env    Env
	naming naming
	last   struct {
		name, value string
		found       bool
	}
}

func (l *lookuper) Lookup(key string) (string, bool) {
	l.last.name = l.naming.name(key)
	l.last.value, l.last.found = l.env.Lookup(l.last.name)
	return l.last.value, l.last.found
}

// Key is the name of the variable of key, for go-envconfig's own messages.
func (l *lookuper) Key(key string) string { return l.naming.name(key) }

// Unwrap is the plain environment, where go-envconfig expands a $NAME in
// a default: those reads are not the field's own and must not be
// remembered as the last one.
func (l *lookuper) Unwrap() envconfig.Lookuper { return l.env }

// misuse are go-envconfig's errors about the struct rather than a value:
// mistakes in the program that no variable can cause or fix.
var misuse = []error{
	envconfig.ErrInvalidEnvvarName, envconfig.ErrLookuperNil, envconfig.ErrMissingKey,
	envconfig.ErrNoInitNotPtr, envconfig.ErrNotPtr, envconfig.ErrNotStruct,
	envconfig.ErrPrefixNotStruct, envconfig.ErrPrivateField, envconfig.ErrRecursivePointer,
	envconfig.ErrRecursiveStruct, envconfig.ErrRequiredAndDefault, envconfig.ErrUnknownOption,
}

// blame turns an error of go-envconfig, which names the Go field, into one
// that names the variable last read.
func (l *lookuper) blame(err error, vars map[string]variable) error {
	for _, m := range misuse {
		if errors.Is(err, m) {
			return fmt.Errorf("configuration: %w", err)
		}
	}
	v, ok := vars[l.last.name]
	if !ok {
		return fmt.Errorf("configuration: %w", err)
	}
	if errors.Is(err, envconfig.ErrMissingRequired) {
		return fmt.Errorf("%s: must be set", v.name)
	}
	value := l.last.value
	if !l.last.found {
		value = v.def
	}
	return v.invalid(value, !l.last.found, err)
}

// Problems gathers the problems of a configuration, each naming the
// variable Prefix+name.
type Problems struct {
	Prefix string
	errs   []error
}

// Add records a problem of the variable Prefix+name.
func (p *Problems) Add(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s%s: %s", p.Prefix, name, fmt.Sprintf(format, args...)))
}

// Err is every problem recorded, or nil.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
