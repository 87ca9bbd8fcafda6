package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/bans"
)

const (
	testUser     = "alice"
	testPassword = "correct horse battery staple"
	testToken    = "pct_0123456789abcdef0123456789abcdef"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// Known records every test can rely on, besides the generated ones.
var (
	sqliRecord = &audit.Entry{
		ID: "req-sqli-1", Time: testNow.Add(-10 * time.Minute), ClientIP: "203.0.113.7", Country: "DE",
		Host: "shop.example.com", Method: "GET", URI: "/products?id=1'+OR+1=1--", Protocol: "HTTP/1.1",
		Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
		Reason: "inbound anomaly score 13 reached the threshold 5", WAFMode: "block", InboundScore: 13,
		Rules: []audit.MatchedRule{
			{ID: 942100, Message: "SQL Injection Attack Detected via libinjection", Severity: "critical", MatchedVariable: "ARGS:id", MatchedData: "s&1c", Tags: []string{"attack-sqli"}, Phase: 2, ParanoiaLevel: 1},
			{ID: 942190, Message: "Detects MSSQL code execution and information gathering attempts", Severity: "critical", MatchedVariable: "ARGS:id", MatchedData: "' OR 1=1--", Phase: 2, ParanoiaLevel: 1},
			{ID: 920273, Message: "Invalid character in request (outside of very strict set)", Severity: "critical", MatchedVariable: "ARGS:id", MatchedData: "'", Phase: 2, ParanoiaLevel: 4},
			{ID: 920350, Message: "Host header is a numeric IP address", Severity: "warning", MatchedVariable: "REQUEST_HEADERS:Host", MatchedData: "203.0.113.10", Phase: 1, ParanoiaLevel: 1},
			{ID: 949110, Message: "Inbound Anomaly Score Exceeded (Total Score: 13)", Severity: "emergency", Phase: 2},
			{ID: 980170, Message: "Anomaly Scores: (Inbound Scores: blocking=13 ...)", Phase: 5},
		},
		Headers: map[string][]string{"User-Agent": {"sqlmap/1.7"}, "Cookie": {audit.Redacted}},
		Findings: []audit.Finding{{Class: "sqli", Detector: "sqli", Confidence: 92, Variable: "ARGS:id", Chain: "base64 → url",
			Evidence: "' OR 1=1--", Reason: "single-quoted string closed, then OR 1=1", Blocking: true}},
	}
	// xssRecord carries markup in every attacker-controlled field; no page
	// may render any of it as HTML.
	xssRecord = &audit.Entry{
		ID: "req-xss-1", Time: testNow.Add(-5 * time.Minute), ClientIP: "198.51.100.23", Country: "US",
		Host: "shop.example.com", Method: "GET", URI: `/search?q=<script>alert("uri")</script>`, Protocol: "HTTP/1.1",
		Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF, Reason: "inbound anomaly score 5",
		WAFMode: "block", InboundScore: 5,
		Rules: []audit.MatchedRule{
			{ID: 941100, Message: `XSS <b>Attack</b>`, Severity: "critical", MatchedVariable: `ARGS:q"><svg onload=alert(1)>`,
				MatchedData: `<img src=x onerror=alert("matched")>`, Data: `<iframe src=javascript:alert(2)>`, Phase: 2},
		},
		Headers:     map[string][]string{"User-Agent": {`<script>alert("ua")</script>`}},
		RequestBody: `</pre><script>alert("body")</script>`,
		Findings: []audit.Finding{{Class: "xss", Detector: "xss/html", Confidence: 95, Variable: `ARGS:q"><svg onload=alert(3)>`,
			Evidence: `<script>alert("finding")</script>`, Reason: `<b>executable</b> element`, Blocking: true}},
	}
)

type testEnv struct {
	srv   *Server
	store *store.SQLite
	clock *testClock
	bans  *bans.Store
}

type envOption func(*Options)

func newEnv(t testing.TB, mods ...envOption) *testEnv {
	t.Helper()
	clock := &testClock{t: testNow}
	entries := append(genEntries(300, testNow, 24*time.Hour, 7), sqliRecord, xssRecord)
	st := openStore(t, clock.Now, entries)
	bs, err := bans.Open("", 100)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(testToken))
	opts := Options{
		Store: st,
		Bans:  bs,
		Explain: func(e *audit.Entry) (string, error) {
			if e.ID == "req-xss-1" {
				return "", errors.New("replay <unavailable>")
			}
			return "waf:\n  exclusions:\n    - rule: 942100\n      target: ARGS:id\n      path: /products\n", nil
		},
		Auth: Auth{
			Users:  []User{{Name: testUser, PasswordHash: string(hash)}},
			Tokens: []Token{{Name: "ci", SHA256: hex.EncodeToString(sum[:])}},
		},
		Log: slog.New(slog.DiscardHandler),
		Now: clock.Now,
	}
	for _, m := range mods {
		m(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{srv: srv, store: st, clock: clock, bans: bs}
}

// req is one request to the server, made in process.
type req struct {
	method, path string
	body         string
	form         url.Values
	remote       string // default 127.0.0.1:40000
	host         string // default localhost:9090
	header       map[string]string
	cookies      []*http.Cookie
}

func (e *testEnv) do(t testing.TB, r req) *http.Response {
	t.Helper()
	var body io.Reader
	if r.form != nil {
		body = strings.NewReader(r.form.Encode())
	} else if r.body != "" {
		body = strings.NewReader(r.body)
	}
	if r.method == "" {
		r.method = http.MethodGet
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	hr.RemoteAddr = "127.0.0.1:40000"
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	hr.Host = "localhost:9090"
	if r.host != "" {
		hr.Host = r.host
	}
	if r.form != nil {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	for _, c := range r.cookies {
		hr.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, hr)
	return w.Result()
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfFrom(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%s", page)
	}
	return m[1]
}

// browserSession is a logged-in browser: its cookies and the CSRF token pages
// give it.
type browserSession struct {
	cookies []*http.Cookie
	csrf    string
}

// loginForm fetches the login form: the anonymous cookie and its token.
func (e *testEnv) loginForm(t testing.TB, remote string) (*http.Cookie, string) {
	t.Helper()
	resp := e.do(t, req{path: "/login", remote: remote})
	page := readBody(t, resp)
	anon := cookie(resp, anonCookie)
	if anon == nil {
		t.Fatal("login page set no anonymous cookie")
	}
	return anon, csrfFrom(t, page)
}

func (e *testEnv) tryLogin(t testing.TB, remote, user, password string) *http.Response {
	t.Helper()
	anon, tok := e.loginForm(t, remote)
	return e.do(t, req{method: "POST", path: "/login", remote: remote, cookies: []*http.Cookie{anon},
		form: url.Values{"csrf": {tok}, "username": {user}, "password": {password}, "next": {"/"}}})
}

func (e *testEnv) login(t testing.TB) browserSession {
	t.Helper()
	resp := e.tryLogin(t, "", testUser, testPassword)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: status %d, want 303: %s", resp.StatusCode, readBody(t, resp))
	}
	sc := cookie(resp, sessionCookie)
	if sc == nil {
		t.Fatal("login set no session cookie")
	}
	s := browserSession{cookies: []*http.Cookie{sc}}
	page := readBody(t, e.do(t, req{path: "/bans", cookies: s.cookies}))
	s.csrf = csrfFrom(t, page)
	return s
}

func bearer() map[string]string { return map[string]string{"Authorization": "Bearer " + testToken} }
