package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address src (127.0.0.1 and 127.0.0.2 are two client addresses).
func clientFrom(src string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// holdingUpstream answers /slow only when release is closed, telling each
// arrival on arrived; everything else at once.
func holdingUpstream(t *testing.T) (url string, arrived chan struct{}, release func()) {
	arrived = make(chan struct{}, 16)
	gate := make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-gate
		}
		io.WriteString(w, "ok")
	}))
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(up.Close)
	t.Cleanup(release)
	return up.URL, arrived, release
}

// TestPerClientRequestsInFlight: server.client_requests bounds the requests
// one client has in flight; the next gets 429 with Retry-After, the neutral
// page and a record; other clients are not affected; the count is of the
// resolved client (behind a trusted proxy, its X-Forwarded-For address),
// and a finished request frees its place (issue 18).
func TestPerClientRequestsInFlight(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		busy     func(*http.Request) *http.Client // the client that fills its budget
		other    func(*http.Request) *http.Client // another client
		busyAddr string
	}{
		{
			name:     "client addresses",
			config:   "server:\n  client_requests: 2\naudit:\n  log_all: true\n",
			busy:     func(*http.Request) *http.Client { return clientFrom("127.0.0.1") },
			other:    func(*http.Request) *http.Client { return clientFrom("127.0.0.2") },
			busyAddr: "127.0.0.1",
		},
		{
			name:   "clients behind a trusted proxy",
			config: "server:\n  client_requests: 2\nclient_ip:\n  trusted_proxies: [127.0.0.1]\naudit:\n  log_all: true\n",
			busy: func(r *http.Request) *http.Client {
				r.Header.Set("X-Forwarded-For", "192.0.2.10")
				return clientFrom("127.0.0.1")
			},
			other: func(r *http.Request) *http.Client {
				r.Header.Set("X-Forwarded-For", "192.0.2.11")
				return clientFrom("127.0.0.1")
			},
			busyAddr: "192.0.2.10",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upURL, arrived, release := holdingUpstream(t)
			tp := startProxy(t, tt.config+basicConfig, upURL)
			send := func(who func(*http.Request) *http.Client, path string) (int, http.Header, string, string) {
				req, _ := http.NewRequest(http.MethodGet, tp.URL+path, nil)
				resp, err := who(req).Do(req)
				if err != nil {
					return 0, nil, "", err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, resp.Header.Get("X-Request-Id"), string(b)
			}
			var wg sync.WaitGroup
			slow := make(chan int, 2)
			for range 2 {
				wg.Go(func() {
					code, _, _, _ := send(tt.busy, "/slow")
					slow <- code
				})
				<-arrived // in flight, held at the upstream
			}
			code, h, id, body := send(tt.busy, "/")
			if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(body, id) || id == "" {
				t.Fatalf("third request of a client with 2 in flight: %d, Retry-After %q, body %q; want 429 with the request id", code, h.Get("Retry-After"), body)
			}
			e := tp.entryFor(t, id)
			if e.Action != audit.ActionBlocked || e.Stage != audit.StageRateLimit || !strings.Contains(e.Reason, "requests in flight") || e.ClientIP != tt.busyAddr {
				t.Errorf("record: %s %s %q client %s", e.Action, e.Stage, e.Reason, e.ClientIP)
			}
			if code, _, _, body := send(tt.other, "/"); code != http.StatusOK {
				t.Errorf("another client while the first is at its limit: %d %q", code, body)
			}
			release()
			wg.Wait()
			for range 2 {
				if code := <-slow; code != http.StatusOK {
					t.Errorf("held request: %d", code)
				}
			}
			if code, _, _, body := send(tt.busy, "/"); code != http.StatusOK {
				t.Errorf("after its requests ended: %d %q", code, body)
			}
		})
	}
}

// TestPerClientConnections: server.client_connections is applied on the
// listeners: a client address past it is closed before a byte is read,
// another address is served (issue 18: 1,500 keep-alive connections of one
// address took the service from the others).
func TestPerClientConnections(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, "server:\n  client_connections: 2\n"+basicConfig, up.URL)
	addr := strings.TrimPrefix(tp.URL, "http://")
	// exchange sends one keep-alive request on c and reads the answer.
	exchange := func(c net.Conn) (int, error) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	dial := func(src string) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		return c, nil
	}
	send := func(src string) (int, error) {
		c, err := dial(src)
		if err != nil {
			return 0, err // a reset can reach connect() itself
		}
		return exchange(c)
	}
	for i := range 2 {
		if code, err := send("127.0.0.1"); code != http.StatusOK {
			t.Fatalf("connection %d of 127.0.0.1: %d %v", i+1, code, err)
		}
	}
	code, err := send("127.0.0.1")
	if code != 0 || err == nil || errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err) {
		t.Fatalf("third connection of 127.0.0.1: %d %v; want it closed without an answer", code, err)
	}
	if n := tp.server.Limits().Stats().Refused["per_client"]; n != 1 {
		t.Errorf("refusals counted: %d, want 1", n)
	}
	if code, err := send("127.0.0.2"); code != http.StatusOK {
		t.Fatalf("127.0.0.2 while 127.0.0.1 is at its limit: %d %v", code, err)
	}
}

// bigUpstream streams 64 MiB in 32 KiB writes and tells on done when its
// handler returns: at the end, or when its connection is closed.
func bigUpstream(t *testing.T) (string, chan struct{}) {
	done := make(chan struct{}, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(64<<20))
		chunk := make([]byte, 32<<10)
		for range (64 << 20) / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	return up.URL, done
}

// TestSendTimeoutCutsAStalledReader: a client that stops reading a large
// response is cut once a write makes no progress for server.send_timeout,
// over HTTP/1 and on an HTTP/2 stream: the handler ends, the request is
// recorded and the upstream connection is released (issue 18: with no
// write timeout, slow readers held handlers and upstream connections
// indefinitely). A client that reads is never cut.
func TestSendTimeoutCutsAStalledReader(t *testing.T) {
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test")
	cfg := `server:
  send_timeout: 1s
audit:
  log_all: true
listeners:
  - address: "127.0.0.1:0"
  - address: "127.0.0.1:0"
    protocol: https
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["shop.test"]
    tls:
      certificate: files
      cert_file: CERTFILE
      key_file: KEYFILE
      redirect_http: false
    routes:
      - path: /
        upstream: app
        waf:
          response_inspection:
            enabled: false
`
	cfg = strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(cfg)
	upURL, upDone := bigUpstream(t)
	tp := startProxy(t, cfg, upURL)

	stall := map[string]func() (id string, closeFn func()){
		"HTTP/1.1": func() (string, func()) {
			c, err := net.Dial("tcp", strings.TrimPrefix(tp.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil) // the head only; the body is never read
			if err != nil {
				t.Fatal(err)
			}
			return resp.Header.Get("X-Request-Id"), func() { c.Close() }
		},
		"HTTP/2": func() (string, func()) {
			client := httpsClient(strings.TrimPrefix(tp.HTTPS, "https://"), roots, true)
			req, _ := http.NewRequest(http.MethodGet, "https://shop.test/big", nil)
			req.Header.Set("User-Agent", "Mozilla/5.0")
			client.Timeout = 0
			resp, err := client.Do(req) // the body is never read: flow control stops the stream
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 {
				t.Fatalf("proto %s, want HTTP/2", resp.Proto)
			}
			return resp.Header.Get("X-Request-Id"), func() { resp.Body.Close(); client.CloseIdleConnections() }
		},
	}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		t.Run(proto, func(t *testing.T) {
			id, closeFn := stall[proto]()
			defer closeFn()
			select {
			case <-upDone:
			case <-time.After(60 * time.Second): // a bound on a hang, not a measurement
				t.Fatal("the upstream's handler still runs: the stalled client holds it")
			}
			e := tp.entryFor(t, id)
			if e.BytesSent >= 64<<20 {
				t.Errorf("record says %d bytes sent to a client that read none", e.BytesSent)
			}
		})
	}
	t.Run("a reading client is not cut", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, tp.URL+"/big", nil)
		req.Host = "shop.test"
		req.Header.Set("User-Agent", "Mozilla/5.0")
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != 64<<20 {
			t.Errorf("read %d bytes, %v; want all 64 MiB", n, err)
		}
		<-upDone
	})
}
