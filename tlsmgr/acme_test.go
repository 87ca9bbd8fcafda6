package tlsmgr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/tlsmgr/acmetest"
)

// listeners reserves the two ports Pebble will validate against.
func listeners(t *testing.T) (httpLn, tlsLn net.Listener) {
	t.Helper()
	var err error
	if httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpLn.Close(); tlsLn.Close() })
	return httpLn, tlsLn
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// startManager builds the ACME source for hosts, serves the manager's
// TLS config on tlsLn and its HTTP-01 handler on httpLn, and starts it.
func startManager(t *testing.T, cfg ACMEConfig, httpLn, tlsLn net.Listener) (*Manager, *ACME) {
	t.Helper()
	m, a := serveManager(t, cfg, httpLn, tlsLn)
	m.Start()
	return m, a
}

// serveManager is startManager without Start: the listeners answer
// handshakes and challenges, but nothing is ordered yet.
func serveManager(t *testing.T, cfg ACMEConfig, httpLn, tlsLn net.Listener) (*Manager, *ACME) {
	t.Helper()
	a, err := NewACME(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]Source{}
	for _, h := range cfg.Hosts {
		hosts[h] = a
	}
	m, err := NewManager(Intermediate, hosts, "", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: m.HTTPHandler(http.NotFoundHandler()), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(httpLn) }()
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go func() {
				tc := tls.Server(c, m.TLSConfig())
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				_ = tc.Handshake()
				tc.Close()
			}()
		}
	}()
	t.Cleanup(func() { m.Stop(); hs.Close() })
	return m, a
}

func acmeConfig(ca *acmetest.Server, dir string, hosts ...string) ACMEConfig {
	return ACMEConfig{
		DirectoryURL: ca.DirectoryURL(), AcceptTOS: true, Email: "ops@shop.test",
		RootCAs: ca.RootCAs(), CacheDir: dir, Hosts: hosts,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second, Log: quietLog(),
	}
}

// served returns the leaf the TLS listener presents for name, verified
// against the ACME server's roots.
func served(t *testing.T, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	st, err := handshake(addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	return st.PeerCertificates[0]
}

func TestACMEIssuesWithEachChallenge(t *testing.T) {
	for _, tc := range []struct {
		challenge string
		key       KeyType
	}{{ChallengeHTTP01, ECDSAP256}, {ChallengeTLSALPN01, ECDSAP256}, {ChallengeTLSALPN01, RSA2048}} {
		t.Run(tc.challenge+"/"+string(tc.key), func(t *testing.T) {
			httpLn, tlsLn := listeners(t)
			ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn)})
			cfg := acmeConfig(ca, t.TempDir(), "shop.test")
			cfg.Challenges = []string{tc.challenge}
			cfg.KeyType = tc.key
			m, a := startManager(t, cfg, httpLn, tlsLn)
			if _, err := a.Certificate(context.Background(), "shop.test"); err != nil {
				t.Fatalf("no certificate: %v", err)
			}
			if exp := m.Expiry()["shop.test"]; time.Until(exp) < 24*time.Hour {
				t.Errorf("expiry not exposed: %v", exp)
			}
			leaf := served(t, tlsLn.Addr().String(), "shop.test", ca.IssuerRoots())
			if leaf.DNSNames[0] != "shop.test" || ca.Orders() != 1 {
				t.Errorf("names %v, orders %d", leaf.DNSNames, ca.Orders())
			}
			wantAlg := map[KeyType]x509.PublicKeyAlgorithm{ECDSAP256: x509.ECDSA, RSA2048: x509.RSA}[tc.key]
			if leaf.PublicKeyAlgorithm != wantAlg {
				t.Errorf("key algorithm %v, want %v", leaf.PublicKeyAlgorithm, wantAlg)
			}
		})
	}
}

// TestACMECacheRestartOutageAndUnknownSNI: a restarted instance serves the
// cached certificate without ordering; so does one whose CA is unreachable;
// an unknown server name gets no certificate and causes no order.
func TestACMECacheRestartOutageAndUnknownSNI(t *testing.T) {
	httpLn, tlsLn := listeners(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn)})
	dir := t.TempDir()
	m, a := startManager(t, acmeConfig(ca, dir, "shop.test"), httpLn, tlsLn)
	if _, err := a.Certificate(context.Background(), "shop.test"); err != nil {
		t.Fatal(err)
	}
	first := served(t, tlsLn.Addr().String(), "shop.test", ca.IssuerRoots()).SerialNumber
	m.Stop()

	// Restart with the CA down: the cached certificate is served, no order.
	ca.Pause()
	httpLn2, tlsLn2 := listeners(t)
	_, a2 := startManager(t, acmeConfig(ca, dir, "shop.test"), httpLn2, tlsLn2)
	if got := served(t, tlsLn2.Addr().String(), "shop.test", ca.IssuerRoots()).SerialNumber; got.Cmp(first) != 0 {
		t.Errorf("restart served serial %v, want the cached %v", got, first)
	}
	if a2.LastError("shop.test") != nil {
		t.Errorf("a valid cached certificate caused an order attempt: %v", a2.LastError("shop.test"))
	}
	ca.Resume()

	before := ca.Orders()
	if _, err := handshake(tlsLn2.Addr().String(), &tls.Config{ServerName: "evil.test", RootCAs: ca.IssuerRoots()}); err == nil {
		t.Error("unknown SNI got a certificate")
	}
	// Not a synchronisation: a grace period for the negative assertion, in
	// which an order started in the background would reach the CA.
	time.Sleep(200 * time.Millisecond)
	if ca.Orders() != before {
		t.Errorf("unknown SNI caused %d order(s)", ca.Orders()-before)
	}
}

func TestACMERenewsWithoutRestart(t *testing.T) {
	httpLn, tlsLn := listeners(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn), CertValidity: 30 * time.Second})
	cfg := acmeConfig(ca, t.TempDir(), "shop.test")
	cfg.RenewBefore = 27 * time.Second // renew about 3 s after issuance
	_, a := startManager(t, cfg, httpLn, tlsLn)
	if _, err := a.Certificate(context.Background(), "shop.test"); err != nil {
		t.Fatal(err)
	}
	first := served(t, tlsLn.Addr().String(), "shop.test", ca.IssuerRoots()).SerialNumber
	deadline := time.Now().Add(20 * time.Second)
	for {
		if got := served(t, tlsLn.Addr().String(), "shop.test", ca.IssuerRoots()).SerialNumber; got.Cmp(first) != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not renewed within 20 s (orders %d, last error %v)", ca.Orders(), a.LastError("shop.test"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestACMEExternalAccountBinding(t *testing.T) {
	httpLn, tlsLn := listeners(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn), RequireEAB: true})

	// Without EAB the CA refuses, and its reason is kept for the log.
	noEAB := acmeConfig(ca, t.TempDir(), "shop.test")
	noEAB.HandshakeWait = time.Second
	m, a := startManager(t, noEAB, httpLn, tlsLn)
	waitFor(t, func() bool { return a.LastError("shop.test") != nil })
	if err := a.LastError("shop.test"); !strings.Contains(strings.ToLower(err.Error()), "external") {
		t.Errorf("error lacks the CA's reason: %v", err)
	}
	// The manager reports it for alerts.
	if msg := m.RenewErrors()["shop.test"]; !strings.Contains(strings.ToLower(msg), "external") {
		t.Errorf("RenewErrors: %q", msg)
	}

	httpLn2, tlsLn2 := listeners(t)
	ca2 := acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn2), TLSPort: port(tlsLn2), RequireEAB: true})
	withEAB := acmeConfig(ca2, t.TempDir(), "shop.test")
	withEAB.EABKeyID, withEAB.EABHMACKey = ca2.EABKeyID(), ca2.EABHMACKey()
	_, a2 := startManager(t, withEAB, httpLn2, tlsLn2)
	if _, err := a2.Certificate(context.Background(), "shop.test"); err != nil {
		t.Fatalf("with EAB: %v", err)
	}
}

// TestACMERenewBeforeLongerThanLifetime: renew_before: 720h with short-lived
// certificates must not order again right after every issuance.
func TestACMERenewBeforeLongerThanLifetime(t *testing.T) {
	httpLn, tlsLn := listeners(t)
	ca := acmetest.Start(t, acmetest.Options{HTTPPort: port(httpLn), TLSPort: port(tlsLn), CertValidity: 30 * time.Second})
	cfg := acmeConfig(ca, t.TempDir(), "shop.test")
	cfg.RenewBefore = 720 * time.Hour
	_, a := startManager(t, cfg, httpLn, tlsLn)
	if _, err := a.Certificate(context.Background(), "shop.test"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the behaviour under test: no order in this window
	if n := ca.Orders(); n != 1 {
		t.Errorf("%d orders within 2 s of the first issuance, want 1", n)
	}
}
