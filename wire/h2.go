package wire

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// H2Conn is an HTTP/2 client connection (after TLS, before the HTTP/2
// server) that reads along with the server. The HTTP/2 server refuses some
// malformed requests before any handler runs: a header name or value the
// protocol forbids, a pseudo-header out of place, a connection-specific
// header such as Transfer-Encoding (the classic HTTP/2-to-HTTP/1 smuggling
// attempt), a bad :path or :authority. It answers those with a stream reset
// or its own 400, and the rule engine and the audit would never know.
//
// H2Conn decodes the header blocks the client sends, with its own HPACK
// decoder fed the same bytes, applies the server's checks and hands each
// request the server will refuse to Rejected, as Conn does for HTTP/1. The
// answer stays the server's: what Rejected writes is discarded.
//
// It only observes: anything it cannot follow (a broken frame, an HPACK
// error, a header block over its limit) ends the reading-along for the
// connection, never the connection itself; the server deals with it.
type H2Conn struct {
	*tls.Conn // keeps ConnectionState, which the HTTP/2 server asks for
	scan      h2Scanner
}

// NewH2Conn wraps tc. limit bounds a header block's encoded size (the
// server's MaxHeaderBytes plus some slack is right).
func NewH2Conn(tc *tls.Conn, limit int, rejected Rejected) *H2Conn {
	c := &H2Conn{Conn: tc}
	c.scan = h2Scanner{limit: limit, preface: len(http2Preface), refused: func(fields []hpack.HeaderField, reason string) {
		answerRejectedH2(tc, fields, reason, rejected)
	}}
	return c
}

func (c *H2Conn) Read(p []byte) (int, error) {
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
	frameContinuation = 0x9
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
	frameHeaderLen    = 9
)

// h2Scanner follows the client's side of an HTTP/2 connection frame by
// frame and decodes its header blocks. It is fed in whatever pieces the
// connection delivers.
type h2Scanner struct {
	limit   int
	refused func(fields []hpack.HeaderField, reason string)

	stopped bool
	preface int // bytes of the client preface still to come

	head    [frameHeaderLen]byte
	headN   int
	remain  int // payload bytes of the current frame still to come
	typ     byte
	flags   byte
	stream  uint32
	payload []byte // the current HEADERS or CONTINUATION frame's payload

	block       []byte // header block fragments gathered so far
	inBlock     bool   // waiting for CONTINUATION frames
	blockStream uint32
	isRequest   bool   // the block opens a stream (not trailers)
	lastStream  uint32 // highest stream a request was seen on

	dec    *hpack.Decoder
	fields []hpack.HeaderField
}

func (s *h2Scanner) feed(p []byte) {
	defer func() {
		if recover() != nil {
			s.stop() // a bug here must not take the connection down
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
			if s.headN == frameHeaderLen && !s.startFrame() {
				return
			}
			continue
		}
		n := min(len(p), s.remain)
		if s.typ == frameHeaders || s.typ == frameContinuation {
			s.payload = append(s.payload, p[:n]...)
		}
		s.remain -= n
		p = p[n:]
		if s.remain == 0 {
			s.endFrame()
		}
	}
}

// startFrame reads the frame header just completed; a frame without payload
// ends at once.
func (s *h2Scanner) startFrame() bool {
	h := s.head
	s.remain = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	s.typ, s.flags = h[3], h[4]
	s.stream = (uint32(h[5])<<24 | uint32(h[6])<<16 | uint32(h[7])<<8 | uint32(h[8])) & (1<<31 - 1)
	s.payload = s.payload[:0]
	if (s.typ == frameHeaders || s.typ == frameContinuation) && len(s.block)+s.remain > s.limit {
		s.stop() // the server refuses or truncates it; too big to follow
		return false
	}
	if s.remain == 0 {
		s.endFrame()
	}
	return !s.stopped
}

func (s *h2Scanner) endFrame() {
	s.headN = 0
	switch {
	case s.typ == frameHeaders:
		if s.inBlock {
			s.stop() // a connection error for the server
			return
		}
		frag := s.payload
		if s.flags&flagPadded != 0 {
			if len(frag) < 1 || int(frag[0]) > len(frag)-1 {
				s.stop()
				return
			}
			frag = frag[1 : len(frag)-int(frag[0])]
		}
		if s.flags&flagPriority != 0 {
			if len(frag) < 5 {
				s.stop()
				return
			}
			frag = frag[5:]
		}
		s.block = append(s.block[:0], frag...)
		s.blockStream = s.stream
		// A HEADERS frame on a new odd stream opens a request; on a stream
		// already seen it carries trailers.
		s.isRequest = s.stream%2 == 1 && s.stream > s.lastStream
		if s.isRequest {
			s.lastStream = s.stream
		}
		s.inBlock = true
	case s.typ == frameContinuation:
		if !s.inBlock || s.stream != s.blockStream {
			s.stop()
			return
		}
		s.block = append(s.block, s.payload...)
	case s.inBlock:
		s.stop() // anything between a block's frames is a connection error
		return
	default:
		return
	}
	if s.flags&flagEndHeaders != 0 {
		s.inBlock = false
		s.endBlock()
	}
}

// endBlock decodes a complete header block; every block is decoded, so the
// decoder's table follows the server's.
func (s *h2Scanner) endBlock() {
	if s.dec == nil {
		// The server's decoder: the default table size (it advertises no
		// other) and strings no longer than a header block may be.
		s.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { s.fields = append(s.fields, f) })
		s.dec.SetMaxStringLength(s.limit)
	}
	s.fields = s.fields[:0]
	if _, err := s.dec.Write(s.block); err != nil {
		s.stop()
		return
	}
	if err := s.dec.Close(); err != nil {
		s.stop()
		return
	}
	if !s.isRequest {
		return
	}
	if reason := h2Refusal(s.fields); reason != "" {
		s.refused(s.fields, reason)
	}
}

func (s *h2Scanner) stop() {
	s.stopped = true
	s.payload, s.block, s.fields, s.dec = nil, nil, nil, nil
}

// extendedConnect mirrors the HTTP/2 server's switch for RFC 8441 extended
// CONNECT (off unless GODEBUG has http2xconnect=1).
var extendedConnect = strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1")

// connectionHeaders are the HTTP/1 headers HTTP/2 forbids (RFC 9113,
// section 8.2.2), as the server checks them.
var connectionHeaders = []string{"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}

// h2Refusal returns why the HTTP/2 server refuses a request with these
// header fields, and how, or "" if it takes it. The checks and their order
// are the server's (golang.org/x/net/http2: the header block's fields, the
// pseudo-headers, the request line, then the request's headers).
func h2Refusal(fields []hpack.HeaderField) string {
	if reason := h2StreamError(fields); reason != "" {
		return reason + " (the server resets the stream)"
	}
	if reason := h2BadHeaders(fields); reason != "" {
		return reason + " (the server answers 400)"
	}
	return ""
}

// h2StreamError is what the server refuses with a stream reset: the header
// block's fields, the pseudo-headers and the request line.
func h2StreamError(fields []hpack.HeaderField) string {
	sawRegular := false
	for _, f := range fields {
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			return fmt.Sprintf("invalid value in header field %q", f.Name)
		}
		if strings.HasPrefix(f.Name, ":") {
			if sawRegular {
				return fmt.Sprintf("pseudo-header %q after a regular header field", f.Name)
			}
			continue
		}
		sawRegular = true
		if !validFieldName(f.Name) {
			return fmt.Sprintf("invalid header field name %q", f.Name)
		}
	}
	pseudo := map[string]string{}
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
		if _, dup := pseudo[f.Name]; dup {
			return fmt.Sprintf("duplicate pseudo-header %q", f.Name)
		}
		pseudo[f.Name] = f.Value
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
	var hosts []string
	for _, f := range fields {
		if f.Name == "host" {
			hosts = append(hosts, f.Value)
		}
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
	if hosts := r.Header["Host"]; len(hosts) > 0 && r.Host == "" {
		r.Host = hosts[0]
	}
	delete(r.Header, "Host")
	st := tc.ConnectionState()
	r.TLS = &st
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, tc.LocalAddr())
	rejected(&discardWriter{header: http.Header{}}, r.WithContext(ctx), http.StatusBadRequest, "HTTP/2: "+reason)
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
