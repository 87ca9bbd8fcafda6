package connlimit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/ratelimit"
)

// pausePoll is how often a paused Accept looks at the descriptors again.
const pausePoll = 25 * time.Millisecond

// Listener applies the Limiter to the connections of one listener.
type Listener struct {
	net.Listener
	l      *Limiter
	header bool // the listener reads PROXY headers: the client is known on first read

	done      chan struct{}
	closeOnce sync.Once
}

// Listener wraps ln. proxyProtocol tells that ln is a PROXY protocol
// listener (clientip.ProxyProtocolListener): connections from trusted peers
// are then judged by the header's address, on their first read.
func (l *Limiter) Listener(ln net.Listener, proxyProtocol bool) *Listener {
	return &Listener{Listener: ln, l: l, header: proxyProtocol, done: make(chan struct{})}
}

// Accept returns the next admitted connection. While descriptors are short
// it does not accept at all: new connections wait in the kernel's backlog
// rather than take a descriptor the proxy needs for its own dials.
func (ln *Listener) Accept() (net.Conn, error) {
	l := ln.l
	for {
		if err := ln.waitForDescriptors(); err != nil {
			return nil, err
		}
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := peerAddr(c)
		if ln.header && peer.IsValid() && l.cfg.Trusted(peer) {
			// The client is in the PROXY header, read on the first Read.
			l.open.Add(1)
			return &Conn{Conn: c, l: l, deferred: true}, nil
		}
		k, _, ok := l.admit(peer, time.Now())
		if !ok {
			_ = c.Close()
			continue
		}
		l.open.Add(1)
		return &Conn{Conn: c, l: l, key: k, counted: l.isCounted(peer)}, nil
	}
}

// isCounted reports whether admit counted a connection of a in the table
// (the zero key is also a valid key: 0.0.0.0 does not happen, but :: could).
func (l *Limiter) isCounted(a netip.Addr) bool {
	return a.IsValid() && !l.cfg.Trusted(a.Unmap())
}

// waitForDescriptors returns once accepting one more connection leaves the
// reserve intact, or with net.ErrClosed when the listener is closed.
func (ln *Listener) waitForDescriptors() error {
	l := ln.l
	if !l.fds.short(l.open.Load()) {
		l.paused.Store(false)
		return nil
	}
	if l.paused.CompareAndSwap(false, true) {
		l.pauses.Add(1)
		used, _ := l.fds.inUse(l.open.Load())
		l.log.Warn("accepting paused: file descriptors are short", "in_use", used, "limit", l.fds.max, "reserve", l.fds.reserve)
	}
	t := time.NewTicker(pausePoll)
	defer t.Stop()
	for {
		select {
		case <-ln.done:
			return net.ErrClosed
		case <-l.done:
			return net.ErrClosed
		case <-t.C:
		}
		if !l.fds.short(l.open.Load()) {
			if l.paused.CompareAndSwap(true, false) {
				used, _ := l.fds.inUse(l.open.Load())
				l.log.Info("accepting resumed", "in_use", used, "limit", l.fds.max)
			}
			return nil
		}
	}
}

// Close closes the listener and ends a paused Accept.
func (ln *Listener) Close() error {
	ln.closeOnce.Do(func() { close(ln.done) })
	return ln.Listener.Close()
}

// Conn is an admitted connection; closing it gives its place back.
type Conn struct {
	net.Conn
	l        *Limiter
	key      ratelimit.Key
	counted  bool // holds a place in the per-client table
	deferred bool // judged on first read (PROXY protocol)
	judged   atomic.Bool
	closed   atomic.Bool
	mu       sync.Mutex // orders the deferred judgement against Close
}

// errRefused is what the first Read of a connection refused by its PROXY
// header address returns; net/http and crypto/tls then close it.
var errRefused = errors.New("connlimit: connection refused for this client")

// Read reads from the connection; on a PROXY protocol listener the first
// Read also judges the client named by the header.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.deferred && !c.judged.Load() {
		if jerr := c.judge(); jerr != nil {
			return 0, jerr
		}
	}
	return n, err
}

func (c *Conn) judge() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.judged.Swap(true) || c.closed.Load() {
		return nil
	}
	client := peerAddrOf(c.Conn.RemoteAddr()) // the header's address, read by now
	k, _, ok := c.l.admit(client, time.Now())
	if !ok {
		_ = c.Conn.Close()
		return errRefused
	}
	c.key, c.counted = k, c.l.isCounted(client)
	return nil
}

// Close closes the connection and gives its place back, once.
func (c *Conn) Close() error {
	c.mu.Lock()
	first := !c.closed.Swap(true)
	c.mu.Unlock()
	if first {
		c.l.open.Add(-1)
		if c.counted {
			c.l.conns.release(c.key)
		}
	}
	return c.Conn.Close()
}

// peerAddr is the TCP peer of c: below a PROXY protocol connection, the
// socket's peer (asking the wrapper would wait for the header).
func peerAddr(c net.Conn) netip.Addr {
	if r, ok := c.(interface{ Raw() net.Conn }); ok {
		c = r.Raw()
	}
	return peerAddrOf(c.RemoteAddr())
}

func peerAddrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
