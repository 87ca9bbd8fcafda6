// Package ssrf detects server-side request forgery: URLs (and bare host
// values) that point a server-side fetch at loopback, private, link-local
// or cloud-metadata addresses, in any of the numeric forms URL parsers
// accept, or that use schemes made for talking to internal services
// (gopher://, dict://, ldap://, file://…).
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded. What is specific to URLs stays
// here: the WHATWG host parser's IPv4 forms (decimal 2130706433, octal
// 0177.0.0.1, hex 0x7f.1, short 127.1), IPv6 literals with embedded IPv4
// (mapped, compatible, NAT64, 6to4), the UTS #46 mapping that turns
// fullwidth and circled characters into ASCII host names, and the
// userinfo and fragment tricks ("http://evil@127.0.0.1",
// "http://127.0.0.1#@evil") on which parsers disagree. Addresses are
// classified with net/netip.
//
// Every URL in the value is parsed as a browser-grade URL parser would;
// where other parsers see another host (the part after an '@' beyond a
// '#' or '\'), that host is judged too, at a lower confidence. The
// parameter name and placement weigh the result: an OAuth redirect_uri of
// http://127.0.0.1 is how native applications log in (RFC 8252), an
// Origin of http://localhost:3000 is a developer at work, a bare
// "localhost" is an install wizard's database host.
package ssrf

import (
	"net/netip"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds URLs to internal addresses.
type Detector struct{}

// New returns the SSRF detector.
func New() *Detector { return &Detector{} }

// Class reports detect.SSRF.
func (*Detector) Class() detect.Class { return detect.SSRF }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

// maxURLs bounds the URLs judged per value.
const maxURLs = 64

type scan struct {
	v     string
	in    detect.Input
	steps int
	best  detect.Finding
	found bool
	prose bool
	text  bool // a multi-line message: every URL in it counts as prose
	lo    int  // start of the trimmed value
	// lenient: the URL being weighed is the value itself, in a place
	// where internal addresses are ordinary (see authority).
	lenient bool
	// rawPayload: the gopher URL being weighed carries a payload.
	rawPayload bool
	ctx        nameContext
	ctxOK      bool // ctx has been read from the name
}

// nameContext is what the variable name says about how the value is used.
type nameContext uint8

const (
	ctxPlain    nameContext = iota
	ctxHostish              // url, host, endpoint, webhook…: fetched or connected to
	ctxRedirect             // redirect_uri, next, return_to…: sent back to the browser
	ctxBrowser              // Origin, Referer: where the browser came from
	ctxHostHdr              // the Host header and its kin
)

func (s *scan) report(conf int, reason string, start, end int) {
	conf = min(conf, 100)
	if conf < 1 || (s.found && conf <= s.best.Confidence) {
		return
	}
	s.found = true
	s.best = detect.Finding{Class: detect.SSRF, Detector: "ssrf", Confidence: conf, Reason: reason, Start: start, End: end}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	s.v, s.in = v, in
	lo, hi := 0, len(v)
	for lo < hi && isSpace(v[lo]) {
		lo++
	}
	s.lo = lo
	for hi > lo && isSpace(v[hi-1]) {
		hi--
	}
	// Pre-filter: a URL needs "://" or ":\\" (or a leading "//"); a
	// bare host value starts with a digit, '[', '0x' or a letter and
	// has no inner space.
	colon, newline, words := false, false, 0
	for i := lo; i < hi; i++ {
		c := v[i]
		if c == ':' && i+1 < hi && (v[i+1] == '/' || v[i+1] == '\\') {
			colon = true
		} else if isSpace(c) {
			s.prose = true
			newline = newline || c == '\n'
			if i > lo && !isSpace(v[i-1]) {
				words++
			}
		}
	}
	// A multi-line text field with several words is a message or a code
	// listing: a URL in it is talked about, whatever quotes surround it.
	// (The words are counted as runs of non-space.)
	switch in.Where {
	case detect.WhereForm, detect.WhereQuery, detect.WhereJSON, detect.WhereXML:
		s.text = newline && words >= 4 || words >= 8
	case detect.WhereBody:
		// A raw body with many words is a document or a message (JSON
		// leaves are judged on their own, one value at a time).
		s.text = words >= 12
	}
	s.steps += len(v)
	leadingSlashes := hi-lo > 2 && (v[lo] == '/' || v[lo] == '\\') && (v[lo+1] == '/' || v[lo+1] == '\\')
	if !colon && !leadingSlashes && (s.prose || hi == lo) {
		return detect.Finding{}, false
	}
	if colon {
		urls := 0
		for i := lo; i < hi && urls < maxURLs; i++ {
			s.steps++
			if v[i] != ':' || i+1 >= hi || (v[i+1] != '/' && v[i+1] != '\\') {
				continue
			}
			a := schemeStart(v, lo, i)
			if a < 0 {
				continue
			}
			urls++
			i = s.url(a, i, hi) - 1
		}
	}
	if leadingSlashes {
		s.authority(lo, lo, lo+2, hi, "")
	}
	if !s.prose && !colon && !leadingSlashes {
		if c := webSchemeNoSlash(v, lo, hi); c > 0 {
			// "http:127.0.0.1": WHATWG reads a special scheme's
			// authority without slashes.
			s.url(lo, c, hi)
		} else {
			s.bareHost(lo, hi)
		}
	}
	if !s.found {
		return detect.Finding{}, false
	}
	return s.best, true
}

// webSchemeNoSlash returns the colon of a value that is "http:" or
// "https:" directly followed by a host, or -1.
func webSchemeNoSlash(v string, lo, hi int) int {
	for _, sc := range [...]string{"http", "https"} {
		c := lo + len(sc)
		if c+1 < hi && v[c] == ':' && equalFold(v[lo:c], sc) && (isAlnum(v[c+1]) || v[c+1] == '[') {
			return c
		}
	}
	return -1
}

// schemeStart finds the start of the scheme ending at v[colon], or -1.
func schemeStart(v string, lo, colon int) int {
	a := colon
	for a > lo && colon-a < 32 {
		c := v[a-1]
		if isAlnum(c) || c == '+' || c == '.' || c == '-' {
			a--
			continue
		}
		break
	}
	// The scheme starts with a letter; skip leading non-letters
	// ("x=1.http://…" ends up as "http").
	for a < colon && !isLetter(v[a]) {
		a++
	}
	if a == colon {
		return -1
	}
	return a
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool  { return isLetter(c) || isDigit(c) }

// Schemes and what they weigh.
type schemeKind uint8

const (
	schemeOther schemeKind = iota
	schemeWeb              // http, https, ws, wss, ftp: ordinary when public
	schemeFile             // file: local files whatever the host
	schemeRaw              // gopher, dict: raw bytes to any TCP service
	schemeDir              // ldap, ldaps, rmi, jndi-reachable directories
	schemeMisc             // tftp, sftp, netdoc, jar, smb
)

func classifyScheme(v string) schemeKind {
	var buf [16]byte
	if len(v) > len(buf) {
		return schemeOther
	}
	for i := 0; i < len(v); i++ {
		buf[i] = v[i] | 0x20
	}
	switch string(buf[:len(v)]) {
	case "http", "https", "ws", "wss", "ftp", "ftps":
		return schemeWeb
	case "file":
		return schemeFile
	case "gopher", "dict":
		return schemeRaw
	case "ldap", "ldaps", "ldapi", "rmi", "iiop", "corba":
		return schemeDir
	case "tftp", "sftp", "netdoc", "jar", "smb", "scp", "telnet", "ssh", "redis", "mysql", "postgres", "postgresql", "mongodb", "memcache", "memcached", "imap", "pop3", "smtp":
		return schemeMisc
	}
	return schemeOther
}

// url judges the URL whose scheme is v[a:colon]; it returns where the
// authority ends so the caller continues after it.
func (s *scan) url(a, colon, hi int) int {
	v := s.v
	kind := classifyScheme(v[a:colon])
	if kind == schemeOther {
		return colon + 1
	}
	if kind == schemeFile || equalFold(v[a:colon], "netdoc") {
		return s.fileURL(a, colon, hi)
	}
	// Slashes: WHATWG accepts any run of '/' and '\' after a special
	// scheme ("http:\\\\127.0.0.1", "http:/127.0.0.1").
	i := colon + 1
	for i < hi && (v[i] == '/' || v[i] == '\\') && i-colon <= 4 {
		i++
	}
	return s.authority(a, colon, i, hi, v[a:colon])
}

// fileURL judges a file: URL: one that names a file ("file:///etc/x",
// "file://host/share/x", "file:/x", "file:///C:/x") reads it.
func (s *scan) fileURL(a, colon, hi int) int {
	v := s.v
	i := colon + 1
	for i < hi && (v[i] == '/' || v[i] == '\\') {
		i++
	}
	e := i
	for e < hi && !isSpace(v[e]) && v[e] != '"' && v[e] != '\'' && v[e] != '<' && v[e] != '>' && v[e] != '`' && v[e] != ')' {
		e++
	}
	s.steps += e - colon
	name := 0
	for k := i; k < e; k++ {
		if isAlnum(v[k]) {
			name++
		}
	}
	if name < 2 || i == colon+1 && e == i {
		return max(e, colon+1)
	}
	inProse := s.prose
	if a > 0 && !s.text {
		switch v[a-1] {
		case '"', '\'', '`', '=', '(', '[', '{', ',', ';', '|':
			inProse = false
		}
	}
	s.lenient = false // no place holds file URLs by design
	s.report(s.adjust(85, false, inProse), "file: URL reads local files", a, e)
	return max(e, colon+1)
}

// authority judges the host of the URL whose authority starts at v[i];
// start is the start of the URL (for the evidence span). It returns the
// end of the authority.
func (s *scan) authority(start, colon, i, hi int, scheme string) int {
	v := s.v
	kind := schemeWeb
	if scheme != "" {
		kind = classifyScheme(scheme)
	}
	// WHATWG: the authority ends at '/', '\', '?', '#'; the host follows
	// the last '@'. A looser parser ends it at '/' or '?' only (so
	// "evil#@127.0.0.1" has host 127.0.0.1) and some take the first '@'.
	end := i
	for end < hi {
		c := v[end]
		if c == '/' || c == '\\' || c == '?' || c == '#' || isSpace(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' || c == 0 {
			break
		}
		end++
	}
	looseEnd := end
	for looseEnd < hi {
		c := v[looseEnd]
		if c == '/' || c == '?' || isSpace(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' || c == 0 {
			break
		}
		looseEnd++
	}
	s.steps += looseEnd - i
	urlEnd := looseEnd
	for urlEnd < hi && !isSpace(v[urlEnd]) && urlEnd-looseEnd < 256 {
		urlEnd++
	}
	hostStart := i
	for k := end - 1; k >= i; k-- {
		if v[k] == '@' {
			hostStart = k + 1
			break
		}
	}
	s.steps += end - i
	best := s.host(v[hostStart:end])
	differ := false
	// Parser differentials: the host after the last '@' of the loose
	// authority, and a userinfo that looks like host:port.
	if looseEnd > end {
		for k := looseEnd - 1; k >= end; k-- {
			if v[k] == '@' {
				h := v[k+1 : looseEnd]
				if c := s.host(h); c.conf > best.conf {
					best, differ = c, true
				}
				break
			}
		}
	}
	if hostStart > i {
		ui := v[i : hostStart-1]
		for k := 0; k < len(ui); k++ {
			if ui[k] == '@' {
				ui = ui[:k]
				break
			}
		}
		if c := s.host(ui); c.conf > best.conf {
			best, differ = c, true
		}
	}
	// A URL in a sentence is talk about an address; one in an
	// attribute, a JSON string or an assignment is a value to use.
	inProse := s.prose
	if start > 0 && !s.text {
		switch v[start-1] {
		case '"', '\'', '`', '=', '(', '[', '{', ',', ';', '|':
			inProse = false // an attribute, a string, an assignment
		}
	}
	// Leniency for redirect targets and browser headers covers the URL
	// the value is, not URLs inside it (a Referer whose query carries
	// one), and for a redirect only what looks like a login callback.
	if best.conf == 0 && kind != schemeRaw {
		return end // a public host: nothing to weigh
	}
	ctx := s.context()
	s.lenient = start == s.lo && (ctx == ctxBrowser || ctx == ctxHostHdr ||
		ctx == ctxRedirect && callbackPath(v[end:urlEnd]) && hostStart == i && !servicePort(v[hostStart:end]))
	// gopher://host/_DATA: the item selector '_' then the bytes the
	// client writes to the TCP connection, verbatim.
	s.rawPayload = kind == schemeRaw && end+2 < urlEnd && v[end] == '/' && v[end+1] == '_' && equalFold(scheme, "gopher")
	conf, reason := s.weigh(kind, best, differ, inProse)
	if conf > 0 {
		s.report(conf, reason, start, urlEnd)
	}
	return end
}

// hostClass is what a host names.
type hostClass uint8

const (
	hostPublic hostClass = iota
	hostMetadata
	hostLoopback
	hostUnspecified
	hostPrivate
	hostLinkLocal
	hostShared // 100.64/10, benchmarking, multicast, broadcast
	hostInternalName
	hostLocalName // *.local, *.internal: internal by convention
	hostInvalid
)

type hostVerdict struct {
	class      hostClass
	obfuscated bool // a numeric or Unicode form no ordinary link uses
	rebinding  bool // a public name that embeds an internal address
	conf       int  // the class's base weight, for comparing candidates
}

var classWeight = [...]int{
	hostPublic:       0,
	hostMetadata:     98,
	hostLoopback:     90,
	hostUnspecified:  88,
	hostPrivate:      80,
	hostLinkLocal:    80,
	hostShared:       55,
	hostInternalName: 85,
	hostLocalName:    50,
	hostInvalid:      0,
}

func (s *scan) verdict(c hostClass, obf, rebind bool) hostVerdict {
	w := classWeight[c]
	if w > 0 && obf {
		w += 5
	}
	return hostVerdict{class: c, obfuscated: obf, rebinding: rebind, conf: w}
}

// host classifies a host (with optional port).
func (s *scan) host(h string) hostVerdict {
	s.steps += len(h)
	if len(h) == 0 || len(h) > 253+8 {
		return hostVerdict{}
	}
	if h[0] != '[' && colons(h) >= 2 {
		return s.ipv6(h) // an unbracketed IPv6 literal in a bare value
	}
	if h[0] == '[' {
		end := -1
		for k := 1; k < len(h); k++ {
			if h[k] == ']' {
				end = k
				break
			}
		}
		if end < 0 {
			return hostVerdict{}
		}
		return s.ipv6(h[1:end])
	}
	// Cut the port.
	for k := len(h) - 1; k >= 0; k-- {
		if h[k] == ':' {
			h = h[:k]
			break
		}
		if !isDigit(h[k]) {
			break
		}
	}
	var buf [256]byte
	n, mapped, ok := mapHost(h, &buf)
	if !ok || n == 0 {
		return hostVerdict{}
	}
	name := buf[:n]
	for len(name) > 0 && name[len(name)-1] == '.' {
		name = name[:len(name)-1]
	}
	if len(name) == 0 {
		return hostVerdict{}
	}
	if ip, canonical, isIP := parseIPv4(name); isIP {
		return s.verdict(classify4(ip), !canonical || mapped, false)
	}
	if c := classifyName(name); c != hostPublic {
		return s.verdict(c, mapped, false)
	}
	// Wildcard DNS and rebinding names that embed an address:
	// 127.0.0.1.nip.io, 10-0-0-1.sslip.io, 7f000001.<id>.rbndr.us.
	if ip, ok := embeddedIPv4(name); ok {
		if c := classify4(ip); c != hostPublic {
			return s.verdict(c, true, true)
		}
	}
	return hostVerdict{}
}

// ipv6 classifies a bracketed literal (zone allowed, "%25" or "%").
func (s *scan) ipv6(h string) hostVerdict {
	for k := 0; k < len(h); k++ {
		if h[k] == '%' {
			h = h[:k]
			break
		}
	}
	addr, err := netip.ParseAddr(h)
	if err != nil || !addr.Is6() {
		return hostVerdict{}
	}
	if v4, ok := embedded4in6(addr); ok {
		return s.verdict(classify4(v4), true, false)
	}
	return s.verdict(classify6(addr), false, false)
}

// embedded4in6 extracts an IPv4 address carried in an IPv6 one: mapped
// (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::/96 and
// 64:ff9b:1::/48) and 6to4 (2002:AABB:CCDD::/48).
func embedded4in6(a netip.Addr) (uint32, bool) {
	b := a.As16()
	be := func(o int) uint32 { return uint32(b[o])<<24 | uint32(b[o+1])<<16 | uint32(b[o+2])<<8 | uint32(b[o+3]) }
	zero := func(from, to int) bool {
		for k := from; k < to; k++ {
			if b[k] != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case a.Is4In6():
		return be(12), true
	case zero(0, 12) && be(12) > 1: // ::a.b.c.d, not :: or ::1
		return be(12), true
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12):
		return be(12), true
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0x00 && b[5] == 0x01:
		return be(12), true
	case b[0] == 0x20 && b[1] == 0x02:
		return be(2), true
	}
	return 0, false
}

func classify6(a netip.Addr) hostClass {
	b := a.As16()
	switch {
	case a.IsLoopback():
		return hostLoopback
	case a.IsUnspecified():
		return hostUnspecified
	case b[0] == 0xfd && b[1] == 0x00 && b[2] == 0x0e && b[3] == 0xc2 && b[15] == 0x54 && isZero(b[4:15]):
		return hostMetadata // fd00:ec2::254, the AWS instance metadata service
	case a.IsPrivate():
		return hostPrivate
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return hostLinkLocal
	case a.IsMulticast():
		return hostShared
	}
	return hostPublic
}

func colons(h string) int {
	n := 0
	for k := 0; k < len(h); k++ {
		if h[k] == ':' {
			n++
		}
	}
	return n
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func classify4(ip uint32) hostClass {
	switch {
	case ip == 0xa9fea9fe || ip == 0xa9feaa02 || ip == 0x646464c8 || ip == 0xa9fea97b || ip == 0xc00000c0:
		// 169.254.169.254 (AWS, GCP, Azure, OCI…), 169.254.170.2 (ECS
		// task metadata), 100.100.100.200 (Alibaba), 169.254.169.123,
		// 192.0.0.192 (Oracle Cloud Classic).
		return hostMetadata
	case ip>>24 == 127:
		return hostLoopback
	case ip>>24 == 0:
		return hostUnspecified // 0.0.0.0/8 reaches the local host on Linux
	case ip>>24 == 10, ip>>20 == 0xac1, ip>>16 == 0xc0a8:
		return hostPrivate
	case ip>>16 == 0xa9fe:
		return hostLinkLocal
	case ip>>22 == 0x64<<2|1, ip>>17 == 0xc612>>1, ip>>28 == 0xe, ip == 0xffffffff:
		// 100.64/10 shared address space, 198.18/15, multicast, broadcast.
		return hostShared
	}
	return hostPublic
}

// parseIPv4 parses name as the WHATWG URL host parser does: one to four
// dot-separated parts, each decimal, octal (leading 0) or hex (0x), the
// last filling the remaining bytes. canonical is false for any form but
// four plain decimal parts.
func parseIPv4(name []byte) (ip uint32, canonical, ok bool) {
	var parts [4]uint64
	n := 0
	canonical = true
	start := 0
	for k := 0; k <= len(name); k++ {
		if k < len(name) && name[k] != '.' {
			continue
		}
		if n == 4 {
			return 0, false, false
		}
		p := name[start:k]
		val, plain, valid := parseIPv4Part(p)
		if !valid {
			return 0, false, false
		}
		canonical = canonical && plain
		parts[n] = val
		n++
		start = k + 1
	}
	if n != 4 {
		canonical = false
	}
	for k := 0; k < n-1; k++ {
		if parts[k] > 255 {
			return 0, false, false
		}
	}
	last := parts[n-1]
	if last >= 1<<(8*(5-n)) {
		return 0, false, false
	}
	for k := 0; k < n-1; k++ {
		ip |= uint32(parts[k]) << (8 * (3 - k))
	}
	ip |= uint32(last)
	return ip, canonical, true
}

func parseIPv4Part(p []byte) (val uint64, plain, ok bool) {
	if len(p) == 0 || len(p) > 34 {
		return 0, false, false
	}
	base := uint64(10)
	plain = true
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p, plain = 16, p[2:], false
	case len(p) >= 2 && p[0] == '0':
		base, p, plain = 8, p[1:], false
	}
	for _, c := range p {
		var d uint64
		switch {
		case isDigit(c):
			d = uint64(c - '0')
		case base == 16 && c|0x20 >= 'a' && c|0x20 <= 'f':
			d = uint64(c|0x20-'a') + 10
		default:
			return 0, false, false
		}
		if d >= base {
			return 0, false, false
		}
		val = val*base + d
		if val > 1<<32 {
			val = 1 << 32 // out of range either way; stop growing
		}
	}
	return val, plain, true
}

// classifyName classifies a lower-case host name.
func classifyName(name []byte) hostClass {
	switch string(name) {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "loopback",
		"localtest.me", "lvh.me", "vcap.me", "localh.st":
		return hostLoopback
	case "metadata.google.internal", "metadata.goog", "metadata", "instance-data",
		"instance-data.ec2.internal", "metadata.azure.com", "metadata.packet.net":
		return hostMetadata
	case "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local":
		return hostInternalName
	}
	switch {
	case hasSuffix(name, ".localhost"), hasSuffix(name, ".localtest.me"), hasSuffix(name, ".lvh.me"), hasSuffix(name, ".vcap.me"):
		return hostLoopback
	case hasSuffix(name, ".svc.cluster.local"), hasSuffix(name, ".cluster.local"):
		return hostInternalName
	case hasSuffix(name, ".internal"), hasSuffix(name, ".local"), hasSuffix(name, ".corp"), hasSuffix(name, ".lan"), hasSuffix(name, ".intranet"), hasSuffix(name, ".home.arpa"):
		return hostLocalName
	}
	return hostPublic
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := 0; k < len(a); k++ {
		if a[k]|0x20 != b[k]|0x20 {
			return false
		}
	}
	return true
}

func hasSuffix(b []byte, suf string) bool {
	return len(b) > len(suf) && string(b[len(b)-len(suf):]) == suf
}

// embeddedIPv4 finds an address embedded at the start of a longer name:
// four decimal labels ("127.0.0.1.nip.io"), one dashed label
// ("127-0-0-1.sslip.io") or one 8-digit hex label ("7f000001.x.rbndr.us").
func embeddedIPv4(name []byte) (uint32, bool) {
	// Four leading decimal labels.
	var ip uint32
	k, labels := 0, 0
	for labels < 4 {
		a := k
		for k < len(name) && isDigit(name[k]) && k-a < 4 {
			k++
		}
		if k == a || k >= len(name) || name[k] != '.' {
			break
		}
		val, _, ok := parseIPv4Part(name[a:k])
		if !ok || val > 255 {
			break
		}
		ip = ip<<8 | uint32(val)
		labels++
		k++
	}
	if labels == 4 && k < len(name) {
		return ip, true
	}
	// The first label, dashed or hex.
	end := 0
	for end < len(name) && name[end] != '.' {
		end++
	}
	if end == len(name) {
		return 0, false
	}
	first := name[:end]
	if dashed, ok := dashedIPv4(first); ok {
		return dashed, true
	}
	if len(first) == 8 {
		var x uint32
		for _, c := range first {
			switch {
			case isDigit(c):
				x = x<<4 | uint32(c-'0')
			case c >= 'a' && c <= 'f':
				x = x<<4 | uint32(c-'a'+10)
			default:
				return 0, false
			}
		}
		return x, true
	}
	return 0, false
}

func dashedIPv4(label []byte) (uint32, bool) {
	var ip uint32
	parts, a := 0, 0
	for k := 0; k <= len(label); k++ {
		if k < len(label) && label[k] != '-' {
			if !isDigit(label[k]) {
				return 0, false
			}
			continue
		}
		if k == a || k-a > 3 || parts == 4 {
			return 0, false
		}
		var val uint32
		for _, c := range label[a:k] {
			val = val*10 + uint32(c-'0')
		}
		if val > 255 {
			return 0, false
		}
		ip = ip<<8 | val
		parts++
		a = k + 1
	}
	return ip, parts == 4
}

// mapHost lower-cases h into buf and applies the part of UTS #46 that
// URL parsers use to turn look-alike characters into ASCII: fullwidth
// forms, circled and enclosed letters and digits, super- and subscript
// digits, mathematical digits, "⒈"-style digit-full-stops and the
// ideographic full stops. mapped is true when anything was mapped; ok is
// false for characters that are none of these (an IDN: not internal).
func mapHost(h string, buf *[256]byte) (n int, mapped, ok bool) {
	for i := 0; i < len(h); {
		c := h[i]
		if c < 0x80 {
			if n == len(buf) {
				return 0, false, false
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[n] = c
			n++
			i++
			continue
		}
		r, size := decodeRune(h[i:])
		i += size
		out, out2 := mapRune(r)
		if out == 0 {
			return 0, false, false
		}
		mapped = true
		if n+2 > len(buf) {
			return 0, false, false
		}
		buf[n] = out
		n++
		if out2 != 0 {
			buf[n] = out2
			n++
		}
	}
	return n, mapped, true
}

func mapRune(r rune) (byte, byte) {
	switch {
	case r >= 0xff01 && r <= 0xff5e: // fullwidth ASCII
		c := byte(r - 0xff01 + 0x21)
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		return c, 0
	case r == 0x3002 || r == 0xff61 || r == 0xfe52:
		return '.', 0
	case r >= 0x2460 && r <= 0x2468: // ①..⑨
		return byte('1' + r - 0x2460), 0
	case r == 0x24ea || r == 0x24ff: // ⓪ ⓿
		return '0', 0
	case r >= 0x24d0 && r <= 0x24e9: // ⓐ..ⓩ
		return byte('a' + r - 0x24d0), 0
	case r >= 0x24b6 && r <= 0x24cf: // Ⓐ..Ⓩ
		return byte('a' + r - 0x24b6), 0
	case r >= 0x2488 && r <= 0x2490: // ⒈..⒐ map to "1."…
		return byte('1' + r - 0x2488), '.'
	case r == 0x2070 || r == 0x2080:
		return '0', 0
	case r == 0xb9:
		return '1', 0
	case r == 0xb2 || r == 0xb3:
		return byte('2' + r - 0xb2), 0
	case r >= 0x2074 && r <= 0x2079:
		return byte('4' + r - 0x2074), 0
	case r >= 0x2081 && r <= 0x2089:
		return byte('1' + r - 0x2081), 0
	case r >= 0x1d7ce && r <= 0x1d7ff: // mathematical digits, five styles
		return byte('0' + (r-0x1d7ce)%10), 0
	}
	return 0, 0
}

// decodeRune decodes one UTF-8 sequence without the utf8 tables; invalid
// bytes decode as U+FFFD of length 1.
func decodeRune(s string) (rune, int) {
	c := s[0]
	switch {
	case c < 0xc0:
		return 0xfffd, 1
	case c < 0xe0 && len(s) >= 2 && s[1]&0xc0 == 0x80:
		return rune(c&0x1f)<<6 | rune(s[1]&0x3f), 2
	case c < 0xf0 && len(s) >= 3 && s[1]&0xc0 == 0x80 && s[2]&0xc0 == 0x80:
		return rune(c&0x0f)<<12 | rune(s[1]&0x3f)<<6 | rune(s[2]&0x3f), 3
	case c < 0xf8 && len(s) >= 4 && s[1]&0xc0 == 0x80 && s[2]&0xc0 == 0x80 && s[3]&0xc0 == 0x80:
		return rune(c&0x07)<<18 | rune(s[1]&0x3f)<<12 | rune(s[2]&0x3f)<<6 | rune(s[3]&0x3f), 4
	}
	return 0xfffd, 1
}

// weigh turns a scheme and host verdict into a confidence and reason.
func (s *scan) weigh(kind schemeKind, h hostVerdict, differ, prose bool) (int, string) {
	conf := h.conf
	reason := classReason[h.class]
	switch kind {
	case schemeFile:
		return 0, "" // judged in url(): the path, not the host, matters
	case schemeRaw:
		if conf == 0 {
			// To a public host: odd, but the internal targets are the
			// attack. A gopher URL that carries a payload is the
			// protocol-smuggling tool itself (its host may resolve to
			// an internal address), not a link anyone shares.
			if s.rawPayload {
				return s.adjust(75, true, prose), "gopher: URL carries raw bytes for a TCP service (protocol smuggling)"
			}
			return s.adjust(55, false, prose), "gopher:/dict: URL sends raw bytes to a TCP service"
		}
		conf = max(conf, 90) + 5
		reason = "gopher:/dict: URL to an internal address"
	case schemeDir:
		if conf == 0 {
			return 0, ""
		}
		conf += 5
	case schemeMisc:
		if conf == 0 {
			return 0, ""
		}
	}
	if conf == 0 {
		return 0, ""
	}
	if h.rebinding {
		reason = "host name embeds an internal address (wildcard DNS)"
	} else if h.obfuscated {
		reason = "URL to an internal address in an obfuscated form"
	}
	if differ {
		conf -= 15
		reason = "parsers disagree on the host: one reads an internal address"
	}
	return s.adjust(conf, h.class == hostMetadata || h.obfuscated, prose), reason
}

var classReason = [...]string{
	hostPublic:       "",
	hostMetadata:     "URL to a cloud metadata service",
	hostLoopback:     "URL to a loopback address",
	hostUnspecified:  "URL to the unspecified address (reaches the local host)",
	hostPrivate:      "URL to a private address",
	hostLinkLocal:    "URL to a link-local address",
	hostShared:       "URL to a shared, multicast or broadcast address",
	hostInternalName: "URL to an internal service name",
	hostLocalName:    "URL to a local-only host name",
	hostInvalid:      "",
}

// adjust weighs conf by the variable's use and the value's shape. strong
// findings (metadata, obfuscated forms) keep more of their weight where a
// loopback URL is ordinary.
func (s *scan) adjust(conf int, strong, prose bool) int {
	ctx := s.context()
	if !s.lenient && ctx != ctxHostish {
		ctx = ctxPlain
	}
	switch ctx {
	case ctxRedirect:
		// A redirect target is fetched by the browser, not the server;
		// native OAuth clients use loopback redirect URIs.
		if !strong {
			conf = min(conf, 45) - 10
		}
	case ctxBrowser, ctxHostHdr:
		if !strong {
			conf = min(conf, 40) - 10
		} else {
			conf -= 15
		}
	}
	if s.in.Where == detect.WhereHeader && ctx == ctxPlain {
		conf -= 10
	}
	if prose {
		conf -= 55
	}
	return conf
}

// servicePort reports a host:port whose port belongs to a service that
// speaks something other than a web application's login callback
// (Redis, Docker, SSH, databases, Consul, Elasticsearch, the kubelet…).
func servicePort(hostport string) bool {
	k := len(hostport)
	for k > 0 && isDigit(hostport[k-1]) {
		k--
	}
	if k == len(hostport) || k == 0 || hostport[k-1] != ':' {
		return false
	}
	port := 0
	for _, c := range hostport[k:] {
		port = port*10 + int(c-'0')
		if port > 65535 {
			return false
		}
	}
	switch port {
	case 21, 22, 23, 25, 53, 110, 111, 135, 139, 143, 389, 445, 465, 587, 636, 873, 993, 995,
		1433, 1521, 2049, 2375, 2376, 2379, 3306, 3389, 4369, 5432, 5672, 5900, 5984, 6379, 6443,
		7001, 8500, 9200, 9300, 10250, 11211, 15672, 27017, 50070:
		return true
	}
	return false
}

// callbackPath reports whether the rest of a URL (path, query) looks
// like where a login hands back: native OAuth clients listen on loopback
// for exactly that.
func callbackPath(rest string) bool {
	var buf [128]byte
	n := 0
	for k := 0; k < len(rest) && n < len(buf); k++ {
		c := rest[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	p := buf[:n]
	if n <= 1 {
		return true // "http://127.0.0.1:53682/" or no path at all
	}
	for _, w := range []string{"callback", "oauth", "auth", "redirect", "/cb", "signin", "login", "code="} {
		if contains(p, w) {
			return true
		}
	}
	return false
}

// bareHost judges a whole value that is a host with optional port and
// path but no scheme ("127.0.0.1:6379", "169.254.169.254/latest").
func (s *scan) bareHost(lo, hi int) {
	v := s.v
	end := lo
	dots, colons := 0, 0
	for end < hi && v[end] != '/' && v[end] != '?' && v[end] != '#' {
		c := v[end]
		switch {
		case c == '.':
			dots++
		case c == ':':
			colons++
		case isAlnum(c) || c == '-' || c == '[' || c == ']' || c == '%' || c >= 0x80:
		default:
			s.steps += end - lo
			return // not a host: "price_asc", "a b", "x=1"
		}
		end++
	}
	s.steps += end - lo
	if dots == 0 && colons == 0 && !singleLabelHost(v[lo:end]) {
		return
	}
	h := s.host(v[lo:end])
	if h.conf == 0 {
		return
	}
	// A bare number or short form is an address only where the
	// variable is one; elsewhere it is a count, an id, a version.
	dotted := h.class == hostMetadata || !h.obfuscated
	var conf int
	ctx := s.context()
	switch {
	case ctx == ctxHostish && h.class == hostMetadata:
		conf = 85
	case ctx == ctxHostish && h.obfuscated:
		conf = 70
	case ctx == ctxHostish:
		conf = 55
	case h.class == hostMetadata && dotted:
		conf = 70
	case dotted:
		conf = 30
	default:
		return
	}
	if h.class == hostLocalName || h.class == hostShared {
		conf -= 20
	}
	if ctx == ctxHostHdr || ctx == ctxBrowser {
		conf -= 30
	}
	s.report(conf, "host value names an internal address", lo, hi)
}

// singleLabelHost reports host values without dots that still name an
// address: a number (2130706433, 0x7f000001) or a well-known name.
func singleLabelHost(h string) bool {
	if h == "" {
		return false
	}
	if isDigit(h[0]) {
		return true
	}
	var buf [24]byte
	if len(h) > len(buf) {
		return false
	}
	for k := 0; k < len(h); k++ {
		buf[k] = h[k] | 0x20
	}
	switch string(buf[:len(h)]) {
	case "localhost", "metadata", "instance-data", "kubernetes", "ip6-localhost", "ip6-loopback", "loopback":
		return true
	}
	return false
}

// context reads the variable name once, when a finding needs it.
func (s *scan) context() nameContext {
	if !s.ctxOK {
		s.ctx, s.ctxOK = contextOf(s.in), true
	}
	return s.ctx
}

// contextOf reads the variable name: "ARGS:redirect_uri",
// "REQUEST_HEADERS:Origin", "JSON:webhook.url".
func contextOf(in detect.Input) nameContext {
	name := in.Name
	for k := len(name) - 1; k >= 0; k-- {
		if name[k] == ':' {
			name = name[k+1:]
			break
		}
	}
	var buf [64]byte
	n := 0
	for k := 0; k < len(name) && n < len(buf); k++ {
		c := name[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
	}
	lname := buf[:n]
	if in.Where == detect.WhereHeader {
		switch string(lname) {
		case "origin", "referer", "referrer":
			return ctxBrowser
		case "host", "x-forwarded-host", "x-forwarded-server", ":authority", "x-host":
			return ctxHostHdr
		}
	}
	for _, w := range redirectWords {
		if contains(lname, w) {
			return ctxRedirect
		}
	}
	for _, w := range hostWords {
		if contains(lname, w) {
			return ctxHostish
		}
	}
	// Short words count only as whole words of the name ("ip",
	// "server_ip", "img_src"), not inside others ("zip", "security").
	for a := 0; a < len(lname); {
		for a < len(lname) && !isAlnum(lname[a]) {
			a++
		}
		e := a
		for e < len(lname) && isAlnum(lname[e]) {
			e++
		}
		switch string(lname[a:e]) {
		case "ip", "uri", "src", "dest", "addr", "href":
			return ctxHostish
		case "next", "goto", "back", "ref":
			return ctxRedirect
		}
		a = e
	}
	return ctxPlain
}

// Words that mark a variable used as a redirect target (substring match).
var redirectWords = []string{"redirect", "return", "continue", "success", "cancel", "logout", "login"}

// Words that mark a variable the server fetches or connects to.
var hostWords = []string{"url", "host", "domain", "server", "endpoint", "target", "proxy", "hook", "callback", "remote", "upstream", "backend", "fetch", "feed", "link", "site", "image", "avatar", "address", "destination"}

func contains(b []byte, w string) bool {
	for k := 0; k+len(w) <= len(b); k++ {
		if string(b[k:k+len(w)]) == w {
			return true
		}
	}
	return false
}
