// Package wire watches the bytes of client connections so that requests
// which Go's HTTP servers refuse before any handler runs are still inspected
// and audited: Conn for HTTP/1, H2Conn (h2.go) for HTTP/2.
//
// Place in the request path: between the listener (after TLS) and net/http.
// net/http answers some malformed requests itself — an unsupported version
// (HTTP/0.9, HTTP/4.0), a request line without version, invalid header lines,
// a bad Content-Length, a missing Host — with a terse plain-text response, and
// no handler ever sees them. For a WAF that is a blind spot: the rule engine
// never evaluates them and no audit record says they happened.
//
// A Conn keeps the raw bytes of the request head it is reading. When net/http
// writes one of its own error responses (recognisable: "HTTP/1.1 4xx/5xx" with
// its fixed error headers, outside any handler), Conn withholds it, parses the
// captured head leniently and hands that request to the Rejected handler,
// which runs the normal pipeline (rule engine, audit) and answers through a
// ResponseWriter that writes straight to the connection. The client gets the
// neutral error page with a request id instead of Go's text.
//
// Limits: only the head is inspected (the body of a refused request is never
// read); a pipelined request that follows another one on the same connection
// may be captured without its first bytes. For HTTP/2, requests the server
// drops with the whole connection (a broken frame, an HPACK error) are not
// requests wire can report.
package wire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Rejected handles a request that net/http refused. status is the status
// net/http chose, reason its explanation ("unsupported protocol version").
type Rejected func(w http.ResponseWriter, r *http.Request, status int, reason string)

// Listener wraps accepted connections in Conns.
type Listener struct {
	net.Listener
	rejected Rejected
	limit    int
}

// NewListener returns a Listener over ln. limit bounds the bytes captured per
// request head (the server's MaxHeaderBytes plus some slack is right).
func NewListener(ln net.Listener, limit int, rejected Rejected) *Listener {
	return &Listener{Listener: ln, rejected: rejected, limit: limit}
}

// Accept returns the next connection, wrapped.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c, rejected: l.rejected, limit: l.limit}, nil
}

// Conn captures request heads and intercepts net/http's own error responses.
type Conn struct {
	net.Conn
	rejected Rejected
	limit    int

	inHandler atomic.Bool
	mu        sync.Mutex
	capture   []byte
	// leftover are bytes captured beyond the current request (a pipelined
	// or smuggled next request); they start the next capture.
	leftover []byte
}

var capturePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Read reads from the connection and keeps a copy of what arrives between
// requests (the next request head), up to the limit.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.inHandler.Load() {
		c.mu.Lock()
		if c.capture == nil {
			c.capture = (*capturePool.Get().(*[]byte))[:0]
		}
		if room := c.limit - len(c.capture); room > 0 {
			c.capture = append(c.capture, p[:min(n, room)]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

// Write passes responses through, except net/http's own error responses to
// requests it refused, which are replaced by the Rejected handler's answer.
// Between the end of one request (StateIdle) and the start of the next
// handler, nothing but net/http itself writes to the connection.
func (c *Conn) Write(p []byte) (int, error) {
	if c.rejected != nil && !c.inHandler.Load() {
		if status, reason, ok := serverError(p); ok {
			c.answerRejected(status, reason)
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// Close returns the capture buffer to the pool.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.releaseLocked()
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *Conn) releaseLocked() {
	if c.capture != nil && cap(c.capture) <= 64<<10 {
		b := c.capture[:0]
		capturePool.Put(&b)
	}
	c.capture = nil
}

// serverError reads the status and reason of an error response written by
// net/http itself ("HTTP/1.1 400 Bad Request: malformed Host header"; 417 for
// an unknown Expect). It is only asked outside handlers, where every write is
// net/http's own.
func serverError(p []byte) (int, string, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 || (rest[0] != '4' && rest[0] != '5') || rest[3] != ' ' {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil {
		return 0, "", false
	}
	line := rest[4:]
	if end := bytes.Index(line, []byte("\r\n")); end >= 0 {
		line = line[:end]
	}
	reason := string(line)
	if _, text, found := bytes.Cut(line, []byte(": ")); found {
		reason = string(text)
	}
	return status, reason, true
}

func (c *Conn) answerRejected(status int, reason string) {
	c.mu.Lock()
	head := append([]byte(nil), c.capture...)
	c.releaseLocked()
	c.mu.Unlock()

	r, simple := ParseHead(head)
	r.RemoteAddr = c.Conn.RemoteAddr().String()
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, c.Conn.LocalAddr())
	ctx = context.WithValue(ctx, connKey{}, c)
	r = r.WithContext(ctx)
	w := newConnResponseWriter(c.Conn, simple)
	c.rejected(w, r, status, reason)
	w.finish()
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets handlers reach their
// Conn (BeginRequest, HasHeader).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if wc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, connKey{}, wc)
	}
	return ctx
}

func fromContext(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}

// TLS returns the TLS state of the request's connection when it runs over
// TLS terminated by Portcullis (net/http then does not know it is TLS).
func TLS(ctx context.Context) *tls.ConnectionState {
	c := fromContext(ctx)
	if c == nil {
		return nil
	}
	if tc, ok := c.Conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// BeginRequest marks the connection as inside a handler for r: from now
// until the connection is idle again, writes are the handler's response and
// reads are r's body. Bytes already captured beyond r's head and body are
// kept as the start of the next request.
func BeginRequest(r *http.Request) {
	c := fromContext(r.Context())
	if c == nil {
		return
	}
	c.mu.Lock()
	c.leftover = append(c.leftover[:0], beyondRequest(c.capture, r)...)
	c.mu.Unlock()
	c.inHandler.Store(true)
}

// ConnState is for http.Server.ConnState. StateIdle comes after net/http has
// finished a response (flushed it, discarded an unread body), just before it
// reads the next request head: from then on bytes are captured again.
func ConnState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*Conn)
	if !ok || state != http.StateIdle {
		return
	}
	c.mu.Lock()
	if len(c.leftover) > 0 {
		c.capture = append(c.capture[:0], c.leftover...)
		c.leftover = c.leftover[:0]
	} else {
		c.releaseLocked()
	}
	c.mu.Unlock()
	c.inHandler.Store(false)
}

// beyondRequest returns the captured bytes after r's head and body, when the
// capture holds all of them; usually there are none.
func beyondRequest(capture []byte, r *http.Request) []byte {
	headEnd := bytes.Index(capture, []byte("\r\n\r\n"))
	if headEnd < 0 {
		return nil
	}
	rest := capture[headEnd+4:]
	if len(rest) == 0 {
		return nil
	}
	if len(r.TransferEncoding) > 0 {
		n, ok := chunkedLength(rest)
		if !ok {
			return nil
		}
		return rest[n:]
	}
	if r.ContentLength < 0 || r.ContentLength > int64(len(rest)) {
		return nil
	}
	return rest[r.ContentLength:]
}

// chunkedLength returns the length of a complete chunked body at the start
// of b (through the final CRLF after the trailers), or false if b ends first.
func chunkedLength(b []byte) (int, bool) {
	pos := 0
	for {
		lineEnd := bytes.Index(b[pos:], []byte("\r\n"))
		if lineEnd < 0 {
			return 0, false
		}
		sizeText, _, _ := bytes.Cut(b[pos:pos+lineEnd], []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if err != nil || size < 0 || size > int64(len(b)) {
			return 0, false
		}
		pos += lineEnd + 2
		if size == 0 {
			// trailers end with an empty line
			end := bytes.Index(b[pos:], []byte("\r\n"))
			for end > 0 {
				pos += end + 2
				end = bytes.Index(b[pos:], []byte("\r\n"))
			}
			if end < 0 {
				return 0, false
			}
			return pos + 2, true
		}
		if int64(len(b)-pos) < size+2 {
			return 0, false
		}
		pos += int(size) + 2
	}
}

// HasHeader reports whether the raw head of the current request contains a
// header line called name (case-insensitive), even with an empty value — a
// fact net/http does not keep (an empty Host looks like a missing one).
// ok is false when the raw head is not available.
func HasHeader(ctx context.Context, name string) (present, ok bool) {
	c := fromContext(ctx)
	if c == nil {
		return false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.capture) == 0 {
		return false, false
	}
	return hasHeaderLine(c.capture, name), true
}

// connResponseWriter writes one HTTP/1.1 response straight to a connection
// that net/http is about to close. For a request without version (HTTP/0.9
// "simple request") it writes the body alone, as HTTP/0.9 defines.
type connResponseWriter struct {
	conn        net.Conn
	simple      bool
	header      http.Header
	status      int
	body        bytes.Buffer
	wroteHeader bool
}

func newConnResponseWriter(c net.Conn, simple bool) *connResponseWriter {
	return &connResponseWriter{conn: c, simple: simple, header: http.Header{}}
}

func (w *connResponseWriter) Header() http.Header { return w.header }

func (w *connResponseWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
}

// maxRejectBody bounds what a handler may write for a refused request.
const maxRejectBody = 64 << 10

func (w *connResponseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if room := maxRejectBody - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *connResponseWriter) finish() {
	w.WriteHeader(http.StatusBadRequest)
	bw := bufio.NewWriter(w.conn)
	if !w.simple {
		text := http.StatusText(w.status)
		bw.WriteString("HTTP/1.1 " + strconv.Itoa(w.status) + " " + text + "\r\n")
		w.header.Del("Content-Length")
		w.header.Set("Connection", "close")
		w.header.Set("Content-Length", strconv.Itoa(w.body.Len()))
		_ = w.header.Write(bw)
		bw.WriteString("\r\n")
	}
	bw.Write(w.body.Bytes())
	_ = bw.Flush()
}
