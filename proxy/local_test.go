package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// TestLocalDialErrorsDoNotEject: when Portcullis itself runs out of file
// descriptors, its dials fail with EMFILE. That is no fault of the target:
// the passive check must not eject it, the active check must not take it
// down, and the client gets 503 with the local cause in the record (issue
// 18: a connection flood ejected the healthy upstream and 997 requests got
// "no healthy target"). The exhaustion is real, so it runs in a child
// process whose descriptor limit it lowers.
func TestLocalDialErrorsDoNotEject(t *testing.T) {
	if os.Getenv("PORTCULLIS_EMFILE_CHILD") == "1" {
		localDialChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLocalDialErrorsDoNotEject$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "PORTCULLIS_EMFILE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLocalDialErrorsDoNotEject") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// syncBuffer is a log destination the test reads while the pool writes.
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

func localDialChild(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	// Take every descriptor: lower the soft limit a little above what is
	// open, then fill it.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	low := lim
	low.Cur = uint64(len(entries) + 32)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	var hoard []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("filling descriptors: %v", err)
			}
			break
		}
		hoard = append(hoard, f)
	}
	release := func() {
		for _, f := range hoard {
			f.Close()
		}
		hoard = nil
	}
	defer release()

	logs := &syncBuffer{}
	u := &config.UpstreamConfig{
		Name:        "app",
		Targets:     []config.TargetConfig{{URL: target, Weight: 1}},
		DialTimeout: 5 * time.Second,
		Passive:     config.PassiveConfig{Enabled: true, ConsecutiveFailures: 1, CoolDown: time.Hour},
		HealthCheck: &config.HealthCheckConfig{Path: "/", StatusLo: 200, StatusHi: 399, Interval: time.Hour, Timeout: 5 * time.Second, Rise: 1, Fall: 1},
		Retries:     config.RetryConfig{Attempts: 2, Budget: time.Second},
	}
	pool := NewPool(u, nil, slog.New(slog.NewTextHandler(logs, nil)))
	defer pool.Close()
	rt := NewRoute(pool, config.RouteProxyConfig{})

	serve := func() (*httptest.ResponseRecorder, *audit.Entry) {
		entry := &audit.Entry{ID: "test", ClientIP: "127.0.0.1"}
		req := httptest.NewRequest(http.MethodGet, "http://app.test/", nil)
		req = req.WithContext(audit.WithEntry(context.Background(), entry))
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		return rec, entry
	}
	for i := range 3 {
		rec, entry := serve()
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(entry.Reason, "local resources exhausted") || !strings.Contains(entry.Reason, "too many open files") {
			t.Fatalf("request %d without descriptors: %d, record %q; want 503 naming the local cause", i, rec.Code, entry.Reason)
		}
	}
	// The active check's first probe ran when the pool was built, without
	// descriptors too.
	if !waitfor.True(30*time.Second, func() bool { return strings.Contains(logs.String(), "health check skipped: local resources exhausted") }) {
		t.Fatalf("no skipped probe logged:\n%s", logs.String())
	}
	if st := pool.Status()[0]; st.Ejected || !st.Up {
		t.Fatalf("target after local failures: %+v; want up, not ejected", st)
	}
	release()
	if rec, entry := serve(); rec.Code != http.StatusOK || rec.Body.String() != "ok" {
		t.Fatalf("with descriptors again: %d %q, record %q; want 200 ok", rec.Code, rec.Body.String(), entry.Reason)
	}
}
