package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/review/explain"
)

// TestExplainAndReplayAFalsePositive: a blog comment trips the CRS; the
// operator asks `audit explain` for the fix, pastes it into a candidate
// configuration, and `audit replay` shows that exactly that request would
// now pass while the attack recorded beside it stays blocked.
func TestExplainAndReplayAFalsePositive(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	base := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
upstreams: [{name: app, targets: [%q]}]
audit: {file: %q}
sites:
  - name: blog
    hosts: ["*"]
    routes: [{path: /, upstream: app}]
    waf:
      profile: stock-crs # the false positive is the CRS's
      exclusions:
`, up.URL, filepath.Join(dir, "audit.jsonl"))
	if err := os.WriteFile(cfgPath, []byte(base+"        []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 1, false)
	defer func() { _ = c.stop() }()
	addr := c.addr()

	post := func(path, body string) (int, string) {
		resp, err := http.Post("http://"+addr+path, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Request-Id")
	}
	prose := url.QueryEscape("We had a union meeting; select members from each team where possible")
	status, fpID := post("/posts/7/comments", "author=Ada&comment="+prose)
	if status != 403 {
		t.Fatalf("the false positive is not blocked: %d", status)
	}
	status, attackID := post("/posts/7/comments", "author=Ada&comment="+url.QueryEscape("1' UNION SELECT password FROM users --"))
	if status != 403 {
		t.Fatalf("attack: %d", status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, code := runBinary(t, "audit", "show", attackID, "-c", cfgPath); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("records never reached the audit store")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The attack recorded beside it is no false positive: no fix (issue 13).
	warning, errOut, code := runBinary(t, "audit", "explain", attackID, "-c", cfgPath)
	if code != 1 || !strings.HasPrefix(warning, explain.AttackWarning) || !strings.Contains(errOut, "not a false positive") {
		t.Fatalf("explain of the attack: exit %d\n%s\n%s", code, warning, errOut)
	}
	if explain.AttackWarning != admin.NotAFix {
		t.Fatalf("the dashboard looks for %q, explain writes %q", admin.NotAFix, explain.AttackWarning)
	}

	// A unique prefix of the id is enough (#13).
	snippet, errOut, code := runBinary(t, "audit", "explain", fpID[:10], "-c", cfgPath)
	if code != 0 || !strings.Contains(snippet, `target: "ARGS:comment"`) || !strings.Contains(snippet, `path_prefix: "/posts/7/comments"`) || !strings.Contains(snippet, "# Verified") {
		t.Fatalf("explain: exit %d\n%s\n%s", code, snippet, errOut)
	}
	var indented strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(snippet), "\n") {
		indented.WriteString("        " + line + "\n")
	}
	candidate := filepath.Join(dir, "candidate.yaml")
	if err := os.WriteFile(candidate, []byte(base+indented.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runBinary(t, "audit", "replay", "--candidate", candidate, "-c", cfgPath, "--since", "1h")
	if code != 0 || !strings.Contains(out, "was blocked, would pass:   1\n") || !strings.Contains(out, fpID) || strings.Contains(out, attackID) {
		t.Errorf("replay: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = runBinary(t, "audit", "replay", "--candidate", candidate, "--config", cfgPath, "--id", attackID[:12])
	if !strings.Contains(out, "unchanged:                 1\n") {
		t.Errorf("the attack is no longer blocked:\n%s", out)
	}
}
