package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The fast path (issue 14) forwards the common request to a cleartext
// HTTP/1.1 target on the handler's own goroutine: the request is written
// and the response head read right there, over a keep-alive connection of
// the target's own idle pool. http.Transport hands every request to two
// goroutines per connection (one writes, one reads) and back, which on the
// uninspected path cost about a third of the proxy's CPU per request.
//
// Only what the fast path handles exactly as http.Transport would takes it:
// a plain http target (no TLS, no h2c), no body or a body of known length
// up to fastBodyMax (written whole before the response is read: an early
// answer to a large upload must reach the client while it still sends, so
// those stay on http.Transport), no protocol upgrade (WebSocket), no
// Expect: 100-continue and no request trailers. Everything else, and every
// request when a target's host is not plain ASCII, goes to http.Transport.
//
// What http.Transport does that matters here is kept: header names and
// values are validated before anything is sent, the response head is
// bounded (MaxResponseHeaderBytes), informational (1xx) responses are
// passed to the trace (ReverseProxy forwards 103 Early Hints) and at most
// five are accepted, the WroteRequest trace marks a request written whole
// (for the retry rules and the header timeout), canceling the request's
// context aborts the exchange and the body read, a connection is reused
// only after its response body was read to the end and neither side asked
// to close it, idle connections are bounded per target and closed after
// the idle timeout, and a request on a reused connection that the target
// closed meanwhile is sent again on a new one when http.Transport would
// (nothing was received, and the request has no body).
type fastPath struct {
	addr        string // host:port to dial
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration
	headLimit   int64

	mu      sync.Mutex
	idle    []*fastConn // most recently used last
	closed  bool
	janitor *time.Timer // closes connections idle past idleTimeout
}

// fastBodyMax is the largest request body the fast path sends: small
// enough to sit in the socket buffers whole, whatever the target does.
const fastBodyMax = 16 << 10

// max1xx is how many informational responses are accepted before the final
// one (http.Transport's limit).
const max1xx = 5

type fastConn struct {
	nc     net.Conn
	abort  func() // ends a blocked read or write at once (one closure per connection)
	lr     headLimitReader
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
}

// headLimitReader bounds the bytes read from the connection while a
// response head is read; left < 0: no bound (the body).
type headLimitReader struct {
	c    net.Conn
	left int64
	read int64 // bytes read since the exchange began
}

var errHeadTooLarge = errors.New("net/http: server response headers exceeded the limit; aborted")

func (r *headLimitReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, errHeadTooLarge
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.c.Read(p)
	r.read += int64(n)
	if r.left > 0 {
		r.left -= int64(n)
	}
	return n, err
}

// newFastPath returns the fast path to target u, or nil when its requests
// must all go to http.Transport.
func newFastPath(scheme, host, port string, h2c bool, dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int, idleTimeout time.Duration, headLimit int64) *fastPath {
	if scheme != "http" || h2c || host == "" {
		return nil
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 { // IDNA: leave the conversion to http.Transport
			return nil
		}
	}
	if port == "" {
		port = "80"
	}
	if maxIdle == 0 {
		maxIdle = 2 // http.Transport's DefaultMaxIdleConnsPerHost
	}
	if idleTimeout <= 0 {
		idleTimeout = 1<<63 - 1 // none, as http.Transport
	}
	return &fastPath{addr: net.JoinHostPort(host, port), dial: dial, maxIdle: maxIdle, idleTimeout: idleTimeout, headLimit: headLimit}
}

// takes reports whether req can go the fast path.
func (f *fastPath) takes(req *http.Request) bool {
	if f == nil || req.URL.Scheme != "http" || req.Method == http.MethodConnect || len(req.TransferEncoding) > 0 || len(req.Trailer) > 0 {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > fastBodyMax) {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Expect"]) > 0 {
		return false
	}
	return true
}

// roundTrip sends req and reads the response head; the body is read by the
// caller and gives the connection back when it ends.
func (f *fastPath) roundTrip(req *http.Request) (*http.Response, error) {
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errors.New("net/http: invalid header field name " + quote(k))
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errors.New("net/http: invalid header field value for " + quote(k))
			}
		}
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	for {
		fc, reused, err := f.get(ctx)
		if err != nil {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			// The body (at most fastBodyMax) is read whole once a
			// connection is there (a failed dial leaves it unread, so the
			// pool may still send it elsewhere), so that head and body
			// leave in one write: Request.Write flushes the head apart
			// from a body it does not know to be in memory.
			buf := fastBodies.Get().(*[]byte)
			defer fastBodies.Put(buf)
			body, err := readBody(req.Body, req.ContentLength, (*buf)[:0])
			_ = req.Body.Close()
			if err != nil {
				f.put(fc) // unused: still good for the next request
				return nil, err
			}
			*buf = body
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, received, err := f.exchange(fc, req, trace)
		if err == nil {
			return resp, nil
		}
		_ = fc.nc.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		// A kept-alive connection the target closed while it was idle:
		// http.Transport sends again on a new connection when nothing came
		// back and the request can be given again (it has no body).
		if reused && !received && (req.Body == nil || req.Body == http.NoBody) {
			continue
		}
		return nil, err
	}
}

var fastBodies = sync.Pool{New: func() any { b := make([]byte, 0, fastBodyMax); return &b }}

// readBody reads a body of exactly n bytes into buf, failing as
// Request.Write would on a body shorter or longer than its Content-Length.
func readBody(r io.Reader, n int64, buf []byte) ([]byte, error) {
	buf = buf[:n]
	if got, err := io.ReadFull(r, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, fmt.Errorf("http: ContentLength=%d with Body length %d", n, got)
		}
		return nil, err
	}
	var one [1]byte
	if extra, _ := r.Read(one[:]); extra > 0 {
		return nil, fmt.Errorf("http: ContentLength=%d with Body length %d", n, n+1)
	}
	return buf, nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// exchange writes req on fc and reads the response head. received reports
// whether any byte of a response arrived.
func (f *fastPath) exchange(fc *fastConn, req *http.Request, trace *httptrace.ClientTrace) (resp *http.Response, received bool, err error) {
	// Canceling the request (the client left, a timeout, the header wait)
	// ends a blocked write or read at once, as with http.Transport.
	stop := context.AfterFunc(req.Context(), fc.abort)
	fc.lr.read = 0
	// Request.Write reports WroteRequest to the trace itself, before the
	// flush, exactly as http.Transport's writer does.
	err = req.Write(fc.bw)
	if err == nil {
		err = fc.bw.Flush()
	}
	if err != nil {
		stop()
		return nil, false, err
	}
	resp, received, err = f.readHead(fc, req, trace, nil)
	if err != nil {
		stop()
		return nil, received, err
	}
	reuse := !resp.Close && !req.Close
	resp.Body = &fastBody{rc: resp.Body, fc: fc, f: f, stop: stop, reuse: reuse}
	return resp, true, nil
}

// readHead reads the response head to req from fc, passing informational
// responses to the trace (or to d on the direct path). received reports
// whether any byte of a response arrived.
func (f *fastPath) readHead(fc *fastConn, req *http.Request, trace *httptrace.ClientTrace, d *directRun) (resp *http.Response, received bool, err error) {
	for n1xx := 0; ; {
		fc.lr.left = f.headLimit
		resp, err = http.ReadResponse(fc.br, req)
		fc.lr.left = -1
		if err != nil {
			return nil, fc.lr.read > 0 || !isClosedBeforeResponse(err), err
		}
		code := resp.StatusCode
		if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
			if n1xx++; n1xx > max1xx {
				return nil, true, errors.New("net/http: too many 1xx informational responses")
			}
			switch {
			case d != nil:
				err = d.got1xx(code, textproto.MIMEHeader(resp.Header))
			case trace != nil && trace.Got1xxResponse != nil:
				err = trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header))
			}
			if err != nil {
				return nil, true, err
			}
			continue
		}
		break
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return nil, true, errors.New("net/http: upstream switched protocols without an upgrade request")
	}
	return resp, true, nil
}

// isClosedBeforeResponse reports whether err is the connection ending
// before any response byte: what a reused connection closed by the target
// while idle gives.
func isClosedBeforeResponse(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

var aLongTimeAgo = time.Unix(1, 0)

// fastBody is a fast-path response body. Read to the end, it gives the
// connection back to the idle pool; closed before, it closes it.
type fastBody struct {
	rc    io.ReadCloser
	fc    *fastConn
	f     *fastPath
	stop  func() bool
	reuse bool
	done  bool
	// release is the target whose connection slot the body holds on the
	// direct path, given back on Close (upstreamBody's part on the other
	// paths); nil otherwise.
	release  *target
	released bool
}

func (b *fastBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *fastBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	if b.release != nil && !b.released {
		b.released = true
		b.release.release()
	}
	return nil
}

// finish ends the exchange: the connection goes back to the pool when the
// body ended cleanly, nobody asked to close it and the request's context
// did not interfere; otherwise it is closed.
func (b *fastBody) finish(eof bool) {
	b.done = true
	if !eof {
		// Closed before its end (the client went away, or its write
		// failed): the body http.ReadResponse returns reads the rest on
		// Close — all of a large download, an endless event stream —
		// and the connection cannot be reused anyway, so it goes first.
		_ = b.fc.nc.Close()
	}
	_ = b.rc.Close()
	if b.stop() && eof && b.reuse {
		b.f.put(b.fc)
		return
	}
	_ = b.fc.nc.Close()
}

// get returns an idle connection (reused) or a new one.
func (f *fastPath) get(ctx context.Context) (fc *fastConn, reused bool, err error) {
	now := time.Now()
	for {
		f.mu.Lock()
		n := len(f.idle)
		if n == 0 {
			f.mu.Unlock()
			break
		}
		fc = f.idle[n-1]
		f.idle[n-1] = nil
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		if now.Sub(fc.idleAt) < f.idleTimeout && (now.Sub(fc.idleAt) < staleCheckAfter || stillOpen(fc)) {
			return fc, true, nil
		}
		_ = fc.nc.Close()
	}
	nc, err := f.dial(ctx, "tcp", f.addr)
	if err != nil {
		return nil, false, err
	}
	// A variable of its own: the closure would move the named result to
	// the heap on every call, reused connection or not.
	c := &fastConn{nc: nc}
	c.abort = func() { _ = c.nc.SetDeadline(aLongTimeAgo) }
	c.lr = headLimitReader{c: nc, left: -1}
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(nc, fastBodyMax>>1)
	return c, false, nil
}

// staleCheckAfter: a connection idle for longer is checked for a close by
// the target before it is used (one non-blocking peek). Under load
// connections are idle for far less and skip the check.
const staleCheckAfter = 10 * time.Millisecond

// stillOpen peeks at the socket without blocking: a connection that the
// target closed (or that has unexpected bytes waiting) is not reused.
func stillOpen(fc *fastConn) bool {
	if fc.br.Buffered() > 0 {
		return false
	}
	sc, ok := fc.nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return open
}

// put keeps fc for the next request, unless the pool is full or closed.
func (f *fastPath) put(fc *fastConn) {
	fc.idleAt = time.Now()
	f.mu.Lock()
	if f.closed || len(f.idle) >= f.maxIdle || fc.br.Buffered() > 0 { // bytes nobody asked for: not HTTP any more
		f.mu.Unlock()
		_ = fc.nc.Close()
		return
	}
	f.idle = append(f.idle, fc)
	if f.janitor == nil {
		f.janitor = time.AfterFunc(f.idleTimeout, f.sweep)
	}
	f.mu.Unlock()
}

// sweep closes connections idle past the timeout; it runs while any are
// idle.
func (f *fastPath) sweep() {
	now := time.Now()
	var old []*fastConn
	f.mu.Lock()
	i := 0
	for i < len(f.idle) && now.Sub(f.idle[i].idleAt) >= f.idleTimeout {
		i++
	}
	old = append(old, f.idle[:i]...)
	f.idle = append(f.idle[:0], f.idle[i:]...)
	if len(f.idle) > 0 && !f.closed {
		f.janitor = time.AfterFunc(f.idleTimeout-now.Sub(f.idle[0].idleAt), f.sweep)
	} else {
		f.janitor = nil
	}
	f.mu.Unlock()
	for _, fc := range old {
		_ = fc.nc.Close()
	}
}

// close drops every idle connection; connections in use are closed when
// their response ends.
func (f *fastPath) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.closed = true
	idle := f.idle
	f.idle = nil
	if f.janitor != nil {
		f.janitor.Stop()
		f.janitor = nil
	}
	f.mu.Unlock()
	for _, fc := range idle {
		_ = fc.nc.Close()
	}
}
