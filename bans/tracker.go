package bans

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// IPv6Prefix is the network an IPv6 client is counted and banned by. A host
// usually holds a whole /64 and can use any address in it, so counting single
// addresses would let it shed its strikes (and its ban) by moving on; the
// rate limiter groups IPv6 clients the same way. IPv4 clients are counted and
// banned by their full address.
const IPv6Prefix = 64

// MaxThreshold bounds the strike threshold: a counter remembers the time of
// each of the last threshold strikes.
const MaxThreshold = 1000

const (
	// maxReasons distinct strike reasons are kept per client; further ones
	// are tallied as "other".
	maxReasons = 4
	// maxStrikeReason bounds one reason as stored in a counter.
	maxStrikeReason = 64
)

// Tracker counts strikes per client and bans a client that collects
// threshold strikes within window. Safe for concurrent use.
//
// Strikes are counted in a true sliding window: each counter keeps the times
// of the client's last threshold strikes, and the client is banned when the
// oldest of them is less than window ago. Memory is bounded: at most maxKeys
// counters of about 9·threshold+150 bytes each.
//
// Reasons are short labels the gateway chooses ("waf block", "status 404");
// they end up in the ban's Reason, so they must not carry request data.
type Tracker struct {
	store     *Store
	threshold int
	window    time.Duration
	banFor    time.Duration
	maxKeys   int

	mu       sync.Mutex
	counters map[netip.Prefix]*counter
	// head and tail of the counters ordered by last strike, newest first,
	// so the eviction candidate is found in constant time.
	head, tail    *counter
	evictedStale  uint64
	evictedActive uint64
}

// counter holds one client's recent strikes.
type counter struct {
	prefix       netip.Prefix
	newer, older *counter // recency list
	times        []int64  // ring of the last threshold strike times, Unix nanoseconds
	why          []uint8  // reason index of each strike; maxReasons means "other"
	next         int      // ring position of the oldest strike, overwritten next
	n            int      // strikes in the ring, at most threshold
	last         int64    // time of the newest strike
	reasons      [maxReasons]string
	nr           int
}

// NewTracker returns a tracker that bans into store. A client that collects
// threshold strikes within window is banned for banFor; at most maxKeys
// clients are tracked at once.
//
// When maxKeys clients are tracked and a new one strikes, the counter struck
// longest ago is dropped. If its strikes are all older than window nothing is
// lost (it is equivalent to no counter); if not, no counter is stale, and the
// oldest is the least likely to reach the threshold. The trade-off: a flood of strikes from many distinct addresses can
// push out a client that was close to the threshold. Stats counts such
// evictions.
func NewTracker(store *Store, threshold int, window, banFor time.Duration, maxKeys int) (*Tracker, error) {
	var errs []error
	if store == nil {
		errs = append(errs, errors.New("store is nil"))
	}
	if threshold < 1 || threshold > MaxThreshold {
		errs = append(errs, fmt.Errorf("threshold %d must be between 1 and %d", threshold, MaxThreshold))
	}
	if window <= 0 {
		errs = append(errs, fmt.Errorf("window %v must be positive", window))
	}
	if banFor <= 0 {
		errs = append(errs, fmt.Errorf("ban duration %v must be positive", banFor))
	}
	if maxKeys < 1 {
		errs = append(errs, fmt.Errorf("maxKeys %d must be at least 1", maxKeys))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bans: tracker: %w", err)
	}
	return &Tracker{
		store:     store,
		threshold: threshold,
		window:    window,
		banFor:    banFor,
		maxKeys:   maxKeys,
		counters:  make(map[netip.Prefix]*counter),
	}, nil
}

// ClientPrefix returns the network a client address is counted and banned
// by: the address itself for IPv4 (IPv4-mapped IPv6 included), its
// IPv6Prefix network for IPv6.
func ClientPrefix(a netip.Addr) (netip.Prefix, error) {
	if !a.IsValid() {
		return netip.Prefix{}, errors.New("bans: invalid client address")
	}
	a = a.Unmap()
	if a.Is4() {
		return a.Prefix(32)
	}
	return a.Prefix(IPv6Prefix)
}

// Strike records one piece of misbehaviour by the client at a, at now. When
// it is the client's threshold-th strike within the window, the client's
// network is banned for the tracker's ban duration (Source "auto", Reason
// naming the count and the reasons), its counter is cleared, and banned is
// true.
//
// err is non-nil when the ban could not be made (banned is false, for
// example ErrFull) or was made but not saved (banned is true and err wraps
// ErrNotSaved). The store is called after the tracker's lock is released, so
// a slow disk delays only the striking request.
func (tr *Tracker) Strike(a netip.Addr, reason string, now time.Time) (banned bool, err error) {
	p, err := ClientPrefix(a)
	if err != nil {
		return false, err
	}
	if sh := tr.store.repl.Load(); sh != nil {
		// Counted in Redis, so strikes on every instance add up; when
		// Redis cannot count it, the local counters below do.
		if reasons, ok := sh.strike(p, truncate(reason, maxStrikeReason), now, tr.threshold, tr.window); ok {
			if len(reasons) == 0 {
				return false, nil
			}
			return tr.ban(p, describeReasons(reasons, tr.window), now)
		}
	}
	t := now.UnixNano()
	window := int64(tr.window)

	tr.mu.Lock()
	c := tr.counters[p]
	if c != nil && t-c.last >= window {
		c.reset() // every strike it holds is outside the window
	}
	if c == nil {
		c = tr.newCounter(p, t)
		tr.counters[p] = c
	}
	c.record(t, truncate(reason, maxStrikeReason))
	tr.toFront(c)
	if c.n < tr.threshold || t-c.times[c.next] >= window {
		tr.mu.Unlock()
		return false, nil
	}
	why := c.describe(tr.window)
	tr.unlink(c)
	delete(tr.counters, p)
	tr.mu.Unlock()
	return tr.ban(p, why, now)
}

// ban bans p after its strikes.
func (tr *Tracker) ban(p netip.Prefix, why string, now time.Time) (bool, error) {
	err := tr.store.Add(Ban{Prefix: p, Reason: truncate(why, MaxReasonLen), Source: SourceAuto, Created: now, Until: now.Add(tr.banFor)})
	if err != nil && !errors.Is(err, ErrNotSaved) {
		return false, fmt.Errorf("bans: ban %s after strikes: %w", p, err)
	}
	return true, err
}

// describeReasons describes strikes counted in Redis the way a local
// counter describes its own.
func describeReasons(reasons []string, window time.Duration) string {
	c := &counter{times: make([]int64, len(reasons)), why: make([]uint8, len(reasons))}
	for _, r := range reasons {
		c.record(0, r)
	}
	return c.describe(window)
}

// TrackerStats describes the tracker, for metrics.
type TrackerStats struct {
	// Counters is the number of clients tracked (at most maxKeys).
	Counters int
	// EvictedStale counts counters dropped whose strikes had all expired.
	EvictedStale uint64
	// EvictedActive counts counters dropped with strikes still in the
	// window, to make room for new clients: each is a client whose strikes
	// were forgotten. A rising count means a flood or a table too small.
	EvictedActive uint64
}

// Stats returns current counts.
func (tr *Tracker) Stats() TrackerStats {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return TrackerStats{Counters: len(tr.counters), EvictedStale: tr.evictedStale, EvictedActive: tr.evictedActive}
}

// newCounter returns an empty counter for p, reusing the least recently
// struck one when the table is full so a full tracker does not allocate.
// Called with mu held.
func (tr *Tracker) newCounter(p netip.Prefix, now int64) *counter {
	if len(tr.counters) < tr.maxKeys {
		return &counter{prefix: p, times: make([]int64, tr.threshold), why: make([]uint8, tr.threshold)}
	}
	vc := tr.tail // struck longest ago: if any counter is stale, this one is
	if now-vc.last >= int64(tr.window) {
		tr.evictedStale++
	} else {
		tr.evictedActive++
	}
	tr.unlink(vc)
	delete(tr.counters, vc.prefix)
	vc.reset()
	vc.prefix = p
	return vc
}

// toFront makes c the most recently struck counter. Called with mu held.
func (tr *Tracker) toFront(c *counter) {
	if tr.head == c {
		return
	}
	if c.newer != nil || tr.tail == c {
		tr.unlink(c)
	}
	c.older = tr.head
	if tr.head != nil {
		tr.head.newer = c
	}
	tr.head = c
	if tr.tail == nil {
		tr.tail = c
	}
}

// unlink takes c out of the recency list. Called with mu held.
func (tr *Tracker) unlink(c *counter) {
	if c.newer != nil {
		c.newer.older = c.older
	} else {
		tr.head = c.older
	}
	if c.older != nil {
		c.older.newer = c.newer
	} else {
		tr.tail = c.newer
	}
	c.newer, c.older = nil, nil
}

func (c *counter) reset() {
	c.next, c.n, c.nr = 0, 0, 0
	c.reasons = [maxReasons]string{}
}

// record adds a strike at t.
func (c *counter) record(t int64, reason string) {
	c.why[c.next] = c.reasonIndex(reason)
	c.times[c.next] = t
	c.next = (c.next + 1) % len(c.times)
	c.n = min(c.n+1, len(c.times))
	c.last = t
}

// reasonIndex returns the slot for reason, taking a free one (or one no
// remembered strike refers to any more) for a new reason, or maxReasons
// ("other") if every slot is in use.
func (c *counter) reasonIndex(reason string) uint8 {
	for i := range c.nr {
		if c.reasons[i] == reason {
			return uint8(i)
		}
	}
	if c.nr < maxReasons {
		c.reasons[c.nr] = reason
		c.nr++
		return uint8(c.nr - 1)
	}
	// The ring's strikes, oldest first, start at next-n. The oldest may be
	// about to be overwritten, but its slot is still counted as in use.
	var used [maxReasons + 1]bool
	start := c.next - c.n + len(c.why)
	for i := range c.n {
		used[c.why[(start+i)%len(c.why)]] = true
	}
	for i := range maxReasons {
		if !used[i] {
			c.reasons[i] = reason
			return uint8(i)
		}
	}
	return maxReasons
}

// describe names the strikes in the ring, most frequent reason first, for
// the ban's Reason: "5 strikes within 1m0s: status 404 (3), waf block (2)".
func (c *counter) describe(window time.Duration) string {
	var tally [maxReasons + 1]int
	for i := range c.n {
		tally[c.why[i]]++
	}
	type item struct {
		name  string
		count int
	}
	items := make([]item, 0, maxReasons+1)
	for i := range c.nr {
		if tally[i] > 0 {
			items = append(items, item{c.reasons[i], tally[i]})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(b.count, a.count), strings.Compare(a.name, b.name))
	})
	if tally[maxReasons] > 0 {
		items = append(items, item{"other", tally[maxReasons]})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d strikes within %v:", c.n, window)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		name := it.name
		if name == "" {
			name = "unspecified"
		}
		fmt.Fprintf(&b, " %s (%d)", name, it.count)
	}
	return b.String()
}
