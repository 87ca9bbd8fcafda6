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
// Conn also keeps what net/http normalises away from heads it accepts: the
// framing facts of the raw head (RawFraming: duplicate Content-Length,
// Transfer-Encoding beside Content-Length or in HTTP/1.0), so that the
// gateway can refuse ambiguous framing that net/http would silently
// re-frame. It follows each request body through the connection's bytes to
// the next request's head, so pipelined requests are captured whole. A head
// that does not arrive within the server's header timeout (a slowloris
// client) is reported as refused with 408, where net/http would close the
// connection without a word or answer a bare 400.
//
// For HTTP/2, H2Conn also keeps what the server lacks: budgets for streams
// opened and reset per connection and per client address (rapid reset) and
// bounds on one header block (CONTINUATION flood), past which it closes the
// connection and reports it once (h2limits.go); and it notes
// "expect: 100-continue", which the server hides from handlers
// (ExpectsContinue).
//
// Limits: only the head is inspected (the body of a refused request is never
// read). For HTTP/2, requests the server drops with the whole connection (a
// broken frame, an HPACK error) are not requests wire can report.
package wire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
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
	box       *[]byte // what capture came from in capturePool; reused to put it back
	dropped   bool    // bytes arrived past the capture limit
	// leftover are bytes captured beyond the current request (a pipelined
	// or smuggled next request); they start the next capture.
	leftover []byte
	// track follows the current request's body through the bytes read
	// while its handler runs; what follows it goes to leftover.
	track   bodyTracker
	framing Framing // of the current request's raw head

	headTimeout bool // the header timeout expired with part of a head read
	answered    bool // a refusal was written (answerRejected ran)
}

var capturePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Read reads from the connection and keeps a copy of what arrives between
// requests (the next request head), up to the limit.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if !c.inHandler.Load() {
			if c.capture == nil {
				c.box = capturePool.Get().(*[]byte)
				c.capture = (*c.box)[:0]
			}
			room := c.limit - len(c.capture)
			if room > 0 {
				c.capture = append(c.capture, p[:min(n, room)]...)
			}
			c.dropped = c.dropped || n > room
		} else if c.track.state != trackLost {
			// The handler's reads: the body, then (pipelined) the next head.
			rest := p[:n]
			rest = rest[c.track.feed(rest):]
			if c.track.state == trackDone && len(rest) > 0 {
				if room := c.limit - len(c.leftover); room > 0 {
					c.leftover = append(c.leftover, rest[:min(len(rest), room)]...)
				}
			}
		}
		c.mu.Unlock()
	}
	if err != nil && !c.inHandler.Load() && isTimeout(err) {
		c.mu.Lock()
		c.headTimeout = len(bytes.Trim(c.capture, "\r\n")) > 0
		c.mu.Unlock()
	}
	return n, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// StatusHeadTimeout and ReasonHeadTimeout are what Rejected is told about a
// request whose head did not arrive within the server's header timeout.
const (
	StatusHeadTimeout = http.StatusRequestTimeout
	ReasonHeadTimeout = "request head not received in time"
)

// ReasonLineTooLong is what Rejected is told, with 414, about a request line
// that does not fit in the head limit.
const ReasonLineTooLong = "request line longer than the head limit"

// Write passes responses through, except net/http's own error responses to
// requests it refused, which are replaced by the Rejected handler's answer.
// Between the end of one request (StateIdle) and the start of the next
// handler, nothing but net/http itself writes to the connection.
func (c *Conn) Write(p []byte) (int, error) {
	if c.rejected != nil && !c.inHandler.Load() {
		if status, reason, ok := serverError(p); ok {
			c.mu.Lock()
			timedOut := c.headTimeout
			c.mu.Unlock()
			if timedOut {
				// net/http answers a head cut by its deadline mid-line with
				// a bare 400; the cause is the timeout.
				status, reason = StatusHeadTimeout, ReasonHeadTimeout
			}
			c.answerRejected(status, reason)
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// Close returns the capture buffer to the pool. A connection closed because
// its head did not arrive in time (net/http closes those without a word)
// is answered with 408 and reported first.
func (c *Conn) Close() error {
	c.mu.Lock()
	timedOut := c.headTimeout && !c.answered && c.rejected != nil && !c.inHandler.Load()
	c.mu.Unlock()
	if timedOut {
		c.answerRejected(StatusHeadTimeout, ReasonHeadTimeout)
	}
	c.mu.Lock()
	c.releaseLocked()
	c.leftover = nil
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *Conn) releaseLocked() {
	if c.capture != nil && cap(c.capture) <= 64<<10 {
		if c.box == nil {
			c.box = new([]byte)
		}
		*c.box = c.capture[:0]
		capturePool.Put(c.box) // the same box: putting a buffer back allocates nothing
	}
	c.box, c.capture = nil, nil
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
	c.answered, c.headTimeout = true, false
	c.mu.Unlock()

	if status == http.StatusRequestHeaderFieldsTooLarge && bytes.IndexByte(head, '\n') < 0 {
		// The request line alone did not fit: the target is too long
		// (414), not the header fields (431), and the head is not an
		// HTTP/0.9 request for want of a version.
		status, reason = http.StatusRequestURITooLong, ReasonLineTooLong
	}
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
// reads are r's body. It reads r's framing facts from the captured head
// (RawFraming) and starts following r's body, so that bytes beyond it, in
// the capture or read later with the body, start the next capture.
func BeginRequest(r *http.Request) {
	c := fromContext(r.Context())
	if c == nil {
		return
	}
	c.mu.Lock()
	f, headEnd := scanHead(c.capture, r)
	c.framing = f
	c.leftover = c.leftover[:0]
	c.track = newBodyTracker(r)
	if headEnd < 0 || c.dropped {
		c.track.state = trackLost // where r's body starts is unknown
	} else {
		rest := c.capture[headEnd:]
		rest = rest[c.track.feed(rest):]
		if c.track.state == trackDone {
			c.leftover = append(c.leftover, rest...)
		}
	}
	c.mu.Unlock()
	c.inHandler.Store(true)
}

// RawFraming returns the framing facts of the current request's raw head.
// onWire is false when the request did not come through a Conn (HTTP/2,
// or a handler called directly); f.Observed is false when it did but its
// head was not captured whole.
func RawFraming(ctx context.Context) (f Framing, onWire bool) {
	c := fromContext(ctx)
	if c == nil {
		return Framing{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.framing, true
}

// ConnState is for http.Server.ConnState. StateIdle comes after net/http has
// finished a response (flushed it, discarded an unread body), just before it
// reads the next request head: from then on bytes are captured again. A
// hijacked connection (WebSocket) is no longer HTTP: nothing more is kept.
func ConnState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*Conn)
	if !ok {
		return
	}
	switch state {
	case http.StateIdle:
		c.mu.Lock()
		c.dropped = false
		if len(c.leftover) > 0 && c.track.state == trackDone {
			c.capture = append(c.capture[:0], c.leftover...)
		} else {
			c.releaseLocked()
		}
		c.leftover = c.leftover[:0]
		c.mu.Unlock()
		c.inHandler.Store(false)
	case http.StateHijacked:
		c.mu.Lock()
		c.track.state = trackLost
		c.releaseLocked()
		c.leftover = nil
		c.mu.Unlock()
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
