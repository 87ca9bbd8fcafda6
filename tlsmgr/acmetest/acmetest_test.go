package acmetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

const testDomain = "shop.test"

// listen reserves an ephemeral loopback port; the caller serves on it and the
// port goes into Options, so nothing can steal it in between.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// serveHTTP serves h on ln until the test ends.
func serveHTTP(t *testing.T, ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newClient returns an acme.Client (new account key) talking to s.
func newClient(t *testing.T, s *Server) *acme.Client {
	return &acme.Client{Key: newKey(t), DirectoryURL: s.DirectoryURL(), HTTPClient: s.HTTPClient()}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func register(t *testing.T, ctx context.Context, c *acme.Client, eab *acme.ExternalAccountBinding) {
	t.Helper()
	if _, err := c.Register(ctx, &acme.Account{ExternalAccountBinding: eab}, acme.AcceptTOS); err != nil {
		t.Fatalf("register: %v", err)
	}
}

// order creates an order for testDomain, accepts its challenge of type
// chalType and waits for the authorization. It returns the order and the
// result of waiting (nil if the authorization became valid). prepare is
// called with the challenge before it is accepted, to set up the answer.
func order(t *testing.T, ctx context.Context, c *acme.Client, chalType string, prepare func(*acme.Challenge)) (*acme.Order, error) {
	t.Helper()
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(testDomain))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	if len(o.AuthzURLs) != 1 {
		t.Fatalf("order has %d authorizations, want 1", len(o.AuthzURLs))
	}
	authz, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatalf("get authorization: %v", err)
	}
	var chal *acme.Challenge
	for _, ch := range authz.Challenges {
		if ch.Type == chalType {
			chal = ch
		}
	}
	if chal == nil {
		t.Fatalf("no %s challenge offered", chalType)
	}
	prepare(chal)
	if _, err := c.Accept(ctx, chal); err != nil {
		t.Fatalf("accept challenge: %v", err)
	}
	_, err = c.WaitAuthorization(ctx, authz.URI)
	return o, err
}

// finalize sends an ECDSA P-256 CSR for testDomain, fetches the chain and
// verifies it against s.IssuerRoots(). It returns the leaf.
func finalize(t *testing.T, ctx context.Context, s *Server, c *acme.Client, o *acme.Order) *x509.Certificate {
	t.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{DNSNames: []string{testDomain}}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	// CreateCertFromOrder, not CreateOrderCert: Pebble's finalize response
	// has no Location header, so CreateOrderCert would poll URL "".
	der, _, err := c.CreateCertFromOrder(ctx, o, csr, true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	if len(der) < 2 {
		t.Fatalf("got %d certificates, want leaf + intermediate", len(der))
	}
	certs := make([]*x509.Certificate, len(der))
	for i, b := range der {
		if certs[i], err = x509.ParseCertificate(b); err != nil {
			t.Fatal(err)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{
		DNSName: testDomain, Roots: s.IssuerRoots(), Intermediates: inter,
	}); err != nil {
		t.Fatalf("verify issued chain: %v", err)
	}
	// The harness's WFE root must not vouch for issued certificates.
	if _, err := certs[0].Verify(x509.VerifyOptions{
		DNSName: testDomain, Roots: s.RootCAs(), Intermediates: inter,
	}); err == nil {
		t.Fatal("issued chain verified against the WFE root")
	}
	return certs[0]
}

func TestHTTP01(t *testing.T) {
	t.Parallel()
	ln, port := listen(t)
	s := Start(t, Options{HTTPPort: port})
	ctx := testContext(t)
	c := newClient(t, s)

	// token -> key authorization, written by the test goroutine, read by
	// the handler when Pebble's VA fetches the challenge.
	var mu sync.Mutex
	answers := map[string]string{}
	serveHTTP(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const prefix = "/.well-known/acme-challenge/"
		mu.Lock()
		keyAuth, ok := answers[strings.TrimPrefix(r.URL.Path, prefix)]
		mu.Unlock()
		if !ok || !strings.HasPrefix(r.URL.Path, prefix) {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(keyAuth))
	}))

	register(t, ctx, c, nil)
	if n := s.Orders(); n != 0 {
		t.Fatalf("Orders() = %d before ordering, want 0", n)
	}
	o, err := order(t, ctx, c, "http-01", func(ch *acme.Challenge) {
		keyAuth, err := c.HTTP01ChallengeResponse(ch.Token)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		answers[ch.Token] = keyAuth
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("authorization: %v", err)
	}
	leaf := finalize(t, ctx, s, c, o)
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 24*time.Hour {
		t.Errorf("default validity = %v, want Pebble's 90 days", got)
	}
	if n := s.Orders(); n != 1 {
		t.Errorf("Orders() = %d, want 1", n)
	}
}

func TestTLSALPN01ShortValidity(t *testing.T) {
	t.Parallel()
	ln, port := listen(t)
	s := Start(t, Options{TLSPort: port, CertValidity: time.Minute})
	ctx := testContext(t)
	c := newClient(t, s)

	chalCert := make(chan tls.Certificate, 1)
	tlsLn := tls.NewListener(ln, &tls.Config{
		NextProtos: []string{acme.ALPNProto},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			select {
			case cert := <-chalCert:
				chalCert <- cert // keep it for Pebble's other validation attempts
				return &cert, nil
			default:
				return nil, errors.New("no challenge certificate yet")
			}
		},
	})
	go func() {
		for {
			conn, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				_ = conn.(*tls.Conn).Handshake()
				_ = conn.Close()
			}()
		}
	}()

	register(t, ctx, c, nil)
	o, err := order(t, ctx, c, "tls-alpn-01", func(ch *acme.Challenge) {
		cert, err := c.TLSALPN01ChallengeCert(ch.Token, testDomain)
		if err != nil {
			t.Fatal(err)
		}
		chalCert <- cert
	})
	if err != nil {
		t.Fatalf("authorization: %v", err)
	}
	leaf := finalize(t, ctx, s, c, o)
	// Pebble: NotAfter = NotBefore + validity - 1s.
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != time.Minute-time.Second {
		t.Errorf("validity = %v, want 59s", got)
	}
}

func TestUnansweredChallengeFails(t *testing.T) {
	// Not parallel: t.Setenv. Start must force Pebble's always-valid
	// shortcut off even when the environment asks for it.
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	// Something answers on the port, but not with the key authorization:
	// with the shortcut on, this would pass.
	ln, port := listen(t)
	serveHTTP(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not the key authorization"))
	}))
	s := Start(t, Options{HTTPPort: port})
	ctx := testContext(t)
	c := newClient(t, s)
	register(t, ctx, c, nil)

	_, err := order(t, ctx, c, "http-01", func(*acme.Challenge) {})
	var aerr *acme.AuthorizationError
	if !errors.As(err, &aerr) {
		t.Fatalf("authorization error = %v (%T), want *acme.AuthorizationError", err, err)
	}
	t.Logf("expected failure: %v", err)
}

func TestEABRequired(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{RequireEAB: true})
	ctx := testContext(t)

	dir, err := newClient(t, s).Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !dir.ExternalAccountRequired {
		t.Error("directory does not advertise externalAccountRequired")
	}

	// Without a binding: refused.
	_, err = newClient(t, s).Register(ctx, &acme.Account{}, acme.AcceptTOS)
	var aerr *acme.Error
	if !errors.As(err, &aerr) || !strings.HasSuffix(aerr.ProblemType, "externalAccountRequired") {
		t.Fatalf("register without EAB: err = %v, want externalAccountRequired", err)
	}

	// With a wrong key: refused.
	bad := make([]byte, 32)
	_, err = newClient(t, s).Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{
		KID: s.EABKeyID(), Key: bad,
	}}, acme.AcceptTOS)
	if err == nil {
		t.Fatal("register with a wrong EAB key succeeded")
	}

	// With the right key: accepted.
	key, err := base64.RawURLEncoding.DecodeString(s.EABHMACKey())
	if err != nil {
		t.Fatal(err)
	}
	register(t, ctx, newClient(t, s), &acme.ExternalAccountBinding{KID: s.EABKeyID(), Key: key})
	if n := s.Orders(); n != 0 {
		t.Errorf("Orders() = %d, want 0", n)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	ctx := testContext(t)
	c := newClient(t, s)
	register(t, ctx, c, nil)

	s.Pause()
	// A fresh client (no cached directory or connections) must fail fast.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := newClient(t, s).Discover(pctx); err == nil {
		t.Fatal("Discover succeeded while paused")
	} else if pctx.Err() != nil {
		t.Fatalf("Discover while paused hit the timeout instead of failing fast: %v", err)
	}
	// The registered client cannot reach the account either.
	if _, err := c.GetReg(pctx, ""); err == nil {
		t.Fatal("GetReg succeeded while paused")
	}

	s.Resume()
	if _, err := c.GetReg(ctx, ""); err != nil {
		t.Fatalf("GetReg after Resume: %v", err)
	}
}

// TestDNS checks the loopback resolver directly.
func TestDNS(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	ctx := testContext(t)
	for _, network := range []string{"udp", "tcp"} {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.DNSAddr())
		}}
		addrs, err := r.LookupHost(ctx, "anything."+testDomain)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if len(addrs) != 1 || addrs[0] != "127.0.0.1" {
			t.Errorf("%s: addrs = %v, want [127.0.0.1]", network, addrs)
		}
	}
}
