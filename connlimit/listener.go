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
//
// Several goroutines accept at once (acceptors): under a connection flood
// most accepted connections are refused, and one accepting goroutine,
// descheduled at every system call among hundreds of busy request
// goroutines, worked through the kernel's backlog at a few hundred
// connections a second, so that a legitimate client's new connection waited
// seconds behind the flood before a byte of it was read.
type Listener struct {
	net.Listener
	l      *Limiter
	header bool // the listener reads PROXY headers: the client is known on first read

	start     sync.Once
	conns     chan net.Conn
	errs      chan error
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// acceptors is the number of goroutines accepting on one listener.
const acceptors = 4

// Listener wraps ln. proxyProtocol tells that ln is a PROXY protocol
// listener (clientip.ProxyProtocolListener): connections from trusted peers
// are then judged by the header's address, on their first read.
func (l *Limiter) Listener(ln net.Listener, proxyProtocol bool) *Listener {
	return &Listener{Listener: ln, l: l, header: proxyProtocol, conns: make(chan net.Conn), errs: make(chan error, acceptors), done: make(chan struct{})}
}

// Accept returns the next admitted connection. While descriptors are short
// nothing is accepted: new connections wait in the kernel's backlog rather
// than take a descriptor the proxy needs for its own dials.
func (ln *Listener) Accept() (net.Conn, error) {
	ln.start.Do(func() {
		for range acceptors {
			ln.wg.Add(1)
			go ln.acceptLoop()
		}
	})
	select {
	case c := <-ln.conns:
		return c, nil
	case err := <-ln.errs:
		return nil, err
	case <-ln.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop accepts until the listener is closed. Other accept errors
// (EMFILE) are handed to the server, whose Serve backs off and calls again.
func (ln *Listener) acceptLoop() {
	defer ln.wg.Done()
	for {
		c, err := ln.next()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case ln.errs <- err:
			case <-ln.done:
				return
			}
			// One error at a time: wait until the server took it and
			// came back, as a single accepting goroutine would.
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ln.done:
				return
			}
			continue
		}
		select {
		case ln.conns <- c:
		case <-ln.done:
			_ = c.Close()
			return
		}
	}
}

// next accepts the next admitted connection, closing refused ones.
func (ln *Listener) next() (net.Conn, error) {
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
		k, _, ok := l.admit(peer, time.Now(), l.share())
		if !ok {
			refuse(c)
			continue
		}
		l.open.Add(1)
		return &Conn{Conn: c, l: l, key: k, counted: l.isCounted(peer)}, nil
	}
}

// refuse closes a refused connection with a reset (SO_LINGER 0): no
// TIME_WAIT state is kept for it on this side, and the client learns at
// once.
func refuse(c net.Conn) {
	if r, ok := c.(interface{ Raw() net.Conn }); ok {
		c = r.Raw()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
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

// Close closes the listener and ends a paused Accept. Admitted
// connections not yet handed out are closed.
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
	k, _, ok := c.l.admit(client, time.Now(), c.l.share())
	if !ok {
		refuse(c.Conn)
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
