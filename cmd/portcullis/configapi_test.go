package main

import (
	"bytes"
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

// TestConfigAPIEndToEnd runs the real binary with a secret from the
// environment and checks the admin API: GET /api/config masks it, POST
// /api/config refuses a bad configuration with every problem (400) and
// changes nothing, applies a good one at once, and with persist writes it
// to the configuration file with the file's permissions.
func TestConfigAPIEndToEnd(t *testing.T) {
	var seen struct{ auth string }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.auth = r.Header.Get("X-Upstream-Auth")
		io.WriteString(w, "hello")
	}))
	defer up.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	base := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
upstreams: [{name: app, targets: [%q]}]
audit: {file: %q}
admin:
  listen: "127.0.0.1:0"
  auth:
    tokens: [{name: ci, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08}]
`, up.URL, filepath.Join(dir, "audit.jsonl"))
	site := `sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        request_headers: {set: {X-Upstream-Auth: "{env.PC_E2E_SECRET}"}}
`
	if err := os.WriteFile(cfgPath, []byte(base+site), 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "-c", cfgPath)
	cmd.Env = append(os.Environ(), "PC_E2E_SECRET=s3cr3t-from-env")
	c := startChild(t, cmd, 1, true)
	defer func() { _ = c.stop() }()

	call := func(method, path, token, ctype, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, c.adminURL()+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	traffic := func(path string) int {
		t.Helper()
		s, _ := get(t, "http://"+c.addr()+path)
		return s
	}
	post := func(yaml string, persist bool) (int, string) {
		b, _ := json.Marshal(map[string]any{"config": yaml, "persist": persist})
		return call("POST", "/api/config", "test", "application/json", string(b))
	}

	if traffic("/") != 200 || seen.auth != "s3cr3t-from-env" {
		t.Fatalf("placeholder not expanded: upstream saw %q", seen.auth)
	}
	if s, _ := call("GET", "/api/config", "", "", ""); s != http.StatusUnauthorized {
		t.Errorf("GET /api/config without a token: %d", s)
	}
	s, body := call("GET", "/api/config", "test", "", "")
	if s != 200 || strings.Contains(body, "s3cr3t") || strings.Contains(body, "9f86d081884c") ||
		!strings.Contains(body, `"X-Upstream-Auth": "[masked]"`) || !strings.Contains(body, `"source": "`+cfgPath+`"`) {
		t.Errorf("GET /api/config: %d\n%s", s, body)
	}
	if s, _ := call("POST", "/api/config", "", "application/json", `{"config": "x: 1"}`); s != http.StatusUnauthorized {
		t.Errorf("POST without a token: %d", s)
	}

	// A bad configuration: every problem, nothing applied.
	bad := base + `waf: {paranoia: 9}
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: nowhere
`
	s, body = post(bad, true)
	var res struct {
		OK, Applied, Persisted bool
		Problems               []string
		Error                  string
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || s != http.StatusBadRequest || res.Applied || len(res.Problems) != 2 ||
		!strings.HasPrefix(res.Problems[0], cfgPath+":8: waf.paranoia: must be 1..4") || !strings.Contains(res.Problems[1], ":13: sites[0].routes[0].upstream") {
		t.Fatalf("bad config: %d %s", s, body)
	}
	if got, _ := os.ReadFile(cfgPath); string(got) != base+site {
		t.Errorf("a refused configuration changed the file")
	}
	if traffic("/blocked-now") != 200 {
		t.Errorf("a refused configuration changed the traffic")
	}

	// A good one, applied at once, the file left alone.
	rule := `waf:
  rules_before:
    - inline: 'SecRule REQUEST_URI "@beginsWith /blocked-now" "id:10001,phase:1,deny,status:403"'
`
	s, body = post(base+rule+site, false)
	if s != 200 || !strings.Contains(body, `"applied": true`) || !strings.Contains(body, `"persisted": false`) {
		t.Fatalf("good config: %d %s", s, body)
	}
	if st := traffic("/blocked-now"); st != 403 {
		t.Errorf("posted rule not in force: %d", st)
	}
	if got, _ := os.ReadFile(cfgPath); string(got) != base+site {
		t.Errorf("persist: false changed the file")
	}

	// YAML body with persist: the file gets the text, keeps its mode.
	newText := base + strings.Replace(rule, "/blocked-now", "/blocked-later", 1) + site
	s, body = call("POST", "/api/config?persist=true", "test", "application/yaml", newText)
	if s != 200 || !strings.Contains(body, `"persisted": true`) {
		t.Fatalf("persist: %d %s", s, body)
	}
	got, _ := os.ReadFile(cfgPath)
	st, _ := os.Stat(cfgPath)
	if !bytes.Equal(got, []byte(newText)) || st.Mode().Perm() != 0o640 {
		t.Errorf("persisted file: mode %v, content:\n%s", st.Mode().Perm(), got)
	}
	if traffic("/blocked-now") != 200 || traffic("/blocked-later") != 403 {
		t.Errorf("persisted configuration not in force")
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".portcullis.yaml.*")); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
	if strings.Contains(c.log.String(), "s3cr3t") {
		t.Errorf("the log shows the secret:\n%s", c.log.String())
	}
}

// TestSchemaCommand: `portcullis schema` prints one JSON Schema document.
func TestSchemaCommand(t *testing.T) {
	out, errOut, code := runBinary(t, "schema")
	var s struct {
		Schema     string         `json:"$schema"`
		Properties map[string]any `json:"properties"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.Schema != "https://json-schema.org/draft/2020-12/schema" ||
		s.Properties["sites"] == nil || s.Properties["block_pages"] == nil {
		t.Fatalf("schema: exit %d, stderr %q, %.200s", code, errOut, out)
	}
}

// TestCheckAcceptsIssue17Examples: `check` accepts the block pages and CRS
// plugin examples (compiling the plugin into the rule set).
func TestCheckAcceptsIssue17Examples(t *testing.T) {
	for _, name := range []string{"valid-block-pages", "valid-crs-plugins"} {
		out, errOut, code := runBinary(t, "check", "-c", "../../testdata/config/"+name+".yaml")
		if code != 0 {
			t.Errorf("%s: exit %d\n%s%s", name, code, out, errOut)
		}
	}
}

// TestCRSPluginEndToEnd runs the real binary with the Acme Notes exclusion
// plugin (testdata/crs-plugins) on one site: a note's HTML body passes
// there, and is still blocked on the site without the plugin.
func TestCRSPluginEndToEnd(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "saved") }))
	defer up.Close()
	plugin, err := filepath.Abs("../../testdata/crs-plugins/acme-notes-rule-exclusions-plugin/plugins")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
upstreams: [{name: app, targets: [%q]}]
audit: {file: %q}
sites:
  - name: notes
    hosts: [notes.test]
    waf: {crs_plugins: [%q]}
    routes: [{path: /, upstream: app}]
  - name: other
    hosts: ["*"]
    routes: [{path: /, upstream: app}]
`, up.URL, filepath.Join(dir, "audit.jsonl"), plugin)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 1, false)
	defer func() { _ = c.stop() }()
	save := func(host, field string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+c.addr()+"/notes/save", strings.NewReader(field+"=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"))
		req.Host = host
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "Mozilla/5.0")
		req.Header.Set("Accept", "text/html")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct {
		host, field string
		want        int
	}{
		{"notes.test", "body", 200},
		{"notes.test", "title", 403},
		{"other.test", "body", 403},
	} {
		if got := save(tt.host, tt.field); got != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.host, tt.field, got, tt.want)
		}
	}
}
