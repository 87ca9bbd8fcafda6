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
	// Required without Storage; with a shared Storage it is optional and
	// keeps a local copy of what is stored there (see withLocalCopy).
	CacheDir string
	// Storage keeps the account key, certificates, challenge answers and
	// issuance locks. Default: a DirStorage in CacheDir (one instance). A
	// shared storage (RedisStorage) lets the instances of a cluster order
	// each certificate once, answer each other's challenges and all serve
	// the result.
	Storage Storage
	// SyncInterval is how often, with a shared Storage, each instance looks
	// for a certificate stored by another one (renewals are picked up
	// without it, through the issuance lock). Default 1m.
	SyncInterval time.Duration
	// Challenges in order of preference. Default: tls-alpn-01, http-01;
	// with DNS01 set, dns-01. After a failed attempt the next type is
	// tried first. Wildcard names always use dns-01.
	Challenges []string
	// DNS01 publishes DNS-01 challenge records; needed for dns-01 and for
	// wildcard names. nil: no DNS-01.
	DNS01 *DNS01Config
	// Hosts are the names certificates are ordered for, one certificate
	// per name; nothing else ever is. "*.example.com" (with DNS01) is one
	// certificate for the wildcard only: example.com is covered only if it
	// is listed too, and gets a certificate of its own.
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
	cfg    ACMEConfig
	log    *slog.Logger
	store  Storage
	shared bool
	dns01  DNS01Config // with defaults; Provider nil without DNS-01
	hosts  map[string]bool

	clientMu sync.Mutex
	client   *acme.Client

	mu       sync.Mutex
	certs    map[string]*tls.Certificate
	ready    map[string]chan struct{} // closed when a host has its first certificate
	lastErr  map[string]error
	attempts map[string]int

	stop chan struct{}
	wg   sync.WaitGroup
}

// validWildcard reports whether h is "*." followed by a name of at least
// two labels: one wildcard label, leftmost, as CAs accept.
func validWildcard(h string) bool {
	rest, ok := strings.CutPrefix(h, "*.")
	return ok && strings.Contains(rest, ".") && !strings.Contains(rest, "*")
}

// NewACME validates cfg, prepares the storage and loads stored
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
	if cfg.DNS01 != nil && cfg.DNS01.Provider == nil {
		return nil, errors.New("acme: DNS-01 is configured without a provider")
	}
	for _, h := range cfg.Hosts {
		if strings.Contains(h, "*") {
			if cfg.DNS01 == nil {
				return nil, fmt.Errorf("acme: %q: wildcard names need the DNS-01 challenge; configure a DNS provider", h)
			}
			if !validWildcard(h) {
				return nil, fmt.Errorf("acme: %q: a wildcard must be one leftmost label, as in *.example.com", h)
			}
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
		if cfg.DNS01 != nil {
			cfg.Challenges = []string{ChallengeDNS01}
		}
	}
	for _, c := range cfg.Challenges {
		switch c {
		case ChallengeHTTP01, ChallengeTLSALPN01:
		case ChallengeDNS01:
			if cfg.DNS01 == nil {
				return nil, errors.New("acme: the dns-01 challenge needs a DNS provider")
			}
		default:
			return nil, fmt.Errorf("acme: challenge must be http-01, tls-alpn-01 or dns-01, got %q", c)
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
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &ACME{
		cfg: cfg, log: cfg.Log, hosts: map[string]bool{},
		certs: map[string]*tls.Certificate{}, ready: map[string]chan struct{}{},
		lastErr: map[string]error{}, attempts: map[string]int{},
	}
	if cfg.DNS01 != nil {
		a.dns01 = cfg.DNS01.withDefaults()
	}
	switch {
	case cfg.Storage == nil:
		if cfg.CacheDir == "" {
			return nil, errors.New("acme: a cache directory or a storage is required")
		}
		d, err := NewDirStorage(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("acme cache: %w", err)
		}
		a.store = d
	case cfg.CacheDir != "":
		d, err := NewDirStorage(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("acme cache: %w", err)
		}
		a.store, a.shared = &withLocalCopy{shared: cfg.Storage, local: d, log: cfg.Log}, true
	default:
		a.store, a.shared = cfg.Storage, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range cfg.Hosts {
		a.hosts[h] = true
		a.ready[h] = make(chan struct{})
		c, err := a.loadStored(ctx, h)
		switch {
		case err == nil:
			a.certs[h] = c
			close(a.ready[h])
		case !errors.Is(err, ErrNotExist):
			a.log.Warn("acme: stored certificate unusable; a new one will be ordered", "host", h, "err", err)
		}
	}
	return a, nil
}

func decodeEABKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	return base64.RawURLEncoding.DecodeString(s)
}

// certKey names host's stored certificate after the CA directory and the
// key type too: switching from a staging to a production CA, or from ECDSA
// to RSA, must order anew rather than keep serving the old certificate. It
// is also the file name in the cache directory and the issuance lock's name.
func (a *ACME) certKey(host string) string {
	sum := sha256.Sum256([]byte(a.cfg.DirectoryURL + "\x00" + string(a.keyType())))
	return fileNameFor("cert-"+hex.EncodeToString(sum[:4])+"-", []string{host})
}

// loadStored reads and checks host's stored certificate.
func (a *ACME) loadStored(ctx context.Context, host string) (*tls.Certificate, error) {
	data, err := a.store.Get(ctx, a.certKey(host))
	if err != nil {
		return nil, err
	}
	return ParseKeyPair(data, data, []string{host}, time.Now())
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
	var notBefore time.Time // no order before this: backoff, or the pause after one
	for {
		due := a.renewIn(host)
		if due <= 0 && !time.Now().Before(notBefore) {
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
				// Never order twice in a row without a pause, whatever the
				// certificate's dates say (clock skew, tiny lifetimes).
				notBefore = time.Now().Add(a.cfg.RetryMin)
			} else {
				notBefore = time.Now().Add(a.failed(host, err))
			}
			continue
		}
		wait := max(due, time.Until(notBefore))
		look := false // in the shared store, for another instance's certificate
		if a.shared && wait > a.cfg.SyncInterval {
			wait, look = a.cfg.SyncInterval, true
		}
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		if look {
			a.sync(host)
		}
	}
}

// sync adopts a certificate for host that another instance stored, if it
// is newer than the one served.
func (a *ACME) sync(host string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := a.loadStored(ctx, host)
	if err != nil {
		if !errors.Is(err, ErrNotExist) {
			a.log.Warn("acme: cannot read the shared certificate store", "host", host, "err", err)
		}
		return
	}
	a.mu.Lock()
	cur := a.certs[host]
	a.mu.Unlock()
	if cur == nil || c.Leaf.NotAfter.After(cur.Leaf.NotAfter) {
		a.install(host, c)
		a.log.Info("acme: certificate stored by another instance loaded", "host", host, "not_after", c.Leaf.NotAfter)
	}
}

// install makes c host's served certificate.
func (a *ACME) install(host string, c *tls.Certificate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := a.certs[host] == nil
	a.certs[host] = c
	delete(a.lastErr, host)
	a.attempts[host] = 0
	if first {
		close(a.ready[host])
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
	return a.renewInFor(c)
}

func (a *ACME) renewInFor(c *tls.Certificate) time.Duration {
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
	key, err := a.accountKey(ctx)
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

// accountKey loads or creates the account key, one per directory URL (and
// so one account per cluster with a shared storage).
func (a *ACME) accountKey(ctx context.Context) (crypto.Signer, error) {
	sum := sha256.Sum256([]byte(a.cfg.DirectoryURL))
	name := "account-" + hex.EncodeToString(sum[:6]) + ".key"
	key, err := a.loadAccountKey(ctx, name)
	if !errors.Is(err, ErrNotExist) {
		return key, err // found, or unreadable: never replace a key that may exist
	}
	held, release, err := a.store.Lock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("account key lock: %w", err)
	}
	defer release()
	if key, err := a.loadAccountKey(held, name); !errors.Is(err, ErrNotExist) {
		return key, err // another instance created it meanwhile
	}
	signer, err := generateKey(ECDSAP256)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, err
	}
	if err := a.store.Put(held, name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0); err != nil {
		return nil, fmt.Errorf("store account key: %w", err)
	}
	return signer, nil
}

func (a *ACME) loadAccountKey(ctx context.Context, name string) (crypto.Signer, error) {
	data, err := a.store.Get(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("account key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("account key %s: not PEM", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("account key %s: %w", name, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("account key %s: not a signing key", name)
	}
	return signer, nil
}

// encodeKeyPair is the stored form of a certificate: PEM key, then chain.
func encodeKeyPair(key crypto.Signer, chain [][]byte) ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	buf := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for _, der := range chain {
		buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return buf, nil
}

// obtain orders, validates and stores a certificate for host, under the
// host's issuance lock. Whoever waited for the lock first looks at what the
// holder stored: a certificate that is not due yet is served, not ordered
// again. So N instances order once, and a renewal happens once.
func (a *ACME) obtain(ctx context.Context, host string) error {
	key := a.certKey(host)
	held, release, err := a.store.Lock(ctx, key)
	if err != nil {
		return fmt.Errorf("issuance lock for %s: %w", host, err)
	}
	defer release()
	ctx = held
	if c, err := a.loadStored(ctx, host); err == nil && a.renewInFor(c) > 0 {
		a.install(host, c)
		a.log.Info("acme: certificate stored by another instance loaded", "host", host, "not_after", c.Leaf.NotAfter)
		return nil
	} else if err != nil && !errors.Is(err, ErrNotExist) {
		a.log.Warn("acme: stored certificate unusable; ordering a new one", "host", host, "err", err)
	}
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
	certKey, err := generateKey(a.cfg.KeyType)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{DNSNames: []string{host}}, certKey)
	if err != nil {
		return fmt.Errorf("certificate request for %s: %w", host, err)
	}
	chain, _, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return fmt.Errorf("finalize order for %s: %w", host, err)
	}
	data, err := encodeKeyPair(certKey, chain)
	if err != nil {
		return err
	}
	cert, err := ParseKeyPair(data, data, []string{host}, time.Now())
	if err != nil {
		return fmt.Errorf("issued certificate for %s: %w", host, err)
	}
	// Served even if storing fails: the order is spent either way. The
	// error still counts, so the next attempt stores one.
	a.install(host, cert)
	if err := a.store.Put(ctx, key, data, 0); err != nil {
		a.log.Error("acme: issued certificate not stored; other instances cannot load it", "host", host, "err", err)
	}
	a.log.Info("acme: certificate issued", "host", host, "not_after", cert.Leaf.NotAfter)
	return nil
}

// challengeTTL is how long a published challenge answer lives if the
// instance that published it dies before removing it.
const challengeTTL = 10 * time.Minute

// Storage keys of challenge answers. They contain "/", which DirStorage
// never maps to a file: answers live in memory (or Redis) only.
func httpChallengeKey(token string) string { return "challenge/http-01/" + token }
func alpnChallengeKey(host string) string  { return "challenge/tls-alpn-01/" + host }

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
	if strings.HasPrefix(host, "*.") {
		prefs = []string{ChallengeDNS01} // the only one CAs offer for a wildcard
	}
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
	// Answers are removed with a context of their own: the order's may be
	// cancelled already.
	cleanup := func(f func(context.Context) error) {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := f(cctx); err != nil {
			a.log.Warn("acme: challenge answer not removed", "host", host, "challenge", chal.Type, "err", err)
		}
	}
	switch chal.Type {
	case ChallengeHTTP01:
		resp, err := client.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		k := httpChallengeKey(chal.Token)
		if err := a.store.Put(ctx, k, []byte(resp), challengeTTL); err != nil {
			return fmt.Errorf("publish http-01 answer for %s: %w", host, err)
		}
		defer cleanup(func(c context.Context) error { return a.store.Delete(c, k) })
	case ChallengeTLSALPN01:
		cert, err := client.TLSALPN01ChallengeCert(chal.Token, host)
		if err != nil {
			return err
		}
		signer, ok := cert.PrivateKey.(crypto.Signer)
		if !ok {
			return fmt.Errorf("tls-alpn-01 certificate for %s: key is not a signer", host)
		}
		data, err := encodeKeyPair(signer, cert.Certificate)
		if err != nil {
			return err
		}
		k := alpnChallengeKey(host)
		if err := a.store.Put(ctx, k, data, challengeTTL); err != nil {
			return fmt.Errorf("publish tls-alpn-01 answer for %s: %w", host, err)
		}
		defer cleanup(func(c context.Context) error { return a.store.Delete(c, k) })
	case ChallengeDNS01:
		value, err := client.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			return err
		}
		fqdn := challengeFQDN(z.Identifier.Value)
		if err := a.dns01.Provider.Present(ctx, fqdn, value); err != nil {
			return fmt.Errorf("dns-01 for %s: %w", host, err)
		}
		defer cleanup(func(c context.Context) error { return a.dns01.Provider.CleanUp(c, fqdn, value) })
		if err := a.dns01.awaitPropagation(ctx, fqdn, value); err != nil {
			return fmt.Errorf("dns-01 for %s: %w", host, err)
		}
	}
	if _, err := client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("%s challenge for %s: %w", chal.Type, host, err)
	}
	if _, err := client.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("%s challenge for %s: %w", chal.Type, host, err)
	}
	return nil
}

// challengeLookupTimeout bounds a challenge answer's lookup in a shared
// storage; it runs only for ACME validation requests.
const challengeLookupTimeout = 3 * time.Second

// challengeCert returns the TLS-ALPN-01 certificate pending for host, which
// any instance sharing the storage may have published. Only configured
// hosts are looked up: a random SNI costs no storage round trip.
func (a *ACME) challengeCert(ctx context.Context, host string) *tls.Certificate {
	if !a.hosts[host] {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, challengeLookupTimeout)
	defer cancel()
	data, err := a.store.Get(ctx, alpnChallengeKey(host))
	if err != nil {
		if !errors.Is(err, ErrNotExist) {
			a.log.Warn("acme: tls-alpn-01 answer lookup failed", "host", host, "err", err)
		}
		return nil
	}
	c, err := tls.X509KeyPair(data, data)
	if err != nil {
		a.log.Warn("acme: stored tls-alpn-01 answer unusable", "host", host, "err", err)
		return nil
	}
	return &c
}

// validToken reports whether s can be an ACME token (base64url, RFC 8555
// section 8.1); anything else is answered 404 without a lookup.
func validToken(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// httpChallenge returns the key authorization for an HTTP-01 token.
func (a *ACME) httpChallenge(ctx context.Context, token string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, challengeLookupTimeout)
	defer cancel()
	data, err := a.store.Get(ctx, httpChallengeKey(token))
	if err != nil {
		if !errors.Is(err, ErrNotExist) {
			a.log.Warn("acme: http-01 answer lookup failed", "err", err)
		}
		return "", false
	}
	return string(data), true
}

const challengePrefix = "/.well-known/acme-challenge/"

// HTTPHandler answers ACME HTTP-01 challenges of every ACME source and hands
// every other request to next (on :80, usually the redirect to HTTPS).
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := strings.CutPrefix(r.URL.Path, challengePrefix); ok {
			if validToken(token) {
				for _, a := range m.acme {
					if resp, ok := a.httpChallenge(r.Context(), token); ok {
						w.Header().Set("Content-Type", "text/plain")
						_, _ = w.Write([]byte(resp))
						return
					}
				}
			}
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
