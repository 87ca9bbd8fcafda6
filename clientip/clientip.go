// Package clientip decides the real client address of a request.
//
// Place in the request path: the first of the cheap stages, right after TLS
// (and, on listeners that enable it, after the PROXY protocol header was read
// by ProxyProtocolListener). Reputation lists, bans, rate limits, the WAF and
// the audit record all use the one address decided here, so getting it wrong
// either lets a client pick its own identity (spoofing past bans and limits)
// or blames a load balancer for everybody's traffic.
//
// # Trust model
//
// Nothing a client sends is believed by default. X-Forwarded-For and
// Forwarded (RFC 7239) are read only when the direct TCP peer is one of the
// configured trusted proxies; from anyone else the TCP peer is the client and
// the headers are ignored entirely, so a client that forges its own
// X-Forwarded-For changes nothing.
//
// When the peer is trusted, the header is walked from right to left, because
// each proxy appends the address it received the request from: the right-most
// entries were written by our own proxies and the left-most ones may have been
// written by the client. The client is the right-most address that is not
// itself a trusted proxy. If every entry is trusted, the left-most one is the
// client (a request from inside the proxy network).
//
// A malformed entry, "unknown", or an obfuscated identifier (for=_hidden) stops
// the walk, and the client is the nearest trusted hop: the trusted proxy that
// appended that entry (or the TCP peer itself when the entry is the
// right-most). We do not skip over such an entry, because whatever lies left
// of it was reported by a hop we cannot identify and so cannot trust; and we
// do not take the entry's neighbour, because that would again be an address
// nobody we trust vouched for. Attributing the request to the proxy is the
// safe failure: it can only merge clients, never let one choose an address.
// Empty list elements (", ,") are skipped, as RFC 9110 section 5.6.1 asks of
// list-valued fields.
//
// Exactly one header is consulted, chosen by configuration
// (x-forwarded-for by default, or forwarded). The other one is ignored even
// when present: a proxy appends to one of them only, so the other is entirely
// client-written and reading both would let a client choose which one counts.
//
// Addresses are normalised before use: IPv6 zones are stripped and
// IPv4-mapped IPv6 addresses (::ffff:192.0.2.1) become plain IPv4, both for
// the trust check and for the returned address, so later stages key on one
// spelling per client.
package clientip

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Header names accepted by New (case-insensitive).
const (
	// HeaderXForwardedFor selects X-Forwarded-For, the de-facto standard
	// written by nginx, HAProxy, cloud load balancers and CDNs. Default.
	HeaderXForwardedFor = "x-forwarded-for"
	// HeaderForwarded selects the standard Forwarded header (RFC 7239),
	// reading its for= parameters.
	HeaderForwarded = "forwarded"
)

// Client is the outcome of Resolve.
type Client struct {
	// Addr is the client address every later stage uses. It is the zero
	// Addr only when the remote address itself could not be parsed.
	Addr netip.Addr
	// Port is the client's source port, 0 if unknown (a forwarding header
	// that carried no port, or an obfuscated one).
	Port int
	// Peer is the direct TCP peer (after the PROXY protocol, if any).
	Peer netip.Addr
	// ViaProxy reports that Addr was taken from a forwarding header of a
	// trusted peer rather than being the TCP peer itself.
	ViaProxy bool
}

// Resolver decides client addresses. It is immutable once built and safe for
// concurrent use; a configuration reload builds a new one.
type Resolver struct {
	trust     trustSet
	forwarded bool // read Forwarded instead of X-Forwarded-For
}

// New returns a Resolver that believes forwarding headers only from peers in
// trusted. header is HeaderXForwardedFor (also the default when empty) or
// HeaderForwarded. An empty trusted list is valid and the safe default: every
// header claim is ignored and the TCP peer is the client.
//
// A prefix of length 0 (0.0.0.0/0, ::/0, or ::ffff:0:0/96, which is all of
// IPv4) is refused: it would trust every address, so any client could name
// its own address by sending the header.
func New(trusted []netip.Prefix, header string) (*Resolver, error) {
	var errs []error
	for i, p := range trusted {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("clientip: trusted proxy (item %d) is not a valid prefix", i+1))
		case normalizePrefix(p).Bits() == 0:
			errs = append(errs, fmt.Errorf("clientip: trusted proxy %s would trust every address, so any client could choose its own; list the proxies' own ranges", p))
		}
	}
	r := &Resolver{trust: newTrustSet(trusted)}
	switch strings.ToLower(header) {
	case "", HeaderXForwardedFor:
	case HeaderForwarded:
		r.forwarded = true
	default:
		errs = append(errs, fmt.Errorf("clientip: header %q is not %s or %s", header, HeaderXForwardedFor, HeaderForwarded))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// ParsePrefixes parses CIDRs as written in the configuration
// (trusted_proxies). A bare address is taken as a single host (/32 or /128);
// host bits set in a CIDR are cleared (10.1.2.3/8 means 10.0.0.0/8). Every
// bad item is reported, each naming its text and position (counted from 1).
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	var errs []error
	for i, s := range cidrs {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				if a.Zone() != "" {
					err = errors.New("zones are not allowed")
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("clientip: trusted proxy %q (item %d): %w", cidrs[i], i+1, err))
			continue
		}
		out = append(out, p.Masked())
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Trusted reports whether a is inside one of the trusted prefixes.
func (r *Resolver) Trusted(a netip.Addr) bool {
	return r.trust.contains(a)
}

// Resolve returns the client of a request. remoteAddr is
// http.Request.RemoteAddr ("ip:port", or a bare IP); h is the request's
// header as net/http delivers it (canonical keys).
//
// If remoteAddr cannot be parsed (a Unix socket listener), the returned
// Client is the zero value and its Addr is invalid: the caller must refuse
// the request rather than guess.
//
// Resolve does not allocate when the peer is not trusted, the common case
// for a listener facing the Internet directly.
func (r *Resolver) Resolve(remoteAddr string, h http.Header) Client {
	peer, port, ok := parsePeer(remoteAddr)
	if !ok {
		return Client{}
	}
	c := Client{Addr: peer, Port: port, Peer: peer}
	if !r.trust.contains(peer) {
		return c
	}
	if r.forwarded {
		return r.walkForwarded(c, h["Forwarded"])
	}
	return r.walkXFF(c, h["X-Forwarded-For"])
}

// parsePeer parses a RemoteAddr: "ip:port", "[ipv6]:port" or a bare IP.
func parsePeer(s string) (netip.Addr, int, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return normalize(ap.Addr()), int(ap.Port()), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return normalize(a), 0, true
	}
	return netip.Addr{}, 0, false
}

// normalize gives one spelling per address: no zone, IPv4-mapped IPv6 as
// IPv4. A zone names a local interface and means nothing to later stages.
func normalize(a netip.Addr) netip.Addr {
	return a.WithZone("").Unmap()
}

// trustSet is a list of prefixes split by family, so a lookup only scans
// prefixes that can match.
type trustSet struct {
	v4, v6 []netip.Prefix
}

// newTrustSet copies and normalises prefixes; invalid ones are dropped (New
// reports them).
func newTrustSet(prefixes []netip.Prefix) trustSet {
	var t trustSet
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = normalizePrefix(p)
		if p.Addr().Is4() {
			t.v4 = append(t.v4, p)
		} else {
			t.v6 = append(t.v6, p)
		}
	}
	return t
}

// normalizePrefix masks p, and turns an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) into the IPv4 prefix it describes, because
// addresses are unmapped before lookup.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked()
}

func (t *trustSet) contains(a netip.Addr) bool {
	a = normalize(a)
	list := t.v6
	if a.Is4() {
		list = t.v4
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
