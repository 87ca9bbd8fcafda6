// Package connlimit admits client connections and requests per client
// address, so that one address cannot take what every other client needs:
// connections, descriptors and places in the inspection queue.
//
// Place in the request path: first of all, on the TCP listener (above the
// PROXY protocol, below TLS and wire), and once more in the gateway, after
// clientip/ has decided the real client of a request:
//
//	accept → [Listener: descriptors, connections per client, new
//	          connections per second per client] → PROXY header → TLS → wire
//	  → net/http → gateway: client address → cheap filters
//	    → [InFlight (NewStage): requests in flight per client] → waf → proxy
//
// QUIC connections (HTTP/3) are admitted by the QUIC transport's hooks
// instead of a Listener, with the same per-client table (quic.go).
//
// A refusal at accept costs almost nothing: the connection is closed before
// a byte is read or written (no TLS handshake, no goroutine of net/http),
// and it is counted, never logged one by one; a summary is logged at most
// every 10 seconds. A refusal of the in-flight limit is an ordinary request
// refusal: 429 with the neutral page and an audit record.
//
// # Who is a client
//
// At accept the client is the TCP peer, with IPv6 peers grouped by prefix
// (/64 by default, as the rate limiter does: one host can pick any address
// of its /64). Peers in client_ip.trusted_proxies are load balancers that
// carry many clients: they are never limited as one client. On a listener
// with the PROXY protocol the client is the address in the header, known
// only after the header is read: such a connection from a trusted peer is
// admitted at accept and judged by the header's address on its first read.
// Requests are judged by the address clientip/ decided, so clients behind
// a trusted proxy are separated by their X-Forwarded-For address.
//
// # Descriptors
//
// Every accepted connection is a file descriptor, and so is every upstream
// connection, audit file and admin connection. A connection flood that
// takes the last descriptor makes the proxy's own dials fail, which used to
// eject healthy upstream targets. The Limiter keeps a reserve, in two
// steps:
//
//   - client connections have a budget of half the descriptors above the
//     reserve (each may need an upstream connection of its own). Past it,
//     a new connection is admitted only while its client holds less than a
//     fair share of the budget (the budget divided among the clients with
//     connections, plus one): a new client still gets in, the clients
//     holding the most are refused at accept;
//   - while the descriptors in use reach RLIMIT_NOFILE minus the reserve,
//     Accept pauses (new connections wait in the kernel's backlog) and
//     Paused reports it, for /readyz and the metrics.
//
// Go raises the soft RLIMIT_NOFILE to the hard one at start; the limit read
// here is the raised one.
//
// # Bounds
//
// The per-client tables hold only clients with a connection open or a
// request in flight, so they are bounded by the connections the descriptor
// reserve allows; the new-connection rate table is a ratelimit.Memory
// bounded by MaxKeys.
package connlimit

import (
	"hash/maphash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/ratelimit"
)

// Config is the admission policy of a process's listeners.
type Config struct {
	// PerClient bounds the open connections of one client address. 0: no
	// limit.
	PerClient int
	// Rate and Burst bound new connections per second of one client
	// address (Burst at once after a quiet spell). Rate 0: no limit.
	Rate  float64
	Burst int
	// IPv6Prefix groups IPv6 clients; outside 1..128 it is 64.
	IPv6Prefix int
	// MaxKeys bounds the new-connection rate table. 0: 100,000.
	MaxKeys int
	// Trusted reports load balancers (client_ip.trusted_proxies): never
	// limited as one client. nil: none.
	Trusted func(netip.Addr) bool
	// Reserve is how many descriptors stay free for upstream connections,
	// files and the admin listener: Accept pauses while fewer are left.
	// 0: automatic, a quarter of the limit, at least 64.
	Reserve int
	// MaxFiles is the descriptor limit. 0: RLIMIT_NOFILE (unlimited where
	// it cannot be read); negative: no descriptor reserve.
	MaxFiles int
	// OpenFiles counts the descriptors in use. nil: /proc/self/fd where it
	// exists (elsewhere the descriptor reserve only counts connections).
	OpenFiles func() (int, bool)
	// Log receives the refusal summaries. nil: slog.Default().
	Log *slog.Logger
}

// Reasons for refusing a connection, as counted in Stats.
const (
	ReasonPerClient = "per_client" // PerClient connections already open
	ReasonRate      = "rate"       // more new connections than Rate/Burst
	ReasonFairShare = "fair_share" // over the client's share while descriptors are short
)

// Limiter is the shared admission state of every listener of a process.
type Limiter struct {
	cfg   Config
	conns *counts
	rate  *ratelimit.Memory // nil: no rate limit
	log   *slog.Logger

	open      atomic.Int64 // connections accepted and not yet closed
	refused   [3]atomic.Uint64
	pauses    atomic.Uint64 // times Accept paused for descriptors
	paused    atomic.Bool
	fds       descriptors
	summary   summary
	quic      quicStats // QUIC connections (quic.go)
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Limiter for cfg. Close stops its background work.
func New(cfg Config) *Limiter {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.Trusted == nil {
		cfg.Trusted = func(netip.Addr) bool { return false }
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Limiter{cfg: cfg, conns: newCounts(), log: cfg.Log, done: make(chan struct{})}
	if cfg.Rate > 0 {
		burst := max(cfg.Burst, 1)
		l.rate = ratelimit.NewMemory(ratelimit.Rule{Rate: cfg.Rate, Burst: burst}, cfg.MaxKeys)
	}
	l.fds.init(cfg.MaxFiles, cfg.Reserve, cfg.OpenFiles)
	l.summary.top = map[netip.Addr]uint64{}
	return l
}

// Close stops the descriptor sampling and the refusal summaries.
func (l *Limiter) Close() {
	l.closeOnce.Do(func() { close(l.done) })
}

// key groups a client address as the rate limiter does.
func (l *Limiter) key(a netip.Addr) ratelimit.Key {
	return ratelimit.KeyFromAddr(a, l.cfg.IPv6Prefix)
}

// share is the fair share of connections per client while client
// connections are over their descriptor budget: the budget divided among
// the clients holding connections and one more (the newcomer), at least
// one. 0: no budget pressure.
func (l *Limiter) share() int {
	budget := l.fds.clientBudget()
	if budget == 0 || l.open.Load() < int64(budget) {
		return 0
	}
	return max(1, budget/(l.conns.len()+1))
}

// admit decides a new connection of client a; ok false names the reason.
// share, when not 0, is the fair share a client may hold while client
// connections are over their descriptor budget: a newcomer or a light
// client still gets in, the clients holding the most are refused.
func (l *Limiter) admit(a netip.Addr, now time.Time, share int) (k ratelimit.Key, reason string, ok bool) {
	if !a.IsValid() || l.cfg.Trusted(a.Unmap()) {
		return ratelimit.Key{}, "", true // a Unix socket, or a load balancer
	}
	k = l.key(a)
	if l.rate != nil && !l.rate.Allow(k, now).Allowed {
		l.refuse(a, 1)
		return k, ReasonRate, false
	}
	limit, why, idx := l.cfg.PerClient, ReasonPerClient, 0
	if share > 0 && (limit == 0 || share < limit) {
		limit, why, idx = share, ReasonFairShare, 2
	}
	if !l.conns.acquire(k, limit) {
		l.refuse(a, idx)
		return k, why, false
	}
	return k, "", true
}

func (l *Limiter) refuse(a netip.Addr, reason int) {
	l.refused[reason].Add(1)
	l.summary.note(a)
	l.summary.maybeLog(l.log, l)
}

// Stats is a snapshot for metrics and /readyz.
type Stats struct {
	Open           int64             // client connections open
	Refused        map[string]uint64 // by reason, since start
	Paused         bool              // Accept is paused: descriptors are short
	Pauses         uint64            // times Accept paused
	MaxFiles       int               // the descriptor limit (0: unknown)
	Reserve        int               // descriptors kept free
	OpenFiles      int               // descriptors in use at the last sample
	ClientsTracked int               // clients with a connection open
	QUICOpen       int64             // QUIC (HTTP/3) connections open, not in Open
	QUICRefused    uint64            // QUIC connections refused, also counted in Refused
}

// Stats returns the current state.
func (l *Limiter) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	used, _ := l.fds.inUse(l.open.Load())
	return Stats{
		Open:           l.open.Load(),
		Refused:        map[string]uint64{ReasonPerClient: l.refused[0].Load(), ReasonRate: l.refused[1].Load(), ReasonFairShare: l.refused[2].Load()},
		Paused:         l.paused.Load(),
		Pauses:         l.pauses.Load(),
		MaxFiles:       l.fds.max,
		Reserve:        l.fds.reserve,
		OpenFiles:      used,
		ClientsTracked: l.conns.len(),
		QUICOpen:       l.quic.open.Load(),
		QUICRefused:    l.quic.refused.Load(),
	}
}

// summary logs refusals at most once per summaryEvery: how many, and the
// client with the most, so a flood leaves a few lines, not one per
// connection.
type summary struct {
	mu    sync.Mutex
	last  time.Time
	count uint64
	top   map[netip.Addr]uint64 // bounded by maxTop
}

const (
	summaryEvery = 10 * time.Second
	maxTop       = 64
)

func (s *summary) note(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if _, ok := s.top[a]; ok || len(s.top) < maxTop {
		s.top[a]++
	}
}

func (s *summary) maybeLog(log *slog.Logger, l *Limiter) {
	now := time.Now()
	s.mu.Lock()
	if now.Sub(s.last) < summaryEvery {
		s.mu.Unlock()
		return
	}
	s.last = now
	count := s.count
	var worst netip.Addr
	var most uint64
	for a, n := range s.top {
		if n > most {
			worst, most = a, n
		}
	}
	s.count, s.top = 0, map[netip.Addr]uint64{}
	s.mu.Unlock()
	log.Warn("client connections refused (summary)", "refused", count, "since", summaryEvery.String(),
		"top_client", worst.String(), "top_client_refused", most,
		"total_per_client", l.refused[0].Load(), "total_rate", l.refused[1].Load(), "total_fair_share", l.refused[2].Load())
}

// counts is a table of how many connections (or requests) each client key
// holds. An entry exists only while its count is above zero.
type counts struct {
	shards [16]countShard
}

type countShard struct {
	mu sync.Mutex
	m  map[ratelimit.Key]int32
	_  [40]byte
}

func newCounts() *counts {
	c := &counts{}
	for i := range c.shards {
		c.shards[i].m = map[ratelimit.Key]int32{}
	}
	return c
}

var shardSeed = maphash.MakeSeed()

func (c *counts) shardOf(k ratelimit.Key) *countShard {
	return &c.shards[maphash.Comparable(shardSeed, k)%uint64(len(c.shards))]
}

// acquire counts one more for k unless it already holds limit (limit 0:
// no limit).
func (c *counts) acquire(k ratelimit.Key, limit int) bool {
	s := c.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m[k]
	if limit > 0 && int(n) >= limit {
		return false
	}
	s.m[k] = n + 1
	return true
}

// release gives back one of k's.
func (c *counts) release(k ratelimit.Key) {
	s := c.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.m[k]; n > 1 {
		s.m[k] = n - 1
	} else {
		delete(s.m, k)
	}
}

// held is how many k holds.
func (c *counts) held(k ratelimit.Key) int {
	s := c.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[k])
}

func (c *counts) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
