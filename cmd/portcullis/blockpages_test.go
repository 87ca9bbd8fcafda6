package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBlockPagesEndToEnd runs the real binary with a site that has its own
// block pages and checks that every refusal Portcullis produces for it (a
// WAF block, the ban that follows, a deny list, a rate limit) answers with
// the site's template, HTML or JSON by Accept, with the request id and
// nothing about the rule; a site without templates keeps the built-in page.
// The audit file then proves which stage refused each request.
func TestBlockPagesEndToEnd(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	dir := t.TempDir()
	for _, f := range []string{"shop.html", "shop.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "config", "pages", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	auditFile := filepath.Join(dir, "audit.jsonl")
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
client_ip: {trusted_proxies: [127.0.0.1]}
reputation:
  lists: [{name: bad, action: deny, inline: [192.0.2.66]}]
bans: {enabled: true, threshold: 1, window: 1m, duration: 1h, state_file: %q}
upstreams: [{name: app, targets: [%q]}]
sites:
  - name: shop
    hosts: [shop.test]
    block_pages: {html: shop.html, json: shop.json}
    filters:
      deny_lists: [bad]
      rate_limits: [{name: per-key, rate: 0.001, burst: 1, key: header, header: X-Key}]
    routes: [{path: /, upstream: app}]
  - name: other
    hosts: ["*"]
    routes: [{path: /, upstream: app}]
audit: {file: %q}
`, filepath.Join(dir, "bans.json"), up.URL, auditFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 1, false)
	defer func() { _ = c.stop() }()

	type answer struct {
		status       int
		id, ct, body string
		retryAfter   string
	}
	send := func(host, path, client, accept, key string) answer {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+c.addr()+path, nil)
		req.Host = host
		req.Header.Set("X-Forwarded-For", client)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if key != "" {
			req.Header.Set("X-Key", key)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header.Get("X-Request-Id"), resp.Header.Get("Content-Type"), string(b), resp.Header.Get("Retry-After")}
	}
	attack := "/?q=%3Cscript%3Ealert(1)%3C/script%3E"
	stages := map[string]string{} // request id -> the stage the audit must name
	checkHTML := func(name string, a answer, status int, stage string) {
		t.Helper()
		if a.status != status || !strings.HasPrefix(a.ct, "text/html") || !strings.Contains(a.body, `class="shop-refusal"`) ||
			!strings.Contains(a.body, "Reference: <code>"+a.id+"</code>") || a.id == "" {
			t.Errorf("%s: want the shop's HTML page with status %d, got %d %q:\n%s", name, status, a.status, a.ct, a.body)
		}
		for _, leak := range []string{"941", "script", "deny list", "per-key", "rule"} {
			// The random request id may contain any digits: not a leak.
			if strings.Contains(strings.ToLower(strings.ReplaceAll(a.body, a.id, "")), leak) {
				t.Errorf("%s: page mentions %q:\n%s", name, leak, a.body)
			}
		}
		stages[a.id] = stage
	}

	// A WAF block, then the ban it earned (threshold 1).
	checkHTML("waf block", send("shop.test", attack, "192.0.2.10", "text/html", ""), 403, "waf")
	deadline := time.Now().Add(10 * time.Second)
	var banned answer
	for {
		banned = send("shop.test", "/", "192.0.2.10", "", "")
		if banned.status == 403 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // the strike is counted after the response
	}
	checkHTML("ban", banned, 403, "ban")
	checkHTML("deny list", send("shop.test", "/", "192.0.2.66", "", ""), 403, "reputation")
	if a := send("shop.test", "/", "192.0.2.20", "", "k1"); a.status != 200 || a.body != "hello" {
		t.Fatalf("first keyed request: %d %q", a.status, a.body)
	}
	limited := send("shop.test", "/", "192.0.2.20", "", "k1")
	checkHTML("rate limit", limited, 429, "ratelimit")
	if limited.retryAfter == "" {
		t.Errorf("rate limit page lost Retry-After")
	}

	// JSON by Accept, from the site's JSON template.
	j := send("shop.test", attack, "192.0.2.11", "application/json", "")
	var doc struct {
		E struct {
			Status    int    `json:"status"`
			Reason    string `json:"reason"`
			Reference string `json:"reference"`
			Time      string `json:"time"`
		} `json:"shop_error"`
	}
	if err := json.Unmarshal([]byte(j.body), &doc); err != nil || j.status != 403 || j.ct != "application/json" ||
		doc.E.Status != 403 || doc.E.Reason != "Forbidden" || doc.E.Reference != j.id || doc.E.Time == "" {
		t.Errorf("json page: %d %q %q (%v)", j.status, j.ct, j.body, err)
	}
	stages[j.id] = "waf"

	// Another site keeps the built-in page.
	if a := send("other.test", attack, "192.0.2.12", "", ""); a.status != 403 || strings.Contains(a.body, "shop-refusal") || !strings.Contains(a.body, a.id) {
		t.Errorf("site without block_pages: %d\n%s", a.status, a.body)
	}

	if err := c.stop(); err != nil {
		t.Fatalf("stop: %v\n%s", err, c.log.String())
	}
	f, err := os.Open(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ ID, Stage string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			seen[rec.ID] = rec.Stage
		}
	}
	for id, stage := range stages {
		if seen[id] != stage {
			t.Errorf("audit record %s: stage %q, want %q", id, seen[id], stage)
		}
	}
}
