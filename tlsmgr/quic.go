package tlsmgr

import "crypto/tls"

// QUICConfig is the TLS configuration of the HTTP/3 side of https
// listeners: the same certificates (GetCertificate, so the "only
// configured names" policy holds) and key exchanges as TLSConfig, but TLS
// 1.3 only, as QUIC requires (RFC 9001, section 4.2), and no ALPN of its
// own: the HTTP/3 server offers "h3" alone. ACME TLS-ALPN-01 validations
// arrive over TCP, never over QUIC.
func (m *Manager) QUICConfig() *tls.Config {
	c := m.TLSConfig()
	c.MinVersion = tls.VersionTLS13
	c.CipherSuites = nil // TLS 1.2 suites: meaningless for TLS 1.3
	c.NextProtos = nil
	return c
}
