package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// TestReloadKeepsTargetVerdicts builds a pool, lets its active check take
// out a sick target and its passive check eject another, then builds the
// pool a reload would build from it. The replacement's checks run once an
// hour and need five failures, so any verdict it shows at once was carried
// over, not found again.
func TestReloadKeepsTargetVerdicts(t *testing.T) {
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	well := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer well.Close()
	sickURL, _ := url.Parse(sick.URL)
	wellURL, _ := url.Parse(well.URL)
	otherURL, _ := url.Parse("http://127.0.0.1:9") // never probed: no check, or hourly after the first
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	check := config.HealthCheckConfig{Path: "/healthz", StatusLo: 200, StatusHi: 299, Interval: 10 * time.Millisecond, Timeout: 2 * time.Second, Rise: 1, Fall: 1}
	passive := config.PassiveConfig{Enabled: true, ConsecutiveFailures: 1, CoolDown: time.Hour}
	upstream := func(hc *config.HealthCheckConfig, pc config.PassiveConfig, targets ...*url.URL) *config.UpstreamConfig {
		u := &config.UpstreamConfig{Name: "app", Policy: config.PolicyRoundRobin, HealthCheck: hc, Passive: pc}
		for _, tu := range targets {
			u.Targets = append(u.Targets, config.TargetConfig{URL: tu, Weight: 1})
		}
		return u
	}

	prev := NewPool(upstream(&check, passive, sickURL, wellURL), nil, log)
	defer prev.Close()
	deadline := time.Now().Add(10 * time.Second)
	for prev.Status()[0].Up {
		if time.Now().After(deadline) {
			t.Fatal("the sick target was never taken out")
		}
		time.Sleep(5 * time.Millisecond)
	}
	prev.failed(prev.targets[1])
	if st := prev.Status(); !st[1].Up || !st[1].Ejected {
		t.Fatalf("before the reload: %+v", st)
	}

	slow := check
	slow.Interval, slow.Rise, slow.Fall = time.Hour, 2, 5
	moved := slow
	moved.Path = "/ready"
	longer := slow
	longer.Timeout = 5 * time.Second
	tests := []struct {
		name            string
		next            *config.UpstreamConfig
		sickUp          bool // target 0 (sickURL) takes traffic
		wellEjected     bool // target 1 (wellURL) is cooling down
		otherTargetUp   bool // target 2, if any, is new and starts in
		withOtherTarget bool
	}{
		{name: "same checks, slower", next: upstream(&slow, passive, sickURL, wellURL), sickUp: false, wellEjected: true},
		{name: "check path changed", next: upstream(&moved, passive, sickURL, wellURL), sickUp: true, wellEjected: true},
		{name: "check timeout changed", next: upstream(&longer, passive, sickURL, wellURL), sickUp: true, wellEjected: true},
		{name: "active check removed", next: upstream(nil, passive, sickURL, wellURL), sickUp: true, wellEjected: true},
		{name: "passive check disabled", next: upstream(&slow, config.PassiveConfig{}, sickURL, wellURL), sickUp: false, wellEjected: false},
		{name: "a new target starts in", next: upstream(&slow, passive, sickURL, wellURL, otherURL), sickUp: false, wellEjected: true, withOtherTarget: true, otherTargetUp: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := NewPool(tc.next, prev, log)
			defer next.Close()
			st := next.Status()
			if st[0].Up != tc.sickUp {
				t.Errorf("sick target up = %v, want %v", st[0].Up, tc.sickUp)
			}
			if !st[1].Up || st[1].Ejected != tc.wellEjected {
				t.Errorf("ejected target: up %v ejected %v, want up and ejected %v", st[1].Up, st[1].Ejected, tc.wellEjected)
			}
			if tc.withOtherTarget && (st[2].Up != tc.otherTargetUp || st[2].Ejected) {
				t.Errorf("new target: %+v", st[2])
			}
		})
	}

	// A pool built afresh (a start, not a reload) trusts every target.
	fresh := NewPool(upstream(&slow, passive, sickURL, wellURL), nil, log)
	defer fresh.Close()
	if st := fresh.Status(); !st[0].Up || st[1].Ejected {
		t.Errorf("fresh pool: %+v", st)
	}
}
