package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// TestStageBudgets: one request per budget (burst 1, a rate slow enough
// that none refills during the test); which requests share a budget.
func TestStageBudgets(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	type req struct {
		client string
		keys   []string // X-Api-Key values sent
		want   int
	}
	for _, tc := range []struct {
		name   string
		limit  config.RateLimitConfig
		onSite bool
		reqs   []req
	}{
		{"ip key: each client its own budget", config.RateLimitConfig{Name: "ip", Key: config.KeyIP}, false,
			[]req{{"192.0.2.1", nil, 204}, {"192.0.2.1", nil, 429}, {"192.0.2.2", nil, 204}}},
		{"ipv6 clients grouped by prefix", config.RateLimitConfig{Name: "v6", Key: config.KeyIP, IPv6Prefix: 64}, false,
			[]req{{"2001:db8::1", nil, 204}, {"2001:db8::2", nil, 429}, {"2001:db8:0:1::1", nil, 204}}},
		{"header key: each value its own budget", config.RateLimitConfig{Name: "key", Key: config.KeyHeader, Header: "X-Api-Key"}, false,
			[]req{{"192.0.2.1", []string{"a"}, 204}, {"192.0.2.1", []string{"b"}, 204}, {"192.0.2.2", []string{"a"}, 429}}},
		{"header key: left out, the client pays", config.RateLimitConfig{Name: "key", Key: config.KeyHeader, Header: "X-Api-Key"}, false,
			[]req{{"192.0.2.1", nil, 204}, {"192.0.2.1", nil, 429}}},
		{"header key: sent twice or empty, the client pays", config.RateLimitConfig{Name: "key", Key: config.KeyHeader, Header: "X-Api-Key"}, false,
			[]req{{"192.0.2.1", []string{"a", "b"}, 204}, {"192.0.2.1", []string{""}, 429}}},
		{"site limit", config.RateLimitConfig{Name: "site", Key: config.KeyIP}, true,
			[]req{{"192.0.2.1", nil, 204}, {"192.0.2.1", nil, 429}}},
		{"a client that is not an IP address is not limited", config.RateLimitConfig{Name: "ip", Key: config.KeyIP}, false,
			[]req{{"", nil, 204}, {"", nil, 204}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.limit.Rate, tc.limit.Burst, tc.limit.MaxKeys = 0.001, 1, 100
			ls := NewLimits(nil, nil)
			built, problems := ls.Build("s", "/", []config.RateLimitConfig{tc.limit})
			if problems != nil {
				t.Fatal(problems[0])
			}
			h := NewStage(nil, built, ok)
			if tc.onSite {
				h = NewStage(built, nil, ok)
			}
			for i, rq := range tc.reqs {
				e := &audit.Entry{ID: "id"}
				if rq.client != "" {
					e.Addr = netip.MustParseAddr(rq.client)
				}
				r := httptest.NewRequest("GET", "/", nil)
				for _, k := range rq.keys {
					r.Header.Add("X-Api-Key", k)
				}
				r = r.WithContext(audit.WithEntry(r.Context(), e))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != rq.want {
					t.Fatalf("request %d: %d, want %d", i, w.Code, rq.want)
				}
				if w.Code == 429 && (e.Stage != audit.StageRateLimit || w.Header().Get(HeaderRetry) == "") {
					t.Errorf("request %d: refused with stage %q, Retry-After %q", i, e.Stage, w.Header().Get(HeaderRetry))
				}
			}
		})
	}
}

// TestLimitsCarryOverAReload: an unchanged limit keeps its limiter (and
// its counters) in the next configuration; a changed one starts afresh.
func TestLimitsCarryOverAReload(t *testing.T) {
	lc := config.RateLimitConfig{Name: "l", Rate: 1, Burst: 1, Key: config.KeyIP, MaxKeys: 10}
	first := NewLimits(nil, nil)
	a, _ := first.Build("s", "/", []config.RateLimitConfig{lc})
	next := NewLimits(nil, first)
	b, _ := next.Build("s", "/", []config.RateLimitConfig{lc})
	if a[0].limiter != b[0].limiter {
		t.Error("an unchanged limit got a new limiter")
	}
	lc.Burst = 2
	c, _ := NewLimits(nil, next).Build("s", "/", []config.RateLimitConfig{lc})
	if c[0].limiter == b[0].limiter {
		t.Error("a changed limit kept its limiter")
	}
}
