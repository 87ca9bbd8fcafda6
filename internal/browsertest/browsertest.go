// Package browsertest finds the Chromium that the browser tests drive
// (the dashboard, the operator console, the bot challenge). It is only
// imported by tests.
package browsertest

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns the path of Debian's chromium, or of the browser named
// by PORTCULLIS_CHROMIUM ("none" stands for a machine without one).
// Without one the calling test skips, except in CI, where a missing
// browser must fail the build rather than silently drop the tests.
func Chromium(t testing.TB) string {
	t.Helper()
	names := []string{"chromium", "/usr/bin/chromium"}
	if env := os.Getenv("PORTCULLIS_CHROMIUM"); env != "" {
		names = []string{env}
	}
	for _, name := range names {
		if name == "none" {
			break
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed, and CI is set: install the Debian package chromium (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed: skipping browser tests (apt-get install -y chromium to run them)")
	return ""
}
