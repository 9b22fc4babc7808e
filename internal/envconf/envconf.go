// Package envconf reads a service's configuration from environment
// variables that share a prefix, and gathers its problems so that each
// names its variable.
package envconf

import (
	"context"
	"errors"
	"fmt"

	"github.com/sethvargo/go-envconfig"
)

// Load fills target, a pointer to a struct with env tags, from the
// variables prefix+name that lookup finds.
func Load(ctx context.Context, prefix string, lookup envconfig.Lookuper, target any) error {
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{
		Target:   target,
		Lookuper: envconfig.PrefixLookuper(prefix, lookup),
	}); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	return nil
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
