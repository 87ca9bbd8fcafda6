package proxy

import "net/http"

// ForwardableTrailers returns the request trailer fields that may go to the
// upstream: t without the fields a trailer must not carry (RFC 9110,
// section 6.5.1: framing, routing, connection management, authentication,
// request modifiers and payload processing), and without any field that
// claims something about the client or the original request (its address,
// protocol or URL; Portcullis alone sets those, and an upstream that merges
// trailers into headers would believe them; client_ip.header can only name
// X-Forwarded-For or Forwarded, both among them). It returns nil when
// nothing is left. t is not changed.
func ForwardableTrailers(t http.Header) http.Header {
	var out http.Header
	for k, vs := range t {
		k = http.CanonicalHeaderKey(k)
		if len(vs) == 0 || trailerForbidden[k] || isSpoofable(k) {
			continue
		}
		if out == nil {
			out = http.Header{}
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// trailerForbidden are the fields no request trailer may carry.
var trailerForbidden = map[string]bool{
	// framing and connection management
	"Content-Length": true, "Transfer-Encoding": true, "Trailer": true, "Te": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Upgrade": true,
	"Http2-Settings": true,
	// routing and request modifiers
	"Host": true, "Expect": true, "Max-Forwards": true, "Range": true, "If-Range": true,
	"If-Match": true, "If-None-Match": true, "If-Modified-Since": true, "If-Unmodified-Since": true,
	"Cache-Control": true, "Pragma": true,
	// authentication and state
	"Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	// payload processing
	"Content-Type": true, "Content-Encoding": true, "Content-Range": true,
	// what Portcullis sets itself
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Request-Id": true,
}

func isSpoofable(k string) bool {
	for _, h := range spoofableHeaders {
		if k == h {
			return true
		}
	}
	return false
}
