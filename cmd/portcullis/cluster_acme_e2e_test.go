package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/redistest"
	"github.com/portcullis-waf/portcullis/tlsmgr/acmetest"
)

// TestClusterOfThreeACME is the ACME part of the issue 16 end-to-end
// test: three instances of the binary share the real Redis (cluster.redis)
// and one ACME issuer, Pebble on loopback. Pebble validates every HTTP-01
// challenge against instance 1's http listener only, while any of the
// three may hold the lock and place the order; an order placed by 2 or 3
// is validated because the challenge answers are shared through Redis.
// The three, started at once (once instance 1 listens), place one order
// per name (counted at Pebble), and every instance serves that one
// certificate over TLS.
func TestClusterOfThreeACME(t *testing.T) {
	redistest.Shared(t) // skips (or fails under CI) without Redis
	prefix := redistest.Prefix(t)
	t.Cleanup(func() { redistest.Clean(redistest.SharedAddr, prefix) })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()

	// Instance 1's ports are reserved first: Pebble must know where to
	// validate.
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: httpLn.Addr().(*net.TCPAddr).Port, TLSPort: tlsLn.Addr().(*net.TCPAddr).Port})
	first := [2]string{httpLn.Addr().String(), tlsLn.Addr().String()}
	httpLn.Close()
	tlsLn.Close()

	shared := t.TempDir()
	rootsFile := filepath.Join(shared, "acme-ca.pem")
	writeACMEServerRoots(t, rootsFile, ca)
	keyFile := filepath.Join(shared, "storage.key")
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	hosts := []string{"shop.test", "www.shop.test"}
	names := []string{"edge-1", "edge-2", "edge-3"}
	type node struct {
		https string
		log   *syncBuffer
	}
	nodes := make([]node, len(names))
	start := func(i int) {
		addrs := [2]string{"127.0.0.1:0", "127.0.0.1:0"}
		if i == 0 {
			addrs = first
		}
		dir := t.TempDir()
		cfgPath := filepath.Join(dir, "portcullis.yaml")
		cfg := fmt.Sprintf(`listeners:
  - address: %q
  - address: %q
    protocol: https
upstreams: [{name: app, targets: [%q]}]
tls:
  state_dir: %q
  acme:
    directory: %q
    email: ops@shop.test
    accept_terms: true
    ca_roots: %q
    challenges: [http-01]
    storage_key_file: %q
sites:
  - name: shop
    hosts: [%q, %q]
    tls: {certificate: acme}
    routes: [{path: /, upstream: app}]
cluster:
  name: e2e
  redis: {url: "redis://%s", timeout: 3s, dial_timeout: 1s, key_prefix: %q}
`, addrs[0], addrs[1], up.URL, filepath.Join(dir, "state"), ca.DirectoryURL(), rootsFile, keyFile, hosts[0], hosts[1], redistest.SharedAddr, prefix)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Error(err)
			return
		}
		c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 2, false)
		nodes[i] = node{https: c.addrs[1], log: c.log}
	}
	// Pebble validates against instance 1 only, so instance 1 listens
	// before the others start: an order placed by instance 2 or 3 while
	// instance 1 was not yet listening failed its challenge (connection
	// refused) and was placed again, a second order for the name that a
	// load balancer in front of all three would not have caused. Then 2
	// and 3 start together, and any of the three may hold a name's lock.
	start(0)
	var wg sync.WaitGroup
	for i := 1; i < len(names); i++ {
		wg.Go(func() { start(i) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	logs := func() string {
		var b strings.Builder
		for i, n := range nodes {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", names[i], n.log.String())
		}
		return b.String()
	}

	// Every instance serves a certificate Pebble issued, for every name,
	// the same one on all three.
	serials := map[string]*big.Int{}
	for i, n := range nodes {
		for _, h := range hosts {
			var cert *x509.Certificate
			deadline := time.Now().Add(90 * time.Second)
			for {
				cert, err = servedCertificate(n.https, h, ca.IssuerRoots())
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not serve a certificate for %s: %v (orders at Pebble: %d); logs:\n%s", names[i], h, err, ca.Orders(), logs())
				}
				time.Sleep(100 * time.Millisecond)
			}
			if want, ok := serials[h]; !ok {
				serials[h] = cert.SerialNumber
			} else if cert.SerialNumber.Cmp(want) != 0 {
				t.Errorf("%s serves serial %v for %s, another instance %v", names[i], cert.SerialNumber, h, want)
			}
		}
		// And answers over it.
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.IssuerRoots(), ServerName: hosts[0]},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, n.https)
			},
		}}
		resp, err := client.Get("https://" + hosts[0] + "/")
		if err != nil {
			t.Fatalf("%s over https: %v", names[i], err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
		if resp.StatusCode != 200 || string(body) != "hello" {
			t.Errorf("%s over https: %d %q", names[i], resp.StatusCode, body)
		}
	}
	if n := ca.Orders(); n != len(hosts) {
		t.Errorf("%d orders at Pebble for %d names and three instances, want one per name; logs:\n%s", n, len(hosts), logs())
	}
	t.Logf("orders at Pebble: %d for %v; serials %v", ca.Orders(), hosts, serials)
}

// servedCertificate is the leaf the TLS listener at addr presents for
// host, verified against roots.
func servedCertificate(addr, host string, roots *x509.CertPool) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: host, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// writeACMEServerRoots writes the certificates Pebble's HTTPS front end
// presents, as an operator writes their private ACME CA's root.
func writeACMEServerRoots(t *testing.T, path string, ca *acmetest.Server) {
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
