package wire

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// H2Conn is an HTTP/2 client connection (after TLS, before the HTTP/2
// server) that reads along with the server. The HTTP/2 server refuses some
// malformed requests before any handler runs: a header name or value the
// protocol forbids, a pseudo-header out of place, a connection-specific
// header such as Transfer-Encoding (the classic HTTP/2-to-HTTP/1 smuggling
// attempt), a bad :path or :authority, a header list over its limit. It
// answers those with a stream reset, its own 400 or 431, and the rule
// engine and the audit would never know.
//
// H2Conn decodes the header blocks the client sends, with its own HPACK
// decoder fed the same bytes, applies the server's checks with the server's
// limits and hands each request the server will refuse to Rejected, as Conn
// does for HTTP/1. The answer stays the server's: what Rejected writes is
// discarded. Rejected runs on the server's frame-reading goroutine, so a
// connection waits while its refused request is inspected; after
// maxRefusals refused requests the connection is closed, as HTTP/1 closes
// one after each.
//
// It only observes: where it cannot follow (an HPACK error, a frame the
// server kills the connection for) it stops reading along, and the server
// deals with the connection.
type H2Conn struct {
	*tls.Conn // keeps ConnectionState, which the HTTP/2 server asks for
	scan      h2Scanner
	abuse     h2Abuse // budgets against rapid reset and CONTINUATION floods (h2limits.go)
	// expectContinue is set once the client has sent a request with
	// "expect: 100-continue", which the HTTP/2 server removes from the
	// request before any handler sees it (see ExpectsContinue).
	expectContinue atomic.Bool
}

// maxRefusals is how many refused requests one HTTP/2 connection may send
// before it is closed.
const maxRefusals = 10

// errTooManyRefusals ends a connection after maxRefusals.
var errTooManyRefusals = fmt.Errorf("HTTP/2 connection closed after %d requests the server refused", maxRefusals)

// NewH2Conn wraps tc. maxHeaderBytes is the HTTP server's MaxHeaderBytes,
// from which the HTTP/2 server derives its header list limit. clients holds
// the per-client budgets shared with the server's other connections (nil:
// only this connection's); abused, if not nil, is told once when the
// connection is cut for abuse (see h2limits.go).
func NewH2Conn(tc *tls.Conn, maxHeaderBytes int, rejected Rejected, clients *H2Clients, abused func(H2Abuse)) *H2Conn {
	c := &H2Conn{Conn: tc}
	c.scan = newH2Scanner(maxHeaderBytes, func(fields []hpack.HeaderField, reason string) {
		answerRejectedH2(tc, fields, reason, rejected)
	})
	c.scan.expectContinue = &c.expectContinue
	c.abuse = newH2Abuse(clients, tc.RemoteAddr(), abused)
	c.scan.abuse = &c.abuse
	return c
}

type h2ConnKey struct{}

// H2Context is for the HTTP/2 server's base context (ServeConnOpts.Context):
// it lets handlers reach their H2Conn (ExpectsContinue).
func H2Context(ctx context.Context, c *H2Conn) context.Context {
	return context.WithValue(ctx, h2ConnKey{}, c)
}

// ExpectsContinue reports whether r's client waits for "100 Continue"
// before it sends the body: the server sends it when the handler first
// reads the body, so a stage that must judge the head first must not read
// before. Over HTTP/1 the Expect header says so (a list that contains
// "100-continue", as net/http reads it). The HTTP/2 server removes that
// header; there it is true for every request on a connection whose client
// has sent it, which the read-along noted.
func ExpectsContinue(r *http.Request) bool {
	if r.ProtoMajor == 2 {
		c, _ := r.Context().Value(h2ConnKey{}).(*H2Conn)
		return c != nil && c.expectContinue.Load()
	}
	return r.ProtoAtLeast(1, 1) && r.ContentLength != 0 && httpguts.HeaderValuesContainsToken(r.Header["Expect"], "100-continue")
}

func (c *H2Conn) Read(p []byte) (int, error) {
	if c.scan.refusals >= maxRefusals {
		return 0, errTooManyRefusals
	}
	if c.abuse.cut != nil {
		return 0, c.abuse.cut
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.scan.feed(p[:n])
	}
	return n, err
}

const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// HTTP/2 frame types and flags the scanner needs (RFC 9113, section 6).
const (
	frameHeaders      = 0x1
	frameRSTStream    = 0x3
	frameContinuation = 0x9
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
	frameHeaderLen    = 9
)

// The HTTP/2 server's limits (golang.org/x/net/http2 with its defaults,
// which the gateway does not change).
const (
	serverMaxFrameSize  = 1 << 20 // MaxReadFrameSize
	serverHPACKTable    = 4096    // MaxDecoderHeaderTableSize
	defaultHeaderBytes  = http.DefaultMaxHeaderBytes
	headerListSlack     = 10 * 32 // what it adds to MaxHeaderBytes: ten fields' overhead
	hpackFieldOverhead  = 32      // RFC 7541, section 4.1
	payloadPrefixMaxLen = 6       // pad length and priority of a HEADERS frame
)

// h2Scanner follows the client's side of an HTTP/2 connection frame by
// frame and decodes its header blocks as their bytes arrive, in whatever
// pieces the connection delivers them.
type h2Scanner struct {
	listLimit uint32 // the server's header list limit
	refused   func(fields []hpack.HeaderField, reason string)
	refusals  int
	// expectContinue, if set, is set when a request asks for 100-continue.
	expectContinue *atomic.Bool
	// abuse, if set, counts streams and bounds header blocks.
	abuse       *h2Abuse
	blockFrames int // frames of the open header block
	blockBytes  int // and their payload bytes

	stopped bool
	preface int // bytes of the client preface still to come

	head   [frameHeaderLen]byte
	headN  int
	typ    byte
	flags  byte
	stream uint32
	remain int // payload bytes of the current frame still to come

	// The current HEADERS frame's prefix (pad length, priority), the
	// fragment bytes still to decode and the padding still to skip.
	prefix    [payloadPrefixMaxLen]byte
	prefixLen int
	prefixN   int
	fragment  int
	skip      bool // the server drops this frame undecoded
	selfDep   bool // the frame's priority makes the stream depend on itself

	inBlock      bool   // a header block is open (CONTINUATION may follow)
	skipBlock    bool   // its CONTINUATION frames are dropped undecoded too
	blockStream  uint32 // its stream
	isRequest    bool   // it opens a stream (not trailers)
	blockSelfDep bool   // its HEADERS frame made the stream depend on itself
	lastStream   uint32 // the highest stream the server opened

	// Per header block, as the server's framer keeps them.
	dec            *hpack.Decoder
	fields         []hpack.HeaderField
	invalid        string
	sawRegular     bool
	truncated      bool
	emitting       bool
	headersRemain  uint32
	trailersRemain uint32
}

func newH2Scanner(maxHeaderBytes int, refused func([]hpack.HeaderField, string)) h2Scanner {
	if maxHeaderBytes <= 0 {
		maxHeaderBytes = defaultHeaderBytes
	}
	return h2Scanner{listLimit: uint32(maxHeaderBytes + headerListSlack), refused: refused, preface: len(http2Preface)}
}

func (s *h2Scanner) feed(p []byte) {
	defer func() {
		if v := recover(); v != nil {
			s.stop() // a bug here must not take the connection down
			slog.Error("HTTP/2 read-along stopped by a panic; refused requests on this connection are no longer audited", "panic", v)
		}
	}()
	s.scan(p)
}

// scan is feed without the safety net, for the fuzz test.
func (s *h2Scanner) scan(p []byte) {
	for len(p) > 0 && !s.stopped {
		if s.preface > 0 {
			want := http2Preface[len(http2Preface)-s.preface:]
			n := min(len(p), len(want))
			if string(p[:n]) != want[:n] {
				s.stop()
				return
			}
			s.preface -= n
			p = p[n:]
			continue
		}
		if s.headN < frameHeaderLen {
			n := copy(s.head[s.headN:], p)
			s.headN += n
			p = p[n:]
			if s.headN == frameHeaderLen {
				s.startFrame()
			}
			continue
		}
		n := min(len(p), s.remain)
		s.payload(p[:n])
		s.remain -= n
		p = p[n:]
		if s.remain == 0 && !s.stopped {
			s.endFrame()
		}
	}
}

// startFrame reads the frame header just completed.
func (s *h2Scanner) startFrame() {
	h := s.head
	s.remain = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	s.typ, s.flags = h[3], h[4]
	s.stream = (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1)
	s.prefixLen, s.prefixN, s.fragment, s.skip, s.selfDep = 0, 0, 0, false, false
	if s.remain > serverMaxFrameSize {
		s.stop() // the server closes the connection
		return
	}
	if s.typ == frameRSTStream && s.abuse != nil {
		s.abuse.resetsStream()
	}
	switch {
	case s.typ == frameHeaders:
		if s.inBlock {
			s.stop() // a connection error for the server
			return
		}
		s.blockFrames, s.blockBytes = 0, 0
		if !s.countBlockFrame() {
			return
		}
		if s.flags&flagPadded != 0 {
			s.prefixLen++
		}
		if s.flags&flagPriority != 0 {
			s.prefixLen += 5
		}
		if s.remain < s.prefixLen {
			s.stop()
			return
		}
		s.fragment = s.remain - s.prefixLen // until the pad length is known
		if s.prefixLen == 0 && !s.startBlock() {
			return
		}
	case s.typ == frameContinuation:
		if !s.inBlock || s.stream != s.blockStream {
			s.stop()
			return
		}
		if !s.countBlockFrame() {
			return
		}
		s.fragment = s.remain
		if s.skipBlock {
			s.skip = true
		} else if !s.checkFragment() {
			return
		}
	case s.inBlock:
		s.stop() // anything between a block's frames is a connection error
		return
	}
	if s.remain == 0 {
		s.endFrame()
	}
}

// countBlockFrame counts a frame of a header block against the bounds of
// one block; past them the connection is cut (a CONTINUATION flood), and
// the scanner stops.
func (s *h2Scanner) countBlockFrame() bool {
	s.blockFrames++
	s.blockBytes += s.remain
	if s.abuse == nil || (s.blockFrames <= maxBlockFrames && s.blockBytes <= s.maxBlockBytes()) {
		return true
	}
	s.abuse.cutFor(fmt.Sprintf("CONTINUATION flood: the header block of stream %d went past %d frames or %d bytes (%d frames, %d bytes)",
		s.stream, maxBlockFrames, s.maxBlockBytes(), s.blockFrames, s.blockBytes))
	s.stop()
	return false
}

// payload takes the next bytes of the current frame's payload.
func (s *h2Scanner) payload(p []byte) {
	if s.typ != frameHeaders && s.typ != frameContinuation {
		return
	}
	if s.prefixN < s.prefixLen {
		n := copy(s.prefix[s.prefixN:s.prefixLen], p)
		s.prefixN += n
		p = p[n:]
		if s.prefixN < s.prefixLen {
			return
		}
		if s.flags&flagPadded != 0 {
			pad := int(s.prefix[0])
			if pad > s.fragment {
				// The server refuses the frame (a stream error) and drops
				// it and its CONTINUATION frames undecoded; the connection
				// goes on.
				s.skip = true
				if s.flags&flagEndHeaders == 0 {
					s.inBlock, s.skipBlock, s.blockStream = true, true, s.stream
				}
				if s.stream%2 == 1 && s.stream > s.lastStream {
					s.fields = s.fields[:0]
					s.report("HEADERS frame padded beyond its length; method, path and headers unknown (the server resets the stream)")
				}
				return
			}
			s.fragment -= pad
		}
		if s.flags&flagPriority != 0 {
			dep := s.prefix[s.prefixLen-5 : s.prefixLen-1]
			s.selfDep = (uint32(dep[0])<<24|uint32(dep[1])<<16|uint32(dep[2])<<8|uint32(dep[3]))&(1<<31-1) == s.stream
		}
		if !s.startBlock() {
			return
		}
	}
	if s.skip || s.stopped {
		return
	}
	n := min(len(p), s.fragment)
	if n > 0 {
		s.fragment -= n
		if _, err := s.dec.Write(p[:n]); err != nil {
			s.stop() // the server closes the connection (COMPRESSION_ERROR)
		}
	}
}

// startBlock opens a header block at a HEADERS frame whose prefix is read.
func (s *h2Scanner) startBlock() bool {
	if s.dec == nil {
		// The server's decoder: its table size, strings no longer than
		// its header list limit.
		s.dec = hpack.NewDecoder(serverHPACKTable, s.emit)
		s.dec.SetMaxStringLength(int(s.listLimit))
	}
	s.inBlock, s.blockStream, s.blockSelfDep = true, s.stream, s.selfDep
	// A HEADERS frame on a new odd stream opens a request; on a stream
	// already opened it carries trailers.
	s.isRequest = s.stream%2 == 1 && s.stream > s.lastStream
	if s.isRequest && s.abuse != nil {
		s.abuse.opens()
	}
	s.fields, s.invalid, s.sawRegular, s.truncated, s.emitting = s.fields[:0], "", false, false, true
	s.dec.SetEmitEnabled(true)
	s.headersRemain, s.trailersRemain = s.listLimit, s.listLimit
	return s.checkFragment()
}

// checkFragment applies the server's rules to a block's next fragment: it
// closes the connection for a fragment far over the header list budget, and
// for any fragment after an invalid field.
func (s *h2Scanner) checkFragment() bool {
	if int64(s.fragment) > 2*int64(s.headersRemain+s.trailersRemain) {
		s.stop()
		return false
	}
	if s.invalid != "" {
		if s.isRequest {
			s.report(s.invalid + " (the server closes the connection)")
		}
		s.stop()
		return false
	}
	return true
}

// emit receives a decoded field and keeps it as the server's framer does:
// the first invalid field (kept here for the record) or the field that
// exceeds the header list limit ends what the block keeps. The decoder's
// emission is turned off there, as the server's is: it then skips the
// Huffman decoding of literals it does not index, so a broken one after
// that point stops neither decoder.
func (s *h2Scanner) emit(f hpack.HeaderField) {
	if !s.emitting {
		return
	}
	if reason := fieldError(f, s.sawRegular); reason != "" {
		s.invalid, s.emitting = reason, false
		s.dec.SetEmitEnabled(false)
		if size := f.Size(); size <= s.headersRemain {
			s.fields = append(s.fields, f) // the offending field, for the rules
		}
		return
	}
	if !strings.HasPrefix(f.Name, ":") {
		s.sawRegular = true
	}
	remain, size := &s.headersRemain, f.Size()
	if f.Name == "trailer" {
		fields := strings.Count(f.Value, ",") + 1
		remain, size = &s.trailersRemain, uint32(len(f.Value)-fields+1)+uint32(fields)*hpackFieldOverhead
	}
	if size > *remain {
		s.truncated, s.emitting = true, false
		s.dec.SetEmitEnabled(false)
		s.headersRemain, s.trailersRemain = 0, 0
		return
	}
	*remain -= size
	s.fields = append(s.fields, f)
	if f.Name == "expect" && s.isRequest && s.expectContinue != nil && httpguts.HeaderValuesContainsToken([]string{f.Value}, "100-continue") {
		s.expectContinue.Store(true)
	}
}

func (s *h2Scanner) endFrame() {
	s.headN = 0
	if (s.typ != frameHeaders && s.typ != frameContinuation) || s.flags&flagEndHeaders == 0 {
		return
	}
	if s.skip {
		s.inBlock, s.skipBlock = false, false
		return
	}
	s.endBlock()
}

// endBlock judges a complete header block as the server will: its fields
// and pseudo-headers (the stream is reset and never opened), then, for a
// request, the request line, the header list limit (431) and the HTTP/1
// headers HTTP/2 forbids (400).
func (s *h2Scanner) endBlock() {
	s.inBlock = false
	if err := s.dec.Close(); err != nil {
		s.stop()
		return
	}
	if !s.isRequest {
		return
	}
	reason := s.invalid
	if reason == "" {
		reason = pseudoError(s.fields)
	}
	if reason != "" {
		s.report(reason + " (the server resets the stream)")
		return
	}
	s.lastStream = s.stream // the server opens it
	switch reason := requestError(s.fields); {
	case s.blockSelfDep:
		s.report("stream depends on itself (the server resets the stream)")
	case reason != "":
		s.report(reason + " (the server resets the stream)")
	case s.truncated:
		s.report(fmt.Sprintf("header list over the server's limit of %d bytes (the server answers 431)", s.listLimit))
	default:
		if reason := h2BadHeaders(s.fields); reason != "" {
			s.report(reason + " (the server answers 400)")
		}
	}
}

func (s *h2Scanner) report(reason string) {
	s.refusals++
	s.refused(s.fields, reason)
}

func (s *h2Scanner) stop() {
	s.stopped, s.inBlock = true, false
	s.fields, s.dec = nil, nil
}

// extendedConnect mirrors the HTTP/2 server's switch for RFC 8441 extended
// CONNECT (off unless GODEBUG has http2xconnect=1).
var extendedConnect = strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1")

// connectionHeaders are the HTTP/1 headers HTTP/2 forbids (RFC 9113,
// section 8.2.2), as the server checks them.
var connectionHeaders = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}

// fieldError is what the server's framer refuses in one field as it
// decodes it.
func fieldError(f hpack.HeaderField, sawRegular bool) string {
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		return fmt.Sprintf("invalid value in header field %q", f.Name)
	}
	if strings.HasPrefix(f.Name, ":") {
		if sawRegular {
			return fmt.Sprintf("pseudo-header %q after a regular header field", f.Name)
		}
		return ""
	}
	if !validFieldName(f.Name) {
		return fmt.Sprintf("invalid header field name %q", f.Name)
	}
	return ""
}

// pseudoError is the framer's check of a block's pseudo-headers.
func pseudoError(fields []hpack.HeaderField) string {
	seen := map[string]bool{}
	for _, f := range fields {
		if !strings.HasPrefix(f.Name, ":") {
			break
		}
		switch f.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
		case ":status":
			return "response pseudo-header :status in a request"
		default:
			return fmt.Sprintf("unknown pseudo-header %q", f.Name)
		}
		if seen[f.Name] {
			return fmt.Sprintf("duplicate pseudo-header %q", f.Name)
		}
		seen[f.Name] = true
	}
	return ""
}

// requestError is what the server refuses when it builds the request:
// the request line, :authority and Host, :path.
func requestError(fields []hpack.HeaderField) string {
	pseudo := map[string]string{}
	var hosts []string
	for _, f := range fields {
		if strings.HasPrefix(f.Name, ":") {
			pseudo[f.Name] = f.Value
		} else if f.Name == "host" {
			hosts = append(hosts, f.Value)
		}
	}
	method, path, scheme, authority, protocol := pseudo[":method"], pseudo[":path"], pseudo[":scheme"], pseudo[":authority"], pseudo[":protocol"]
	if protocol != "" && !extendedConnect {
		return "extended CONNECT (:protocol) is not enabled"
	}
	if method == "CONNECT" {
		if protocol == "" && (path != "" || scheme != "" || authority == "") {
			return "CONNECT with :path or :scheme, or without :authority"
		}
	} else if method == "" || path == "" || (scheme != "https" && scheme != "http") {
		return "missing :method or :path, or :scheme not http or https"
	}
	if authority == "" && len(hosts) > 0 {
		authority = hosts[0]
	}
	switch {
	case len(hosts) > 1:
		return "more than one host header"
	case len(hosts) == 1 && hosts[0] != authority:
		return ":authority and host differ"
	case strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https"):
		return "userinfo in :authority"
	case authority != "" && !httpguts.ValidHostHeader(authority):
		return "invalid :authority"
	}
	if method != "CONNECT" || protocol != "" {
		if path == "" || (path[0] != '/' && path != "*") {
			return "bad :path"
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return "bad :path"
		}
	}
	return ""
}

// h2BadHeaders is what the server answers with its own 400: the HTTP/1
// headers HTTP/2 forbids.
func h2BadHeaders(fields []hpack.HeaderField) string {
	var te []string
	for _, f := range fields {
		if f.Name == "te" {
			te = append(te, f.Value)
		}
		for _, name := range connectionHeaders {
			if f.Name == name {
				return fmt.Sprintf("connection-specific header %q", name)
			}
		}
	}
	if len(te) > 1 || (len(te) == 1 && te[0] != "trailers" && te[0] != "") {
		return `te other than "trailers"`
	}
	return ""
}

// validFieldName is HTTP/2's rule for a header name on the wire: a token
// in lower case.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !httpguts.IsTokenRune(r) || ('A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// answerRejectedH2 builds the refused request from its header fields, as
// leniently as ParseHead does for HTTP/1, and runs it through rejected.
func answerRejectedH2(tc *tls.Conn, fields []hpack.HeaderField, reason string, rejected Rejected) {
	r := &http.Request{
		Method: "GET", URL: &url.URL{Path: "/"}, RequestURI: "/",
		Proto: "HTTP/2.0", ProtoMajor: 2, Header: http.Header{}, Body: http.NoBody,
		RemoteAddr: tc.RemoteAddr().String(),
	}
	for _, f := range fields {
		switch f.Name {
		case ":method":
			if f.Value != "" {
				r.Method = f.Value
			}
		case ":path":
			if f.Value != "" {
				r.RequestURI = f.Value
				if u, err := url.ParseRequestURI(f.Value); err == nil {
					r.URL = u
				} else {
					r.URL = &url.URL{Path: f.Value}
				}
			}
		case ":authority":
			r.Host = f.Value
		default:
			if !strings.HasPrefix(f.Name, ":") {
				key := http.CanonicalHeaderKey(f.Name)
				r.Header[key] = append(r.Header[key], f.Value)
			}
		}
	}
	if hosts := r.Header["Host"]; len(hosts) > 0 {
		if r.Host == "" {
			r.Host = hosts[0]
		}
		if len(hosts) == 1 && hosts[0] == r.Host {
			delete(r.Header, "Host") // as net/http does: Host lives in r.Host
		} // conflicting Host values stay in the header map for the rules
	}
	st := tc.ConnectionState()
	r.TLS = &st
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, tc.LocalAddr())
	status := http.StatusBadRequest
	if strings.HasSuffix(reason, "(the server answers 431)") {
		status = http.StatusRequestHeaderFieldsTooLarge // the record says what the client got
	}
	rejected(&discardWriter{header: http.Header{}}, r.WithContext(ctx), status, "HTTP/2: "+reason)
}

// discardWriter takes the pipeline's answer to a refused HTTP/2 request:
// the client gets the HTTP/2 server's own.
type discardWriter struct {
	header http.Header
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

var _ net.Conn = (*H2Conn)(nil)
