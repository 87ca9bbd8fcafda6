// Package upstreamtest is a test upstream on loopback that can be killed and
// brought back on the same address, for the tests of the proxy stage (pools,
// health checks, retries) and of the gateway that composes it. It is used
// by tests only and sits outside the request path.
package upstreamtest

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Backend answers every request with its name, counts what it got, and
// answers health checks on /healthz (503 while Sick).
type Backend struct {
	Name    string
	Handler http.HandlerFunc // if set, answers everything but health checks

	Hits   atomic.Int64 // requests other than health checks
	Posts  atomic.Int64
	Checks atomic.Int64
	Sick   atomic.Bool // health check answers 503

	addr string // fixed after the first start, so a restart keeps the URL
	mu   sync.Mutex
	srv  *http.Server
}

// New starts a Backend on 127.0.0.1 and kills it when the test ends.
func New(t testing.TB, name string) *Backend {
	t.Helper()
	b := &Backend{Name: name}
	b.Start(t)
	t.Cleanup(b.Kill)
	return b
}

// URL is the backend's base URL; it stays the same across restarts.
func (b *Backend) URL() string { return "http://" + b.addr }

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		b.Checks.Add(1)
		if b.Sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
		return
	}
	b.Hits.Add(1)
	if r.Method == http.MethodPost {
		b.Posts.Add(1)
	}
	if b.Handler != nil {
		b.Handler(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, b.Name)
}

// Start listens (again) on the backend's address. A restart retries for up
// to 5 s: the killed listener's port may not be free again at once.
func (b *Backend) Start(t testing.TB) {
	t.Helper()
	addr := b.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && b.addr != "" {
		retry := time.NewTicker(20 * time.Millisecond)
		defer retry.Stop()
		deadline := time.After(5 * time.Second)
		for err != nil {
			select {
			case <-deadline:
				t.Fatalf("backend %s: %v", b.Name, err)
			case <-retry.C:
				ln, err = net.Listen("tcp", addr)
			}
		}
	}
	if err != nil {
		t.Fatalf("backend %s: %v", b.Name, err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Kill closes the listener and every connection at once, as a crash would.
func (b *Backend) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		_ = b.srv.Close()
		b.srv = nil
	}
}
