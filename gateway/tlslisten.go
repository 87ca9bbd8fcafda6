package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// tlsListener terminates TLS itself instead of leaving it to net/http, so
// that HTTP/1 connections reach net/http through package wire (which must
// see plaintext to inspect requests net/http refuses), while HTTP/2
// connections are handed straight to the HTTP/2 server. Handshakes run
// concurrently and are bounded in time, so a slow client cannot hold up
// others.
type tlsListener struct {
	log     *slog.Logger
	raw     net.Listener
	config  *tls.Config
	timeout time.Duration
	h2      func(*tls.Conn) // serves an HTTP/2 connection until it ends

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// defaultHandshakeTimeout bounds a TLS handshake when read_header_timeout is
// 0 ("no limit" for net/http, but a handshake must end).
const defaultHandshakeTimeout = 10 * time.Second

func newTLSListener(raw net.Listener, config *tls.Config, timeout time.Duration, h2 func(*tls.Conn), log *slog.Logger) *tlsListener {
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	l := &tlsListener{log: log, raw: raw, config: config, timeout: timeout, h2: h2, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// acceptLoop accepts until the listener is closed. Other errors (EMFILE in
// a connection flood) are retried with a growing pause, as net/http does,
// instead of taking the whole listener down.
func (l *tlsListener) acceptLoop() {
	defer l.Close()
	var pause time.Duration
	for {
		c, err := l.raw.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			if l.log != nil {
				l.log.Warn("accept failed; retrying", "address", l.raw.Addr().String(), "retry_in", pause.String(), "err", err)
			}
			select {
			case <-l.done:
				return
			case <-time.After(pause):
			}
			continue
		}
		pause = 0
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.config)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		_ = c.Close()
		return
	}
	select {
	case <-l.done: // closed while this handshake ran: too late to serve
		_ = tc.Close()
		return
	default:
	}
	switch tc.ConnectionState().NegotiatedProtocol {
	case "acme-tls/1":
		// A TLS-ALPN-01 validation: the handshake itself was the answer.
		_ = tc.Close()
	case "h2":
		l.h2(tc)
	default:
		select {
		case l.conns <- tc:
		case <-l.done:
			_ = tc.Close()
		}
	}
}

// Accept returns the next HTTP/1 connection, handshake done.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out are not affected.
func (l *tlsListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.raw.Close()
	})
	return err
}

// Addr is the listening address.
func (l *tlsListener) Addr() net.Addr { return l.raw.Addr() }
