package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/config"
)

// TestStageChallengeAction (issue 17, item 3): a limit with action:
// challenge answers a request over it with the challenge page (429, the
// record says so); a client with a valid pass draws from the ceiling
// instead of the limit, and is refused over it; a pass of another client
// does not count; a limit without the action blocks as ever.
func TestStageChallengeAction(t *testing.T) {
	ch, err := challenge.New(challenge.Options{Key: []byte(strings.Repeat("k", 32)), Difficulty: 4, PassTTL: time.Hour, NonceTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	passFor := func(addr string) string {
		r := httptest.NewRequest("GET", "/", nil)
		return ch.Pass(challenge.ClientOf(r, addr), time.Now())
	}
	// Requests: client address, pass of ("" none), want status, want the
	// page, a part of the reason.
	type req struct {
		client, passOf string
		want           int
		page           bool
		reason         string
	}
	const over = "rate limit l (0.001/s, burst 1) exceeded; answered with the challenge"
	const ceiling = "rate limit l ceiling (0.001/s, burst 2) exceeded by a client with a solved challenge"
	for _, tc := range []struct {
		name   string
		action string
		reqs   []req
		counts map[string]int
	}{
		{"block", config.ActionBlock, []req{
			{"192.0.2.1", "", 204, false, ""},
			{"192.0.2.1", "", 429, false, "rate limit l (0.001/s, burst 1) exceeded"},
			{"192.0.2.1", "192.0.2.1", 429, false, "exceeded"}, // a pass means nothing to a blocking limit
		}, map[string]int{}},
		{"challenge: the page over the limit", config.ActionChallenge, []req{
			{"192.0.2.1", "", 204, false, ""},
			{"192.0.2.1", "", 429, true, over},
			{"192.0.2.2", "", 204, false, ""},
		}, map[string]int{challenge.ResultServed: 1}},
		{"challenge: a pass draws from the ceiling", config.ActionChallenge, []req{
			{"192.0.2.1", "", 204, false, ""},
			{"192.0.2.1", "192.0.2.1", 204, false, ""},
			{"192.0.2.1", "192.0.2.1", 204, false, ""},
			{"192.0.2.1", "192.0.2.1", 429, false, ceiling},
			{"192.0.2.1", "", 429, true, over},
		}, map[string]int{challenge.ResultPassed: 2, challenge.ResultCeiling: 1, challenge.ResultServed: 1}},
		{"challenge: a pass does not draw from the limit", config.ActionChallenge, []req{
			{"192.0.2.1", "192.0.2.1", 204, false, ""},
			{"192.0.2.1", "", 204, false, ""},
		}, map[string]int{challenge.ResultPassed: 1}},
		{"challenge: another client's pass", config.ActionChallenge, []req{
			{"192.0.2.1", "", 204, false, ""},
			{"192.0.2.1", "192.0.2.9", 429, true, over},
		}, map[string]int{challenge.ResultServed: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counts := map[string]int{}
			ls := NewLimits(nil, nil)
			ls.ChallengeWith(ch, func(stage, result string) {
				if stage != audit.StageRateLimit {
					t.Errorf("counted under stage %q", stage)
				}
				counts[result]++
			})
			lc := config.RateLimitConfig{Name: "l", Rate: 0.001, Burst: 1, Key: config.KeyIP, MaxKeys: 100,
				Action: tc.action, CeilingRate: 0.001, CeilingBurst: 2}
			built, problems := ls.Build("s", "/", []config.RateLimitConfig{lc})
			if problems != nil {
				t.Fatal(problems[0])
			}
			h := NewStage(nil, built, ok)
			for i, rq := range tc.reqs {
				e := &audit.Entry{ID: "id", Addr: netip.MustParseAddr(rq.client)}
				r := httptest.NewRequest("GET", "/", nil)
				if rq.passOf != "" {
					r.AddCookie(&http.Cookie{Name: challenge.PassCookie, Value: passFor(rq.passOf)})
				}
				r = r.WithContext(audit.WithEntry(r.Context(), e))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				page := strings.Contains(w.Body.String(), "data-nonce=")
				if w.Code != rq.want || page != rq.page {
					t.Fatalf("request %d: %d page %v, want %d page %v", i, w.Code, page, rq.want, rq.page)
				}
				if rq.want == 429 {
					if e.Stage != audit.StageRateLimit || !strings.Contains(e.Reason, rq.reason) || w.Header().Get(HeaderRetry) == "" {
						t.Errorf("request %d: stage %q reason %q Retry-After %q", i, e.Stage, e.Reason, w.Header().Get(HeaderRetry))
					}
				} else if e.Action != "" {
					t.Errorf("request %d: let through but marked %s %q", i, e.Action, e.Reason)
				}
			}
			for k, v := range tc.counts {
				if counts[k] != v {
					t.Errorf("counted %v, want %v", counts, tc.counts)
					break
				}
			}
			if len(counts) != len(tc.counts) {
				t.Errorf("counted %v, want %v", counts, tc.counts)
			}
		})
	}
}
