package config

import (
	"net/http"
	"testing"
	"time"
)

// TestUpstreamResolvedValues checks what valid-upstream.yaml resolves to,
// defaults included (#7).
func TestUpstreamResolvedValues(t *testing.T) {
	cfg, err := Load("../testdata/config/valid-upstream.yaml")
	if err != nil {
		t.Fatal(err)
	}
	app, sessions, grpc, secure := cfg.Upstreams[0], cfg.Upstreams[1], cfg.Upstreams[2], cfg.Upstreams[3]
	route := func(i int) *RouteConfig { return cfg.Sites[0].Routes[i] }
	tests := []struct {
		name      string
		got, want any
	}{
		{"policy", app.Policy, PolicyWeightedRoundRobin},
		{"string target weight", app.Targets[0].Weight, 1},
		{"string target inherits max_conns_per_target", app.Targets[0].MaxConns, 200},
		{"mapping target weight", app.Targets[1].Weight, 3},
		{"mapping target own max_conns", app.Targets[1].MaxConns, 50},
		{"health path", app.HealthCheck.Path, "/healthz"},
		{"health range", [2]int{app.HealthCheck.StatusLo, app.HealthCheck.StatusHi}, [2]int{200, 299}},
		{"health interval", app.HealthCheck.Interval, 5 * time.Second},
		{"passive ratio", app.Passive.FailureRatio, 0.5},
		{"passive cool down", app.Passive.CoolDown, 30 * time.Second},
		{"retries", app.Retries, RetryConfig{Attempts: 2, Budget: 3 * time.Second, BodyBuffer: 128 << 10, IdempotencyKey: true}},
		{"hash cookie", sessions.HashCookie, "session"},
		{"sessions policy", sessions.Policy, PolicyHash},
		{"default passive on", sessions.Passive, PassiveConfig{Enabled: true, ConsecutiveFailures: 5, MinRequests: 20, Window: 10 * time.Second, CoolDown: 10 * time.Second}},
		{"default retries", sessions.Retries, RetryConfig{Attempts: 2, Budget: 10 * time.Second, BodyBuffer: 64 << 10}},
		{"no health check by default", sessions.HealthCheck == nil, true},
		{"h2c", grpc.H2C, true},
		{"passive disabled", grpc.Passive.Enabled, false},
		{"server name", secure.TLS.ServerName, "backend.internal"},
		{"target base path", secure.Targets[0].URL.Path, "/base"},
		{"cache size", route(0).Cache.MaxSize, int64(32 << 20)},
		{"cache object", route(0).Cache.MaxObjectSize, int64(512 << 10)},
		{"cache forward", route(0).Cache.ForwardHeaders[0], "X-Tenant"},
		{"no cache by default", route(1).Cache == nil, true},
		{"exact path", route(1).Match.Exact, true},
		{"methods", len(route(1).Match.Methods), 2},
		{"body limit", route(1).Proxy.MaxBodySize, int64(64 << 10)},
		{"regex", route(2).Match.PathRegex.String(), "^/api/v[0-9]+/"},
		{"header value", route(2).Match.Headers[0], MatchConfig{Name: "X-Api-Version", Value: "2", HasValue: true}},
		{"header presence", route(2).Match.Headers[1], MatchConfig{Name: "Authorization"}},
		{"conditions", route(2).Match.Conditions(), 4},
		{"route timeout", route(2).Proxy.Timeout, 30 * time.Second},
		{"route header timeout", route(2).Proxy.ResponseHeaderTimeout, 5 * time.Second},
		{"request set", route(2).Proxy.RequestHeaders.Set[0], [2]string{"X-Forwarded-Prefix", "/api"}},
		{"response remove", route(2).Proxy.ResponseHeaders.Remove[0], "Server"},
		{"websocket idle", route(3).Proxy.WebSocketIdleTimeout, 2 * time.Minute},
		{"websocket idle default", route(0).Proxy.WebSocketIdleTimeout, 5 * time.Minute},
		{"grpc", route(4).Proxy.GRPC, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if http.CanonicalHeaderKey("x-api-version") != route(2).Match.Headers[0].Name {
		t.Error("header names must be canonical")
	}
}

// TestTargetForms: a target is a URL or a mapping, and errors point at the
// URL in either form.
func TestTargetForms(t *testing.T) {
	_, err := Parse("t.yaml", []byte(`upstreams:
  - name: a
    targets:
      - "ftp://x"
      - url: "gopher://y"
        weight: 2
sites: [{hosts: ["*"], routes: [{path: /, upstream: a}]}]
`))
	es := ErrorList(err)
	if len(es) != 2 || es[0].Path != "upstreams[0].targets[0]" || es[1].Path != "upstreams[0].targets[1].url" || es[1].Line != 5 {
		t.Fatalf("%v", err)
	}
}
