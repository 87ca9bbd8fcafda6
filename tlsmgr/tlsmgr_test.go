package tlsmgr

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pemPair makes a self-signed certificate and key in PEM for hosts.
func pemPair(t testing.TB, serial int64, notAfter time.Time, hosts ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, DNSNames: hosts,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func writePair(t *testing.T, dir string, serial int64, hosts ...string) (string, string) {
	t.Helper()
	c, k := pemPair(t, serial, time.Now().Add(30*24*time.Hour), hosts...)
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cf, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

// serve runs a TLS listener on loopback with m's configuration and returns
// its address; handshakes complete and the connection is closed.
func serve(t *testing.T, m *Manager) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func TestFileSourceReloadsReplacedFilesAndKeepsOldOnBrokenOnes(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, 1, "shop.test")
	src, err := NewFileSource(cf, kf, []string{"shop.test"}, 20*time.Millisecond, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Intermediate, map[string]Source{"shop.test": src}, "", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop()
	addr := serve(t, m)
	client := &tls.Config{ServerName: "shop.test", InsecureSkipVerify: true} //nolint:gosec // test: we inspect the served cert
	serial := func() int64 {
		st, err := handshake(addr, client)
		if err != nil {
			t.Fatal(err)
		}
		return st.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 1 {
		t.Fatalf("serial %d", got)
	}
	writePair(t, dir, 2, "shop.test")
	waitFor(t, func() bool { return serial() == 2 })

	// A broken replacement (key of another certificate) keeps serial 2.
	// The watcher stops first: its 20ms check must not take the broken
	// file's stamp before src.Reload below sees the change.
	m.Stop()
	other, _ := pemPair(t, 3, time.Now().Add(time.Hour), "shop.test")
	if err := os.WriteFile(cf, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := src.Reload(); err == nil || !strings.Contains(err.Error(), "do not form a pair") {
		t.Errorf("broken replacement: %v", err)
	}
	// Reload is synchronous and the loop is stopped: nothing can change the
	// served certificate after Reload returned.
	if got := serial(); got != 2 {
		t.Errorf("after a broken replacement the served serial is %d, want 2", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	if !waitfor.True(5*time.Second, cond) {
		t.Fatal("condition not met within 5s")
	}
}

func TestUnknownSNI(t *testing.T) {
	dir := t.TempDir()
	cf, kf := writePair(t, dir, 7, "shop.test")
	src, err := NewFileSource(cf, kf, []string{"shop.test"}, time.Hour, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	client := &tls.Config{ServerName: "other.test", InsecureSkipVerify: true} //nolint:gosec // test
	strict, _ := NewManager(Intermediate, map[string]Source{"shop.test": src}, "", quietLog())
	if _, err := handshake(serve(t, strict), client); err == nil {
		t.Error("unknown SNI got a certificate")
	}
	withDefault, _ := NewManager(Intermediate, map[string]Source{"shop.test": src}, "shop.test", quietLog())
	st, err := handshake(serve(t, withDefault), client)
	if err != nil || st.PeerCertificates[0].SerialNumber.Int64() != 7 {
		t.Errorf("default certificate not served: %v", err)
	}
	if _, err := NewManager(Intermediate, map[string]Source{"shop.test": src}, "nope.test", quietLog()); err == nil {
		t.Error("default host without a source accepted")
	}
}

func TestTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	ss, err := NewSelfSigned(dir, []string{"shop.test"})
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]Source{"shop.test": ss}
	inter, _ := NewManager(Intermediate, hosts, "", quietLog())
	modern, _ := NewManager(Modern, hosts, "", quietLog())
	iaddr, maddr := serve(t, inter), serve(t, modern)
	base := func() *tls.Config {
		return &tls.Config{ServerName: "shop.test", InsecureSkipVerify: true} //nolint:gosec // test
	}
	tests := []struct {
		name   string
		addr   string
		mutate func(*tls.Config)
		ok     bool
	}{
		{"TLS 1.0 refused", iaddr, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10 }, false},
		{"TLS 1.1 refused", iaddr, func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS11, tls.VersionTLS11 }, false},
		{"TLS 1.2 accepted", iaddr, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, true},
		{"TLS 1.3 accepted", iaddr, func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }, true},
		{"CBC suite refused", iaddr, func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
		}, false},
		{"modern refuses TLS 1.2", maddr, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }, false},
		{"modern accepts TLS 1.3", maddr, func(*tls.Config) {}, true},
	}
	for _, tt := range tests {
		cfg := base()
		tt.mutate(cfg)
		_, err := handshake(tt.addr, cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
	cfg := base()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	st, err := handshake(iaddr, cfg)
	if err != nil || st.NegotiatedProtocol != "h2" {
		t.Errorf("h2 not negotiated: %q %v", st.NegotiatedProtocol, err)
	}
}

func TestSelfSignedIsKeptAndPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a, err := NewSelfSigned(dir, []string{"dev.test", "www.dev.test"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSelfSigned(dir, []string{"www.dev.test", "dev.test"})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := a.Certificate(context.Background(), "")
	cb, _ := b.Certificate(context.Background(), "")
	if ca.Leaf.SerialNumber.Cmp(cb.Leaf.SerialNumber) != 0 {
		t.Error("self-signed certificate regenerated instead of reused")
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v", st.Mode().Perm())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	for _, f := range files {
		if st, _ := os.Stat(f); st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
}

func TestParseKeyPairErrors(t *testing.T) {
	good, key := pemPair(t, 1, time.Now().Add(time.Hour), "shop.test", "*.shop.test")
	other, otherKey := pemPair(t, 2, time.Now().Add(time.Hour), "shop.test")
	expired, expiredKey := pemPair(t, 3, time.Now().Add(-time.Minute), "shop.test")
	tests := []struct {
		name      string
		cert, key []byte
		hosts     []string
		want      string
	}{
		{"ok with wildcard", good, key, []string{"shop.test", "a.shop.test"}, ""},
		{"mismatched key", good, otherKey, nil, "do not form a pair"},
		{"expired", expired, expiredKey, nil, "expired"},
		{"host not covered", other, otherKey, []string{"www.other.test"}, "does not cover host"},
		{"not PEM", []byte("hello"), key, nil, "no PEM certificate"},
		{"no key", good, []byte("-----BEGIN CERTIFICATE-----"), nil, "no PEM private key"},
	}
	for _, tt := range tests {
		_, err := ParseKeyPair(tt.cert, tt.key, tt.hosts, time.Now())
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestNewACMERejectsBadConfig(t *testing.T) {
	ok := ACMEConfig{DirectoryURL: "https://127.0.0.1:1/dir", AcceptTOS: true, CacheDir: t.TempDir(), Hosts: []string{"shop.test"}}
	tests := []struct {
		name   string
		mutate func(*ACMEConfig)
		want   string
	}{
		{"terms", func(c *ACMEConfig) { c.AcceptTOS = false }, "terms of service"},
		{"no directory", func(c *ACMEConfig) { c.DirectoryURL = "" }, "directory URL"},
		{"wildcard", func(c *ACMEConfig) { c.Hosts = []string{"*.shop.test"} }, "DNS-01"},
		{"half EAB", func(c *ACMEConfig) { c.EABKeyID = "kid" }, "both a key id and an HMAC key"},
		{"bad EAB key", func(c *ACMEConfig) { c.EABKeyID, c.EABHMACKey = "kid", "not base64!" }, "HMAC key"},
		{"key type", func(c *ACMEConfig) { c.KeyType = "dsa" }, "key type"},
		{"challenge", func(c *ACMEConfig) { c.Challenges = []string{"dns-02"} }, "challenge must be"},
		{"dns-01 without provider", func(c *ACMEConfig) { c.Challenges = []string{"dns-01"} }, "needs a DNS provider"},
		{"provider missing", func(c *ACMEConfig) { c.DNS01 = &DNS01Config{} }, "without a provider"},
		{"wildcard not leftmost", func(c *ACMEConfig) {
			c.DNS01 = &DNS01Config{Provider: &ExecHook{}}
			c.Hosts = []string{"a.*.shop.test"}
		}, "one leftmost label"},
		{"wildcard of a TLD", func(c *ACMEConfig) {
			c.DNS01 = &DNS01Config{Provider: &ExecHook{}}
			c.Hosts = []string{"*.test"}
		}, "one leftmost label"},
		{"no storage", func(c *ACMEConfig) { c.CacheDir = "" }, "cache directory or a storage"},
	}
	for _, tt := range tests {
		c := ok
		tt.mutate(&c)
		if _, err := NewACME(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	a, err := NewACME(ok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Certificate(context.Background(), "other.test"); !errors.Is(err, ErrUnknownHost) {
		t.Errorf("unknown host: %v", err)
	}
}

// FuzzParseKeyPair: arbitrary PEM input never panics and never yields a
// certificate without a leaf.
func FuzzParseKeyPair(f *testing.F) {
	c, k := pemPair(f, 1, time.Now().Add(time.Hour), "shop.test")
	f.Add(c, k)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cert, err := ParseKeyPair(certPEM, keyPEM, []string{"shop.test"}, time.Now())
		if err == nil && (cert == nil || cert.Leaf == nil) {
			t.Fatal("certificate without leaf")
		}
	})
}
