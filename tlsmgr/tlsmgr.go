// Package tlsmgr terminates TLS: its Listener runs the handshakes of an
// https listener, a Manager picks the certificate for each handshake by SNI
// and keeps certificates current, from one of three sources per host name:
// ACME (ordered, cached and renewed), PEM files (reloaded when they change
// on disk) or self-signed (development). Build assembles the sources from a
// Plan, which config.Config.Certificates derives from the configuration.
//
// ACME answers HTTP-01, TLS-ALPN-01 and DNS-01 challenges; DNS-01 (the only
// way to a wildcard certificate) publishes its TXT records through a
// DNSProvider: RFC 2136 dynamic updates or an operator's command. ACME state
// goes through a Storage: files in the state directory for one instance, or
// Redis for a cluster, where one instance orders each certificate under a
// lock and every instance answers the challenges and serves the result.
//
// Place in the request path: first, after the connection's admission
// (connlimit). A client's TLS handshake ends here; only then does a request
// exist for the gateway, which this package never imports: a connection
// that negotiated HTTP/2 is handed to a function the gateway passes in.
// Certificates are only ever obtained for host names that the
// configuration names: an unknown SNI gets a handshake failure (or the
// configured default certificate), never an ACME order, so nobody can spend
// the ACME account's rate limits.
//
// The TLS policy is Mozilla's "intermediate" profile (TLS 1.2 and 1.3, AEAD
// suites with forward secrecy) or "modern" (TLS 1.3 only); HTTP/2 is offered
// through ALPN. Go rotates session ticket keys itself every 24 hours.
package tlsmgr

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Policy names a TLS configuration profile.
type Policy string

// TLS profiles after Mozilla's server-side recommendations.
const (
	Intermediate Policy = "intermediate"
	Modern       Policy = "modern"
)

// Source provides the certificate of one or more host names.
type Source interface {
	// Certificate returns the current certificate for host (lower-case,
	// without port) or an error if it has none yet. A source that is still
	// obtaining its first certificate may wait, but not beyond ctx.
	Certificate(ctx context.Context, host string) (*tls.Certificate, error)
	// Start begins background work (renewal, file watching); Stop ends it.
	Start()
	Stop()
}

// Manager selects certificates by SNI. It is safe for concurrent use.
type Manager struct {
	policy   Policy
	log      *slog.Logger
	hosts    map[string]Source // exact names and "*.example.com"
	fallback Source            // for unknown SNI, or nil to refuse
	fallName string
	acme     []*ACME // for TLS-ALPN-01 challenge certificates
	stopOnce sync.Once
}

// NewManager returns a Manager for the host → source table. defaultHost, if
// not empty, names the host whose certificate answers an unknown SNI.
func NewManager(policy Policy, hosts map[string]Source, defaultHost string, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.Default()
	}
	if policy == "" {
		policy = Intermediate
	}
	if policy != Intermediate && policy != Modern {
		return nil, fmt.Errorf("tls policy must be intermediate or modern, got %q", policy)
	}
	m := &Manager{policy: policy, log: log, hosts: map[string]Source{}}
	seen := map[*ACME]bool{}
	for h, s := range hosts {
		m.hosts[strings.ToLower(h)] = s
		if a, ok := s.(*ACME); ok && !seen[a] {
			seen[a] = true
			m.acme = append(m.acme, a)
		}
	}
	if defaultHost != "" {
		s, ok := m.hosts[strings.ToLower(defaultHost)]
		if !ok {
			return nil, fmt.Errorf("default host %q has no certificate source", defaultHost)
		}
		m.fallback, m.fallName = s, strings.ToLower(defaultHost)
	}
	return m, nil
}

// Start starts every source's background work.
func (m *Manager) Start() {
	for _, s := range m.sources() {
		s.Start()
	}
}

// Stop stops every source's background work.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		for _, s := range m.sources() {
			s.Stop()
		}
	})
}

func (m *Manager) sources() []Source {
	seen := map[Source]bool{}
	var out []Source
	for _, s := range m.hosts {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// ErrUnknownHost is returned for an SNI that no site names.
var ErrUnknownHost = errors.New("no certificate for this server name")

// GetCertificate is for tls.Config.GetCertificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if isALPNChallenge(hello) {
		for _, a := range m.acme {
			if c := a.challengeCert(hello.Context(), name); c != nil {
				return c, nil
			}
		}
		return nil, fmt.Errorf("no pending TLS-ALPN-01 challenge for %q", name)
	}
	ctx := hello.Context()
	if s, host := m.lookup(name); s != nil {
		return s.Certificate(ctx, host)
	}
	if m.fallback != nil {
		return m.fallback.Certificate(ctx, m.fallName)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownHost, name)
}

// lookup finds the source for name: exact, then one-level wildcard.
func (m *Manager) lookup(name string) (Source, string) {
	if name == "" {
		return nil, ""
	}
	if s, ok := m.hosts[name]; ok {
		return s, name
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if s, ok := m.hosts["*."+parent]; ok {
			return s, "*." + parent
		}
	}
	return nil, ""
}

func isALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSProto
}

const acmeTLSProto = "acme-tls/1"

// TLSConfig returns the server configuration: certificates by SNI, the
// policy's versions and suites, HTTP/2 and the ACME TLS-ALPN-01 protocol.
func (m *Manager) TLSConfig() *tls.Config {
	c := &tls.Config{
		GetCertificate:   m.GetCertificate,
		NextProtos:       []string{"h2", "http/1.1", acmeTLSProto},
		MinVersion:       tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
		CipherSuites: []uint16{ // TLS 1.2 only; TLS 1.3 suites are not configurable and all good
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
	if m.policy == Modern {
		c.MinVersion = tls.VersionTLS13
	}
	return c
}

// RenewErrors returns, for hosts whose source orders certificates (ACME),
// the error of the last failed order that has not been followed by a
// success yet. For alerts: a renewal that keeps failing must be noticed
// long before the certificate expires.
func (m *Manager) RenewErrors() map[string]string {
	out := map[string]string{}
	for h, s := range m.hosts {
		if le, ok := s.(interface{ LastError(string) error }); ok {
			if err := le.LastError(h); err != nil {
				out[h] = err.Error()
			}
		}
	}
	return out
}

// Expiry returns the NotAfter of each host's current certificate, for
// metrics and alerts. Hosts without a certificate yet are absent; it never
// waits for one.
func (m *Manager) Expiry() map[string]time.Time {
	out := map[string]time.Time{}
	now, cancel := context.WithCancel(context.Background())
	cancel() // already done: sources answer with what they have
	for h, s := range m.hosts {
		if c, err := s.Certificate(now, h); err == nil && c != nil && c.Leaf != nil {
			out[h] = c.Leaf.NotAfter
		}
	}
	return out
}
