// Package acmetest is an in-process ACME test server harness for the tlsmgr
// package and its tests.
//
// Start launches, inside the test process:
//
//   - a tiny DNS server (miekg/dns, UDP and TCP on one ephemeral 127.0.0.1
//     port) that answers every A query with 127.0.0.1 and every other query
//     with an empty NOERROR response, so that names such as "shop.test"
//     resolve to loopback for the validation authority;
//   - Pebble (github.com/letsencrypt/pebble/v2: db, ca, va, wfe), whose VA
//     resolves names through that DNS server (or Options.Resolver, e.g. a
//     real BIND started by StartBIND) and really validates HTTP-01,
//     TLS-ALPN-01 and DNS-01 challenges, the first two against the ports
//     given in Options
//     (Pebble's "always valid" shortcut is forced off, its random
//     pre-validation sleep is disabled);
//   - Pebble's ACME front end (WFE) over HTTPS on an ephemeral 127.0.0.1
//     port, with a self-signed certificate generated at start (see RootCAs).
//
// Everything listens on and talks to 127.0.0.1 only; nothing leaves the
// loopback interface. All servers are shut down by Stop, which Start also
// registers with t.Cleanup.
package acmetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// newOrderPath is the path of Pebble's newOrder endpoint (wfe.newOrderPath,
// unexported in Pebble v2.10.1). The harness tests assert Orders() == 1 after
// one order, so a rename in Pebble is caught there.
const newOrderPath = "/order-plz"

// eabKeyID is the key identifier of the single External Account Binding key
// registered with Pebble.
const eabKeyID = "portcullis-test-kid"

// Options configures Start. The zero value is usable for tests that only talk
// to the directory; to validate challenges set HTTPPort and/or TLSPort.
type Options struct {
	// HTTPPort is the port on 127.0.0.1 where the code under test answers
	// HTTP-01 challenges (Pebble connects to <identifier>:HTTPPort).
	HTTPPort int
	// TLSPort is the port on 127.0.0.1 where the code under test answers
	// TLS-ALPN-01 challenges.
	TLSPort int

	// CertValidity is the validity period of issued certificates (whole
	// seconds, rounded up). Zero means Pebble's default of 90 days. Pebble
	// does not backdate: NotBefore is the issuance time and NotAfter is
	// NotBefore + CertValidity - 1s.
	CertValidity time.Duration

	// RequireEAB makes newAccount requests without a valid External Account
	// Binding fail (urn:ietf:params:acme:error:externalAccountRequired).
	// The EAB key (EABKeyID, EABHMACKey) is registered either way.
	RequireEAB bool

	// BadNoncePercent is the percentage of valid nonces Pebble rejects with
	// badNonce, to exercise client retries. Pebble's own default is 5; the
	// harness default is 0 for deterministic tests.
	BadNoncePercent int

	// ReuseAuthz lets Pebble reuse an account's valid authorizations for new
	// orders (as Let's Encrypt does), so a second order for the same name may
	// be "ready" without answering a challenge. Default false: every order
	// needs fresh challenges.
	ReuseAuthz bool

	// Resolver, if set, is the "host:port" of a DNS server that Pebble's VA
	// asks (over TCP) instead of the harness's own: a real authoritative
	// server such as StartBIND's, for DNS-01. It must also answer the A
	// queries of HTTP-01 and TLS-ALPN-01 validations with loopback.
	Resolver string

	// Verbose sends Pebble's (very chatty) log to t.Log; otherwise it is
	// discarded.
	Verbose bool
}

// Server is a running harness. Its methods are safe for concurrent use.
type Server struct {
	t       testing.TB
	logw    *testLogWriter
	ca      *ca.CAImpl
	handler http.Handler // WFE mux wrapped by the order counter
	tlsCfg  *tls.Config  // WFE serving config
	roots   *x509.CertPool
	wfeAddr string // 127.0.0.1:port of the WFE, fixed across Pause/Resume
	eabKey  string // base64url (unpadded) HMAC key
	orders  atomic.Int64

	dnsUDP, dnsTCP *dns.Server
	dnsAddr        string

	mu      sync.Mutex
	httpSrv *http.Server // nil while paused or stopped
	stopped bool
}

// Start starts the DNS server, Pebble and the WFE listener and registers Stop
// with t.Cleanup. It fails the test (t.Fatal) on any setup error.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()

	s := &Server{t: t, logw: &testLogWriter{t: t, enabled: opts.Verbose}}
	t.Cleanup(s.Stop)
	logger := log.New(s.logw, "pebble ", log.Lmicroseconds)

	if opts.Resolver != "" {
		s.dnsAddr = opts.Resolver
	} else if err := s.startDNS(); err != nil {
		t.Fatalf("acmetest: start DNS server: %v", err)
	}

	validity := uint64(0) // 0 → Pebble default (90 days)
	if opts.CertValidity > 0 {
		validity = uint64((opts.CertValidity + time.Second - 1) / time.Second)
	}
	profiles := map[string]ca.Profile{
		// A single profile, so Pebble's random choice for orders without a
		// profile is deterministic.
		"default": {Description: "acmetest profile", ValidityPeriod: validity},
	}

	reuse := "0"
	if opts.ReuseAuthz {
		reuse = "100"
	}
	var w wfe.WebFrontEndImpl
	// Pebble reads these knobs from the environment inside va.New/wfe.New
	// only, so set them for the duration of construction.
	withEnv(map[string]string{
		"PEBBLE_VA_NOSLEEP":          "1",
		"PEBBLE_VA_SLEEPTIME":        "",
		"PEBBLE_VA_ALWAYS_VALID":     "", // never skip real validation
		"PEBBLE_WFE_NONCEREJECT":     strconv.Itoa(opts.BadNoncePercent),
		"PEBBLE_AUTHZREUSE":          reuse,
		"PEBBLE_WFE_ORDERS_PER_PAGE": "",
	}, func() {
		store := db.NewMemoryStore()
		// ECDSA issuer keys: much faster to generate than RSA on a busy box.
		s.ca = ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
		v := va.New(logger, opts.HTTPPort, opts.TLSPort, false, s.dnsAddr, store)

		key := make([]byte, 32)
		_, _ = rand.Read(key)
		s.eabKey = base64.RawURLEncoding.EncodeToString(key)
		if err := store.AddExternalAccountKeyByID(eabKeyID, s.eabKey); err != nil {
			t.Fatalf("acmetest: add EAB key: %v", err)
		}

		w = wfe.New(logger, store, v, s.ca, []string{"pebble.letsencrypt.org"},
			false, opts.RequireEAB, 0, 0)
	})

	mux := w.Handler()
	s.handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == newOrderPath {
			s.orders.Add(1)
		}
		mux.ServeHTTP(rw, r)
	})

	cert, err := selfSignedLoopbackCert()
	if err != nil {
		t.Fatalf("acmetest: WFE certificate: %v", err)
	}
	s.tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s.roots = x509.NewCertPool()
	s.roots.AddCert(cert.Leaf)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("acmetest: WFE listen: %v", err)
	}
	s.wfeAddr = ln.Addr().String()
	s.serveWFE(ln)
	return s
}

// DirectoryURL is the ACME directory URL (https://127.0.0.1:port/dir).
func (s *Server) DirectoryURL() string { return "https://" + s.wfeAddr + wfe.DirectoryPath }

// RootCAs is the pool that verifies the WFE's HTTPS certificate.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// HTTPClient returns a fresh client that trusts RootCAs, uses no proxy and
// times out after 10s; suitable for acme.Client.HTTPClient.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: s.roots},
		},
	}
}

// IssuerRoots is the pool of Pebble's root CA certificates, for verifying
// issued chains (the chain Pebble returns is leaf + intermediate).
func (s *Server) IssuerRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	for i := 0; i < s.ca.GetNumberOfRootCerts(); i++ {
		pool.AddCert(s.ca.GetRootCert(i).Cert)
	}
	return pool
}

// EABKeyID is the External Account Binding key identifier.
func (s *Server) EABKeyID() string { return eabKeyID }

// EABHMACKey is the External Account Binding HMAC key, base64url without
// padding (decode with base64.RawURLEncoding).
func (s *Server) EABHMACKey() string { return s.eabKey }

// DNSAddr is the "127.0.0.1:port" address of the DNS server Pebble asks:
// the harness's own (UDP and TCP), or Options.Resolver.
func (s *Server) DNSAddr() string { return s.dnsAddr }

// Orders is the number of POST requests received on the newOrder endpoint
// (accepted or not), e.g. to assert that no order was placed. With
// BadNoncePercent > 0 a client's badNonce retry counts again.
func (s *Server) Orders() int { return int(s.orders.Load()) }

// Pause closes the WFE listener and all its connections, so clients get
// "connection refused" until Resume. Pebble's state (accounts, orders,
// certificates) is kept. Pausing a paused server is a no-op.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
		s.httpSrv = nil
	}
}

// Resume listens again on the same address (so DirectoryURL is unchanged).
// It calls t.Fatal if the port cannot be re-bound within 2s, so call it from
// the test goroutine. Resuming a running server is a no-op.
func (s *Server) Resume() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpSrv != nil || s.stopped {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.wfeAddr)
		if err == nil {
			s.serveWFELocked(ln)
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("acmetest: resume WFE on %s: %v", s.wfeAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts down the WFE and the DNS server. It is idempotent and is
// registered with t.Cleanup by Start. Pebble's VA goroutine (one per Start)
// cannot be stopped and is leaked; it is idle.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
		s.httpSrv = nil
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, d := range []*dns.Server{s.dnsUDP, s.dnsTCP} {
		if d != nil {
			_ = d.ShutdownContext(ctx)
		}
	}
	s.logw.stop()
}

func (s *Server) serveWFE(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serveWFELocked(ln)
}

func (s *Server) serveWFELocked(ln net.Listener) {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(s.logw, "acmetest wfe ", 0),
	}
	s.httpSrv = srv
	go func() { _ = srv.ServeTLS(ln, "", "") }()
}

// startDNS binds UDP and TCP on the same ephemeral port (Pebble's VA queries
// over TCP; UDP is there for ordinary resolvers) and waits until both serve.
func (s *Server) startDNS() error {
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		_ = pc.Close() // TCP port taken by someone else: try another one
	}
	if err != nil {
		return fmt.Errorf("no port free for both UDP and TCP: %w", err)
	}
	s.dnsAddr = pc.LocalAddr().String()

	handler := dns.HandlerFunc(answerLoopback)
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.dnsUDP = &dns.Server{PacketConn: pc, Net: "udp", Handler: handler, NotifyStartedFunc: notify}
	s.dnsTCP = &dns.Server{Listener: ln, Net: "tcp", Handler: handler, NotifyStartedFunc: notify}
	errc := make(chan error, 2)
	for _, d := range []*dns.Server{s.dnsUDP, s.dnsTCP} {
		go func() { errc <- d.ActivateAndServe() }()
	}
	timeout := time.After(5 * time.Second)
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			return fmt.Errorf("DNS server exited: %w", err)
		case <-timeout:
			return errors.New("DNS server did not start within 5s")
		}
	}
	return nil
}

// answerLoopback answers A queries for any name with 127.0.0.1; everything
// else (AAAA, TXT, CAA, ...) gets an empty NOERROR answer.
func answerLoopback(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		if q.Qtype == dns.TypeA && q.Qclass == dns.ClassINET {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   net.IPv4(127, 0, 0, 1).To4(),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// selfSignedLoopbackCert makes the WFE's serving certificate: ECDSA P-256,
// self-signed, valid for 127.0.0.1, ::1 and localhost.
func selfSignedLoopbackCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "acmetest WFE"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// envMu serialises withEnv so concurrent (t.Parallel) Starts do not see each
// other's settings.
var envMu sync.Mutex

// withEnv runs fn with the given environment variables set ("" = unset) and
// restores the previous values afterwards.
func withEnv(vars map[string]string, fn func()) {
	envMu.Lock()
	defer envMu.Unlock()
	for k, v := range vars {
		old, had := os.LookupEnv(k)
		if v == "" {
			_ = os.Unsetenv(k)
		} else {
			_ = os.Setenv(k, v)
		}
		defer func() {
			if had {
				_ = os.Setenv(k, old)
			} else {
				_ = os.Unsetenv(k)
			}
		}()
	}
	fn()
}

// testLogWriter forwards log lines to t.Log when enabled and drops them after
// stop, because Pebble goroutines may still log after the test has finished
// (t.Log would panic then).
type testLogWriter struct {
	mu      sync.Mutex
	t       testing.TB
	enabled bool
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.enabled && !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
