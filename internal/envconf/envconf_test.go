package envconf_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/eventsidecar/sidecar/internal/envconf"
)

type settings struct {
	Addr     string        `env:"ADDR, default=127.0.0.1:1"`
	Timeout  time.Duration `env:"TIMEOUT, default=1s"`
	Workers  int16         `env:"WORKERS, default=4"`
	Verbose  bool          `env:"VERBOSE, default=false"`
	Ports    []int         `env:"PORTS"`
	Target   *url.URL      `env:"TARGET"`
	Disabled bool          `env:"OTHER_DISABLED, default=false"`
	Store    store         `env:", prefix=STORE_"`
}

type store struct {
	Timeout time.Duration `env:"TIMEOUT, default=2s"`
}

func TestLoadReadsPrefixedVariables(t *testing.T) {
	var s settings
	env := envconf.Env{
		"SVC_ADDR": "127.0.0.1:2", "ADDR": "elsewhere", "SVC_STORE_TIMEOUT": "3s",
		"OTHER_DISABLED": "true",
	}
	if _, err := envconf.Load(t.Context(), env, "SVC_", &s); err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:2" || s.Timeout != time.Second || s.Store.Timeout != 3*time.Second {
		t.Fatalf("loaded %+v, want SVC_ADDR, SVC_STORE_TIMEOUT and the default timeout", s)
	}
	if s.Disabled {
		t.Fatal("OTHER_DISABLED was read without the prefix, and no option asked for that")
	}
}

func TestUnprefixedKeysAreReadByTheirOwnNames(t *testing.T) {
	var s settings
	env := envconf.Env{"OTHER_DISABLED": "true", "SVC_TIMEOUT": "5s"}
	if _, err := envconf.Load(t.Context(), env, "SVC_", &s, envconf.Unprefixed("OTHER_")); err != nil {
		t.Fatal(err)
	}
	if !s.Disabled || s.Timeout != 5*time.Second {
		t.Fatalf("loaded %+v, want OTHER_DISABLED and SVC_TIMEOUT", s)
	}

	_, err := envconf.Load(t.Context(), envconf.Env{"OTHER_DISABLED": "maybe"}, "SVC_", &settings{},
		envconf.Unprefixed("OTHER_"))
	const want = `OTHER_DISABLED: must be true or false, got "maybe"`
	if err == nil || err.Error() != want {
		t.Fatalf("OTHER_DISABLED=maybe: %v, want %s", err, want)
	}
}

func TestValuesThatDoNotParseNameTheirVariable(t *testing.T) {
	tests := []struct {
		name string
		env  envconf.Env
		want string
	}{
		{"a duration", envconf.Env{"SVC_TIMEOUT": "soon"},
			`SVC_TIMEOUT: must be a duration such as 10s, 500ms or 1m30s, got "soon"`},
		{"an integer", envconf.Env{"SVC_WORKERS": "many"},
			`SVC_WORKERS: must be an integer from -32768 to 32767, got "many"`},
		{"an integer out of range", envconf.Env{"SVC_WORKERS": "40000"},
			`SVC_WORKERS: must be an integer from -32768 to 32767, got "40000"`},
		{"a boolean", envconf.Env{"SVC_VERBOSE": "yes please"},
			`SVC_VERBOSE: must be true or false, got "yes please"`},
		{"one item of a list", envconf.Env{"SVC_PORTS": "80,http"},
			`SVC_PORTS: must be a list separated by ",", each an integer, got "80,http"`},
		{"a URL", envconf.Env{"SVC_TARGET": "::"},
			`SVC_TARGET: must be a URL, got "::": parse "::": missing protocol scheme`},
		{"a nested struct's", envconf.Env{"SVC_STORE_TIMEOUT": "2 seconds"},
			`SVC_STORE_TIMEOUT: must be a duration such as 10s, 500ms or 1m30s, got "2 seconds"`},
		{"after a good one", envconf.Env{"SVC_TIMEOUT": "3s", "SVC_VERBOSE": "sometimes"},
			`SVC_VERBOSE: must be true or false, got "sometimes"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := envconf.Load(t.Context(), tt.env, "SVC_", &settings{})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
		})
	}
}

func TestADefaultReadsOtherVariablesByTheirOwnNames(t *testing.T) {
	var s struct {
		Dir string `env:"DIR, default=$BASE/data"`
	}
	env := envconf.Env{"BASE": "/srv", "SVC_BASE": "/prefixed"}
	if _, err := envconf.Load(t.Context(), env, "SVC_", &s); err != nil {
		t.Fatal(err)
	}
	if s.Dir != "/srv/data" {
		t.Fatalf("SVC_DIR defaulted to %q, want /srv/data", s.Dir)
	}
}

func TestAWrongDefaultNamesItsVariable(t *testing.T) {
	var s struct {
		Workers int `env:"WORKERS, default=four"`
	}
	_, err := envconf.Load(t.Context(), envconf.Env{}, "SVC_", &s)
	const want = `SVC_WORKERS: must be an integer, got "four" (its default)`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestAMissingRequiredVariableIsNamed(t *testing.T) {
	var s struct {
		Addr string `env:"ADDR, required"`
	}
	_, err := envconf.Load(t.Context(), envconf.Env{"ADDR": "x"}, "SVC_", &s)
	if err == nil || err.Error() != "SVC_ADDR: must be set" {
		t.Fatalf("error %v, want SVC_ADDR: must be set", err)
	}
}

// A mistake in the struct after a field read fine was blamed on that
// field's variable.
func TestAMistakeInTheStructBlamesNoVariable(t *testing.T) {
	var s struct {
		Addr  string `env:"ADDR"`
		Count int    `env:"COUNT, sometimes"`
	}
	_, err := envconf.Load(t.Context(), envconf.Env{"SVC_ADDR": "x"}, "SVC_", &s)
	if !errors.Is(err, envconfig.ErrUnknownOption) || strings.Contains(err.Error(), "SVC_ADDR") {
		t.Fatalf("error %v, want go-envconfig's unknown option, naming no variable", err)
	}
}

func TestUnknownVariablesAreReported(t *testing.T) {
	env := envconf.Env{
		"SVC_ADDR": "127.0.0.1:2", "SVC_STORE_TIMEOUT": "1s", "SVC_TIMOUT": "5s",
		"SVC_STORE_TIMOUT": "1s", "SVC_OTHER_DISABLED": "true", "OTHER_DISABLED": "true",
		"OTHER_UNKNOWN": "x", "PATH": "/bin", "SVCX_ADDR": "y",
	}
	unknown, err := envconf.Load(t.Context(), env, "SVC_", &settings{}, envconf.Unprefixed("OTHER_"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"SVC_OTHER_DISABLED", "SVC_STORE_TIMOUT", "SVC_TIMOUT"}
	if !slices.Equal(unknown, want) {
		t.Fatalf("unknown %q, want %q", unknown, want)
	}

	env["SVC_TIMEOUT"] = "soon"
	unknown, err = envconf.Load(t.Context(), env, "SVC_", &settings{}, envconf.Unprefixed("OTHER_"))
	if err == nil || !slices.Equal(unknown, want) {
		t.Fatalf("with a bad value: unknown %q and error %v, want %q and an error", unknown, err, want)
	}
}

func TestEnvironReadsTheProcessEnvironment(t *testing.T) {
	t.Setenv("ENVCONF_TEST_VALUE", "a=b")
	if got := envconf.Environ()["ENVCONF_TEST_VALUE"]; got != "a=b" {
		t.Fatalf("ENVCONF_TEST_VALUE is %q, want a=b", got)
	}
}

func TestProblemsNameTheirVariables(t *testing.T) {
	p := envconf.Problems{Prefix: "SVC_"}
	if p.Err() != nil {
		t.Fatalf("no problems: %v", p.Err())
	}
	p.Add("ADDR", "must not be empty")
	p.Add("TIMEOUT", "must be positive, got %s", time.Duration(0))
	got := p.Err().Error()
	for _, want := range []string{"SVC_ADDR: must not be empty", "SVC_TIMEOUT: must be positive, got 0s"} {
		if !strings.Contains(got, want) {
			t.Fatalf("problems %q lack %q", got, want)
		}
	}
}
