package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// The tests of the upstream pools themselves (balancing, health checks,
// retries, route overrides) are in proxy/, which runs them against the
// proxy stage alone. These test how the pipeline composes the pools: a
// reload hands the old pools' verdicts to the new ones, and the router
// chooses the route (and so the upstream) by method and header.

// A reload keeps a target the active check took out out of rotation: the
// new pipeline's check (hourly here, needing five failures) would otherwise
// send it traffic until it found the target dead again.
func TestProxyReloadKeepsDownTargetsOut(t *testing.T) {
	a, c := newBackend(t, "a"), newBackend(t, "c")
	up := `  - name: app
    targets: TARGETS
    health_check: {path: /healthz, expect_status: "200-299", interval: INTERVAL, timeout: 2s, rise: 1, fall: FALL}
    passive_check: {disabled: true}
`
	text := func(interval, fall string) string {
		return poolConfig(strings.NewReplacer("INTERVAL", interval, "FALL", fall).Replace(up), a, c)
	}
	// The first probe runs at once and takes c out (fall: 1); the healthy
	// a has a generous timeout, so a stall cannot take it out too.
	c.Sick.Store(true)
	tp := startProxy(t, text("5s", "1"), "")
	if !eventually(func() bool { return !tp.pool("app").Status()[1].Up }) {
		t.Fatal("sick target never marked down")
	}
	cfg, err := config.Parse(tp.Config, []byte("listeners:\n  - address: \"127.0.0.1:0\"\n"+text("1h", "5")))
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.server.Reload(cfg, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := tp.pool("app").Status(); st[1].Up {
		t.Fatalf("after the reload the sick target is back in rotation: %+v", st)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	before := c.Hits.Load()
	for i := 0; i < 20; i++ {
		if status, body := get(client, tp.URL+"/x", nil); status != http.StatusOK || body != "a" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	if n := c.Hits.Load() - before; n != 0 {
		t.Errorf("the down target got %d requests after the reload", n)
	}
}

// TestRoutesByMethodAndHeader: routes on the same path, told apart by
// method and by a header, send their requests to different upstreams.
func TestRoutesByMethodAndHeader(t *testing.T) {
	app, other := newBackend(t, "app"), newBackend(t, "other")
	cfg := `upstreams:
  - name: app
    targets: ["` + app.URL() + `"]
  - name: other
    targets: ["` + other.URL() + `"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
      - path: /
        methods: [DELETE]
        upstream: other
      - path: /
        headers:
          - name: X-Canary
            value: "1"
        upstream: other
` + allowPutDelete
	tp := startProxy(t, cfg, "")
	if _, body, _ := do(t, http.MethodDelete, tp.URL+"/x", "", nil); body != "other" {
		t.Errorf("DELETE went to %q", body)
	}
	if _, body, _ := do(t, http.MethodGet, tp.URL+"/x", "", http.Header{"X-Canary": {"1"}}); body != "other" {
		t.Errorf("canary went to %q", body)
	}
	if _, body, _ := do(t, http.MethodGet, tp.URL+"/x", "", http.Header{"X-Canary": {"0"}}); body != "app" {
		t.Errorf("non-canary went to %q", body)
	}
}

// allowPutDelete lets PUT and DELETE past CRS 911100 (its default methods
// are GET, HEAD, POST and OPTIONS).
const allowPutDelete = `waf:
  crs_variables:
    allowed_methods: "GET HEAD POST OPTIONS PUT DELETE"
`
