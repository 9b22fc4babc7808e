package main

import (
	"fmt"
	"runtime/debug"
)

// version is the module version and the commit the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if revision != "" {
		v = fmt.Sprintf("%s, commit %s%s", v, revision, modified)
	}
	return fmt.Sprintf("sidecar %s, %s", v, info.GoVersion)
}
