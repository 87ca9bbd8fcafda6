package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestConsoleAccessors: the pipeline reports each pool's targets and how
// many clients each rate limit tracks, site and route limits apart.
func TestConsoleAccessors(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := strings.Replace(basicConfig, "    routes:\n      - path: /\n        upstream: app\n",
		"    filters:\n      rate_limits: [{name: site, rate: 100, burst: 100}]\n    routes:\n      - path: /\n        upstream: app\n        rate_limits: [{name: route, rate: 100, burst: 100}]\n", 1)
	tp := startProxy(t, "client_ip:\n  trusted_proxies: [127.0.0.1]\n"+cfg, up.URL)
	for _, client := range []string{"192.0.2.1", "192.0.2.2"} {
		if status, _, _ := fromClient(t, tp.URL+"/", client); status != 200 {
			t.Fatalf("%s: %d", client, status)
		}
	}
	p := tp.server.Pipeline()
	health := p.PoolHealth()
	if len(health) != 1 || len(health["app"]) != 1 || health["app"][0].URL != up.URL || !health["app"][0].Up || health["app"][0].Served != 2 {
		t.Fatalf("pool health %+v", health)
	}
	sc := p.Config.Sites[0]
	rc := sc.Routes[0]
	for _, tc := range []struct {
		name string
		path string
		keys int
		ok   bool
	}{
		{"site limit", "", 2, true},
		{"route limit", rc.Path, 2, true},
	} {
		limits := sc.RateLimits
		if tc.path != "" {
			limits = rc.RateLimits
		}
		keys, ok := p.LimitTracked(sc.Name, tc.path, limits[0])
		if keys != tc.keys || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, keys, ok, tc.keys, tc.ok)
		}
	}
}
