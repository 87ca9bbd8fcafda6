package main

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/waitfor"
	_ "modernc.org/sqlite"
)

// syncBuffer collects a child's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReloadAndGracefulShutdown drives the real binary: SIGHUP and
// `portcullis reload` apply a new rule; a bad file is refused with the
// `check` text while the old configuration serves on; health endpoints
// answer; SIGTERM lets an in-flight request finish, flushes the audit
// file and database, and exits 0.
func TestReloadAndGracefulShutdown(t *testing.T) {
	slowStarted := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowStarted <- struct{}{}
			time.Sleep(time.Second) // the behaviour under test: a request in flight when SIGTERM comes
		}
		io.WriteString(w, "hello")
	}))
	defer up.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	write := func(extra string) {
		t.Helper()
		cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
upstreams: [{name: app, targets: [%q]}]
sites: [{hosts: ["*"], routes: [{path: /, upstream: app}]}]
audit: {file: %q}
admin: {listen: "127.0.0.1:0", auth: none}
server: {shutdown_grace: 10s}
%s`, up.URL, filepath.Join(dir, "audit.jsonl"), extra)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 1, true)
	addr, adminAddr, stderr, cmd := c.addr(), c.admin, c.log, c.cmd
	status := func(path string) int { s, _ := get(t, "http://"+addr+path); return s }
	waitStatus := func(path string, want int) {
		t.Helper()
		if !waitfor.True(15*time.Second, func() bool { return status(path) == want }) {
			t.Fatalf("%s never answered %d; log:\n%s", path, want, stderr.String())
		}
	}
	if s := status("/blocked-now"); s != 200 {
		t.Fatalf("before: %d", s)
	}

	const rule = "waf:\n  rules_after:\n    - inline: 'SecRule REQUEST_FILENAME \"@streq /blocked-now\" \"id:10001,phase:1,deny,status:403,log\"'\n"
	write(rule)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitStatus("/blocked-now", 403)

	write("")
	if out, errOut, code := runBinary(t, "reload", "-c", cfgPath, "--admin", c.adminURL()); code != 0 || !strings.HasPrefix(out, "reloaded in ") {
		t.Fatalf("portcullis reload: %d %q %q", code, out, errOut)
	}
	if s := status("/blocked-now"); s != 200 {
		t.Errorf("after reload without the rule: %d", s)
	}

	// A bad file: refused whole with the check text, the old config serves.
	write(rule + "  paranoia: 9\n")
	_, checkText, _ := runBinary(t, "check", "-c", cfgPath)
	if !strings.Contains(checkText, "waf.paranoia") {
		t.Fatalf("check text: %q", checkText)
	}
	_, errOut, code := runBinary(t, "reload", "-c", cfgPath, "--admin", c.adminURL())
	if code != 1 || !strings.HasPrefix(errOut, checkText) || !strings.Contains(errOut, "the running configuration keeps serving") {
		t.Errorf("bad reload: exit %d, stderr %q, want the check text %q", code, errOut, checkText)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	if !waitfor.True(10*time.Second, func() bool {
		return strings.Contains(stderr.String(), "trigger=SIGHUP") && strings.Count(stderr.String(), "reload failed") >= 2
	}) {
		t.Fatalf("SIGHUP with a bad file not logged:\n%s", stderr.String())
	}
	if s := status("/blocked-now"); s != 200 {
		t.Errorf("old configuration not serving after bad reloads: %d", s)
	}
	// Cache purge through the admin API (no route caches here: 0 removed).
	purge, err := http.Post("http://"+adminAddr+"/api/cache/purge", "application/json", strings.NewReader(`{"key":"http://x/","prefix":true}`))
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(purge.Body)
	purge.Body.Close()
	if purge.StatusCode != 200 || strings.TrimSpace(string(pb)) != `{"removed":0}` {
		t.Errorf("purge: %d %s", purge.StatusCode, pb)
	}
	for _, p := range []string{"/healthz", "/readyz", "/api/reload"} {
		resp, err := http.Get("http://" + adminAddr + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
		if p == "/api/reload" && !strings.Contains(string(body), `{"succeeded":2,"failed":2,"last":{`) {
			t.Errorf("reload history: %s", body)
		}
	}

	// Graceful shutdown: the request in flight finishes, then exit 0.
	_, blockedID := get(t, "http://"+addr+"/?q=%3Cscript%3Ealert(1)%3C/script%3E")
	slow := make(chan int, 1)
	go func() { s, _ := get(t, "http://"+addr+"/slow"); slow <- s }()
	<-slowStarted
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if s := <-slow; s != 200 {
		t.Errorf("in-flight request during shutdown: %d", s)
	}
	if err := c.wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	data, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if !strings.Contains(string(data), blockedID) {
		t.Errorf("blocked request %s not in the audit file", blockedID)
	}
	// The README promises a private state directory (#13: it was 0750).
	if st, err := os.Stat(filepath.Join(dir, "portcullis-state")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state directory: %v %v, want 0700", st.Mode(), err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "portcullis-state", "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM records WHERE id = ?", blockedID).Scan(&n); err != nil || n != 1 {
		t.Errorf("blocked request in the audit database: %d %v", n, err)
	}
}
