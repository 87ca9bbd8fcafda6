package gateway

import (
	"context"
	"crypto/tls"
	"errors"
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
	raw     net.Listener
	config  *tls.Config
	timeout time.Duration
	h2      func(*tls.Conn) // serves an HTTP/2 connection until it ends

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func newTLSListener(raw net.Listener, config *tls.Config, timeout time.Duration, h2 func(*tls.Conn)) *tlsListener {
	l := &tlsListener{raw: raw, config: config, timeout: timeout, h2: h2, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.Close()
	for {
		c, err := l.raw.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
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
