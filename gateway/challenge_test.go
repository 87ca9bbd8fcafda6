package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/internal/browsertest"
)

const challengeConfig = `
challenge:
  difficulty: 14
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /open
        upstream: app
      - path: /
        upstream: app
        challenge: true
`

// cookieUpstream answers with the cookies it was sent, and counts.
type cookieUpstream struct {
	mu      sync.Mutex
	hits    int
	cookies []string
}

func (u *cookieUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.hits++
	u.cookies = append(u.cookies, r.Header.Get("Cookie"))
	u.mu.Unlock()
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "<!doctype html><title>shop</title><p id=content>hello from upstream</p>")
}

func (u *cookieUpstream) count() (int, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits, append([]string(nil), u.cookies...)
}

var nonceAttr = regexp.MustCompile(`data-nonce="([^"]+)" data-bits="(\d+)"`)

// TestChallengePlainClients (issue 17, item 3): a client that runs no
// JavaScript gets the challenge page (403, with a clear message for
// no-JS browsers), never the upstream, and the record says so; a client
// that answers correctly gets a pass cookie bound to it, which the
// upstream never sees.
func TestChallengePlainClients(t *testing.T) {
	up := &cookieUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	tp := startProxy(t, challengeConfig, srv.URL)
	get := func(path, ua string, cookies ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", tp.URL+path, nil)
		req.Host = "shop.test"
		req.Header.Set("User-Agent", ua)
		if len(cookies) > 0 {
			req.Header.Set("Cookie", strings.Join(cookies, "; "))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}

	resp, body := get("/account", "curl/8.5")
	if resp.StatusCode != 403 || !strings.Contains(body, "<noscript>") || !strings.Contains(body, "JavaScript is required") {
		t.Fatalf("plain client: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("page headers %v", resp.Header)
	}
	if n, _ := up.count(); n != 0 {
		t.Fatalf("the upstream was reached %d times by a client that ran no script", n)
	}
	e := tp.entryFor(t, resp.Header.Get("X-Request-Id"))
	if e.Stage != audit.StageChallenge || e.Action != audit.ActionBlocked || e.Status != 403 || !strings.Contains(e.Reason, "challenge served") {
		t.Errorf("record: stage %q action %q status %d reason %q", e.Stage, e.Action, e.Status, e.Reason)
	}
	// Routes without challenge are not affected.
	if resp, _ := get("/open", "curl/8.5"); resp.StatusCode != 200 {
		t.Errorf("/open: %d", resp.StatusCode)
	}

	// A wrong answer is rejected and recorded.
	resp, _ = get("/account", "curl/8.5", challenge.AnswerCookie+"=1.2.3:4")
	if e := tp.entryFor(t, resp.Header.Get("X-Request-Id")); resp.StatusCode != 403 || !strings.Contains(e.Reason, "answer rejected: nonce") {
		t.Errorf("forged answer: %d %q", resp.StatusCode, e.Reason)
	}

	// Doing the script's work: the answer is accepted, the pass set.
	const ua = "Mozilla/5.0 (test)"
	_, body = get("/account", ua)
	m := nonceAttr.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no nonce in the page:\n%s", body)
	}
	bits, _ := strconv.Atoi(m[2])
	answer := ""
	for i := 0; answer == ""; i++ {
		a := m[1] + ":" + strconv.Itoa(i)
		if challenge.LeadingZeroBits(sha256.Sum256([]byte(a))) >= bits {
			answer = a
		}
	}
	resp, body = get("/account", ua, "session=s1", challenge.AnswerCookie+"="+answer)
	var pass string
	for _, c := range resp.Cookies() {
		if c.Name == challenge.PassCookie {
			pass = c.Value
		}
	}
	if resp.StatusCode != 200 || !strings.Contains(body, "hello from upstream") || pass == "" {
		t.Fatalf("solved: %d pass %q\n%s", resp.StatusCode, pass, body)
	}
	if resp, _ := get("/account", ua, challenge.PassCookie+"="+pass); resp.StatusCode != 200 {
		t.Errorf("with the pass: %d", resp.StatusCode)
	}
	// The pass is bound to the User-Agent (and address).
	if resp, _ := get("/account", "curl/8.5", challenge.PassCookie+"="+pass); resp.StatusCode != 403 {
		t.Errorf("pass reused by another user agent: %d", resp.StatusCode)
	}
	n, cookies := up.count()
	if n != 3 { // /open, the solved request, the pass
		t.Errorf("upstream hits %d, want 3", n)
	}
	for _, c := range cookies {
		if strings.Contains(c, "portcullis_") {
			t.Errorf("the upstream saw the challenge's cookies: %q", c)
		}
	}
	if cookies[1] != "session=s1" {
		t.Errorf("the application's cookie was not passed on: %q", cookies[1])
	}
}

// challengeJSONConfig: a challenged route, and a rate limit answered with
// the challenge (one request, then the challenge).
const challengeJSONConfig = `
challenge:
  difficulty: 12
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /api
        upstream: app
        rate_limits:
          - name: api
            rate: 0.001
            burst: 1
            action: challenge
      - path: /
        upstream: app
        challenge: true
`

// TestChallengeJSONClients: a curl-like client that asks for JSON
// (Accept: application/json) is answered with JSON by the challenge, on a
// challenged route and after a rate limit answered with it: the status,
// reason "challenge_required", the request id and an explanation, no
// nonce and no rule details; the request is audited as before, with a note
// that it was answered as JSON. Browsers and clients that accept anything
// still get the page. The steps run in order (the rate limit counts).
func TestChallengeJSONClients(t *testing.T) {
	up := &cookieUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	tp := startProxy(t, challengeJSONConfig, srv.URL)
	steps := []struct {
		name, path, accept, cookie string
		wantStatus                 int
		wantJSON                   bool
		wantStage, wantReason      string // "" for allowed
	}{
		{"API client on a challenged route", "/account", "application/json", "", 403, true, audit.StageChallenge, "proof-of-work challenge served (as JSON)"},
		{"API client with a forged answer", "/account", "application/json", challenge.AnswerCookie + "=1.2.3:4", 403, true, audit.StageChallenge, "proof-of-work answer rejected: nonce not issued to this client (as JSON)"},
		{"browser on a challenged route", "/account", "text/html,application/xhtml+xml,*/*;q=0.8", "", 403, false, audit.StageChallenge, "proof-of-work challenge served"},
		{"curl's default Accept", "/account", "*/*", "", 403, false, audit.StageChallenge, "proof-of-work challenge served"},
		{"API client within the rate limit", "/api/orders", "application/json", "", 200, false, "", ""},
		{"API client over the rate limit", "/api/orders", "application/json", "", 429, true, audit.StageRateLimit, "rate limit api (0.001/s, burst 1) exceeded; answered with the challenge (as JSON)"},
		{"browser over the rate limit", "/api/orders", "text/html", "", 429, false, audit.StageRateLimit, "exceeded; answered with the challenge"},
	}
	for i, s := range steps {
		req, _ := http.NewRequest("GET", tp.URL+s.path, nil)
		req.Host = "shop.test"
		req.Header.Set("User-Agent", "curl/8.5.0")
		req.Header.Set("Accept", s.accept)
		if s.cookie != "" {
			req.Header.Set("Cookie", s.cookie)
		}
		hitsBefore, _ := up.count()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hits, _ := up.count()
		if resp.StatusCode != s.wantStatus {
			t.Fatalf("step %d (%s): status %d, want %d\n%s", i, s.name, resp.StatusCode, s.wantStatus, body)
		}
		if s.wantStage == "" {
			if hits != hitsBefore+1 {
				t.Errorf("step %d (%s): the upstream was not reached", i, s.name)
			}
			continue
		}
		if hits != hitsBefore {
			t.Errorf("step %d (%s): the upstream was reached", i, s.name)
		}
		id := resp.Header.Get("X-Request-Id")
		ct := resp.Header.Get("Content-Type")
		if s.wantJSON {
			var got struct {
				Status    int    `json:"status"`
				Reason    string `json:"reason"`
				RequestID string `json:"request_id"`
				Message   string `json:"message"`
			}
			if ct != "application/json" {
				t.Errorf("step %d (%s): Content-Type %q", i, s.name, ct)
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("step %d (%s): not JSON: %v\n%s", i, s.name, err, body)
			}
			if got.Status != s.wantStatus || got.Reason != challenge.ReasonChallengeRequired || got.RequestID != id || id == "" ||
				!strings.Contains(got.Message, "JavaScript") {
				t.Errorf("step %d (%s): %+v (request id %q)", i, s.name, got, id)
			}
			if strings.Contains(string(body), "rate limit") || strings.Contains(string(body), "data-nonce") {
				t.Errorf("step %d (%s): details in the answer: %s", i, s.name, body)
			}
		} else if !strings.HasPrefix(ct, "text/html") || !nonceAttr.Match(body) {
			t.Errorf("step %d (%s): want the page, got %q\n%s", i, s.name, ct, body)
		}
		if s.wantStatus == 429 && resp.Header.Get("Retry-After") == "" {
			t.Errorf("step %d (%s): no Retry-After", i, s.name)
		}
		e := tp.entryFor(t, id)
		if e.Stage != s.wantStage || e.Action != audit.ActionBlocked || e.Status != s.wantStatus || !strings.Contains(e.Reason, s.wantReason) ||
			s.wantJSON != strings.Contains(e.Reason, "(as JSON)") {
			t.Errorf("step %d (%s): record stage %q action %q status %d reason %q", i, s.name, e.Stage, e.Action, e.Status, e.Reason)
		}
	}
}

// TestChallengeInChromium: a real browser runs the page's script, solves
// the proof of work, and lands on the upstream's page.
func TestChallengeInChromium(t *testing.T) {
	path := browsertest.Chromium(t)
	up := &cookieUpstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	tp := startProxy(t, challengeConfig, srv.URL)
	// localhost: a secure context for the browser, and a host the site
	// ("*") accepts.
	url := strings.Replace(tp.URL, "127.0.0.1", "localhost", 1) + "/account"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("no-proxy-server", true), chromedp.UserDataDir(t.TempDir()))
	defer acancel()
	tctx, tcancel := chromedp.NewContext(actx)
	defer tcancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	var text string
	for {
		got, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		if err == nil {
			text = got
			if strings.Contains(text, "hello from upstream") {
				break
			}
		}
		select {
		case <-tctx.Done():
			t.Fatalf("the browser never got past the challenge; page text %q", text)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// At least the page; the browser may fetch /favicon.ico with the pass too.
	if n, _ := up.count(); n < 1 {
		t.Errorf("upstream hits %d, want the page", n)
	}
	// The pass is HttpOnly: the page's script cannot read it.
	ck, err := chromedp.Run(tctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || strings.Contains(ck, challenge.PassCookie) {
		t.Errorf("document.cookie %q (%v)", ck, err)
	}
	// The challenge page the browser got first is in the audit.
	served := tp.recordsWhere(t, 1, func(e *audit.Entry) bool {
		return e.Stage == audit.StageChallenge && strings.Contains(strings.Join(e.Headers["User-Agent"], " "), "Chrome")
	})
	if len(served) == 0 {
		t.Error("no record of the challenge served to the browser")
	}
}
