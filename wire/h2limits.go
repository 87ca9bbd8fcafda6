package wire

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// HTTP/2 abuse the server itself does not stop (issue 18).
//
// Rapid reset (CVE-2023-44487): a client opens streams and cancels each at
// once (HEADERS with END_STREAM, then RST_STREAM). The HTTP/2 server bounds
// the streams open at a time, but every opened stream still starts a
// handler, and a reset frees its place at once, so one connection can start
// tens of thousands of requests a second, and reconnecting lifts any
// per-connection bound. The read-along counts the streams each client opens
// and resets, per connection and per client address across its
// connections, and cuts the connection that goes over a budget; the cut is
// reported once, with the counts (H2Abuse), not once per stream.
//
// CONTINUATION flood: a header block may go on in CONTINUATION frames
// without end, and the server bounds it only by the size of the fields it
// decodes, so empty frames, or frames full of HPACK table size updates, are
// read forever at the cost of a core. The read-along bounds the frames and
// bytes of one header block whatever they decode to.
//
// Budgets are token buckets: a burst, refilled at a rate per second.
const (
	connResetBurst   = 200  // resets one connection may send at once
	connResetRate    = 100  // per second, after the burst
	clientResetBurst = 400  // resets one client address may send at once, over all its connections
	clientResetRate  = 200  // per second
	clientOpenBurst  = 2000 // streams one client address may open at once
	clientOpenRate   = 1000 // per second
	maxBlockFrames   = 64   // HEADERS and CONTINUATION frames of one header block
)

// maxBlockBytes bounds the bytes of one header block: twice the server's
// header list limit, the most a block that decodes within the limit needs
// (the server itself refuses a single fragment past twice what is left).
func (s *h2Scanner) maxBlockBytes() int { return 2 * int(s.listLimit) }

// H2Abuse describes an HTTP/2 connection cut for abuse.
type H2Abuse struct {
	Reason   string        // what was exceeded, with the counts
	Opened   int           // streams the client opened on the connection
	Reset    int           // streams it reset
	Duration time.Duration // how long the connection had been open
}

// errAbuse ends a connection the read-along cut for abuse.
type errAbuse struct{ reason string }

func (e *errAbuse) Error() string { return "HTTP/2 connection closed: " + e.reason }

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes one token, refilling at rate up to burst since the last take.
func (b *bucket) take(now time.Time, burst, rate float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// H2Clients holds the budgets that span connections: the streams each
// client address opens and resets. One is shared by every HTTP/2 connection
// of a server. Addresses for which exempt is true (trusted proxies, behind
// which many clients share one address) have none.
type H2Clients struct {
	exempt func(netip.Addr) bool
	now    func() time.Time // the budgets' clock, for every connection using t

	mu      sync.Mutex
	clients map[netip.Addr]*clientBudget
}

type clientBudget struct {
	opens, resets bucket
}

// maxTrackedClients bounds the table; idle entries are swept when it fills.
const maxTrackedClients = 100_000

// NewH2Clients returns an empty table; exempt may be nil.
func NewH2Clients(exempt func(netip.Addr) bool) *H2Clients {
	return &H2Clients{exempt: exempt, now: time.Now, clients: map[netip.Addr]*clientBudget{}}
}

// SetClock makes every budget of t, and of the connections that use t,
// read now instead of the wall clock, so that tests can hold time still or
// step it; call it before the first connection.
func (t *H2Clients) SetClock(now func() time.Time) { t.now = now }

// allow takes a token for one stream opened (reset false) or reset by addr.
func (t *H2Clients) allow(addr netip.Addr, reset bool, now time.Time) bool {
	if t == nil || !addr.IsValid() || (t.exempt != nil && t.exempt(addr)) {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.clients[addr]
	if b == nil {
		if len(t.clients) >= maxTrackedClients {
			t.sweep(now)
			if len(t.clients) >= maxTrackedClients {
				return true // cannot track more: the per-connection budgets still hold
			}
		}
		b = &clientBudget{}
		t.clients[addr] = b
	}
	if reset {
		return b.resets.take(now, clientResetBurst, clientResetRate)
	}
	return b.opens.take(now, clientOpenBurst, clientOpenRate)
}

// sweep drops the entries whose budgets have refilled: they would start
// afresh anyway.
func (t *H2Clients) sweep(now time.Time) {
	full := max(clientOpenBurst/clientOpenRate, clientResetBurst/clientResetRate) + 1
	for a, b := range t.clients {
		if now.Sub(b.opens.last) > time.Duration(full)*time.Second && now.Sub(b.resets.last) > time.Duration(full)*time.Second {
			delete(t.clients, a)
		}
	}
}

// h2Abuse is the read-along's part: counts and budgets of one connection.
type h2Abuse struct {
	clients *H2Clients
	addr    netip.Addr
	started time.Time
	now     func() time.Time

	opened, reset int
	resets        bucket

	cut    *errAbuse // set once the connection is cut
	report func(H2Abuse)
}

func newH2Abuse(clients *H2Clients, remote net.Addr, report func(H2Abuse)) h2Abuse {
	a := h2Abuse{clients: clients, now: time.Now, report: report}
	if clients != nil {
		a.now = clients.now
	}
	if ta, ok := remote.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			a.addr = ip.Unmap()
		}
	}
	a.started = a.now()
	return a
}

// opens notes a stream the client opens.
func (a *h2Abuse) opens() {
	a.opened++
	if !a.clients.allow(a.addr, false, a.now()) {
		a.cutFor(fmt.Sprintf("the client address opened more than %d streams at once or %d a second, over all its connections", clientOpenBurst, clientOpenRate))
	}
}

// resetsStream notes a stream the client resets.
func (a *h2Abuse) resetsStream() {
	a.reset++
	now := a.now()
	switch {
	case !a.resets.take(now, connResetBurst, connResetRate):
		a.cutFor(fmt.Sprintf("rapid reset: more than %d streams reset at once or %d a second on one connection", connResetBurst, connResetRate))
	case !a.clients.allow(a.addr, true, now):
		a.cutFor(fmt.Sprintf("rapid reset: the client address reset more than %d streams at once or %d a second, over all its connections", clientResetBurst, clientResetRate))
	}
}

// cutFor cuts the connection for reason, once, and reports it.
func (a *h2Abuse) cutFor(reason string) {
	if a.cut != nil {
		return
	}
	a.cut = &errAbuse{reason: reason}
	if a.report != nil {
		a.report(H2Abuse{Reason: reason, Opened: a.opened, Reset: a.reset, Duration: a.now().Sub(a.started)})
	}
}
