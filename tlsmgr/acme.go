package tlsmgr

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// Challenge types answered by Portcullis.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// ACMEConfig configures certificates ordered from an ACME CA.
type ACMEConfig struct {
	// DirectoryURL is the CA's directory, e.g. Let's Encrypt's
	// https://acme-v02.api.letsencrypt.org/directory. Required.
	DirectoryURL string
	// Email is the account's contact address; some CAs require it.
	Email string
	// AcceptTOS must be true: registering means accepting the CA's terms.
	AcceptTOS bool
	// EABKeyID and EABHMACKey (base64url, as CAs hand it out) bind the
	// account to an external account (ZeroSSL, many private CAs).
	EABKeyID, EABHMACKey string
	// RootCAs verify the CA's own HTTPS certificate (a private CA); nil
	// means the system roots.
	RootCAs *x509.CertPool
	// KeyType of the certificates' keys. Default: ecdsa-p256.
	KeyType KeyType
	// RenewBefore is how long before expiry to renew. Default: a third of
	// the certificate's lifetime, at most 30 days.
	RenewBefore time.Duration
	// CacheDir holds the account key and certificates (0700; files 0600).
	// Required.
	CacheDir string
	// Challenges in order of preference. Default: tls-alpn-01, http-01.
	// After a failed attempt the next type is tried first.
	Challenges []string
	// Hosts are the names certificates are ordered for; nothing else ever is.
	Hosts []string
	// RetryMin and RetryMax bound the backoff after failures. Defaults 1m, 1h.
	RetryMin, RetryMax time.Duration
	// HandshakeWait is how long a handshake waits for a host's first
	// certificate before failing. Default: 30s.
	HandshakeWait time.Duration
	Log           *slog.Logger
}

// ACME orders, caches and renews certificates for a fixed set of hosts.
type ACME struct {
	cfg ACMEConfig
	log *slog.Logger

	clientMu sync.Mutex
	client   *acme.Client

	mu       sync.Mutex
	certs    map[string]*tls.Certificate
	ready    map[string]chan struct{} // closed when a host has its first certificate
	lastErr  map[string]error
	attempts map[string]int

	httpTokens sync.Map // token → key authorization
	alpnCerts  sync.Map // host → *tls.Certificate

	stop chan struct{}
	wg   sync.WaitGroup
}

// NewACME validates cfg, prepares the cache directory and loads cached
// certificates, which are served even if the CA is unreachable.
func NewACME(cfg ACMEConfig) (*ACME, error) {
	if cfg.DirectoryURL == "" {
		return nil, errors.New("acme: directory URL is required")
	}
	if !cfg.AcceptTOS {
		return nil, errors.New("acme: the CA's terms of service must be accepted (accept_terms: true)")
	}
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("acme: no host names")
	}
	for _, h := range cfg.Hosts {
		if strings.HasPrefix(h, "*.") || h == "*" {
			return nil, fmt.Errorf("acme: %q: wildcard names need the DNS-01 challenge, which Portcullis does not answer", h)
		}
	}
	if (cfg.EABKeyID == "") != (cfg.EABHMACKey == "") {
		return nil, errors.New("acme: external account binding needs both a key id and an HMAC key")
	}
	if cfg.EABHMACKey != "" {
		if _, err := decodeEABKey(cfg.EABHMACKey); err != nil {
			return nil, fmt.Errorf("acme: external account binding HMAC key: %w", err)
		}
	}
	if _, err := generateKey(cfg.KeyType); err != nil && cfg.KeyType != "" {
		return nil, fmt.Errorf("acme: %w", err)
	}
	if len(cfg.Challenges) == 0 {
		cfg.Challenges = []string{ChallengeTLSALPN01, ChallengeHTTP01}
	}
	for _, c := range cfg.Challenges {
		if c != ChallengeHTTP01 && c != ChallengeTLSALPN01 {
			return nil, fmt.Errorf("acme: challenge must be http-01 or tls-alpn-01, got %q", c)
		}
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Minute
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(time.Hour, cfg.RetryMin)
	}
	if cfg.HandshakeWait <= 0 {
		cfg.HandshakeWait = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := ensureDir(cfg.CacheDir); err != nil {
		return nil, fmt.Errorf("acme cache: %w", err)
	}
	a := &ACME{
		cfg: cfg, log: cfg.Log,
		certs: map[string]*tls.Certificate{}, ready: map[string]chan struct{}{},
		lastErr: map[string]error{}, attempts: map[string]int{},
	}
	now := time.Now()
	for _, h := range cfg.Hosts {
		a.ready[h] = make(chan struct{})
		c, err := readKeyPair(a.certPath(h), []string{h}, now)
		switch {
		case err == nil:
			a.certs[h] = c
			close(a.ready[h])
		case !errors.Is(err, os.ErrNotExist):
			a.log.Warn("acme: cached certificate unusable; a new one will be ordered", "host", h, "err", err)
		}
	}
	return a, nil
}

func decodeEABKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	return base64.RawURLEncoding.DecodeString(s)
}

// certPath names host's cached certificate after the CA directory and the
// key type too: switching from a staging to a production CA, or from ECDSA
// to RSA, must order anew rather than keep serving the old certificate.
func (a *ACME) certPath(host string) string {
	sum := sha256.Sum256([]byte(a.cfg.DirectoryURL + "\x00" + string(a.keyType())))
	return filepath.Join(a.cfg.CacheDir, fileNameFor("cert-"+hex.EncodeToString(sum[:4])+"-", []string{host}))
}

func (a *ACME) keyType() KeyType {
	if a.cfg.KeyType == "" {
		return ECDSAP256
	}
	return a.cfg.KeyType
}

// Certificate returns host's certificate, waiting for the first one to be
// issued until ctx ends (the handshake's own deadline) or HandshakeWait.
func (a *ACME) Certificate(ctx context.Context, host string) (*tls.Certificate, error) {
	a.mu.Lock()
	c, ready := a.certs[host], a.ready[host]
	a.mu.Unlock()
	if c != nil {
		return c, nil
	}
	if ready == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownHost, host)
	}
	wait := time.NewTimer(a.cfg.HandshakeWait)
	defer wait.Stop()
	select {
	case <-ready:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.certs[host], nil
	case <-ctx.Done():
	case <-wait.C:
	}
	return nil, fmt.Errorf("no certificate for %q yet: %v", host, a.LastError(host))
}

// LastError returns the error of host's last failed order, or nil.
func (a *ACME) LastError(host string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastErr[host]
}

// Start orders missing certificates and renews each one when it enters its
// renewal window, retrying failures with exponential backoff.
func (a *ACME) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		return
	}
	a.stop = make(chan struct{})
	for _, h := range a.cfg.Hosts {
		a.wg.Add(1)
		go a.maintain(h, a.stop)
	}
}

// Stop ends renewal; certificates already loaded keep being served.
func (a *ACME) Stop() {
	a.mu.Lock()
	stop := a.stop
	a.stop = nil
	a.mu.Unlock()
	if stop != nil {
		close(stop)
		a.wg.Wait()
	}
}

func (a *ACME) maintain(host string, stop chan struct{}) {
	defer a.wg.Done()
	issued := false
	for {
		wait := a.renewIn(host)
		if issued && wait < a.cfg.RetryMin {
			// Never order twice in a row without a pause, whatever the
			// certificate's dates say (clock skew, tiny lifetimes).
			wait = a.cfg.RetryMin
		}
		issued = false
		if wait <= 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			go func() {
				select {
				case <-stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := a.obtain(ctx, host)
			cancel()
			if err == nil {
				issued = true
				continue
			}
			wait = a.failed(host, err)
		}
		select {
		case <-stop:
			return
		case <-time.After(wait):
		}
	}
}

// renewIn is the time until host's certificate should be renewed (<= 0: now).
func (a *ACME) renewIn(host string) time.Duration {
	a.mu.Lock()
	c := a.certs[host]
	a.mu.Unlock()
	if c == nil {
		return 0
	}
	leaf := c.Leaf
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	before := a.cfg.RenewBefore
	if before <= 0 || before >= lifetime {
		// A renew_before at least as long as the lifetime (720h with 6-day
		// certificates) would renew right after every issuance.
		before = min(lifetime/3, 30*24*time.Hour)
	}
	return time.Until(leaf.NotAfter.Add(-before))
}

// failed records err and returns the backoff before the next attempt.
func (a *ACME) failed(host string, err error) time.Duration {
	a.mu.Lock()
	a.lastErr[host] = err
	a.attempts[host]++
	n := a.attempts[host]
	a.mu.Unlock()
	wait := a.cfg.RetryMin
	for i := 1; i < n && wait < a.cfg.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, a.cfg.RetryMax)
	a.log.Error("acme: certificate order failed", "host", host, "attempt", n, "retry_in", wait.String(), "err", err)
	return wait
}

// account returns a registered ACME client, creating the account key and
// registering (with EAB if configured) on first use.
func (a *ACME) account(ctx context.Context) (*acme.Client, error) {
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	if a.client != nil {
		return a.client, nil
	}
	key, err := a.accountKey()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	if a.cfg.RootCAs != nil {
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.cfg.RootCAs, MinVersion: tls.VersionTLS12}}
	}
	client := &acme.Client{Key: key, DirectoryURL: a.cfg.DirectoryURL, HTTPClient: hc, UserAgent: "portcullis"}
	acct := &acme.Account{}
	if a.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + a.cfg.Email}
	}
	if a.cfg.EABKeyID != "" {
		hmacKey, _ := decodeEABKey(a.cfg.EABHMACKey) // checked in NewACME
		acct.ExternalAccountBinding = &acme.ExternalAccountBinding{KID: a.cfg.EABKeyID, Key: hmacKey}
	}
	if _, err := client.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("register ACME account at %s: %w", a.cfg.DirectoryURL, err)
	}
	a.client = client
	return client, nil
}

// accountKey loads or creates the account key, one per directory URL.
func (a *ACME) accountKey() (crypto.Signer, error) {
	sum := sha256.Sum256([]byte(a.cfg.DirectoryURL))
	path := filepath.Join(a.cfg.CacheDir, "account-"+hex.EncodeToString(sum[:6])+".key")
	if data, err := readSmall(path); err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("account key %s: not PEM", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("account key %s: %w", path, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("account key %s: not a signing key", path)
		}
		return signer, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("account key: %w", err)
	}
	key, err := generateKey(ECDSAP256)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, err
	}
	return key, nil
}

// obtain orders, validates and stores a certificate for host.
func (a *ACME) obtain(ctx context.Context, host string) error {
	client, err := a.account(ctx)
	if err != nil {
		return err
	}
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(host))
	if err != nil {
		return fmt.Errorf("new order for %s: %w", host, err)
	}
	for _, zurl := range order.AuthzURLs {
		if err := a.authorize(ctx, client, host, zurl); err != nil {
			return err
		}
	}
	if order, err = client.WaitOrder(ctx, order.URI); err != nil {
		return fmt.Errorf("order for %s: %w", host, err)
	}
	key, err := generateKey(a.cfg.KeyType)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{DNSNames: []string{host}}, key)
	if err != nil {
		return fmt.Errorf("certificate request for %s: %w", host, err)
	}
	chain, _, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return fmt.Errorf("finalize order for %s: %w", host, err)
	}
	path := a.certPath(host)
	if err := writeKeyPair(path, key, chain); err != nil {
		return err
	}
	cert, err := readKeyPair(path, []string{host}, time.Now())
	if err != nil {
		return fmt.Errorf("issued certificate for %s: %w", host, err)
	}
	a.mu.Lock()
	first := a.certs[host] == nil
	a.certs[host] = cert
	delete(a.lastErr, host)
	a.attempts[host] = 0
	if first {
		close(a.ready[host])
	}
	a.mu.Unlock()
	a.log.Info("acme: certificate issued", "host", host, "not_after", cert.Leaf.NotAfter)
	return nil
}

// authorize answers one authorization with the preferred challenge type,
// rotating the preference after failed attempts.
func (a *ACME) authorize(ctx context.Context, client *acme.Client, host, zurl string) error {
	z, err := client.GetAuthorization(ctx, zurl)
	if err != nil {
		return fmt.Errorf("authorization for %s: %w", host, err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	a.mu.Lock()
	shift := a.attempts[host]
	a.mu.Unlock()
	prefs := a.cfg.Challenges
	var chal *acme.Challenge
	for i := range prefs {
		want := prefs[(i+shift)%len(prefs)]
		for _, c := range z.Challenges {
			if c.Type == want {
				chal = c
				break
			}
		}
		if chal != nil {
			break
		}
	}
	if chal == nil {
		return fmt.Errorf("authorization for %s: the CA offers none of the challenges %v", host, prefs)
	}
	switch chal.Type {
	case ChallengeHTTP01:
		resp, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		a.httpTokens.Store(chal.Token, resp)
		defer a.httpTokens.Delete(chal.Token)
	case ChallengeTLSALPN01:
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, host)
		if err != nil {
			return err
		}
		a.alpnCerts.Store(host, &cert)
		defer a.alpnCerts.Delete(host)
	}
	if _, err := client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("%s challenge for %s: %w", chal.Type, host, err)
	}
	if _, err := client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s challenge for %s: %w", chal.Type, host, err)
	}
	return nil
}

// challengeCert returns the TLS-ALPN-01 certificate pending for host.
func (a *ACME) challengeCert(host string) *tls.Certificate {
	if c, ok := a.alpnCerts.Load(host); ok {
		return c.(*tls.Certificate)
	}
	return nil
}

// httpChallenge returns the key authorization for an HTTP-01 token.
func (a *ACME) httpChallenge(token string) (string, bool) {
	v, ok := a.httpTokens.Load(token)
	if !ok {
		return "", false
	}
	return v.(string), true
}

const challengePrefix = "/.well-known/acme-challenge/"

// HTTPHandler answers ACME HTTP-01 challenges of every ACME source and hands
// every other request to next (on :80, usually the redirect to HTTPS).
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.URL.Path, challengePrefix); ok {
			for _, a := range m.acme {
				if resp, ok := a.httpChallenge(token); ok {
					w.Header().Set("Content-Type", "text/plain")
					_, _ = w.Write([]byte(resp))
					return
				}
			}
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
