// Package vcs reads the version control stamp that the Go toolchain
// records in a binary's build information.
package vcs

import "runtime/debug"

// Revision is the commit a binary was built from, empty when the build
// recorded none, and whether the checkout had uncommitted changes.
func Revision(info *debug.BuildInfo) (revision string, modified bool) {
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return revision, modified
}
