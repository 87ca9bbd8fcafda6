package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
	"github.com/portcullis-waf/portcullis/tlsmgr"
	"github.com/portcullis-waf/portcullis/tlsmgr/acmetest"
	"github.com/redis/go-redis/v9"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// writeCert writes a self-signed certificate and key for hosts into dir and
// returns the paths and a pool that trusts it.
func writeCert(t *testing.T, dir string, hosts ...string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

const tlsConfig = `
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
      hsts:
        max_age: 8760h
        include_subdomains: true
    routes:
      - path: /
        upstream: app
  - hosts: ["api.test"]
    tls:
      certificate: files
      cert_file: CERTFILE
      key_file: KEYFILE
      redirect_http: false
    routes:
      - path: /
        upstream: app
  - hosts: ["plain.test"]
    routes:
      - path: /
        upstream: app
`

// httpsClient talks to the https listener at addr for any host name.
func httpsClient(addr string, roots *x509.CertPool, h2 bool) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}
	tr := &http.Transport{DialContext: dial, TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestHTTPSWithFilesHTTP2RedirectAndHSTS(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test", "api.test")
	cfg := strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(tlsConfig)
	tp := startProxy(t, cfg, up.URL)
	addr := strings.TrimPrefix(tp.HTTPS, "https://")

	for _, h2 := range []bool{false, true} {
		client := httpsClient(addr, roots, h2)
		resp, err := client.Get("https://shop.test/products?page=2")
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantProto := map[bool]int{false: 1, true: 2}[h2]
		if resp.StatusCode != 200 || resp.ProtoMajor != wantProto {
			t.Errorf("h2=%v: status %d proto %s", h2, resp.StatusCode, resp.Proto)
		}
		if !strings.Contains(string(body), "X-Forwarded-Proto: https\r\n") {
			t.Errorf("h2=%v: upstream did not learn the request was https:\n%s", h2, body)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
			t.Errorf("h2=%v: HSTS %q", h2, got)
		}
		// The WAF inspects HTTPS traffic, HTTP/2 included.
		resp, err = client.Get("https://shop.test/search?q=1%27%20OR%20%271%27%3D%271")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("h2=%v: attack over https: %d", h2, resp.StatusCode)
		}
	}

	// Plain HTTP for the TLS site: a 308 to HTTPS keeping path and query.
	req, _ := http.NewRequest("POST", tp.URL+"/cart?item=3", strings.NewReader("a=1"))
	req.Host = "shop.test"
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(addr)
	if want := "https://shop.test:" + port + "/cart?item=3"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("redirect: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	// A site without TLS, and a TLS site with redirect_http: false, are
	// served over plain HTTP.
	for _, host := range []string{"plain.test", "api.test"} {
		if status, _, _ := doHost(t, tp.URL+"/", host); status != 200 {
			t.Errorf("%s over http: %d", host, status)
		}
	}
	// An unknown server name gets no certificate.
	if _, err := httpsClient(addr, roots, false).Get("https://other.test/"); err == nil {
		t.Error("unknown SNI got a certificate")
	}
}

// TestMalformedRequestOverTLSIsAudited: package wire sits behind TLS
// termination, so requests net/http refuses are inspected on https too.
func TestMalformedRequestOverTLSIsAudited(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test", "api.test")
	tp := startProxy(t, strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(tlsConfig), up.URL)
	c, err := tls.Dial("tcp", strings.TrimPrefix(tp.HTTPS, "https://"), &tls.Config{ServerName: "shop.test", RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET / HTTP/4.0\r\nHost: shop.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if e := tp.entryFor(t, resp.Header.Get("X-Request-Id")); e.Stage != audit.StageProtocol || !hasRule(e, 920430) {
		t.Errorf("record stage %s rules %v", e.Stage, ruleIDs(e))
	}
}

// TestMalformedHTTP2RequestIsAudited: requests the HTTP/2 server refuses
// before any handler (a connection-specific header, an upper-case header
// name) still get one record each, with the rule engine's findings, while
// the client gets the server's own answer; a valid request on the same
// connection is served as usual.
func TestMalformedHTTP2RequestIsAudited(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	certFile, keyFile, roots := writeCert(t, t.TempDir(), "shop.test", "api.test")
	tp := startProxy(t, strings.NewReplacer("CERTFILE", certFile, "KEYFILE", keyFile).Replace(tlsConfig), up.URL)
	c, err := tls.Dial("tcp", strings.TrimPrefix(tp.HTTPS, "https://"), &tls.Config{ServerName: "shop.test", RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	headers := func(kv ...string) []byte {
		block.Reset()
		for i := 0; i < len(kv); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return bytes.Clone(block.Bytes())
	}
	pseudo := func(path string) []string {
		return []string{":method", "GET", ":scheme", "https", ":authority", "shop.test", ":path", path, "accept", "*/*"}
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_, _ = io.WriteString(c, http2.ClientPreface)
	_ = fr.WriteSettings()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true, EndStream: true,
		BlockFragment: headers(append(pseudo("/item?id=1%27%20OR%201%3D1--"), "user-agent", "Mozilla/5.0", "transfer-encoding", "chunked")...)})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, EndHeaders: true, EndStream: true,
		BlockFragment: headers(append(pseudo("/"), "User-Agent", "<script>alert(1)</script>")...)})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndHeaders: true, EndStream: true,
		BlockFragment: headers(append(pseudo("/ok"), "user-agent", "Mozilla/5.0")...)})
	answers := map[uint32]string{}
	var okID string
	for len(answers) < 3 {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %v: %v", answers, err)
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			answers[f.StreamID] = f.PseudoValue("status")
			if f.StreamID == 5 {
				for _, hf := range f.RegularFields() {
					if hf.Name == "x-request-id" {
						okID = hf.Value
					}
				}
			}
		case *http2.RSTStreamFrame:
			answers[f.StreamID] = "reset " + f.ErrCode.String()
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		}
	}
	if answers[1] != "400" || answers[3] != "reset PROTOCOL_ERROR" || answers[5] != "200" || okID == "" {
		t.Fatalf("answers by stream: %v (request id of the valid one %q)", answers, okID)
	}

	for _, tc := range []struct {
		reason string
		rule   int
	}{
		{`HTTP/2: connection-specific header "transfer-encoding"`, 942100},
		{`HTTP/2: invalid header field name "User-Agent"`, 941100},
	} {
		var found []*audit.Entry
		waitfor.True(5*time.Second, func() bool {
			tp.records.mu.Lock()
			defer tp.records.mu.Unlock()
			found = found[:0]
			for _, e := range tp.records.entries {
				if strings.Contains(e.Reason, tc.reason) {
					found = append(found, e)
				}
			}
			return len(found) > 0
		})
		if len(found) != 1 {
			t.Fatalf("%d records for %q", len(found), tc.reason)
		}
		if e := found[0]; e.Stage != audit.StageProtocol || e.Action != audit.ActionBlocked || e.Host != "shop.test" || !hasRule(e, tc.rule) {
			t.Errorf("%q: stage %s action %s host %q rules %v", tc.reason, e.Stage, e.Action, e.Host, ruleIDs(e))
		}
	}
	tp.noEntryFor(t, okID) // the valid request is not recorded, and every record is in
	tp.records.mu.Lock()
	defer tp.records.mu.Unlock()
	if n := len(tp.records.entries); n != 3 { // the two refused requests and noEntryFor's marker
		t.Errorf("%d records, want the two refused requests' and the marker", n)
	}
}

// TestACMEEndToEnd: the binary's own listeners answer a real ACME server's
// challenges (HTTP-01 on the http listener, TLS-ALPN-01 on the https one) and
// then serve the issued certificate.
func TestACMEEndToEnd(t *testing.T) {
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			up := httptest.NewServer(http.HandlerFunc(echoUpstream))
			defer up.Close()
			// Reserve the two ports first: the CA must know where to validate.
			httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
			tlsLn, _ := net.Listen("tcp", "127.0.0.1:0")
			httpAddr, tlsAddr := httpLn.Addr().String(), tlsLn.Addr().String()
			ca := acmetest.Start(t, acmetest.Options{
				HTTPPort: httpLn.Addr().(*net.TCPAddr).Port, TLSPort: tlsLn.Addr().(*net.TCPAddr).Port,
			})
			dir := t.TempDir()
			rootsFile := filepath.Join(dir, "ca.pem")
			writePool(t, rootsFile, ca)
			httpLn.Close()
			tlsLn.Close()
			cfg := fmt.Sprintf(`
listeners:
  - address: %q
  - address: %q
    protocol: https
upstreams:
  - name: app
    targets: ["UPSTREAM"]
tls:
  state_dir: %q
  acme:
    directory: %q
    email: ops@shop.test
    accept_terms: true
    ca_roots: %q
    challenges: [%s]
sites:
  - hosts: ["shop.test"]
    tls:
      certificate: acme
    routes:
      - path: /
        upstream: app
`, httpAddr, tlsAddr, filepath.Join(dir, "state"), ca.DirectoryURL(), rootsFile, challenge)
			tp := startProxy(t, cfg, up.URL)
			client := httpsClient(strings.TrimPrefix(tp.HTTPS, "https://"), ca.IssuerRoots(), true)
			resp, err := client.Get("https://shop.test/")
			if err != nil {
				t.Fatalf("https with the ACME certificate: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || ca.Orders() != 1 {
				t.Errorf("status %d, orders %d", resp.StatusCode, ca.Orders())
			}
			if st, err := os.Stat(filepath.Join(dir, "state", "acme")); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("ACME cache directory: %v %v, want mode 0700", st.Mode().Perm(), err)
			}
			keys, _ := filepath.Glob(filepath.Join(dir, "state", "acme", "*"))
			for _, k := range keys {
				if st, _ := os.Stat(k); st.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want 0600", k, st.Mode().Perm())
				}
			}
		})
	}
}

// writePool writes the certificates the ACME test server's HTTPS uses, as
// an operator would write their private CA's root.
func writePool(t *testing.T, path string, ca *acmetest.Server) {
	t.Helper()
	resp, err := ca.HTTPClient().Get(ca.DirectoryURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var out []byte
	for _, c := range resp.TLS.PeerCertificates {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func doHost(t *testing.T, url, host string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("X-Request-Id")
}

// TestACMEWildcardDNS01EndToEnd: a wildcard site configured as the README
// shows (tls.acme.dns01 with RFC 2136 to a real BIND, the TSIG secret in a
// file) gets its certificate through DNS-01, which Pebble checks in that
// BIND, and serves any name under the wildcard through the proxy.
func TestACMEWildcardDNS01EndToEnd(t *testing.T) {
	bind := acmetest.StartBIND(t, "example.test")
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	ca := acmetest.Start(t, acmetest.Options{Resolver: bind.Addr})
	dir := t.TempDir()
	rootsFile := filepath.Join(dir, "ca.pem")
	writePool(t, rootsFile, ca)
	secretFile := filepath.Join(dir, "tsig.key")
	keyStatement := fmt.Sprintf("key %q {\n\talgorithm %s;\n\tsecret %q;\n};\n", strings.TrimSuffix(bind.KeyName, "."), bind.Algorithm, bind.Secret)
	if err := os.WriteFile(secretFile, []byte(keyStatement), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
    protocol: https
upstreams:
  - name: app
    targets: ["UPSTREAM"]
tls:
  state_dir: %q
  acme:
    directory: %q
    accept_terms: true
    ca_roots: %q
    dns01:
      provider: rfc2136
      rfc2136:
        server: %q
        tsig_key: %s
        tsig_secret_file: %q
      nameservers: [%q]
sites:
  - hosts: ["*.example.test"]
    tls:
      certificate: acme
    routes:
      - path: /
        upstream: app
`, filepath.Join(dir, "state"), ca.DirectoryURL(), rootsFile, bind.Addr, strings.TrimSuffix(bind.KeyName, "."), secretFile, bind.Addr)
	tp := startProxy(t, cfg, up.URL)
	client := httpsClient(strings.TrimPrefix(tp.HTTPS, "https://"), ca.IssuerRoots(), true)
	for _, host := range []string{"a.example.test", "shop.example.test"} {
		resp, err := client.Get("https://" + host + "/")
		if err != nil {
			t.Fatalf("https to %s with the wildcard certificate: %v", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS.PeerCertificates[0].DNSNames[0] != "*.example.test" {
			t.Errorf("%s: status %d, names %v", host, resp.StatusCode, resp.TLS.PeerCertificates[0].DNSNames)
		}
	}
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders, want 1 for the one configured name", n)
	}
}

// TestCertificatesSharedThroughRedis: with a cluster's Redis client, ACME state
// goes to Redis, which needs the storage key; without one, building fails
// with a reason instead of storing private keys in the clear.
func TestCertificatesSharedThroughRedis(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DialTimeout: 2 * time.Second})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis on 127.0.0.1:6379 is required: %v", err)
		}
		t.Skipf("Redis on 127.0.0.1:6379 not reachable (%v)", err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "storage.key")
	if err := os.WriteFile(keyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := func(extra string) string {
		return fmt.Sprintf(`
listeners:
  - address: "127.0.0.1:0"
    protocol: https
upstreams:
  - name: app
    targets: ["http://127.0.0.1:9"]
tls:
  state_dir: %q
  acme:
    directory: https://127.0.0.1:1/dir
    accept_terms: true
%s
sites:
  - hosts: ["shop.test"]
    tls: {certificate: acme}
    routes: [{path: /, upstream: app}]
`, filepath.Join(dir, "state"), extra)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	shared := &tlsmgr.SharedStorage{Client: rc, Prefix: "portcullis-test:gateway:" + t.Name() + ":"}
	for _, tc := range []struct {
		extra, want string
	}{
		{"", "storage_key_file or storage_key_env is required"},
		{fmt.Sprintf("    storage_key_file: %q", keyFile), ""},
	} {
		cfg, err := config.Parse(filepath.Join(dir, "p.yaml"), []byte(text(tc.extra)))
		if err != nil {
			t.Fatal(err)
		}
		plan := cfg.Certificates()
		plan.Shared = shared
		m, err := tlsmgr.Build(plan, log)
		switch {
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("without a storage key: %v", err)
		case tc.want == "" && (err != nil || m == nil):
			t.Errorf("with a storage key: %v", err)
		}
	}
}
