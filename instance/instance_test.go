package instance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
)

// TestLifecycleUnwindsInReverse: the one cleanup path. A component that
// fails to start stops everything started before it, last first, and not
// itself; Stop errors are joined and named; readiness comes from the
// running components only.
func TestLifecycleUnwindsInReverse(t *testing.T) {
	tests := []struct {
		name      string
		failStart string   // the component whose Start fails
		failStop  []string // components whose Stop fails
		wantStops []string
		wantErr   []string // substrings of the joined error
	}{
		{name: "shutdown", wantStops: []string{"c", "b", "a"}},
		{name: "third fails to start", failStart: "c", wantStops: []string{"b", "a"}},
		{name: "first fails to start", failStart: "a", wantStops: nil},
		{name: "stop errors are joined", failStop: []string{"a", "c"}, wantStops: []string{"c", "b", "a"},
			wantErr: []string{"c: c would not stop", "a: a would not stop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l lifecycle
			var stops []string
			var addErr error
			for _, name := range []string{"a", "b", "c"} {
				err := l.add(Component{
					Name: name,
					Start: func() error {
						if name == tt.failStart {
							return errors.New(name + " would not start")
						}
						return nil
					},
					Stop: func() error {
						stops = append(stops, name)
						if slices.Contains(tt.failStop, name) {
							return errors.New(name + " would not stop")
						}
						return nil
					},
					Ready: func() admin.Readiness { return admin.Readiness{Degraded: []string{name}} },
				})
				if err != nil {
					addErr = err
					break
				}
			}
			if (addErr != nil) != (tt.failStart != "") {
				t.Fatalf("add: %v", addErr)
			}
			running := l.readiness().Degraded
			stopErr := l.stop()
			if !slices.Equal(stops, tt.wantStops) {
				t.Errorf("stopped %v, want %v", stops, tt.wantStops)
			}
			if want := slices.Clone(tt.wantStops); !slices.Equal(running, reversed(want)) {
				t.Errorf("readiness from %v, want the running %v", running, reversed(want))
			}
			for _, w := range tt.wantErr {
				if stopErr == nil || !strings.Contains(stopErr.Error(), w) {
					t.Errorf("stop error %v lacks %q", stopErr, w)
				}
			}
			if len(tt.wantErr) == 0 && stopErr != nil {
				t.Errorf("stop error %v", stopErr)
			}
			if again := l.stop(); again != nil || len(stops) != len(tt.wantStops) {
				t.Errorf("a second stop ran again: %v %v", again, stops)
			}
		})
	}
}

func reversed(s []string) []string {
	slices.Reverse(s)
	return s
}

// syncBuffer is a log the test reads while the instance writes it.
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

// writeConfig writes a configuration with an admin listener on adminAddr
// and returns its path.
func writeConfig(t *testing.T, dir, listen, adminAddr, upstream, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`listeners: [{address: %q}]
upstreams: [{name: app, targets: [%q]}]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        cache: {enabled: true, max_size: 1MiB}
audit: {file: %q}
admin: {listen: %q, auth: none}
server: {shutdown_grace: 5s}
%s`, listen, upstream, filepath.Join(dir, "audit.jsonl"), adminAddr, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// privateLoopback is a random address of 127.0.0.0/8 other than
// 127.0.0.1, with port 0. After the admin listener there closes, no other
// test's port-0 listener on 127.0.0.1 can take its port and answer a dial
// in its place.
func privateLoopback(t *testing.T) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.%d.%d.%d:0", 1+b[0]%254, b[1], 1+b[2]%254)
}

var adminLine = regexp.MustCompile(`msg="admin listener" address=(\S+)`)

// TestStartFailureStopsWhatStarted: when the traffic listener cannot be
// bound, Start returns the error after the admin listener, the audit
// writer and the memory limit that it had started are undone.
func TestStartFailureStopsWhatStarted(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	path := writeConfig(t, dir, taken.Addr().String(), privateLoopback(t), "http://127.0.0.1:9", "")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMEMLIMIT", "") // the automatic limit: Start changes it
	before := debug.SetMemoryLimit(-1)
	var log syncBuffer
	inst, err := Start(Options{Config: cfg, ConfigPath: path, Log: slog.New(slog.NewTextHandler(&log, nil))})
	if err == nil {
		_ = inst.Stop()
		t.Fatal("started on a port in use")
	}
	if !strings.Contains(err.Error(), "listen on "+taken.Addr().String()) {
		t.Errorf("error %q does not name the address", err)
	}
	m := adminLine.FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("the admin listener never started (it starts before the traffic listeners); log:\n%s", log.String())
	}
	if c, err := net.DialTimeout("tcp", m[1], 5*time.Second); err == nil {
		c.Close()
		t.Errorf("the admin listener %s still accepts after the failed start", m[1])
	}
	if !strings.Contains(log.String(), `msg="audit records flushed"`) {
		t.Errorf("the audit writer was not closed; log:\n%s", log.String())
	}
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("memory limit %d after the failed start, want %d restored", after, before)
	}
}

// TestRunServesReloadsAndStops runs an instance in process: readiness,
// a cache purge and a reload through the admin endpoints the instance
// hands to admin/, then a graceful stop that flushes the audit file.
func TestRunServesReloadsAndStops(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "page "+r.URL.Path)
	}))
	defer up.Close()
	dir, adminAddr := t.TempDir(), privateLoopback(t)
	path := writeConfig(t, dir, "127.0.0.1:0", adminAddr, up.URL, "")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Instance, 1)
	served := make(chan error, 1)
	stopped := false
	go func() {
		served <- Run(ctx, Options{Config: cfg, ConfigPath: path, Log: slog.New(slog.NewTextHandler(&log, nil))}, func(i *Instance) { started <- i })
	}()
	t.Cleanup(func() { // after a failure too: the next test needs the memory limit back
		if !stopped {
			cancel()
			<-served
		}
	})
	var inst *Instance
	select {
	case inst = <-started:
	case err := <-served:
		stopped = true
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	base, adminBase := "http://"+inst.Addrs()[0].String(), "http://"+inst.AdminAddrs()[0].String()
	client := &http.Client{Timeout: 30 * time.Second}
	do := func(method, url, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if strings.HasPrefix(url, base) {
			req.Host = "shop.test"
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	if code, body, _ := do("GET", adminBase+"/readyz", ""); code != 200 || body != "ready\n" {
		t.Errorf("readyz: %d %q", code, body)
	}
	do("GET", base+"/page", "")
	if _, _, h := do("GET", base+"/page", ""); h.Get("X-Cache") != "HIT" {
		t.Errorf("second request X-Cache %q, want HIT", h.Get("X-Cache"))
	}
	if code, body, _ := do("POST", adminBase+"/api/cache/purge", `{"key":"http://shop.test/page"}`); code != 200 || body != "{\"removed\":1}\n" {
		t.Errorf("purge: %d %q", code, body)
	}
	if _, _, h := do("GET", base+"/page", ""); h.Get("X-Cache") != "MISS" {
		t.Errorf("after the purge X-Cache %q, want MISS", h.Get("X-Cache"))
	}

	writeConfig(t, dir, "127.0.0.1:0", adminAddr, up.URL, "waf:\n  rules_after:\n    - inline: 'SecRule REQUEST_FILENAME \"@streq /blocked-now\" \"id:10001,phase:1,deny,status:403,log\"'\n")
	if code, body, _ := do("POST", adminBase+"/api/reload", "{}"); code != 200 || !strings.Contains(body, `"trigger":"admin API","ok":true`) {
		t.Fatalf("reload: %d %s\n%s", code, body, log.String())
	}
	code, _, h := do("GET", base+"/blocked-now", "")
	if code != 403 {
		t.Errorf("after the reload: %d", code)
	}
	blockedID := h.Get("X-Request-Id")
	writeConfig(t, dir, "127.0.0.1:0", adminAddr, up.URL, "waf: {paranoia: 9}\n")
	if code, body, _ := do("POST", adminBase+"/api/reload", "{}"); code != 422 || !strings.Contains(body, "waf.paranoia") {
		t.Errorf("bad reload: %d %s", code, body)
	}
	if code, body, _ := do("GET", adminBase+"/api/reload", ""); code != 200 || !strings.HasPrefix(body, `{"succeeded":1,"failed":1,"last":{`) {
		t.Errorf("reload history: %d %s", code, body)
	}

	cancel()
	stopped = true
	if err := <-served; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if r := inst.Readiness(); !slices.Equal(r.NotReady, []string{"shutting down"}) {
		t.Errorf("readiness after stop: %+v", r)
	}
	if c, err := net.DialTimeout("tcp", inst.AdminAddrs()[0].String(), 5*time.Second); err == nil {
		c.Close()
		t.Error("the admin listener still accepts after the stop")
	}
	data, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil || !strings.Contains(string(data), blockedID) {
		t.Errorf("blocked request %s not in the audit file (%v)", blockedID, err)
	}
}
