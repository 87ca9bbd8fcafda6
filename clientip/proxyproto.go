package clientip

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pires/go-proxyproto"
)

// DefaultProxyHeaderTimeout bounds how long a new connection may take to
// send (or not send) its PROXY header when ProxyProtocolListener is given no
// timeout.
const DefaultProxyHeaderTimeout = 5 * time.Second

// errProxyTransport refuses PROXY headers that carry no TCP client: a UDP or
// Unix-socket source has no address later stages could use.
var errProxyTransport = errors.New("clientip: PROXY header names a non-TCP source")

// ProxyProtocolListener wraps ln so that connections from trusted peers may
// start with a PROXY protocol header (v1 or v2), whose source address then
// becomes the connection's RemoteAddr, and so http.Request.RemoteAddr and
// the Peer that Resolve sees. Place it directly on the TCP listener, below
// TLS: the load balancer sends the header before the TLS handshake.
//
//   - From a trusted peer the header is optional: a connection without one
//     (the balancer's own health check) keeps the peer's address. A header
//     with a LOCAL command also keeps it. A header naming a UDP or Unix
//     source, or a malformed one, fails the connection.
//   - From any other peer a PROXY header is refused: the connection's first
//     Read fails, and net/http and crypto/tls then close it without writing
//     a byte. A plain connection works as usual.
//
// Security: a trusted peer must be one that always sends the header itself,
// such as an L4 balancer with PROXY protocol on. A trusted peer that relays
// raw client bytes without a header of its own lets its clients send one and
// name any address. Trust is decided per connection from the socket's peer
// address; a peer that is not an IP address (a Unix socket) is untrusted.
// Validate trusted with New first: this function cannot return an error, it
// ignores invalid prefixes.
//
// headerTimeout bounds how long the header may take to arrive; <= 0 means
// DefaultProxyHeaderTimeout. Header detection happens on the connection's
// first Read (or RemoteAddr call), not in Accept, so a slow client never
// stalls the accept loop; the timeout also applies to untrusted peers,
// because telling "no header" from "header not yet complete" needs the first
// bytes.
func ProxyProtocolListener(ln net.Listener, trusted []netip.Prefix, headerTimeout time.Duration) net.Listener {
	if headerTimeout <= 0 {
		headerTimeout = DefaultProxyHeaderTimeout
	}
	trust := newTrustSet(trusted)
	return &proxyproto.Listener{
		Listener: ln,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			// Never an error: an error would close the connection, and a
			// peer we cannot classify is simply untrusted.
			if a, ok := netAddrIP(o.Upstream); ok && trust.contains(a) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
		ValidateHeader:    validateProxyHeader,
		ReadHeaderTimeout: headerTimeout,
	}
}

// validateProxyHeader accepts LOCAL headers (no address: the peer stays the
// client), TCP over IPv4/IPv6, and PROXY with an unspecified family, which
// the spec says means "use the real connection endpoints".
func validateProxyHeader(h *proxyproto.Header) error {
	if h.Command.IsLocal() || h.TransportProtocol.IsUnspec() {
		return nil
	}
	if h.TransportProtocol == proxyproto.TCPv4 || h.TransportProtocol == proxyproto.TCPv6 {
		if src, ok := h.SourceAddr.(*net.TCPAddr); ok && src.IP != nil {
			return nil
		}
	}
	return errProxyTransport
}

// netAddrIP extracts the IP of a socket address.
func netAddrIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return normalize(ap.Addr()), ap.Addr().IsValid()
	case nil:
		return netip.Addr{}, false
	}
	ip, _, ok := parsePeer(a.String())
	return ip, ok
}
