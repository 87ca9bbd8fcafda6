package gateway

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/waf"
)

// basicConfig runs the stock CRS: most tests of this package check what
// the rule engine records (rule ids, anomaly scores), so they pin the
// profile at the site; portcullisConfig is the default profile.
const basicConfig = `
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    waf:
      profile: stock-crs
    routes:
      - path: /
        upstream: app
`

func TestBenignRequestsReachUpstreamUnchanged(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)

	body := "name=Ada+Lovelace&city=London&note=" + strings.Repeat("hello+world+", 50)
	h := http.Header{
		"Content-Type":    {"application/x-www-form-urlencoded"},
		"X-Forwarded-For": {"203.0.113.9"}, // a spoofing attempt: must not survive
		"Forwarded":       {"for=203.0.113.9"},
		"X-App-Token":     {"abc"},
		"Accept":          {"text/html"},
		"Connection":      {"X-Hop"}, // names X-Hop as hop-by-hop
		"X-Hop":           {"must-not-reach-upstream"},
	}
	status, got, id := do(t, "POST", tp.URL+"/form/submit?lang=en&page=2", body, h)
	if status != 200 {
		t.Fatalf("status %d: %s", status, got)
	}
	if len(id) != 32 {
		t.Errorf("X-Request-Id %q", id)
	}
	for _, want := range []string{
		"POST /form/submit?lang=en&page=2\n",
		"X-App-Token: abc\r\n",
		"X-Forwarded-For: 127.0.0.1\r\n",
		"X-Forwarded-Proto: http\r\n",
		"X-Request-Id: " + id + "\r\n",
		"\n\n" + body,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("upstream did not see %q in:\n%s", want, got)
		}
	}
	for _, banned := range []string{"203.0.113.9", "X-Hop:", "Forwarded: "} {
		if strings.Contains(got, banned) {
			t.Errorf("upstream saw %q:\n%s", banned, got)
		}
	}
	tp.noEntryFor(t, id)
}

func TestStreamingIsNotBuffered(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "first chunk\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "second chunk\n")
	}))
	defer up.Close()
	defer close(release)
	tp := startProxy(t, basicConfig, up.URL)

	resp, err := http.Get(tp.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first chunk\n" {
		t.Fatalf("first chunk not delivered before the upstream finished: %q %v", line, err)
	}
}

// attacks are classic samples of each family with the CRS rule that must fire.
var attacks = []struct {
	name, target string
	rule         int
}{
	{"sqli", "/search?q=1%27%20OR%20%271%27%3D%271", 942100},
	{"xss", "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", 941100},
	{"rce", "/run?cmd=%3Bcat%20/etc/passwd", 932160},
	{"lfi", "/download?file=../../../../etc/passwd", 930100},
}

func TestAttacksBlockedInBlockMode(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			status, body, id := do(t, "GET", tp.URL+a.target, "", nil)
			if status != http.StatusForbidden {
				t.Fatalf("status %d, want 403", status)
			}
			if !strings.Contains(body, id) || id == "" {
				t.Errorf("block page lacks the request id %q", id)
			}
			for _, leak := range []string{fmt.Sprint(a.rule), "OWASP", "CRS", "949110", "anomaly", up.URL} {
				if strings.Contains(body, leak) {
					t.Errorf("block page leaks %q", leak)
				}
			}
			e := tp.entryFor(t, id)
			if e.Action != audit.ActionBlocked || e.Stage != audit.StageWAF || e.Status != 403 {
				t.Errorf("record: action=%s stage=%s status=%d", e.Action, e.Stage, e.Status)
			}
			if !hasRule(e, a.rule) || !hasRule(e, 949110) {
				t.Errorf("record rules %v lack %d and 949110", ruleIDs(e), a.rule)
			}
			if e.InboundScore < 5 {
				t.Errorf("inbound score %d", e.InboundScore)
			}
			if e.Upstream != "" {
				t.Errorf("blocked request reached upstream %s", e.Upstream)
			}
		})
	}
}

func TestAttacksPassButAreAuditedInDetectMode(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig+"waf:\n  mode: detect\n", up.URL)
	for _, a := range attacks {
		status, _, id := do(t, "GET", tp.URL+a.target, "", nil)
		if status != 200 {
			t.Fatalf("%s: status %d, want 200 in detect mode", a.name, status)
		}
		e := tp.entryFor(t, id)
		if e.Action != audit.ActionDetected || e.WAFMode != "detect" || !hasRule(e, a.rule) {
			t.Errorf("%s: action=%s mode=%s rules=%v", a.name, e.Action, e.WAFMode, ruleIDs(e))
		}
	}
}

func TestJSONBlockPage(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	status, body, id := do(t, "GET", tp.URL+attacks[0].target, "", http.Header{"Accept": {"application/json"}})
	want := fmt.Sprintf(`{"status":403,"error":"Forbidden","request_id":%q}`+"\n", id)
	if status != 403 || body != want {
		t.Errorf("got %d %q, want %q", status, body, want)
	}
}

// TestExclusionRemovesExactlyItsFalsePositive: the exclusion names rule 942100
// on ARGS:comment under /blog; the same payload elsewhere is still blocked.
func TestExclusionRemovesExactlyItsFalsePositive(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := `
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    waf:
      profile: stock-crs
    routes:
      - path: /
        upstream: app
      - path: /blog/
        upstream: app
        waf:
          exclusions:
            - rule_ids: ["942100"]
              target: ARGS:comment
              comment: readers write SQL-looking prose
`
	tp := startProxy(t, cfg, up.URL)
	payload := url.QueryEscape("1' OR '1'='1")
	cases := []struct {
		target string
		want   int
	}{
		{"/blog/post?comment=" + payload, 200},                        // the excluded false positive
		{"/blog/post?title=" + payload, 403},                          // same payload, other argument
		{"/shop/item?comment=" + payload, 403},                        // same argument, other route
		{"/blog/post?comment=%3Cscript%3Ealert(1)%3C/script%3E", 403}, // other rule on the same argument
	}
	for _, c := range cases {
		status, _, id := do(t, "GET", tp.URL+c.target, "", nil)
		if status != c.want {
			e := tp.entryFor(t, id)
			t.Errorf("%s: status %d, want %d (rules %v)", c.target, status, c.want, ruleIDs(e))
		}
	}
}

func TestConditionalExclusionByPathAndMethod(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := basicConfig + `
waf:
  exclusions:
    - rule_ids: ["942100"]
      target: ARGS:q
      path_prefix: /search
      methods: [POST]
`
	tp := startProxy(t, cfg, up.URL)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	body := "q=" + url.QueryEscape("1' OR '1'='1")
	if status, _, _ := do(t, "POST", tp.URL+"/search", body, form); status != 200 {
		t.Errorf("excluded POST /search: %d, want 200", status)
	}
	if status, _, _ := do(t, "GET", tp.URL+"/search?"+body, "", nil); status != 403 {
		t.Errorf("GET /search (method not excluded): %d, want 403", status)
	}
	if status, _, _ := do(t, "POST", tp.URL+"/other", body, form); status != 403 {
		t.Errorf("POST /other (path not excluded): %d, want 403", status)
	}
}

func TestRequestBodyLimit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	attack := "&q=" + url.QueryEscape("1' OR '1'='1")
	filler := "a=" + strings.Repeat("b", 2000)

	t.Run("reject", func(t *testing.T) {
		tp := startProxy(t, basicConfig+"waf:\n  request_body:\n    limit: 1KiB\n", up.URL)
		status, _, id := do(t, "POST", tp.URL+"/upload", filler, form)
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", status)
		}
		if e := tp.entryFor(t, id); e.Action != audit.ActionBlocked {
			t.Errorf("record action %s", e.Action)
		}
		if status, _, _ := do(t, "POST", tp.URL+"/upload", "a=small", form); status != 200 {
			t.Errorf("small body: %d", status)
		}
	})
	t.Run("inspect_partial", func(t *testing.T) {
		tp := startProxy(t, basicConfig+"waf:\n  request_body:\n    limit: 1KiB\n    over_limit: inspect_partial\n", up.URL)
		status, got, _ := do(t, "POST", tp.URL+"/upload", filler+attack, form)
		if status != 200 || !strings.HasSuffix(got, filler+attack) {
			t.Fatalf("payload past the limit: status %d, whole body forwarded=%v", status, strings.HasSuffix(got, filler+attack))
		}
		if status, _, _ := do(t, "POST", tp.URL+"/upload", attack[1:]+"&"+filler, form); status != 403 {
			t.Errorf("payload within the limit: status %d, want 403", status)
		}
	})
}

func TestUpstreamFailures(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close() // nothing listens there now
		tp := startProxy(t, basicConfig, dead)
		status, body, id := do(t, "GET", tp.URL+"/", "", nil)
		if status != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", status)
		}
		if strings.Contains(body, "refused") || strings.Contains(body, ln.Addr().String()) {
			t.Errorf("error page leaks the upstream error: %s", body)
		}
		e := tp.entryFor(t, id)
		if e.Action != audit.ActionError || e.Stage != audit.StageProxy || !strings.Contains(e.Reason, "refused") {
			t.Errorf("record: %s %s %q", e.Action, e.Stage, e.Reason)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}))
		defer up.Close()
		cfg := strings.Replace(basicConfig, `targets: ["UPSTREAM"]`, `targets: ["UPSTREAM"]
    response_header_timeout: 200ms`, 1)
		tp := startProxy(t, cfg, up.URL)
		status, _, id := do(t, "GET", tp.URL+"/slow", "", nil)
		if status != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504", status)
		}
		if e := tp.entryFor(t, id); e.Stage != audit.StageProxy {
			t.Errorf("stage %s", e.Stage)
		}
	})
}

func TestWebSocketEchoThroughProxy(t *testing.T) {
	up := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) { _, _ = io.Copy(ws, ws) }))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	wsURL := "ws" + strings.TrimPrefix(tp.URL, "http") + "/chat"
	ws, err := websocket.Dial(wsURL, "", tp.URL)
	if err != nil {
		t.Fatalf("dial through proxy: %v", err)
	}
	defer ws.Close()
	_ = ws.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"hello", "second message"} {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := websocket.Message.Receive(ws, &got); err != nil || got != msg {
			t.Fatalf("echo %q: got %q, %v", msg, got, err)
		}
	}
	// The handshake itself is inspected: an attack in it never upgrades.
	if _, err := websocket.Dial(wsURL+"?q=%3Cscript%3Ealert(1)%3C/script%3E", "", tp.URL); err == nil {
		t.Error("malicious handshake was upgraded")
	}
}

func TestCredentialsRedactedInRecords(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig+"audit:\n  redact_headers: [X-Api-Key]\n", up.URL)
	h := http.Header{
		"Authorization": {"Bearer secret-token"},
		"Cookie":        {"session=secret-cookie"},
		"X-Api-Key":     {"secret-key"},
		"User-Agent":    {"test-agent"},
	}
	_, _, id := do(t, "GET", tp.URL+attacks[0].target, "", h)
	e := tp.entryFor(t, id)
	for _, name := range []string{"Authorization", "Cookie", "X-Api-Key"} {
		if v := e.Headers[name]; len(v) != 1 || v[0] != audit.Redacted {
			t.Errorf("%s = %v, want redacted", name, v)
		}
	}
	if v := e.Headers["User-Agent"]; len(v) != 1 || v[0] != "test-agent" {
		t.Errorf("User-Agent = %v", v)
	}
}

func TestLogAllWritesAllowedRequests(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig+"audit:\n  log_all: true\n", up.URL)
	_, _, id := do(t, "GET", tp.URL+"/hello", "", nil)
	e := tp.entryFor(t, id)
	if e.Action != audit.ActionAllowed || e.Status != 200 || e.BytesSent == 0 || e.Upstream != up.URL || e.Durations.Total <= 0 {
		t.Errorf("record: %+v", e)
	}
}

func TestUnknownHostIs404(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := strings.Replace(basicConfig, `hosts: ["*"]`, `hosts: ["shop.example"]`, 1)
	tp := startProxy(t, cfg, up.URL)
	status, _, id := do(t, "GET", tp.URL+"/", "", nil)
	if status != 404 {
		t.Fatalf("status %d", status)
	}
	if e := tp.entryFor(t, id); e.Stage != audit.StageGateway {
		t.Errorf("stage %s", e.Stage)
	}
}

// TestRuleSetsAreSharedBetweenEqualRoutes: three routes, two with equal WAF
// settings, compile two engines, not three.
func TestRuleSetsAreSharedBetweenEqualRoutes(t *testing.T) {
	cfg := `
upstreams:
  - name: app
    targets: ["http://127.0.0.1:9"]
sites:
  - hosts: ["a.test"]
    routes:
      - path: /
        upstream: app
      - path: /api/
        upstream: app
        waf:
          paranoia: 2
  - hosts: ["b.test"]
    routes:
      - path: /
        upstream: app
`
	parsed, err := config.Parse("shared.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	cache := waf.NewCache()
	p, err := Build(parsed, cache, audit.NewWriter(1, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if cache.Len() != 2 {
		t.Errorf("%d engines compiled for 2 distinct rule sets", cache.Len())
	}
}

func TestTagExclusionRemovesTheTaggedRules(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig+"waf:\n  exclusions:\n    - tags: [attack-sqli]\n", up.URL)
	if status, _, id := do(t, "GET", tp.URL+attacks[0].target, "", nil); status != 200 {
		t.Errorf("SQLi with attack-sqli excluded: %d (rules %v)", status, ruleIDs(tp.entryFor(t, id)))
	}
	if status, _, _ := do(t, "GET", tp.URL+attacks[1].target, "", nil); status != 403 {
		t.Errorf("XSS must still be blocked: %d", status)
	}
}

// TestResponseInspectionSeesStreamedBodies: a leaking page sent without
// Content-Length (so ReverseProxy flushes after every write) is still
// inspected whole and replaced by the block page.
func TestResponseInspectionSeesStreamedBodies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><p>Order history</p>")
		w.(http.Flusher).Flush()
		io.WriteString(w, "<pre>ORA-00933: SQL command not properly ended</pre></body></html>")
	}))
	defer up.Close()
	tp := startProxy(t, basicConfig+"waf:\n  response_inspection:\n    enabled: true\n", up.URL)
	status, body, id := do(t, "GET", tp.URL+"/orders", "", nil)
	if status != 403 || strings.Contains(body, "ORA-") {
		t.Fatalf("leaking response: status %d, body %q", status, body)
	}
	if e := tp.entryFor(t, id); !hasRule(e, 951120) {
		t.Errorf("rules %v lack 951120 (Oracle error leakage)", ruleIDs(e))
	}
}

func TestSpoofableHeadersAndH2CUpgradeAreNotForwarded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	h := http.Header{
		"X-Real-Ip":       {"10.9.9.9"},
		"True-Client-Ip":  {"10.9.9.9"},
		"X-Original-Url":  {"/admin"},
		"X-Forwarded-For": {"10.9.9.9"},
		"Upgrade":         {"h2c"},
		"Connection":      {"Upgrade, HTTP2-Settings"},
		"Http2-Settings":  {"AAMAAABkAARAAAAAAAIAAAAA"},
	}
	status, got, _ := do(t, "GET", tp.URL+"/", "", h)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	for _, banned := range []string{"10.9.9.9", "X-Original-Url", "Upgrade", "Http2-Settings"} {
		if strings.Contains(got, banned) {
			t.Errorf("upstream saw %q:\n%s", banned, got)
		}
	}
	if !strings.Contains(got, "X-Real-Ip: 127.0.0.1\r\n") {
		t.Errorf("X-Real-Ip not set from the peer:\n%s", got)
	}
}

func TestAmbiguousPathsAreRefused(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := strings.Replace(basicConfig, "      - path: /\n        upstream: app\n", "      - path: /\n        upstream: app\n      - path: /static/\n        upstream: app\n        waf:\n          mode: off\n", 1)
	tp := startProxy(t, cfg, up.URL)
	addr := strings.TrimPrefix(tp.URL, "http://")
	for _, target := range []string{"/api/items/..%2F..%2Fstatic%2Fx", "/static/../api", "/static%2Fx", "/a\\b", "/x/%2e%2e/y"} {
		resp := rawExchange(t, addr, "GET "+target+" HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(resp, "HTTP/1.1 400") {
			t.Errorf("%s: %q", target, firstLine(resp))
		}
	}
	if status, _, _ := do(t, "GET", tp.URL+"/static/app.js", "", nil); status != 200 {
		t.Errorf("plain static path: %d", status)
	}
}

func TestCookieAndPasswordValuesAreRedactedInMatchedData(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"session=1' OR '1'='1"}}
	_, _, id := do(t, "POST", tp.URL+"/login?token=abc123", "user=ada&password="+url.QueryEscape("x' OR '1'='1"), form)
	e := tp.entryFor(t, id)
	if len(e.Rules) == 0 {
		t.Fatal("no rules matched")
	}
	for _, r := range e.Rules {
		if strings.Contains(r.MatchedData, "OR '1'") || strings.Contains(r.Data, "OR '1'") {
			t.Errorf("rule %d keeps a credential: %q / %q", r.ID, r.MatchedData, r.Data)
		}
	}
	if e.URI != "/login?token=[redacted]" {
		t.Errorf("uri %q", e.URI)
	}
	// The body is kept for replay, with the password redacted.
	if e.RequestBody != "user=ada&password=[redacted]" || e.RequestBodyTruncated {
		t.Errorf("kept body %q truncated %v", e.RequestBody, e.RequestBodyTruncated)
	}
}

func TestAllowedRequestsAreSampledWithTheirBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig+"audit:\n  sample_allowed: 1\n  body_limit: 10\n", up.URL)
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	status, _, id := do(t, "POST", tp.URL+"/comment", "name=Ada+Lovelace&note=hello", form)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	e := tp.entryFor(t, id)
	if !e.Sampled || e.Action != audit.ActionAllowed || e.RequestBody != "name=Ada+L" || !e.RequestBodyTruncated {
		t.Errorf("sampled %v action %s body %q truncated %v", e.Sampled, e.Action, e.RequestBody, e.RequestBodyTruncated)
	}
	// Issue 13: a blocked or flagged request is recorded because it was
	// decided, not sampled; the flag must not say otherwise, whatever the
	// draw was (here every draw samples).
	status, _, id = do(t, "GET", tp.URL+"/?q=%3Cscript%3Ealert(1)%3C/script%3E", "", nil)
	if status != 403 {
		t.Fatalf("attack: status %d", status)
	}
	if e := tp.entryFor(t, id); e.Sampled || e.Action != audit.ActionBlocked {
		t.Errorf("blocked record: sampled %v action %s", e.Sampled, e.Action)
	}
}

func TestDropActionClosesTheConnection(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := basicConfig + "waf:\n  rules_before:\n    - inline: 'SecRule REQUEST_URI \"@contains /drop-me\" \"id:10001,phase:1,drop,log\"'\n"
	tp := startProxy(t, cfg, up.URL)
	resp := rawExchange(t, strings.TrimPrefix(tp.URL, "http://"), "GET /drop-me HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 403") || !strings.Contains(resp, "Connection: close\r\n") {
		t.Errorf("drop: %q", resp)
	}
}

func TestCustomRulesFromFileAndInline(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	ruleFile, err := filepath.Abs("../testdata/rules/deny-debug-header.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg := basicConfig + `waf:
  rules_before:
    - inline: 'SecRule ARGS:promo "@streq letmein" "id:10011,phase:1,deny,status:403,log,msg:''known abuse''"'
  rules_after:
    - file: ` + ruleFile + "\n"
	tp := startProxy(t, cfg, up.URL)
	for _, c := range []struct {
		target string
		header http.Header
		rule   int
	}{
		{"/", http.Header{"X-Debug": {"1"}}, 10010},
		{"/?promo=letmein", nil, 10011},
	} {
		status, _, id := do(t, "GET", tp.URL+c.target, "", c.header)
		if status != 403 {
			t.Errorf("%s: %d", c.target, status)
			continue
		}
		if e := tp.entryFor(t, id); !hasRule(e, c.rule) {
			t.Errorf("%s: rules %v lack %d", c.target, ruleIDs(e), c.rule)
		}
	}
	if status, _, _ := do(t, "GET", tp.URL+"/?promo=spring", "", http.Header{"X-Debug": {"0"}}); status != 200 {
		t.Errorf("benign: %d", status)
	}
}

// portcullisConfig is basicConfig under the default profile.
const portcullisConfig = `
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`

// TestDefaultProfileEndToEnd: through the real server, the default profile
// forwards ordinary API and browser traffic the stock CRS refuses, refuses
// attacks the CRS misses, and records the detectors' evidence.
func TestDefaultProfileEndToEnd(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, portcullisConfig+"audit:\n  log_all: true\n", up.URL)
	for _, tt := range []struct {
		name, method, path, ctype, body string
		want                            int
		class                           string
	}{
		{"beacon", "POST", "/collect", "text/plain;charset=UTF-8", `{"event":"scroll","depth":75}`, http.StatusOK, ""},
		{"csp report", "POST", "/csp", "application/csp-report", `{"csp-report":{"document-uri":"https://shop.example/","blocked-uri":"https://ads.example/x.js","violated-directive":"script-src-elem"}}`, http.StatusOK, ""},
		{"ndjson", "POST", "/_bulk", "application/x-ndjson", "{\"index\":{}}\n{\"title\":\"select your union rep\"}\n", http.StatusOK, ""},
		{"PATCH json", "PATCH", "/api/items/3", "application/json", `{"name":"zsh is the best!"}`, http.StatusOK, ""},
		{"base64 sqli", "GET", "/search?filter=" + base64.StdEncoding.EncodeToString([]byte("' UNION SELECT password FROM users--")), "", "", http.StatusForbidden, "sqli"},
		{"ssti in json", "POST", "/api/render", "application/json", `{"greeting":"{{7*7}}"}`, http.StatusForbidden, "ssti"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, tp.URL+tt.path, body)
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			e := tp.entryFor(t, resp.Header.Get("X-Request-Id"))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d (record %s %q)", resp.StatusCode, tt.want, e.Action, e.Reason)
			}
			if tt.class == "" {
				return
			}
			if len(e.Findings) == 0 || e.Findings[0].Class != tt.class || !e.Findings[0].Blocking || len(e.Rules) != 0 {
				t.Fatalf("record findings %+v rules %+v", e.Findings, e.Rules)
			}
			// The client learns nothing about the detector.
			if strings.Contains(string(page), tt.class) || strings.Contains(string(page), e.Findings[0].Variable) {
				t.Errorf("block page names the evidence: %s", page)
			}
		})
	}
}
