package vcs

import (
	"runtime/debug"
	"testing"
)

func TestRevision(t *testing.T) {
	info := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "5d1f839abc"}, {Key: "vcs.modified", Value: "true"},
	}}
	if rev, modified := Revision(info); rev != "5d1f839abc" || !modified {
		t.Fatalf("Revision = %q, %v; want 5d1f839abc, true", rev, modified)
	}
	if rev, modified := Revision(&debug.BuildInfo{}); rev != "" || modified {
		t.Fatalf("Revision of a build without a stamp = %q, %v; want none", rev, modified)
	}
}
