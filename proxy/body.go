package proxy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// replayBody lets a request body be sent again after a failed attempt. It
// keeps what was read from the client up to limit bytes; past that the body
// can no longer be replayed, and the request is not resent. Each attempt
// reads through its own view; a view is cut off once the next attempt
// starts, because net/http may still be reading the old one in a background
// goroutine after RoundTrip returned.
type replayBody struct {
	mu        sync.Mutex
	src       io.ReadCloser
	limit     int64
	kept      []byte
	read      int64       // bytes read from src
	overflow  atomic.Bool // more than limit read: replay impossible
	srcErr    error       // src's terminal error (io.EOF), repeated to every view
	clientErr atomic.Bool // src failed: the client's body is broken (see clientBodyError)
	gen       int
}

// clientBodyError is a failure to read the request body from the client: a
// body past max_body_size, a truncated chunked body, a client that stopped
// sending. It is the client's failure, not the upstream's: it never counts
// against a target in the passive check and the request is never resent.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string {
	return "reading the client's request body: " + e.err.Error()
}
func (e *clientBodyError) Unwrap() error { return e.err }

// clientFailure returns the client's body error, or nil when reading from
// the client has not failed.
func (b *replayBody) clientFailure() error {
	if !b.clientErr.Load() {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srcErr
}

// errAbandoned is what a view of an earlier attempt reads.
var errAbandoned = errors.New("request body view of an abandoned attempt")

// errNotReplayable is what a later attempt reads when the body outgrew the
// buffer meanwhile.
var errNotReplayable = errors.New("request body larger than the retry buffer")

type bodyView struct {
	b   *replayBody
	gen int
	pos int64
}

func (b *replayBody) view() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	return &bodyView{b: b, gen: b.gen}
}

// replayable reports whether every byte read so far is kept. It does not
// take the lock: an abandoned attempt may still hold it, blocked reading a
// slow client.
func (b *replayBody) replayable() bool { return !b.overflow.Load() }

// rewind cuts off the current view; the next view starts from byte 0.
func (b *replayBody) rewind() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
}

func (v *bodyView) Read(p []byte) (int, error) {
	b := v.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if v.gen != b.gen {
		return 0, errAbandoned
	}
	if v.pos < int64(len(b.kept)) {
		n := copy(p, b.kept[v.pos:])
		v.pos += int64(n)
		return n, nil
	}
	if v.pos < b.read {
		// Bytes this view never saw were dropped past the limit (by an
		// attempt whose read finished after the rewind): it cannot go on.
		return 0, errNotReplayable
	}
	if b.srcErr != nil {
		return 0, b.srcErr
	}
	n, err := b.src.Read(p)
	b.read += int64(n)
	v.pos += int64(n)
	if !b.overflow.Load() {
		if b.read <= b.limit {
			b.kept = append(b.kept, p[:n]...)
		} else {
			b.overflow.Store(true)
			b.kept = nil
		}
	}
	if err != nil {
		if err != io.EOF {
			var ce *clientBodyError
			if !errors.As(err, &ce) {
				err = &clientBodyError{err: err}
			}
			b.clientErr.Store(true)
		}
		b.srcErr = err
	}
	return n, err
}

// Close does nothing: the client's body belongs to the server, which closes
// it when the handler returns, and a later attempt may still need it.
func (v *bodyView) Close() error { return nil }

// upstreamBody ends an attempt when ReverseProxy closes the response body:
// the connection slot is released and the attempt's context canceled.
type upstreamBody struct {
	io.ReadCloser
	once sync.Once
	run  *attemptRun
}

func (u *upstreamBody) Close() error {
	err := u.ReadCloser.Close()
	u.once.Do(u.run.end)
	return err
}

// idleConn is an upgraded (WebSocket) connection to the upstream that is
// closed after idle time without a byte in either direction. ReverseProxy
// copies both directions through it, so watching it covers both.
type idleConn struct {
	rwc interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}
	idle  time.Duration
	last  atomic.Int64
	timer *time.Timer
	once  sync.Once
	done  func()
}

func newIdleConn(rwc interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error
}, idle time.Duration, done func()) *idleConn {
	c := &idleConn{rwc: rwc, idle: idle, done: done}
	c.last.Store(time.Now().UnixNano())
	if idle > 0 {
		c.timer = time.AfterFunc(idle, c.check)
	}
	return c
}

// check runs when the idle time may have passed; traffic since re-arms it
// for the rest (cheaper than resetting a timer on every read and write).
func (c *idleConn) check() {
	since := time.Duration(time.Now().UnixNano() - c.last.Load())
	if since >= c.idle {
		_ = c.Close()
		return
	}
	c.timer.Reset(c.idle - since)
}

func (c *idleConn) Read(p []byte) (int, error) {
	n, err := c.rwc.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *idleConn) Write(p []byte) (int, error) {
	n, err := c.rwc.Write(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *idleConn) Close() error {
	err := c.rwc.Close()
	c.once.Do(func() {
		if c.timer != nil {
			c.timer.Stop()
		}
		c.done()
	})
	return err
}

// errBodyTooLarge is what a body past the route's max_body_size reads
// (wrapped as the client's failure: errTooLargeBody).
var (
	errBodyTooLarge = errors.New("request body larger than max_body_size")
	errTooLargeBody = &clientBodyError{err: errBodyTooLarge}
)

// limitedBody enforces max_body_size on bodies of unknown length (chunked,
// HTTP/2); a declared Content-Length is refused before forwarding.
type limitedBody struct {
	io.ReadCloser
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errTooLargeBody
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more tells "too large" from "exactly full"
	}
	n, err := l.ReadCloser.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, errTooLargeBody
	}
	return n, err
}
