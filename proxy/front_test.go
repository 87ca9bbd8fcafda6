package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/upstreamtest"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
	"github.com/portcullis-waf/portcullis/respond"
)

// The tests in pool_test.go, grpc_test.go, websocket_test.go and
// upstream_tls_test.go drive the proxy stage end to end: a real client
// talks to a loopback server whose handler is one route's proxy stage, in
// front of real loopback upstreams. The front does for the route what the
// gateway does for it in production: it creates the request's audit entry
// and the X-Request-Id, and keeps the entry when the request ends. The
// tests of the stages composed around the proxy (the WAF judging a gRPC
// call or a WebSocket handshake, the cache, reload) stay in gateway/.

// front is one route's proxy stage behind a loopback server.
type front struct {
	URL  string
	srv  *httptest.Server
	pool *Pool

	mu      sync.Mutex
	records map[string]*audit.Entry
}

// frontConfig parses a configuration of upstreams and one site whose first
// route is the one under test.
func frontConfig(t *testing.T, yamlText string) (*config.UpstreamConfig, config.RouteProxyConfig) {
	t.Helper()
	cfg, err := config.Parse("proxy-test.yaml", []byte("listeners:\n  - address: \"127.0.0.1:0\"\n"+yamlText))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rc := cfg.Sites[0].Routes[0]
	for _, u := range cfg.Upstreams {
		if u.Name == rc.Upstream {
			return u, rc.Proxy
		}
	}
	t.Fatalf("no upstream %q", rc.Upstream)
	return nil, config.RouteProxyConfig{}
}

// newFront builds the first route of yamlText and its pool, unstarted; the
// caller picks HTTP/1.1 (start) or TLS with HTTP/2 (startTLS).
func newFront(t *testing.T, yamlText string) *front {
	t.Helper()
	u, rc := frontConfig(t, yamlText)
	pool := NewPool(u, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(pool.Close)
	route := NewRoute(pool, rc)
	f := &front{pool: pool, records: map[string]*audit.Entry{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := &audit.Entry{ID: newID(), Time: time.Now().UTC(), Host: r.Host, Method: r.Method, URI: r.RequestURI, Protocol: r.Proto}
		e.ClientIP, e.ClientPort = splitHostPort(r.RemoteAddr)
		w.Header().Set(respond.RequestIDHeader, e.ID)
		route.ServeHTTP(w, r.WithContext(audit.WithEntry(r.Context(), e)))
		f.mu.Lock()
		f.records[e.ID] = e
		f.mu.Unlock()
	}))
	f.srv.Config.ErrorLog = nil
	t.Cleanup(f.srv.Close)
	return f
}

// startFront runs the first route of yamlText on a loopback HTTP/1.1
// server.
func startFront(t *testing.T, yamlText string) *front {
	t.Helper()
	f := newFront(t, yamlText)
	f.srv.Start()
	f.URL = f.srv.URL
	return f
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func splitHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// entryFor returns the record of the request with the given id. The front
// keeps it when the route's handler returns, which may be just after the
// client read the response.
func (f *front) entryFor(t *testing.T, id string) *audit.Entry {
	t.Helper()
	var e *audit.Entry
	if !waitfor.True(5*time.Second, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		e = f.records[id]
		return e != nil
	}) {
		t.Fatalf("no audit record for request %s", id)
	}
	return e
}

// do sends a request and returns status, body and request id.
func do(t *testing.T, method, url string, body string, header http.Header) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "portcullis.test"
	for k, vs := range header {
		req.Header[k] = vs
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get(respond.RequestIDHeader)
}

// get sends a GET with the test host name and returns status and body;
// transport errors are reported as status 0.
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
func poolConfig(upstream string, targets ...*upstreamtest.Backend) string {
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

// eventually polls cond for up to 3 s: for effects off the request path.
func eventually(cond func() bool) bool { return waitfor.True(3*time.Second, cond) }
