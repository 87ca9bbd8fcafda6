package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA issues certificates for upstream TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	file string // PEM of the CA certificate
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Portcullis Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pool: x509.NewCertPool(), file: filepath.Join(dir, "ca.pem")}
	ca.pool.AddCert(cert)
	if err := os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue returns a certificate for cn (a server name or a client name) and
// writes it and its key as PEM files named prefix.pem and prefix-key.pem.
func (ca *testCA) issue(t *testing.T, dir, prefix, cn string, client bool) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if !client {
		tmpl.DNSNames = []string{cn}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	_ = os.WriteFile(filepath.Join(dir, prefix+".pem"), certPEM, 0o644)
	_ = os.WriteFile(filepath.Join(dir, prefix+"-key.pem"), keyPEM, 0o600)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// TestProxyUpstreamMutualTLS: an https target whose certificate is signed by
// a private CA and names a host other than the target's address (SNI), and
// which requires Portcullis's client certificate (#7).
func TestProxyUpstreamMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	serverCert := ca.issue(t, dir, "server", "backend.internal", false)
	ca.issue(t, dir, "client", "portcullis-proxy", true)

	var sni atomic.Value // written by handshakes, read by the handler
	sni.Store("")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer := "none"
		if len(r.TLS.PeerCertificates) > 0 {
			peer = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "%s %s %s", r.Proto, sni.Load(), peer)
	}))
	up.TLS = &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			sni.Store(hello.ServerName)
			return nil, nil
		},
	}
	up.EnableHTTP2 = true
	up.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	up.StartTLS()
	defer up.Close()

	cfg := `upstreams:
  - name: app
    targets: ["UPSTREAM"]
    tls:
      ca_file: ` + ca.file + `
      server_name: backend.internal
      cert_file: ` + filepath.Join(dir, "client.pem") + `
      key_file: ` + filepath.Join(dir, "client-key.pem") + `
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`
	tp := startFront(t, strings.ReplaceAll(cfg, "UPSTREAM", up.URL))
	status, body, _ := do(t, http.MethodGet, tp.URL+"/x", "", nil)
	if status != http.StatusOK || body != "HTTP/2.0 backend.internal portcullis-proxy" {
		t.Errorf("mTLS upstream: %d %q, want HTTP/2 with SNI backend.internal and the client certificate", status, body)
	}

	// Without the client certificate the upstream refuses the handshake:
	// a neutral 502, the TLS error only in the record.
	noClient := `upstreams:
  - name: app
    targets: ["UPSTREAM"]
    tls:
      ca_file: ` + ca.file + `
      server_name: backend.internal
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`
	tp2 := startFront(t, strings.ReplaceAll(noClient, "UPSTREAM", up.URL))
	status, body, id := do(t, http.MethodGet, tp2.URL+"/x", "", nil)
	if status != http.StatusBadGateway {
		t.Errorf("without client certificate: %d %s", status, body)
	}
	if e := tp2.entryFor(t, id); e.Stage != "proxy" {
		t.Errorf("record %+v", e)
	}
	// And a certificate the CA did not sign is refused (no custom CA: the
	// system roots do not know the test CA).
	wrongCA := `upstreams:
  - name: app
    targets: ["UPSTREAM"]
    tls:
      server_name: backend.internal
      cert_file: ` + filepath.Join(dir, "client.pem") + `
      key_file: ` + filepath.Join(dir, "client-key.pem") + `
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
`
	tp3 := startFront(t, strings.ReplaceAll(wrongCA, "UPSTREAM", up.URL))
	if status, _, _ := do(t, http.MethodGet, tp3.URL+"/x", "", nil); status != http.StatusBadGateway {
		t.Errorf("unknown CA: %d, want 502", status)
	}
}
