package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/respond"
)

// The direct path (issue 14) forwards the requests that the fast path
// (fast.go) would carry without httputil.ReverseProxy in front of it: the
// request head is written to the upstream connection straight from the
// client's request, with the hop-by-hop, forwarding and spoofable headers
// left out as it goes and the X-Forwarded-* headers added, instead of
// cloning the request and its header map, deleting from the copy twice
// (ReverseProxy, then rewrite), setting the new values and having
// Request.Write sort and format the result. The response header timeout is
// a read deadline on the upstream connection instead of a timer and a
// context per attempt. On the uninspected path these were a quarter of the
// proxy's own CPU per request and half its allocations.
//
// The bytes sent and the answer to the client are those of the
// ReverseProxy path (TestDirectHeadMatchesReverseProxy compares them),
// which is why the direct path only takes what it does exactly alike:
//
//   - routes whose pool has only fast-path targets, balances on neither a
//     header nor a cookie (those read the forwarded request's headers), and
//     whose route edits no request header and is not a gRPC route;
//   - requests the fast path takes (no upgrade, no Expect, no trailers, a
//     body of known length up to fastBodyMax) whose Connection header names
//     nothing but keep-alive, close and TE (other names remove headers of
//     the forwarded request), and whose Host is plain ASCII without a zone.
//
// Everything else goes through ReverseProxy as before.

// directRoute reports whether the route's requests may take the direct path
// (see above; per request, takesDirect decides).
func directRoute(pool *Pool, cfg *config.RouteProxyConfig) bool {
	if pool == nil || cfg.GRPC || !cfg.RequestHeaders.Empty() || pool.hashHeader != "" || pool.hashCookie != "" || len(pool.targets) == 0 {
		return false
	}
	for _, t := range pool.targets {
		if t.fast == nil {
			return false
		}
	}
	return true
}

// takesDirect reports whether r can be forwarded on the direct path.
func (rt *Route) takesDirect(r *http.Request) bool {
	if !rt.direct || r.Method == http.MethodConnect || len(r.TransferEncoding) > 0 || len(r.Trailer) > 0 {
		return false
	}
	if r.ContentLength < 0 || r.ContentLength > fastBodyMax || r.ContentLength > 0 && (r.Body == nil || r.Body == http.NoBody) {
		return false
	}
	h := r.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 {
		return false
	}
	for _, v := range h["Connection"] {
		for len(v) > 0 {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			switch tok = textproto.TrimString(tok); {
			case tok == "", strings.EqualFold(tok, "keep-alive"), strings.EqualFold(tok, "te"):
			case strings.EqualFold(tok, "close"):
				if _, ok := h["Close"]; ok { // removed as hop-by-hop by ReverseProxy
					return false
				}
			default:
				return false
			}
		}
	}
	for i := 0; i < len(r.Host); i++ {
		if c := r.Host[i]; c >= 0x80 || c == '%' { // IDNA, zones: left to Request.Write
			return false
		}
	}
	return true
}

// directRun is one request on the direct path, allocated once.
type directRun struct {
	w     http.ResponseWriter
	query string    // the request's query, unparsable parameters removed
	url   url.URL   // of the current attempt
	vals  [5]string // values of the headers the proxy sets
}

// serveDirect forwards r on the direct path; it answers as ReverseProxy
// (with the route's Rewrite, ModifyResponse, ErrorHandler and BufferPool)
// would.
func (rt *Route) serveDirect(w http.ResponseWriter, r *http.Request) {
	d := &directRun{w: w, query: cleanQueryParams(r.URL.RawQuery)}
	res, err := rt.pool.roundTripDirect(r, &rt.opts, d)
	if err != nil {
		rt.fail(w, r, err)
		return
	}
	removeHopByHopHeaders(res.Header)
	_ = rt.modifyResponse(res) // never fails
	dst := w.Header()
	for k, vv := range res.Header {
		// ReverseProxy adds value by value (Header.Add); the names are
		// canonical already (net/textproto, validated edits). A name the
		// response does not have yet takes the response's slice, which
		// nothing else holds.
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
	announcedTrailers := len(res.Trailer)
	if announcedTrailers > 0 {
		keys := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	if err := copyDirect(w, res.Body, flushesAtOnce(res)); err != nil {
		defer res.Body.Close()
		// The response is half sent: abort the client connection so the
		// client sees a truncated answer rather than a complete-looking
		// one. Only a server can recover that abort; a handler called on
		// its own (tests with a recorder) just stops here.
		if r.Context().Value(http.ServerContextKey) == nil {
			log.Printf("proxy: response body copy to the client failed: %v", err)
			return
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, to fill res.Trailer
	if len(res.Trailer) > 0 {
		// Chunked, so that net/http does not compute a length for a
		// short body and the trailers go out.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announcedTrailers {
		for k, vv := range res.Trailer {
			for _, v := range vv {
				w.Header().Add(k, v)
			}
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			w.Header().Add(k, v)
		}
	}
}

// flushesAtOnce is ReverseProxy's flush interval of -1 (with the route's
// FlushInterval of 0, the only other value): server-sent events and
// responses of unknown length are flushed on every write.
func flushesAtOnce(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	if !containsFold(ct, "event-stream") { // cannot be text/event-stream: spare the parse
		return false
	}
	base, _, _ := mime.ParseMediaType(ct)
	return base == "text/event-stream"
}

// containsFold reports whether s contains the lower-case ASCII sub, in any
// case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// copyDirect is ReverseProxy's copyResponse with the route's buffer pool.
func copyDirect(w http.ResponseWriter, src io.Reader, flush bool) error {
	var rc *http.ResponseController
	if flush {
		// ReverseProxy sends the head at once when it flushes every
		// write, even before the first body byte.
		rc = http.NewResponseController(w)
		_ = rc.Flush()
	}
	bp := buffers.Get().(*[]byte) // the pool's own pointer back: Put(&b) would allocate one
	defer buffers.Put(bp)
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			log.Printf("proxy: reading the upstream response body: %v", rerr)
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if flush {
				_ = rc.Flush()
			}
			if werr != nil {
				return werr
			}
			if nr != nw {
				return io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// got1xx forwards an informational response (103 Early Hints) as
// ReverseProxy does.
func (d *directRun) got1xx(code int, header textproto.MIMEHeader) error {
	h := d.w.Header()
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	d.w.WriteHeader(code)
	clear(h) // WriteHeader does not for 1xx
	return nil
}

// roundTripDirect is roundTrip on the direct path.
func (p *Pool) roundTripDirect(r *http.Request, o *attemptOptions, d *directRun) (*http.Response, error) {
	return p.send(r, o, d)
}

// attemptDirect sends one copy of r to t on the direct path. sent reports
// whether the request, body included, was written.
func (p *Pool) attemptDirect(r *http.Request, t *target, body *replayBody, o *attemptOptions, d *directRun) (resp *http.Response, sent bool, err error) {
	wait := p.headerWait
	if o.headerWait > 0 {
		wait = o.headerWait
	}
	d.url = *r.URL
	d.url.RawQuery = d.query
	setTarget(&d.url, t.url)
	var src io.Reader
	if body != nil {
		src = body.view()
	}
	resp, sent, err = t.fast.roundTripDirect(r, d, src, wait)
	if err != nil {
		return nil, sent, err
	}
	t.served.Add(1)
	p.observe(t, resp.StatusCode)
	resp.Body.(*fastBody).release = t
	return resp, true, nil
}

// directSkip are the request headers the direct path does not copy: the
// hop-by-hop headers (ReverseProxy), those Request.Write writes itself or
// never, the forwarding headers ReverseProxy drops, the spoofable ones
// rewrite drops, and those rewrite sets.
var directSkip = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range hopHeaders {
		m[h] = true
	}
	for _, h := range []string{"Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer",
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", respond.RequestIDHeader} {
		m[h] = true
	}
	for _, h := range spoofableHeaders {
		m[h] = true
	}
	return m
}()

// hopHeaders are ReverseProxy's hop-by-hop headers.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// removeHopByHopHeaders is ReverseProxy's, for responses.
func removeHopByHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f) // canonical already
	}
}

// headerKV is one header of the forwarded request.
type headerKV struct {
	k  string
	vv []string
}

// directHeaders collects the headers of the forwarded request other than
// Host, User-Agent and Content-Length into kvs, sorted by name, checking
// names and values as the fast path checks the forwarded request's header
// map (Request.Write would put them on the wire unchecked): the client's
// headers ReverseProxy and rewrite keep, and the X-Forwarded-* set.
func (d *directRun) directHeaders(r *http.Request, kvs []headerKV) ([]headerKV, error) {
	for k, vv := range r.Header {
		if directSkip[k] && k != "Host" && k != "User-Agent" && k != "Content-Length" { // those three stay in ReverseProxy's copy
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errors.New("net/http: invalid header field name " + quote(k))
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errors.New("net/http: invalid header field value for " + quote(k))
			}
		}
		if !directSkip[k] {
			kvs = append(kvs, headerKV{k, vv})
		}
	}
	if !httpguts.ValidHeaderFieldValue(r.Host) {
		return nil, errors.New("net/http: invalid header field value for " + quote("X-Forwarded-Host"))
	}
	entry := audit.FromContext(r.Context())
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	d.vals = [...]string{entry.ClientIP, r.Host, proto, entry.ID, "trailers"}
	v := d.vals[:]
	kvs = append(kvs,
		headerKV{"X-Forwarded-For", v[0:1:1]}, headerKV{"X-Real-Ip", v[0:1:1]},
		headerKV{"X-Forwarded-Host", v[1:2:2]}, headerKV{"X-Forwarded-Proto", v[2:3:3]},
		headerKV{respond.RequestIDHeader, v[3:4:4]})
	if httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers") {
		// ReverseProxy tells the upstream that trailers pass.
		kvs = append(kvs, headerKV{"Te", v[4:5:5]})
	}
	// Insertion sort: a few dozen names, and no closure or interface.
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && kvs[j].k < kvs[j-1].k; j-- {
			kvs[j], kvs[j-1] = kvs[j-1], kvs[j]
		}
	}
	return kvs, nil
}

// writeHead writes the head of the forwarded request, byte for byte what
// ReverseProxy with the route's rewrite and Request.Write would: request
// line, Host, User-Agent, Content-Length, then kvs (directHeaders).
func (d *directRun) writeHead(bw *bufio.Writer, r *http.Request, kvs []headerKV, bodyLen int) error {
	// URL.RequestURI in pieces, without the string it would build.
	path, query := d.url.Opaque, ""
	if path == "" {
		if path = d.url.EscapedPath(); path == "" {
			path = "/"
		}
	} else if strings.HasPrefix(path, "//") {
		path = d.url.Scheme + ":" + path // as RequestURI
	}
	if d.url.ForceQuery || d.url.RawQuery != "" {
		query = d.url.RawQuery
	}
	// The gateway refuses these before any stage (protocolProblem); here
	// they are checked again because they would split the request line.
	if hasCTL(path) || hasCTL(query) || strings.IndexByte(query, ' ') >= 0 {
		return errors.New("proxy: space or control character in the request target")
	}
	if !httpguts.ValidHeaderFieldName(r.Method) { // a method is a token
		return errors.New("proxy: invalid method")
	}
	host := r.Host
	if host == "" {
		host = d.url.Host
	}
	if !httpguts.ValidHostHeader(host) {
		host = ""
	}
	host = removeZone(host)
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if d.url.ForceQuery || d.url.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	if ua := r.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		// ReverseProxy sets an empty one when there is none, so that
		// Request.Write sends none rather than Go's own.
		bw.WriteString("User-Agent: ")
		bw.WriteString(textproto.TrimString(ua[0]))
		bw.WriteString("\r\n")
	}
	if bodyLen > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(bodyLen), 10))
		bw.WriteString("\r\n")
	}

	for _, kv := range kvs {
		for _, v := range kv.vv {
			bw.WriteString(kv.k)
			bw.WriteString(": ")
			bw.WriteString(textproto.TrimString(v)) // validated: no line breaks to replace
			bw.WriteString("\r\n")
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// hasCTL reports whether s has an ASCII control character (Request.Write
// refuses them in the request target).
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// removeZone is Request.Write's: an IPv6 zone never leaves in a Host.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// cleanQueryParams is ReverseProxy's: a query with unparsable parameters
// is re-encoded without them.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// roundTripDirect is roundTrip for the direct path: r is the client's
// request, written by d; src is its body (nil for none), wait the response
// header timeout.
func (f *fastPath) roundTripDirect(r *http.Request, d *directRun, src io.Reader, wait time.Duration) (resp *http.Response, sent bool, err error) {
	var arr [40]headerKV // on the stack
	kvs, err := d.directHeaders(r, arr[:0])
	if err != nil {
		return nil, false, err
	}
	ctx := r.Context()
	for {
		fc, reused, err := f.get(ctx)
		if err != nil {
			return nil, false, err
		}
		var body []byte
		if src != nil {
			buf := fastBodies.Get().(*[]byte)
			defer fastBodies.Put(buf)
			if body, err = readBody(src, r.ContentLength, (*buf)[:0]); err != nil {
				f.put(fc) // unused: still good for the next request
				return nil, false, err
			}
			*buf = body
		}
		resp, sent, received, timedOut, err := f.exchangeDirect(fc, r, d, kvs, body, wait)
		if err == nil {
			return resp, true, nil
		}
		_ = fc.nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, sent, cerr
		}
		if timedOut {
			return nil, true, &headerTimeout{d: wait}
		}
		if reused && !received && src == nil {
			continue // see fastPath.roundTrip
		}
		return nil, sent, err
	}
}

// exchangeDirect writes r's head and body on fc and reads the response
// head, within wait once the request is written. timedOut reports that
// wait passed.
func (f *fastPath) exchangeDirect(fc *fastConn, r *http.Request, d *directRun, kvs []headerKV, body []byte, wait time.Duration) (resp *http.Response, sent, received, timedOut bool, err error) {
	ctx := r.Context()
	stop := context.AfterFunc(ctx, fc.abort)
	fc.lr.read = 0
	if err = d.writeHead(fc.bw, r, kvs, len(body)); err == nil && len(body) > 0 {
		_, err = fc.bw.Write(body)
	}
	if err != nil {
		stop()
		return nil, false, false, false, err
	}
	// Written whole, as the fast path's WroteRequest reports it: before
	// the flush.
	if err = fc.bw.Flush(); err != nil {
		stop()
		return nil, true, false, false, err
	}
	if wait > 0 {
		_ = fc.nc.SetReadDeadline(time.Now().Add(wait))
	}
	resp, received, err = f.readHead(fc, r, nil, d)
	if wait > 0 {
		if err != nil {
			timedOut = ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded)
		} else {
			_ = fc.nc.SetReadDeadline(time.Time{})
			if ctx.Err() != nil {
				// Canceled meanwhile: the abort may have come before the
				// line above undid it.
				fc.abort()
			}
		}
	}
	if err != nil {
		stop()
		return nil, true, received, timedOut, err
	}
	resp.Body = &fastBody{rc: resp.Body, fc: fc, f: f, stop: stop, reuse: !resp.Close}
	return resp, true, true, false, nil
}
