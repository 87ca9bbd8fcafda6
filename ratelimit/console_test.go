package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// TestTracked: the console reads how many clients a local limit tracks,
// for the site's limits and a route's, and nothing for a limit not built.
func TestTracked(t *testing.T) {
	site := config.RateLimitConfig{Name: "site", Key: config.KeyIP, Rate: 1, Burst: 5, MaxKeys: 100}
	route := config.RateLimitConfig{Name: "login", Key: config.KeyIP, Rate: 1, Burst: 5, MaxKeys: 100}
	ls := NewLimits(nil, nil)
	siteLimits, _ := ls.Build("shop", "", []config.RateLimitConfig{site})
	routeLimits, _ := ls.Build("shop", "/login", []config.RateLimitConfig{route})
	h := NewStage(siteLimits, routeLimits, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		e := &audit.Entry{ID: "id", Addr: netip.MustParseAddr(c)}
		r := httptest.NewRequest("GET", "/login", nil)
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(audit.WithEntry(r.Context(), e)))
	}
	tests := []struct {
		name       string
		site, path string
		rc         config.RateLimitConfig
		keys       int
		ok         bool
	}{
		{"site limit", "shop", "", site, 3, true},
		{"route limit", "shop", "/login", route, 3, true},
		{"other settings: another limit", "shop", "/login", config.RateLimitConfig{Name: "login", Key: config.KeyIP, Rate: 2, Burst: 5, MaxKeys: 100}, 0, false},
		{"unknown route", "shop", "/nowhere", route, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, ok := ls.Tracked(tc.site, tc.path, tc.rc)
			if keys != tc.keys || ok != tc.ok {
				t.Fatalf("Tracked = %d, %v; want %d, %v", keys, ok, tc.keys, tc.ok)
			}
		})
	}
	var none *Limits
	if _, ok := none.Tracked("shop", "", site); ok {
		t.Fatal("nil limits report a count")
	}
}
