package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/alerts"
)

// TestMetricsAndBanAlert runs the binary with an admin listener and a
// webhook: an attacker trips the WAF, is banned, the webhook hears about
// the ban, and /metrics counts the requests, the block and the ban.
func TestMetricsAndBanAlert(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	var mu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
server: {inspections: 3, memory_limit: 200MiB}
client_ip: {trusted_proxies: [127.0.0.1]}
upstreams: [{name: app, targets: [%q]}]
sites: [{name: shop, hosts: ["*"], routes: [{path: /, upstream: app}]}]
audit: {file: %q}
bans: {enabled: true, threshold: 1, window: 1m, duration: 1h}
admin: {listen: "127.0.0.1:0", auth: none}
alerts:
  webhooks: [{url: %q}]
`, up.URL, filepath.Join(dir, "audit.jsonl"), hook.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 1, true)
	defer func() { _ = c.stop() }()
	addr, adminAddr, stderr := c.addr(), c.admin, c.log
	from := func(path, client string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := from("/", "192.0.2.20"); s != 200 {
		t.Fatalf("benign: %d", s)
	}
	if s := from("/?q=%3Cscript%3Ealert(1)%3C/script%3E", "192.0.2.66"); s != 403 {
		t.Fatalf("attack: %d", s)
	}
	// Ban alerts go out at the alerter's next check, every
	// alerts.DefaultInterval (15 s) from the start of the process: the
	// wait allows that interval three times over, so a slow machine that
	// starts the alerter late is not mistaken for a missing alert.
	deadline := time.Now().Add(3 * alerts.DefaultInterval)
	for {
		mu.Lock()
		got := strings.Join(hooks, "\n")
		mu.Unlock()
		if strings.Contains(got, "192.0.2.66") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ban alert; webhook got %q; log:\n%s", got, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`portcullis_requests_total{code_class="2xx",route="/",site="shop"} 1`,
		`portcullis_decisions_total{action="blocked",stage="waf"} 1`,
		`portcullis_bans_added_total{source="auto"} 1`,
		`portcullis_build_info{`,
		`portcullis_audit_store_write_duration_seconds_count`,
		"portcullis_inspection_slots 3\n",
		"portcullis_inspections_waiting 0\n",
		"go_gc_gomemlimit_bytes 2.097152e+08\n", // server.memory_limit applied
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
