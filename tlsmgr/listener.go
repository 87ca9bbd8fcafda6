package tlsmgr

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Listener terminates TLS on a listener of raw connections, instead of
// leaving it to net/http: HTTP/1 connections come out of Accept as
// plaintext, so that the gateway's wire layer can read the requests
// net/http refuses, while HTTP/2 connections are handed to a function of
// the caller's (the gateway's HTTP/2 server), and ACME TLS-ALPN-01
// validations end with the handshake. Handshakes run concurrently and are
// bounded in time, so a slow client cannot hold up others.
//
// It sits first in the request path: below it only the TCP listener (with
// the PROXY protocol and connection admission), above it the gateway.
type Listener struct {
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

// NewListener accepts raw connections from raw and terminates TLS with
// config. timeout bounds each handshake (0: 10 s). h2 serves a connection
// that negotiated HTTP/2 until it ends; every other connection is returned
// by Accept once its handshake is done. log receives accept errors; nil
// discards them.
func NewListener(raw net.Listener, config *tls.Config, timeout time.Duration, h2 func(*tls.Conn), log *slog.Logger) *Listener {
	if timeout <= 0 {
		timeout = defaultHandshakeTimeout
	}
	l := &Listener{log: log, raw: raw, config: config, timeout: timeout, h2: h2, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// acceptLoop accepts until the listener is closed. Other errors (EMFILE in
// a connection flood) are retried with a growing pause, as net/http does,
// instead of taking the whole listener down.
func (l *Listener) acceptLoop() {
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

func (l *Listener) handshake(c net.Conn) {
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
	case acmeTLSProto:
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
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already handed out are not affected.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.raw.Close()
	})
	return err
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.raw.Addr() }

var _ net.Listener = (*Listener)(nil)
