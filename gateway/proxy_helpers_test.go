package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/proxy"
)

// backend is a test upstream on loopback that can be killed and brought
// back on the same address, to prove health checks and retries (#7).
type backend struct {
	name string
	addr string // fixed after the first start, so a restart keeps the URL

	hits    atomic.Int64 // requests other than health checks
	posts   atomic.Int64
	checks  atomic.Int64
	sick    atomic.Bool // health check answers 503
	handler http.HandlerFunc

	mu  sync.Mutex
	srv *http.Server
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	b.start(t)
	t.Cleanup(b.kill)
	return b
}

func (b *backend) URL() string { return "http://" + b.addr }

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		b.checks.Add(1)
		if b.sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
		return
	}
	b.hits.Add(1)
	if r.Method == http.MethodPost {
		b.posts.Add(1)
	}
	if b.handler != nil {
		b.handler(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, b.name)
}

// start listens (again) on the backend's address.
func (b *backend) start(t *testing.T) {
	t.Helper()
	addr := b.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("backend %s: %v", b.name, err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the listener and every connection at once, as a crash would.
func (b *backend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		_ = b.srv.Close()
		b.srv = nil
	}
}

// pool returns the running pipeline's pool for upstream name.
func (tp *testProxy) pool(name string) *proxy.Pool {
	return tp.server.Pipeline().pools[name]
}

// get sends a GET through the proxy with the test host name and returns
// status and body; transport errors are reported as status 0.
func get(client *http.Client, url string, header http.Header) (int, string) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	req.Host = "portcullis.test"
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// counts tallies bodies (backend names).
func counts(bodies []string) map[string]int {
	m := map[string]int{}
	for _, b := range bodies {
		m[strings.TrimSpace(b)]++
	}
	return m
}

// poolConfig is a one-site configuration with upstream "app" over targets.
func poolConfig(upstream string, targets ...*backend) string {
	var urls []string
	for _, b := range targets {
		urls = append(urls, `"`+b.URL()+`"`)
	}
	text := strings.ReplaceAll(upstream, "TARGETS", "["+strings.Join(urls, ", ")+"]")
	return "upstreams:\n" + text + `
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`
}
