package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/internal/browsertest"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
	"github.com/portcullis-waf/portcullis/metrics"
)

// challengeAnswerConfig: a deny list answered with the challenge on the
// site, a rate limit answered with it on /api (2 requests, then the page;
// 4 with a pass), plain blocks elsewhere.
const challengeAnswerConfig = `
challenge:
  difficulty: 12
reputation:
  lists:
    - name: suspicious
      action: deny
      inline: ["127.0.0.2"]
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    filters:
      deny_lists: [suspicious]
      deny_lists_action: challenge
    routes:
      - path: /api
        upstream: app
        rate_limits:
          - name: api
            rate: 0.001
            burst: 2
            action: challenge
            ceiling:
              rate: 0.001
              burst: 4
      - path: /plain
        upstream: app
        rate_limits:
          - name: plain
            rate: 0.001
            burst: 1
      - path: /
        upstream: app
`

// solve does the page's work in Go: it finds the answer to the page's
// nonce (what the script does in a browser).
func solve(t *testing.T, page string) string {
	t.Helper()
	m := nonceAttr.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no challenge in the page:\n%s", page)
	}
	bits, _ := strconv.Atoi(m[2])
	for i := 0; ; i++ {
		a := m[1] + ":" + strconv.Itoa(i)
		if challenge.LeadingZeroBits(sha256.Sum256([]byte(a))) >= bits {
			return a
		}
	}
}

// sourcedClient returns a client whose connections come from src, a loopback
// address: the proxy sees it as the client address.
func sourcedClient(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// TestChallengeAsAnswer (issue 17, item 3): a rate limit and a deny list
// with action: challenge answer a hit with the challenge page (429 and
// 403) instead of a block; a client that does not run the script (this Go
// client, like curl) never reaches the upstream; one that solves it goes
// on with a pass bound to it, past the filter, until a rate limit's
// ceiling; one record per answer names the filter's stage and the answer,
// and metrics count each result.
func TestChallengeAsAnswer(t *testing.T) {
	up := &cookieUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	tp := startProxy(t, challengeAnswerConfig, srv.URL)
	m := metrics.New(metrics.BuildInfo{})
	tp.server.Pipeline().Observe(Observers{Metrics: m}) // before the requests below
	get := func(c *http.Client, path string, cookies ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", tp.URL+path, nil)
		req.Host = "shop.test"
		req.Header.Set("User-Agent", "curl/8.5")
		if len(cookies) > 0 {
			req.Header.Set("Cookie", strings.Join(cookies, "; "))
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	passOf := func(resp *http.Response) string {
		for _, c := range resp.Cookies() {
			if c.Name == challenge.PassCookie {
				return c.Value
			}
		}
		return ""
	}
	isPage := func(body string) bool {
		return nonceAttr.MatchString(body) && strings.Contains(body, "<noscript>") && strings.Contains(body, "JavaScript is required")
	}
	hits := func() int { n, _ := up.count(); return n }

	type step struct {
		name       string
		client     string // source address
		path       string
		cookie     string // "answer": solve the last page; "pass": the last pass; "pass-of-1": 127.0.0.1's pass
		wantStatus int
		wantPage   bool   // the challenge page (not the neutral block page)
		wantStage  string // the record's stage, "" for allowed
		wantReason string // a part of the record's reason
		wantPass   bool   // a pass cookie is set
		wantUp     bool   // the upstream was reached
	}
	steps := []step{
		{"within the limit", "127.0.0.1", "/api", "", 200, false, "", "", false, true},
		{"within the limit", "127.0.0.1", "/api", "", 200, false, "", "", false, true},
		{"over: the challenge, not a block", "127.0.0.1", "/api", "", 429, true, audit.StageRateLimit, "rate limit api (0.001/s, burst 2) exceeded; answered with the challenge", false, false},
		{"a forged answer", "127.0.0.1", "/api", challenge.AnswerCookie + "=1.2.3:4", 429, true, audit.StageRateLimit, "exceeded; answered with the challenge, answer rejected: nonce", false, false},
		{"over again: the page", "127.0.0.1", "/api", "", 429, true, audit.StageRateLimit, "answered with the challenge", false, false},
		{"solved: through, pass set", "127.0.0.1", "/api", "answer", 200, false, "", "", true, true},
		{"with the pass: past the limit", "127.0.0.1", "/api", "pass", 200, false, "", "", false, true},
		{"with the pass", "127.0.0.1", "/api", "pass", 200, false, "", "", false, true},
		{"with the pass: last of the ceiling", "127.0.0.1", "/api", "pass", 200, false, "", "", false, true},
		{"with the pass: over the ceiling", "127.0.0.1", "/api", "pass", 429, false, audit.StageRateLimit, "rate limit api ceiling (0.001/s, burst 4) exceeded by a client with a solved challenge", false, false},
		{"without the pass: still the page", "127.0.0.1", "/api", "", 429, true, audit.StageRateLimit, "answered with the challenge", false, false},
		{"a block limit still blocks", "127.0.0.1", "/plain", "", 200, false, "", "", false, true},
		{"a block limit still blocks", "127.0.0.1", "/plain", "pass", 429, false, audit.StageRateLimit, "rate limit plain (0.001/s, burst 1) exceeded", false, false},
		{"deny list: the challenge", "127.0.0.2", "/", "", 403, true, audit.StageReputation, "on deny list suspicious (entry 127.0.0.2/32); answered with the challenge", false, false},
		{"deny list: another address's pass", "127.0.0.2", "/", "pass-of-1", 403, true, audit.StageReputation, "answered with the challenge", false, false},
		{"deny list: solved", "127.0.0.2", "/", "answer", 200, false, "", "", true, true},
		{"deny list: with the pass", "127.0.0.2", "/", "pass", 200, false, "", "", false, true},
		{"not listed: untouched", "127.0.0.4", "/", "", 200, false, "", "", false, true},
	}
	var lastPage, lastPass, pass1 string
	for i, s := range steps {
		var cookie string
		switch s.cookie {
		case "answer":
			cookie = challenge.AnswerCookie + "=" + solve(t, lastPage)
		case "pass":
			cookie = challenge.PassCookie + "=" + lastPass
		case "pass-of-1":
			cookie = challenge.PassCookie + "=" + pass1
		default:
			cookie = s.cookie
		}
		before := hits()
		var resp *http.Response
		var body string
		if cookie != "" {
			resp, body = get(sourcedClient(s.client), s.path, cookie, "session=s1")
		} else {
			resp, body = get(sourcedClient(s.client), s.path)
		}
		if resp.StatusCode != s.wantStatus || isPage(body) != s.wantPage {
			t.Fatalf("step %d %s: status %d page %v, want %d %v\n%s", i, s.name, resp.StatusCode, isPage(body), s.wantStatus, s.wantPage, body)
		}
		if s.wantPage {
			lastPage = body
			if resp.Header.Get("Cache-Control") != "no-store" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'sha256-") {
				t.Errorf("step %d: page headers %v", i, resp.Header)
			}
			if s.wantStatus == 429 && resp.Header.Get("Retry-After") == "" {
				t.Errorf("step %d: a rate limit's page without Retry-After", i)
			}
		}
		if p := passOf(resp); (p != "") != s.wantPass {
			t.Errorf("step %d %s: pass cookie %q", i, s.name, p)
		} else if p != "" {
			lastPass = p
			if s.client == "127.0.0.1" {
				pass1 = p
			}
		}
		if reached := hits() > before; reached != s.wantUp {
			t.Errorf("step %d %s: upstream reached %v", i, s.name, reached)
		}
		if s.wantStage == "" {
			// Allowed requests leave no record (audit.sample_allowed is off).
			tp.noEntryFor(t, resp.Header.Get("X-Request-Id"))
			continue
		}
		e := tp.entryFor(t, resp.Header.Get("X-Request-Id"))
		if e.Action != audit.ActionBlocked || e.Stage != s.wantStage || e.Status != s.wantStatus || !strings.Contains(e.Reason, s.wantReason) {
			t.Errorf("step %d %s: record %s/%s %d %q, want blocked/%s %d %q", i, s.name, e.Action, e.Stage, e.Status, e.Reason, s.wantStage, s.wantStatus, s.wantReason)
		}
	}
	// The upstream never saw the challenge's cookies, and did see the
	// application's.
	_, cookies := up.count()
	for _, c := range cookies {
		if strings.Contains(c, "portcullis_") {
			t.Errorf("the upstream saw the challenge's cookies: %q", c)
		}
	}
	// Every result is counted, by the filter's stage.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	scraped := rec.Body.String()
	for _, want := range []struct {
		stage, result string
		n             float64
	}{
		{"ratelimit", "served", 3}, {"ratelimit", "rejected", 1}, {"ratelimit", "solved", 1},
		{"ratelimit", "passed", 3}, {"ratelimit", "ceiling", 1},
		{"reputation", "served", 2}, {"reputation", "solved", 1}, {"reputation", "passed", 1},
	} {
		line := fmt.Sprintf("portcullis_challenge_answers_total{result=%q,stage=%q} %v\n", want.result, want.stage, want.n)
		if !strings.Contains(scraped, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}

// TestChallengeAnswerInChromium (issue 17, item 3): a real browser over a
// rate limit with action: challenge gets the page (429), runs its script,
// solves the proof of work and lands on the upstream's page, and goes on
// with its pass past the limit; the page it was served is in the audit,
// under the rate limit's stage.
func TestChallengeAnswerInChromium(t *testing.T) {
	path := browsertest.Chromium(t)
	const cfg = `
challenge:
  difficulty: 14
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        rate_limits:
          - name: pages
            rate: 0.001
            burst: 1
            action: challenge
`
	up := &cookieUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	tp := startProxy(t, cfg, srv.URL)
	base := strings.Replace(tp.URL, "127.0.0.1", "localhost", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-proxy-server", true), chromedp.UserDataDir(t.TempDir()))
	defer acancel()
	tctx, tcancel := chromedp.NewContext(actx)
	defer tcancel()
	text := func() string {
		got, _ := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return got
	}
	// The first page is within the limit's burst.
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/first")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if got := text(); !strings.Contains(got, "hello from upstream") {
		t.Fatalf("first page within the limit: %q", got)
	}
	// The next is over it: the challenge page, which the browser solves.
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/second")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	served := tp.recordsWhere(t, 1, func(e *audit.Entry) bool {
		return e.Stage == audit.StageRateLimit && e.Status == 429 && strings.Contains(e.Reason, "answered with the challenge") &&
			strings.Contains(strings.Join(e.Headers["User-Agent"], " "), "Chrome")
	})
	if len(served) == 0 {
		t.Fatal("no record of the challenge served to the browser after the rate limit")
	}
	if !waitfor.True(30*time.Second, func() bool { return strings.Contains(text(), "hello from upstream") }) {
		t.Fatalf("the browser never got past the challenge; page text %q", text())
	}
	// With its pass it goes on past the limit (which has no budget left).
	for _, p := range []string{"/third", "/fourth"} {
		if err := chromedp.Do(tctx, chromedp.Navigate(base+p)); err != nil {
			t.Fatalf("navigate: %v", err)
		}
		if got := text(); !strings.Contains(got, "hello from upstream") {
			t.Fatalf("%s with the pass: %q", p, got)
		}
	}
	ck, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(ck, challenge.PassCookie) {
		t.Errorf("document.cookie %q (%v): the pass must be HttpOnly", ck, err)
	}
}
