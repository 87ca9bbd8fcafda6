package instance

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/portcullis-waf/portcullis/config"
)

// TestMemoryLimitDefault: server.memory_limit wins, then GOMEMLIMIT; without
// either an automatic limit of at least 256 MiB is set (issue 18, item 7:
// without a limit, memory a burst took was kept).
func TestMemoryLimitDefault(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := debug.SetMemoryLimit(-1)
	tests := []struct {
		name     string
		limit    int64
		env      string
		wantAuto bool
		want     func(int64) bool
	}{
		{"configured", 300 << 20, "", false, func(n int64) bool { return n == 300<<20 }},
		{"environment", 0, "200MiB", false, func(n int64) bool { return n == before }},
		{"automatic", 0, "", true, func(n int64) bool { return n >= minAutomaticLimit && n < before }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tt.env)
			restore, auto := applyMemoryLimit(config.ServerConfig{MemoryLimit: tt.limit}, log)
			got := debug.SetMemoryLimit(-1)
			restore()
			if auto != tt.wantAuto || !tt.want(got) {
				t.Errorf("limit %d, automatic %v", got, auto)
			}
			if after := debug.SetMemoryLimit(-1); after != before {
				t.Errorf("not restored: %d, want %d", after, before)
			}
		})
	}
}
