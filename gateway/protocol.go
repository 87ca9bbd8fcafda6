package gateway

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/proxy"
	"github.com/portcullis-waf/portcullis/respond"
	"github.com/portcullis-waf/portcullis/waf"
	"github.com/portcullis-waf/portcullis/wire"
)

// protocolGuard is the last stage before the proxy. It answers a request
// that the gateway condemned as malformed (after the WAF has inspected it, so
// the record names the rules as well as the protocol problem): a condemned
// request is never forwarded. It also:
//   - forwards nothing for a request its client already cancelled (an HTTP/2
//     stream reset): the upstream would work for nobody;
//   - answers "OPTIONS *" itself, after the stages (filters, rule engine,
//     audit) have seen it, with 200 and no body, as net/http did before any
//     of them could: the request asks about the server the client talks to,
//     which is Portcullis, not about any resource an upstream has, and an
//     asterisk target is a code path applications rarely expect;
//   - hands the proxy only the request trailers the rule engine judged
//     (waf.InspectedTrailers), less those a trailer must not carry and any
//     client-address claim (proxy.ForwardableTrailers). Trailers that arrive
//     after the body went upstream uninspected are never forwarded.
func protocolGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := audit.FromContext(r.Context())
		if status := respond.Condemned(r.Context()); status != 0 {
			respond.Error(w, r, status, entry.ID)
			return
		}
		if r.Context().Err() != nil {
			entry.Fail(audit.StageProtocol, waf.CancelledReason(r, "forwarding"))
			entry.Status = 499 // nginx's "client closed request"
			return
		}
		if r.Method == http.MethodOptions && r.RequestURI == "*" {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
		var trailers http.Header
		if t, ok := waf.InspectedTrailers(r.Context()); ok {
			trailers = proxy.ForwardableTrailers(t)
		}
		if r.Trailer != nil || trailers != nil {
			r = r.WithContext(r.Context()) // a copy: the request is the caller's
			r.Trailer = trailers
		}
		next.ServeHTTP(w, r)
	})
}

// condemn checks r for protocol problems before any stage runs. A request
// that net/http refused (see package wire) or that breaks the protocol checks
// is blocked in its audit entry and condemned: the stages still inspect it,
// and it is answered with 400 (431 for an oversized head, 405 for CONNECT)
// by whichever stage answers first.
func condemn(r *http.Request, entry *audit.Entry) *http.Request {
	status, reason := 0, ""
	if rej := rejectedFrom(r.Context()); rej != nil {
		// net/http's own reason is often just "Bad Request"; our checks on
		// the leniently parsed head can usually say more.
		status, reason = rej.answerStatus(), "refused by the HTTP parser: "+rej.reason
		switch rej.status {
		case wire.StatusHeadTimeout:
			// A slowloris client, or one that stopped mid-head: named, so
			// that it is not taken for a malformed request.
			reason = "request head not received within " + rej.headTimeout
		case http.StatusRequestURITooLong:
			reason = "request line longer than server.max_header_bytes allows"
		default:
			if problem := protocolProblem(r); problem != "" {
				reason = problem + " (" + reason + ")"
			}
		}
	} else if problem := framingProblem(r); problem != "" {
		status, reason = http.StatusBadRequest, problem
	} else if problem := protocolProblem(r); problem != "" {
		status, reason = http.StatusBadRequest, problem
	} else if r.Method == http.MethodConnect {
		// A reverse proxy has nothing to tunnel to. Forwarded, a CONNECT
		// would reach the application as "CONNECT /", and a 2xx answer
		// would turn the connection into a raw pipe past every stage. It
		// is refused whatever the WAF mode, as nginx does.
		status, reason = http.StatusMethodNotAllowed, "CONNECT is not served: Portcullis is a reverse proxy, not a tunnel"
	}
	if status == 0 {
		return r
	}
	entry.Block(audit.StageProtocol, reason)
	return r.WithContext(respond.Condemn(r.Context(), status))
}

// pathProblem refuses paths that different parsers read differently. The
// router uses the decoded, cleaned path; the rules see the decoded path; the
// upstream gets the raw one. Dot segments, encoded slashes and backslashes
// are where those three disagree ("/static/..%2Fapi" routes as /api but an
// upstream may serve it as a static file, or the reverse), so such requests
// are refused rather than guessed at. Browsers never send them.
func pathProblem(r *http.Request) string {
	if r.URL == nil || r.Method == http.MethodConnect || r.URL.Opaque != "" {
		return ""
	}
	// RawPath is only kept when decoding loses information, as with %2F.
	if raw := strings.ToLower(r.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") {
		return "encoded slash or backslash in the path"
	}
	switch {
	case strings.Contains(r.URL.Path, "\\"):
		return "backslash in the path"
	case strings.ContainsRune(r.URL.Path, 0):
		return "NUL byte in the path"
	}
	if hasDotSegment(r.URL.Path) {
		return "dot segment in the path"
	}
	return ""
}

func hasDotSegment(p string) bool {
	for len(p) > 0 {
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i+1:]
		} else {
			p = ""
		}
		// "..;" and ".;" (with or without parameters after the ';') are dot
		// segments to servlet containers, which strip path parameters
		// before resolving: "/public/..;/admin" is /admin to Tomcat.
		if seg == "." || seg == ".." || strings.HasPrefix(seg, ".;") || strings.HasPrefix(seg, "..;") {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// framingProblem reads the raw head of an HTTP/1 request (package wire),
// where the framing facts net/http normalises away are still visible:
// net/http deletes Content-Length when Transfer-Encoding is present, merges
// identical Content-Length lines, and ignores Transfer-Encoding in HTTP/1.0
// (reading the body by Content-Length, or as empty). A front end that frames
// such a request differently from Portcullis lets the bytes it takes for
// one request's body become another request here, or the reverse (request
// smuggling, CL.TE and TE.CL desync), so they are refused (RFC 9112,
// section 6.3) and the connection closed. A head wire could not observe
// (which should not happen) is refused when the request has a body, since
// that is exactly where the facts matter.
func framingProblem(r *http.Request) string {
	if r.ProtoMajor != 1 {
		return ""
	}
	f, onWire := wire.RawFraming(r.Context())
	switch {
	case !onWire:
		return ""
	case !f.Observed:
		if len(r.TransferEncoding) > 0 || r.ContentLength > 0 {
			return "request head not observed whole; its framing cannot be verified"
		}
	case f.TransferEncodings > 0 && f.ContentLengths > 0:
		return "both Transfer-Encoding and Content-Length"
	case f.ContentLengths > 1 && f.ContentLengthsDiffer:
		return "conflicting Content-Length headers"
	case f.ContentLengths > 1:
		return "more than one Content-Length header"
	case f.TransferEncodings > 0 && r.ProtoMinor == 0:
		return "Transfer-Encoding in an HTTP/1.0 request"
	}
	return ""
}

// rejection marks a request that net/http refused before any handler ran
// (see package wire).
type rejection struct {
	status int
	reason string
	// headTimeout names the setting and value that bound the head's
	// arrival, for a head that did not arrive in time.
	headTimeout string
}

type rejectedKey struct{}

func rejectedFrom(ctx context.Context) *rejection {
	r, _ := ctx.Value(rejectedKey{}).(*rejection)
	return r
}

// answerStatus keeps the statuses that tell the client what went wrong: 431
// (header fields too large), 414 (request line too long), 408 (the head did
// not arrive in time); every other refusal is a plain 400.
func (r *rejection) answerStatus() int {
	switch r.status {
	case http.StatusRequestHeaderFieldsTooLarge, http.StatusRequestURITooLong, wire.StatusHeadTimeout:
		return r.status
	}
	return http.StatusBadRequest
}

// headTimeoutSetting names what bounds the arrival of a request head:
// read_header_timeout, or read_timeout when that is 0 (as net/http does).
func headTimeoutSetting(header, whole time.Duration) string {
	if header > 0 {
		return "server.read_header_timeout (" + header.String() + ")"
	}
	if whole > 0 {
		return "server.read_timeout (" + whole.String() + ")"
	}
	return "the server's timeouts"
}

// validHost accepts a DNS name or IPv4 address with an optional port, or a
// bracketed IPv6 literal with an optional port. net/http also lets '%' and
// other bytes through, which no real host name contains (CRS 920270/920274
// probe with them). Written out by hand: it runs on every request.
func validHost(h string) bool {
	name := h
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 2 {
			return false
		}
		for i := 1; i < end; i++ {
			if c := h[i]; !(isHex(c) || c == ':' || c == '.') {
				return false
			}
		}
		return validPort(h[end+1:])
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !validPort(h[i:]) {
			return false
		}
		name = h[:i]
	}
	if name == "" || name[0] == '.' || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// validPort accepts "" or ":" followed by 1 to 5 digits.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	return p[0] == ':' && len(p) >= 2 && len(p) <= 6 && isDigits(p[1:])
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// protocolProblem names the first protocol violation in r, or returns "".
func protocolProblem(r *http.Request) string {
	// HTTP/1's request line is split at spaces before anything else runs,
	// so neither a space in the method nor in the target can reach here
	// over HTTP/1; HTTP/2's :method and :path are free strings that the
	// server only checks for CR, LF and NUL. Forwarded over HTTP/1.1
	// unchanged, ":method GET /admin?" with ":path /public" would be the
	// request line "GET /admin? /public HTTP/1.1": routed and recorded as
	// /public, read by a lenient upstream as /admin.
	if !httpguts.ValidHeaderFieldName(r.Method) { // a method is a token, as a field name is
		return "invalid method"
	}
	if hasSpaceOrCTL(r.RequestURI) {
		return "space or control character in the request target"
	}
	if strings.Contains(r.RequestURI, "#") {
		return "fragment in the request target"
	}
	if problem := pathProblem(r); problem != "" {
		return problem
	}
	if r.Host == "" && len(r.Header.Values("Host")) > 0 {
		return "empty Host header"
	}
	if r.Host != "" && !validHost(r.Host) {
		return "invalid Host header"
	}
	if r.Method == http.MethodConnect {
		if _, port, err := net.SplitHostPort(r.RequestURI); err != nil || port == "" {
			return "CONNECT target is not host:port"
		}
	}
	if cts := r.Header.Values("Content-Type"); len(cts) > 1 {
		return "more than one Content-Type header"
	}
	if cls := r.Header.Values("Content-Length"); len(cls) > 1 {
		return "more than one Content-Length header"
	} else if len(cls) == 1 && !isDigits(cls[0]) {
		return "invalid Content-Length header"
	}
	if len(r.TransferEncoding) > 0 && r.Header.Get("Content-Length") != "" {
		return "both Transfer-Encoding and Content-Length"
	}
	return ""
}

// hasSpaceOrCTL reports whether s holds a byte that cannot be part of a
// request target: a space, a control character or DEL.
func hasSpaceOrCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
