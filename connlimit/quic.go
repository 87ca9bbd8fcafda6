package connlimit

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// QUIC connections (HTTP/3) arrive on one UDP socket, not through a
// net.Listener: they are admitted by the QUIC transport's hooks instead,
// with the same table as TCP connections, so that a client's TCP and QUIC
// connections together count against PerClient, and new QUIC connections
// against Rate/Burst:
//
//   - ConnContext (quic.Transport.ConnContext) runs when a new connection's
//     first Initial packet arrives, before the handshake: over a limit it
//     returns an error and quic-go answers with CONNECTION_REFUSED (the
//     client's dial fails at once, no handshake, no goroutine of the HTTP/3
//     server); otherwise the place is held until the connection's context
//     ends (closed, timed out, or a failed handshake).
//   - VerifySourceAddress (quic.Transport.VerifySourceAddress) asks for a
//     Retry (RFC 9000 §8.1.2) from an address that already holds its
//     PerClient connections, so that a connection refused for being over
//     the limit comes from an address that proved it receives packets
//     there. A UDP source address can be forged: connection attempts with
//     a forged address take places of that address until their handshake
//     times out (server.read_header_timeout, the QUIC handshake timeout),
//     and no more than PerClient of them, since the Retry stops the rest.
//
// QUIC connections take no descriptor of their own (they share the UDP
// socket): they are not in the descriptor budget, its fair share or its
// accept pause; Stats.QUICOpen counts them. Refusals count in the same
// reasons as TCP's (Stats.Refused, and so
// portcullis_client_connections_refused_total{reason}) and in
// Stats.QUICRefused, and appear in the same refusal summary log.

// errQUICRefused is the error ConnContext returns for a refused connection.
var errQUICRefused = errors.New("connlimit: QUIC connection refused for this client")

// quicStats are the QUIC side's counters.
type quicStats struct {
	open    atomic.Int64
	refused atomic.Uint64
	// last is the most recent refusal. A client's first flight may take
	// several Initial packets (a ClientHello with a post-quantum key share
	// does not fit in one), and quic-go asks again for each: the later
	// ones of a refused attempt are refused without being counted again.
	last atomic.Pointer[refusal]
}

type refusal struct {
	from netip.AddrPort
	at   time.Time
}

// sameAttempt is how long after a refusal more Initial packets from the
// same address and port count as the same attempt.
const sameAttempt = time.Second

// QUICConnContext is the hook for quic.Transport.ConnContext: it admits a
// new QUIC connection of info.RemoteAddr, or refuses it with an error.
func (l *Limiter) QUICConnContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	now := time.Now()
	from := addrPortOf(info.RemoteAddr)
	if last := l.quic.last.Load(); last != nil && last.from == from && now.Sub(last.at) < sameAttempt {
		return ctx, errQUICRefused
	}
	a := from.Addr().Unmap()
	k, _, ok := l.admit(a, now, 0)
	if !ok {
		l.quic.refused.Add(1)
		l.quic.last.Store(&refusal{from: from, at: now})
		return ctx, errQUICRefused
	}
	l.quic.open.Add(1)
	counted := l.isCounted(a)
	// ctx ends when the connection closes or its handshake fails.
	context.AfterFunc(ctx, func() {
		l.quic.open.Add(-1)
		if counted {
			l.conns.release(k)
		}
	})
	return ctx, nil
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// QUICVerifySourceAddress is the hook for
// quic.Transport.VerifySourceAddress: true (send a Retry first) when addr
// already holds its PerClient connections.
func (l *Limiter) QUICVerifySourceAddress(addr net.Addr) bool {
	if l.cfg.PerClient <= 0 {
		return false
	}
	a := peerAddrOf(addr)
	if !a.IsValid() || l.cfg.Trusted(a) {
		return false
	}
	return l.conns.held(l.key(a)) >= l.cfg.PerClient
}
