package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/portcullis-waf/portcullis/audit"
)

const http3Config = `
listeners:
  - address: "127.0.0.1:0"
    protocol: https
HTTP3SETTING
server:
  max_header_bytes: 8KiB
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["shop.test"]
    tls:
      certificate: files
      cert_file: CERTFILE
      key_file: KEYFILE
    routes:
      - path: /
        upstream: app
`

// http3Client is quic-go's HTTP/3 client, talking to the UDP socket at
// addr whatever the URL's host, and trusting roots.
func http3Client(t *testing.T, addr string, roots *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsCfg, cfg)
		},
	}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestHTTP3EndToEnd (issue 17, item 2): an https listener serves HTTP/3 on
// the UDP port of its number, advertised by Alt-Svc on the TCP side, and
// HTTP/3 requests go through the same pipeline and audit as the others.
func TestHTTP3EndToEnd(t *testing.T) {
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		echoUpstream(w, r)
	}))
	defer up.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile, "HTTP3SETTING", "").Replace(http3Config)
	tp := startProxy(t, cfg, up.URL)
	addr := strings.TrimPrefix(tp.HTTPS, "https://")
	_, port, _ := net.SplitHostPort(addr)

	// The TCP side advertises HTTP/3 on its own port number, for HTTP/1.1
	// and HTTP/2 alike.
	for _, h2 := range []bool{false, true} {
		resp, err := httpsClient(addr, roots, h2).Get("https://shop.test/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := `h3=":` + port + `"; ma=86400`; resp.Header.Get("Alt-Svc") != want {
			t.Errorf("h2=%v: Alt-Svc %q, want %q", h2, resp.Header.Get("Alt-Svc"), want)
		}
	}
	before := reached.Load()

	client := http3Client(t, addr, roots)
	url := "https://shop.test:" + port
	resp, err := client.Get(url + "/products?page=2")
	if err != nil {
		t.Fatalf("HTTP/3 request: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 3 {
		t.Fatalf("clean HTTP/3 request: status %d proto %s", resp.StatusCode, resp.Proto)
	}
	if !strings.HasPrefix(string(body), "GET /products?page=2\n") || !strings.Contains(string(body), "X-Forwarded-Proto: https") {
		t.Errorf("upstream saw:\n%s", body)
	}
	if reached.Load() != before+1 {
		t.Errorf("upstream reached %d times, want once", reached.Load()-before)
	}

	// An attack over HTTP/3 is blocked by the WAF and audited as HTTP/3.
	resp, err = client.Get(url + "/search?q=1%27%20OR%20%271%27%3D%271")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("attack over HTTP/3: status %d", resp.StatusCode)
	}
	if reached.Load() != before+1 {
		t.Error("the attack reached the upstream")
	}
	id := resp.Header.Get("X-Request-Id")
	e := tp.entryFor(t, id)
	if e.Protocol != "HTTP/3.0" || e.Action != audit.ActionBlocked || e.Stage != audit.StageWAF || e.Host != "shop.test:"+port {
		t.Errorf("record: protocol %q action %q stage %q host %q", e.Protocol, e.Action, e.Stage, e.Host)
	}
	if e.ClientIP != "127.0.0.1" {
		t.Errorf("record client %q", e.ClientIP)
	}

	// server.max_header_bytes holds on HTTP/3 too: quic-go answers 431.
	req, _ := http.NewRequest("GET", url+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized head over HTTP/3: status %d, want 431", resp.StatusCode)
	}
}

// TestHTTP3Off: http3: false serves no UDP and advertises nothing.
func TestHTTP3Off(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile, "HTTP3SETTING", "    http3: false").Replace(http3Config)
	tp := startProxy(t, cfg, up.URL)
	addr := strings.TrimPrefix(tp.HTTPS, "https://")
	resp, err := httpsClient(addr, roots, true).Get("https://shop.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get("Alt-Svc"); v != "" {
		t.Errorf("Alt-Svc %q with http3: false", v)
	}
	if len(tp.server.h3servers) != 0 {
		t.Errorf("%d HTTP/3 servers with http3: false", len(tp.server.h3servers))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://shop.test/", nil)
	if _, err := http3Client(t, addr, roots).Do(req); err == nil {
		t.Error("an HTTP/3 request was answered with http3: false")
	}
}

// TestHTTP3PerClientConnections (issue 17, item 2): server.client_connections
// holds for QUIC connections too, counted with the client's TCP
// connections: a connection past it is refused before its handshake
// (CONNECTION_REFUSED; the client's dial fails), counted as a per_client
// refusal, and another address is still served. Closing a connection
// gives its place back.
func TestHTTP3PerClientConnections(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile, "HTTP3SETTING", "",
		"server:\n", "server:\n  client_connections: 3\n").Replace(http3Config)
	tp := startProxy(t, cfg, up.URL)
	addr := strings.TrimPrefix(tp.HTTPS, "https://")
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// dial opens one QUIC connection from src with quic-go's client and
	// sends one HTTP/3 request on it; the connection stays open.
	dial := func(src string) (*quic.Conn, int, error) {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(src, "0"))
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: pc}
		t.Cleanup(func() { _ = tr.Close(); _ = pc.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := tr.Dial(ctx, udpAddr, &tls.Config{RootCAs: roots, ServerName: "shop.test", NextProtos: []string{http3.NextProtoH3}}, &quic.Config{})
		if err != nil {
			return nil, 0, err
		}
		t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
		req, _ := http.NewRequest("GET", "https://shop.test/", nil)
		resp, err := (&http3.Transport{}).NewClientConn(conn).RoundTrip(req)
		if err != nil {
			return conn, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return conn, resp.StatusCode, nil
	}
	refused := func(err error) bool {
		var te *quic.TransportError
		return errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused && te.Remote
	}

	// One TCP connection (kept alive) and two QUIC connections fill
	// 127.0.0.1's three places.
	tcp := httpsClient(addr, roots, false)
	resp, err := tcp.Get("https://shop.test/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var held []*quic.Conn
	for i := range 2 {
		conn, code, err := dial("127.0.0.1")
		if err != nil || code != http.StatusOK {
			t.Fatalf("QUIC connection %d of 127.0.0.1: %d %v", i+1, code, err)
		}
		held = append(held, conn)
	}
	if st := tp.server.Limits().Stats(); st.QUICOpen != 2 || st.Open != 1 {
		t.Errorf("open: QUIC %d, TCP %d; want 2 and 1", st.QUICOpen, st.Open)
	}
	// The fourth (after a Retry: the address is full) is refused.
	_, code, err := dial("127.0.0.1")
	if !refused(err) {
		t.Fatalf("QUIC connection past the limit: %d %v; want CONNECTION_REFUSED", code, err)
	}
	st := tp.server.Limits().Stats()
	if st.Refused["per_client"] != 1 || st.QUICRefused != 1 {
		t.Errorf("refusals: per_client %d, QUIC %d; want 1 and 1", st.Refused["per_client"], st.QUICRefused)
	}
	// Another address has places of its own.
	if _, code, err := dial("127.0.0.2"); err != nil || code != http.StatusOK {
		t.Fatalf("127.0.0.2 while 127.0.0.1 is full: %d %v", code, err)
	}
	// Closing a QUIC connection gives its place back.
	_ = held[0].CloseWithError(0, "bye")
	if !eventually(func() bool { return tp.server.Limits().Stats().QUICOpen == 2 }) { // held[1] and 127.0.0.2's
		t.Fatalf("QUIC connections open after a close: %d", tp.server.Limits().Stats().QUICOpen)
	}
	if _, code, err := dial("127.0.0.1"); err != nil || code != http.StatusOK {
		t.Fatalf("127.0.0.1 after closing one: %d %v", code, err)
	}
}
