// Package crlf detects CRLF injection: HTTP response splitting and header
// injection, and mail (SMTP) header and command injection. A value that
// carries a line break followed by a header field, an SMTP command or an
// HTTP start line changes the structure of the protocol message an
// application writes it into.
//
// Place in the request path: a detector of the waf stage, run on values
// that waf/decode has already decoded (so %0d%0a arrives as CR LF). What
// is specific to the protocols stays here: the header-field grammar (an
// RFC 9110 token, then ':'), the SMTP command and dot-termination lines,
// HTTP status and request lines, Redis protocol lines, and the Unicode
// characters whose low byte is CR or LF (U+010A, U+010D, U+560A, U+560D),
// which some servers truncate into a line break.
//
// Placement decides how a line break is read. In a query argument, a
// cookie, a header or a path a line break has no business at all, and any
// header-shaped line after it is injection. Form fields, JSON and bodies
// carry textareas, where paragraphs, pasted e-mails and "Note: …" lines
// are ordinary; there only an injection-shaped value counts: a short
// first line (the field's expected content) directly followed by a
// well-formed block of known header lines or SMTP commands.
package crlf

import (
	"unicode/utf8"

	"github.com/portcullis-waf/portcullis/waf/detect"
)

// Detector finds CRLF, HTTP header and mail header injection.
type Detector struct{}

// New returns the CRLF detector.
func New() *Detector { return &Detector{} }

// Class reports detect.HeaderInjection.
func (*Detector) Class() detect.Class { return detect.HeaderInjection }

// Detect reports the strongest finding in in.Value.
func (d *Detector) Detect(in detect.Input) (detect.Finding, bool) {
	var s scan
	return s.run(in)
}

const (
	maxFirstLine  = 100 // longest first line of an injection-shaped value
	maxBlockLines = 32  // header lines examined after the first break
)

type scan struct {
	v     string
	where detect.Where
	steps int
	best  detect.Finding
	found bool
}

func (s *scan) report(conf int, reason string, start, end int) {
	conf = min(conf, 100)
	if conf < 1 || (s.found && conf <= s.best.Confidence) {
		return
	}
	s.found = true
	s.best = detect.Finding{Class: detect.HeaderInjection, Detector: "crlf", Confidence: conf, Reason: reason, Start: start, End: end}
}

// singleLine reports whether values from w never legitimately hold a
// line break.
func singleLine(w detect.Where) bool {
	switch w {
	case detect.WhereQuery, detect.WhereCookie, detect.WhereHeader, detect.WherePath, detect.WhereArgName, detect.WhereFileName:
		return true
	}
	return false
}

// lineBreak reports whether v[i:] starts with a line break and its
// length: CR LF, LF, CR, and with unicode also the characters whose low
// byte is CR or LF (their pairs count as one break). evasive is true for
// the Unicode forms.
func lineBreak(v string, i int, unicode bool) (n int, evasive bool) {
	switch v[i] {
	case '\r':
		if i+1 < len(v) && v[i+1] == '\n' {
			return 2, false
		}
		return 1, false
	case '\n':
		return 1, false
	}
	if !unicode {
		return 0, false
	}
	n = uniBreak(v, i)
	if n == 0 {
		return 0, false
	}
	if m := uniBreak(v, i+n); m > 0 {
		n += m
	}
	return n, true
}

func uniBreak(v string, i int) int {
	if i+1 < len(v) && v[i] == 0xc4 && (v[i+1] == 0x8a || v[i+1] == 0x8d) {
		return 2 // U+010A, U+010D
	}
	if i+2 < len(v) && v[i] == 0xe5 && v[i+1] == 0x98 && (v[i+2] == 0x8a || v[i+2] == 0x8d) {
		return 3 // U+560A, U+560D
	}
	return 0
}

// nextBreak finds the next line break at or after i: its position and
// length, or len(v), 0.
func (s *scan) nextBreak(i int, unicode bool) (int, int, bool) {
	v := s.v
	for ; i < len(v); i++ {
		s.steps++
		c := v[i]
		if c == '\r' || c == '\n' || (unicode && (c == 0xc4 || c == 0xe5)) {
			if n, ev := lineBreak(v, i, unicode); n > 0 {
				return i, n, ev
			}
		}
	}
	return len(v), 0, false
}

func (s *scan) run(in detect.Input) (detect.Finding, bool) {
	v := in.Value
	s.v = v
	single := singleLine(in.Where)
	first, n, ev := s.nextBreak(0, single)
	if n == 0 {
		if single && len(v) <= 512 && s.classify(0, len(v)) == lineHTTPStart && !hasPrefixFold(v, "HTTP/") {
			// A whole request line in a parameter: the part of a
			// smuggled request that a later line break would start.
			s.report(72, "value is an HTTP request line (request smuggling probe)", 0, len(v))
			return s.best, true
		}
		if !single {
			s.unicodeHeaders()
		}
		if !s.found {
			return detect.Finding{}, false
		}
		return s.best, true
	}
	// Binary data (a decoded token, an upload) has CR and LF bytes that
	// no protocol line is built from: only text counts.
	if !textual(v) {
		s.steps += len(v)
		return detect.Finding{}, false
	}
	s.where = in.Where
	if single {
		s.singleLine(first, n, ev)
	} else {
		s.multiLine(first, n)
		s.unicodeHeaders()
	}
	if !s.found {
		return detect.Finding{}, false
	}
	return s.best, true
}

// singleLine judges every line after a break: a value that should have
// none.
func (s *scan) singleLine(brk, n int, evasive bool) {
	v := s.v
	for brk < len(v) {
		start := brk + n
		end, n2, ev2 := s.nextBreak(start, true)
		k := s.classify(start, end)
		conf, reason := 0, ""
		switch k {
		case lineHTTPStart:
			conf, reason = 95, "line break followed by an HTTP start line (response or request splitting)"
		case lineHTTPHeader:
			conf, reason = 92, "line break followed by an HTTP header field"
		case lineMailHeader:
			conf, reason = 90, "line break followed by a mail header field"
		case lineSMTP:
			conf, reason = 90, "line break followed by an SMTP command"
		case lineSMTPWeak, lineRedis:
			conf, reason = 75, "line break followed by a protocol command"
		case lineUnknownHeader:
			conf, reason = 72, "line break followed by a header field"
		case lineBlank:
			// CR LF CR LF and content: the rest is a response body.
			if n2 > 0 && end+n2 < len(v) {
				conf, reason = 85, "blank line followed by content (response splitting)"
				end = min(len(v), end+n2+64)
			} else {
				conf, reason = bareBreak(s.where)
			}
		default:
			conf, reason = bareBreak(s.where)
		}
		if evasive {
			// Maltese and Czech letters are not line breaks unless a
			// header or command follows them.
			if conf > 35 {
				conf += 3
				reason = "Unicode character that truncates to a line break, followed by a header or command"
			} else {
				conf = 0
			}
		}
		s.report(conf, reason, brk, end)
		brk, n, evasive = end, n2, ev2
		if n == 0 {
			return
		}
	}
}

// textual reports valid UTF-8 without control characters other than
// tab, CR and LF.
func textual(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
			return false
		}
	}
	return utf8.ValidString(v)
}

// bareBreak weighs a line break followed by nothing header-shaped: in a
// path, an argument name, a file name, a cookie or a header no client
// puts one; a query value may come from a GET form's textarea.
func bareBreak(w detect.Where) (int, string) {
	switch w {
	case detect.WherePath, detect.WhereArgName, detect.WhereFileName:
		return 80, "line break in a request path, argument name or file name"
	case detect.WhereCookie, detect.WhereHeader:
		return 55, "line break in a cookie or header value"
	}
	return 30, "line break in a single-line value"
}

// unicodeHeaders finds, in a textarea-like value, the Unicode characters
// that truncate to CR or LF directly followed by a known header field or
// SMTP command: letters of Czech, Maltese or Chinese text are not
// followed by "Bcc:".
func (s *scan) unicodeHeaders() {
	v := s.v
	for i := 0; i < len(v); i++ {
		s.steps++
		if v[i] != 0xc4 && v[i] != 0xe5 {
			continue
		}
		n := uniBreak(v, i)
		if n == 0 {
			continue
		}
		if m := uniBreak(v, i+n); m > 0 {
			n += m
		}
		start := i + n
		end := start
		for end < len(v) && v[end] != '\r' && v[end] != '\n' && uniBreak(v, end) == 0 && end-start < 256 {
			end++
		}
		switch s.classify(start, end) {
		case lineHTTPHeader, lineMailHeader, lineSMTP:
			s.report(85, "Unicode character that truncates to a line break, followed by a header or command", i, end)
			return
		case lineUnknownHeader:
			// "en嘍嘊X-Injected: 1": as after a CR LF, a one-word
			// value followed by an extension header field.
			if oneToken(v[:i]) && extensionHeader(v[start:end]) {
				s.report(78, "Unicode character that truncates to a line break, after a one-word value, followed by a header field", i, end)
				return
			}
		case lineBlank:
			// "foo嘍嘊嘍嘊QUIT": a one-word value, a blank line, then
			// SMTP commands.
			if m := uniBreak(v, start); m > 0 && oneToken(v[:i]) {
				if m2 := uniBreak(v, start+m); m2 > 0 {
					m += m2
				}
				ls := start + m
				le := ls
				for le < len(v) && v[le] != '\r' && v[le] != '\n' && uniBreak(v, le) == 0 && le-ls < 256 {
					le++
				}
				s.steps += le - ls
				if k := s.classify(ls, le); k == lineSMTP || k == lineSMTPWeak {
					s.report(78, "Unicode characters that truncate to a blank line after a one-word value, then SMTP commands", i, le)
					return
				}
			}
			// "/account嘍嘊嘍嘊<html>…": a redirect target, a blank
			// line, then markup that becomes the response body.
			if m := uniBreak(v, start); m > 0 && i <= maxFirstLine && pathLike(v[:i]) {
				if m2 := uniBreak(v, start+m); m2 > 0 {
					m += m2
				}
				if c := start + m; c < len(v) && v[c] == '<' {
					s.report(80, "path followed by Unicode characters that truncate to a blank line, then markup (response splitting)", i, min(len(v), c+64))
					return
				}
			}
		}
		i = start - 1
	}
}

// multiLine judges a textarea-like value: only an injection-shaped value
// (a short first line, then a header block) or SMTP command sequences.
func (s *scan) multiLine(first, n int) {
	v := s.v
	// A redirect target or path followed by a blank line and markup:
	// the rest becomes the response body.
	if first <= maxFirstLine && pathLike(v[:first]) {
		if b, m, _ := s.nextBreak(first+n, false); b == first+n && m > 0 {
			if c := b + m; c < len(v) && v[c] == '<' {
				s.report(80, "path or URL followed by a blank line and markup (response splitting)", first, min(len(v), c+64))
			}
		}
	}
	if first <= maxFirstLine {
		firstKind := s.classify(0, first)
		if firstKind != lineHTTPHeader && firstKind != lineMailHeader && firstKind != lineUnknownHeader {
			// The block after the first break: header lines up to a
			// blank line or the end, nothing else.
			start := first + n
			end, n2, _ := s.nextBreak(start, false)
			k := s.classify(start, end)
			token := oneToken(v[:first])
			if token && k == lineBlank && n2 > 0 {
				// "foo\r\n\r\nQUIT": a one-word value, a blank line
				// ending the header block it lands in, then commands.
				if e2, _, _ := s.nextBreak(end+n2, false); s.classify(end+n2, e2) == lineSMTP || s.classify(end+n2, e2) == lineSMTPWeak {
					s.report(75, "one-word value, a blank line, then SMTP commands", first, e2)
				}
			}
			if token && k == lineUnknownHeader && extensionHeader(v[start:end]) {
				// "en\r\nX-Injected: 1": a one-word value (a language,
				// a name) followed by a header field named the way
				// extension headers are (X-…, Foo-Bar).
				s.report(75, "one-word value followed by an injected header field", first, end)
			}
			if k == lineHTTPHeader || k == lineMailHeader || k == lineSMTP || k == lineHTTPStart {
				wellFormed := true
				blockEnd := end
				for lines := 0; n2 > 0 && lines < maxBlockLines; lines++ {
					ls := end + n2
					le, m, _ := s.nextBreak(ls, false)
					lk := s.classify(ls, le)
					if lk == lineBlank {
						break
					}
					if lk == lineOther {
						wellFormed = false
						break
					}
					blockEnd = le
					end, n2 = le, m
				}
				if wellFormed {
					conf, reason := 85, "short value followed by injected header fields"
					switch k {
					case lineSMTP:
						conf, reason = 85, "short value followed by injected SMTP commands"
					case lineHTTPStart:
						// Developers paste requests into support forms.
						conf, reason = 60, "short value followed by an HTTP start line"
					}
					s.report(conf, reason, first, blockEnd)
					return
				}
				s.report(35, "line break followed by a header-shaped line in text", first, end)
			}
		}
	}
	// SMTP transactions anywhere: MAIL FROM and RCPT TO, or a command
	// followed by DATA, in one value.
	strong, weak := 0, 0
	firstAt := -1
	end := len(v)
	for brk, m := first, n; m > 0; {
		start := brk + m
		e, m2, _ := s.nextBreak(start, false)
		switch s.classify(start, e) {
		case lineSMTP:
			strong++
			if firstAt < 0 {
				firstAt = brk
			}
			end = e
		case lineSMTPWeak:
			weak++
			end = e
		}
		brk, m = e, m2
	}
	if strong >= 2 || (strong >= 1 && weak >= 1) {
		s.report(80, "value carries an SMTP command sequence", firstAt, end)
	}
}

// pathLike reports an empty first line, a path or a URL: what a
// redirect or location field holds.
func pathLike(l string) bool {
	if l == "" {
		return true
	}
	if l[0] == '/' {
		return true
	}
	for k := 0; k+2 < len(l) && k < 10; k++ {
		if l[k] == ':' && l[k+1] == '/' && l[k+2] == '/' {
			return true
		}
	}
	return false
}

// lineKind is what a line looks like.
type lineKind uint8

const (
	lineOther lineKind = iota
	lineBlank
	lineHTTPHeader    // a header field with a known HTTP name
	lineMailHeader    // a header field with a known mail name
	lineUnknownHeader // token ':' with an unknown name
	lineSMTP          // MAIL FROM:, RCPT TO:, HELO, EHLO, AUTH…
	lineSMTPWeak      // DATA, QUIT, RSET, "." alone
	lineHTTPStart     // HTTP/1.1 200 OK, GET /x HTTP/1.1
	lineRedis         // RESP array or bulk length, dangerous inline command
)

// tchar is the RFC 9110 token alphabet.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func (s *scan) classify(a, b int) lineKind {
	v := s.v
	if a >= b {
		return lineBlank
	}
	line := v[a:b]
	// Header field: token ':'.
	k := 0
	for k < len(line) && k < 64 && tchar[line[k]] {
		k++
	}
	s.steps += k
	if k > 0 && k < len(line) && line[k] == ':' {
		var buf [32]byte
		if k <= len(buf) {
			for j := 0; j < k; j++ {
				c := line[j]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				buf[j] = c
			}
			name := string(buf[:k])
			if httpHeader(name) {
				return lineHTTPHeader
			}
			if mailHeader(name) {
				return lineMailHeader
			}
		}
		return lineUnknownHeader
	}
	return s.command(line)
}

// smtpAuth reports an SMTP AUTH command: "AUTH", one space, a SASL
// mechanism name (upper-case letters, digits, '-', '_'; RFC 4422), then
// the end or a space and the initial response. PAM configuration lines
// ("auth      sufficient pam_unix.so") are not one.
func smtpAuth(line string) bool {
	if !hasPrefixFold(line, "AUTH ") {
		return false
	}
	k := 5
	for k < len(line) && k < 5+20 && (line[k] >= 'A' && line[k] <= 'Z' || isDigit(line[k]) || line[k] == '-' || line[k] == '_') {
		k++
	}
	return k > 5 && (k == len(line) || line[k] == ' ')
}

func (s *scan) command(line string) lineKind {
	s.steps += min(len(line), 16)
	switch {
	case hasPrefixFold(line, "MAIL FROM:"), hasPrefixFold(line, "RCPT TO:"),
		hasPrefixFold(line, "HELO "), hasPrefixFold(line, "EHLO "), smtpAuth(line),
		hasPrefixFold(line, "VRFY "), hasPrefixFold(line, "EXPN "), line == "STARTTLS":
		return lineSMTP
	case line == "DATA", line == "QUIT", line == "RSET", line == "NOOP", line == ".":
		return lineSMTPWeak
	case hasPrefixFold(line, "HTTP/1.") || hasPrefixFold(line, "HTTP/2 "):
		if len(line) >= 12 && isDigit(line[9]) && isDigit(line[10]) && isDigit(line[11]) {
			return lineHTTPStart
		}
		if len(line) >= 10 && line[6] == ' ' && isDigit(line[7]) && isDigit(line[8]) && isDigit(line[9]) {
			return lineHTTPStart
		}
	}
	// Request line: METHOD SP target SP HTTP/d.d
	m := 0
	for m < len(line) && m < 10 && line[m] >= 'A' && line[m] <= 'Z' {
		m++
	}
	if m >= 3 && m < len(line) && line[m] == ' ' && isMethod(line[:m]) && hasSuffixHTTPVersion(line) {
		return lineHTTPStart
	}
	// Redis: RESP "*<n>" and "$<n>" lines, inline commands that take
	// over a server.
	if len(line) >= 2 && len(line) <= 6 && (line[0] == '*' || line[0] == '$') && allDigits(line[1:]) {
		return lineRedis
	}
	if hasPrefixFold(line, "FLUSHALL") || hasPrefixFold(line, "CONFIG SET ") || hasPrefixFold(line, "SLAVEOF ") ||
		hasPrefixFold(line, "REPLICAOF ") || hasPrefixFold(line, "MODULE LOAD ") {
		if line[0] >= 'A' && line[0] <= 'Z' {
			return lineRedis
		}
	}
	return lineOther
}

func isMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT":
		return true
	}
	return false
}

func hasSuffixHTTPVersion(line string) bool {
	n := len(line)
	return n >= 9 && line[n-9] == ' ' && line[n-8:n-3] == "HTTP/" && isDigit(line[n-3]) && line[n-2] == '.' && isDigit(line[n-1])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !(i == 0 && s[i] == '-') {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, p string) bool {
	if len(s) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		a, b := s[i], p[i]
		if a >= 'a' && a <= 'z' {
			a -= 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

func httpHeader(n string) bool {
	switch n {
	case "set-cookie", "set-cookie2", "location", "content-type", "content-length", "transfer-encoding",
		"refresh", "content-disposition", "content-security-policy", "content-security-policy-report-only",
		"x-xss-protection", "access-control-allow-origin", "access-control-allow-credentials",
		"access-control-allow-headers", "access-control-allow-methods", "access-control-expose-headers",
		"link", "cache-control", "host", "cookie", "authorization", "proxy-authorization", "connection",
		"upgrade", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
		"x-frame-options", "strict-transport-security", "content-encoding", "expect", "range", "referer",
		"origin", "user-agent", "accept", "te", "trailer", "keep-alive", "x-original-url", "x-rewrite-url",
		"etag", "last-modified", "vary", "pragma", "expires", "server", "x-powered-by", "www-authenticate",
		"x-content-type-options", "x-accel-redirect", "x-sendfile", "x-http-method-override":
		return true
	}
	return false
}

func mailHeader(n string) bool {
	switch n {
	case "bcc", "cc", "to", "from", "subject", "reply-to", "sender", "return-path", "mime-version",
		"content-transfer-encoding", "x-mailer", "message-id", "in-reply-to", "references", "received",
		"x-priority", "dkim-signature", "errors-to", "disposition-notification-to", "resent-to", "resent-bcc":
		return true
	}
	return false
}

// oneToken: a short value without blanks, with a letter or digit, what a
// select box, a language or a name field holds. Punctuation alone is not
// one: in the printable runs of a binary body (protobuf) a tag byte such
// as '*' or '"' is followed by a length byte that happens to be CR or LF.
func oneToken(l string) bool {
	if l == "" || len(l) > 64 {
		return false
	}
	alnum := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == ' ' || c == '\t' {
			return false
		}
		if c|0x20 >= 'a' && c|0x20 <= 'z' || c >= '0' && c <= '9' || c >= 0x80 {
			alnum = true
		}
	}
	return alnum
}

// extensionHeader: a header line whose name has a hyphen between two
// letters (X-Injected, X-Forwarded-For), as no sentence's "Note:" does.
func extensionHeader(line string) bool {
	colon := -1
	for i := 0; i < len(line) && i < 64; i++ {
		if line[i] == ':' {
			colon = i
			break
		}
	}
	if colon < 5 {
		return false // "P-S:": too short a name to tell
	}
	for i := 1; i+1 < colon; i++ {
		if line[i] == '-' && isLetter(line[i-1]) && isLetter(line[i+1]) {
			return true
		}
	}
	return false
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
