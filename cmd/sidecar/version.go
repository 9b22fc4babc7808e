package main

import (
	"fmt"
	"runtime/debug"

	"github.com/eventsidecar/sidecar/internal/vcs"
)

// version is the module version and the commit the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if revision, modified := vcs.Revision(info); revision != "" {
		v = fmt.Sprintf("%s, commit %s", v, revision)
		if modified {
			v += " (modified)"
		}
	}
	return fmt.Sprintf("sidecar %s, %s", v, info.GoVersion)
}
