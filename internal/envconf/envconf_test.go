package envconf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/eventsidecar/sidecar/internal/envconf"
)

type settings struct {
	Addr    string        `env:"ADDR, default=127.0.0.1:1"`
	Timeout time.Duration `env:"TIMEOUT, default=1s"`
}

func TestLoadReadsPrefixedVariables(t *testing.T) {
	var s settings
	lookup := envconfig.MapLookuper(map[string]string{"SVC_ADDR": "127.0.0.1:2", "ADDR": "elsewhere"})
	if err := envconf.Load(t.Context(), "SVC_", lookup, &s); err != nil {
		t.Fatal(err)
	}
	if s.Addr != "127.0.0.1:2" || s.Timeout != time.Second {
		t.Fatalf("loaded %+v, want SVC_ADDR and the default timeout", s)
	}
	var fresh settings
	err := envconf.Load(t.Context(), "SVC_", envconfig.MapLookuper(map[string]string{"SVC_TIMEOUT": "soon"}), &fresh)
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("a duration that does not parse: %v", err)
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
