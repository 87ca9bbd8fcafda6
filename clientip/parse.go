package clientip

import (
	"net/netip"
	"strings"
)

// The walkers below read untrusted text. They look at each byte a bounded
// number of times and do not allocate (bar netip interning an IPv6 zone
// before we drop it): they run on every request from a trusted proxy, and
// the header is as long as the client likes, up to the server's header
// limit.

// step is what one list element tells the walk.
type step int

const (
	stepSkip step = iota // empty element: ignore it
	stepAddr             // an address: trusted → keep walking, else the client
	stepStop             // malformed, unknown or obfuscated: stop the walk
)

// walker carries the walk's state: the nearest trusted hop so far.
type walker struct {
	r    *Resolver
	last Client
}

// visit applies one element; it reports whether the walk is over.
func (w *walker) visit(st step, a netip.Addr, port int) bool {
	switch st {
	case stepSkip:
		return false
	case stepStop:
		return true
	}
	c := Client{Addr: a, Port: port, Peer: w.last.Peer, ViaProxy: true}
	w.last = c
	return !w.r.trust.contains(a)
}

// walkXFF walks X-Forwarded-For lines, right to left; several lines are one
// list, concatenated in order (RFC 9110 section 5.3).
func (r *Resolver) walkXFF(peer Client, lines []string) Client {
	w := walker{r: r, last: peer}
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		for more := true; more; {
			var elem string
			s, elem, more = cutLast(s, ',', false)
			st, a, port := xffElement(elem)
			if w.visit(st, a, port) {
				return w.last
			}
		}
	}
	return w.last
}

// walkForwarded walks the for= parameters of Forwarded lines, right to left.
func (r *Resolver) walkForwarded(peer Client, lines []string) Client {
	w := walker{r: r, last: peer}
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		for more := true; more; {
			var elem string
			s, elem, more = cutLast(s, ',', true)
			st, a, port := forwardedElement(elem)
			if w.visit(st, a, port) {
				return w.last
			}
		}
	}
	return w.last
}

// xffElement classifies one X-Forwarded-For element.
func xffElement(s string) (step, netip.Addr, int) {
	s = trimOWS(s)
	if s == "" {
		return stepSkip, netip.Addr{}, 0
	}
	a, port, ok := parseNode(s)
	if !ok {
		return stepStop, netip.Addr{}, 0
	}
	return stepAddr, a, port
}

// forwardedElement classifies one Forwarded element
// ("for=192.0.2.1;proto=https;by=10.0.0.1") by its for= parameter. An
// element without for= tells nothing about the client and stops the walk,
// like for=unknown; so does a repeated for= (RFC 7239 section 4 forbids it)
// or a parameter without "=".
func forwardedElement(s string) (step, netip.Addr, int) {
	s = trimOWS(s)
	if s == "" {
		return stepSkip, netip.Addr{}, 0
	}
	var node string
	found := false
	for more := true; more; {
		var pair string
		s, pair, more = cutLast(s, ';', true)
		pair = trimOWS(pair)
		if pair == "" {
			continue
		}
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return stepStop, netip.Addr{}, 0
		}
		if !strings.EqualFold(trimOWS(name), "for") {
			continue
		}
		if found {
			return stepStop, netip.Addr{}, 0
		}
		found, node = true, trimOWS(value)
	}
	if !found {
		return stepStop, netip.Addr{}, 0
	}
	if len(node) >= 2 && node[0] == '"' && node[len(node)-1] == '"' {
		// A quoted-string. A valid node never contains a backslash, so
		// escapes are left in place and fail parseNode below.
		node = node[1 : len(node)-1]
	}
	a, port, ok := parseNode(node)
	if !ok {
		return stepStop, netip.Addr{}, 0
	}
	return stepAddr, a, port
}

// parseNode parses a node as RFC 7239 section 6 defines it, and as
// X-Forwarded-For writers spell it: "192.0.2.1", "192.0.2.1:4711",
// "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:4711", with or without a
// zone (which is dropped), with a decimal or obfuscated ("_abc") port. "unknown" and obfuscated
// names ("_hidden") are not addresses and report !ok, as does anything else.
// An unbracketed IPv6 address never has a port: "2001:db8::1:80" is the
// address 2001:db8::1:80.
func parseNode(s string) (netip.Addr, int, bool) {
	if s == "" {
		return netip.Addr{}, 0, false
	}
	var host, port string
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, 0, false
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return netip.Addr{}, 0, false
			}
			port = port[1:]
			if port == "" {
				return netip.Addr{}, 0, false
			}
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || !validZone(a.Zone()) {
			return netip.Addr{}, 0, false
		}
		n, ok := parsePort(port)
		return normalize(a), n, ok
	default:
		if a, err := netip.ParseAddr(s); err == nil {
			return normalize(a), 0, validZone(a.Zone())
		}
		i := strings.LastIndexByte(s, ':')
		if i < 0 || i == len(s)-1 {
			return netip.Addr{}, 0, false
		}
		host, port = s[:i], s[i+1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() {
			return netip.Addr{}, 0, false
		}
		n, ok := parsePort(port)
		return a, n, ok
	}
}

// validZone reports whether an IPv6 zone is spelled as RFC 6874 allows in
// a URI: unreserved characters and percent signs. netip accepts any byte
// (spaces, quotes), which no proxy writes; such an entry is malformed.
func validZone(z string) bool {
	for i := 0; i < len(z); i++ {
		c := z[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~%", c) >= 0) {
			return false
		}
	}
	return true
}

// parsePort parses a decimal port (0-65535) or an obfuscated one ("_abc",
// RFC 7239 obfport), which yields 0. An empty port is 0 too: the caller has
// already rejected "host:" with nothing after the colon.
func parsePort(s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	if s[0] == '_' {
		return 0, isObfuscated(s)
	}
	if len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, false
	}
	return n, true
}

// isObfuscated reports whether s is an RFC 7239 obfnode/obfport:
// "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// cutLast splits s at its last sep, returning what lies before it and the
// element after it; more is false when s had no sep (elem is then all of s
// and the list is exhausted). With quotes, a sep inside a quoted-string does
// not count.
//
// Scanning from the right is deliberate: the right end was written by our
// own proxies, the left end possibly by the client. An unbalanced quote the
// client sends therefore can only garble the client's own part, never the
// elements our proxies appended after it, which a left-to-right parser would
// swallow into the client's open quoted-string.
func cutLast(s string, sep byte, quotes bool) (before, elem string, more bool) {
	inQuote := false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if quotes && c == '"' && !escaped(s, i) {
			inQuote = !inQuote
			continue
		}
		if c == sep && !inQuote {
			return s[:i], s[i+1:], true
		}
	}
	return "", s, false
}

// escaped reports whether s[i] is preceded by an odd number of backslashes
// (a quoted-pair). Each run of backslashes precedes one byte, so the scans
// add up to one pass over s.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// trimOWS trims optional whitespace (space and tab, RFC 9110 section 5.6.3).
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
