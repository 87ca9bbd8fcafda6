package admin

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Login rate limits.
//
// Lockouts are keyed by where a guess comes from, never by the user name
// alone: a lockout per name would let anyone anywhere lock the real owner
// out by failing five times (issue 13). Two keys are counted:
//
//   - the client address (IPv6 by /64) may fail loginAddrBurst times within
//     loginWindow, whatever names it tries;
//   - the address together with one user name may fail loginPairBurst times,
//     so a colleague behind the same NAT who mistypes their own password
//     locks out only their own name there.
//
// The failure after the budget locks the key out for loginLockout, doubling
// with every further lockout up to loginMaxLockout; a key that stays quiet
// for loginForget starts over. Failures, not attempts, are counted, so an
// operator who types the password right is never held back by their own
// successful logins.
//
// Against guessing one name from many addresses there is a slow-down, not
// a lockout: once a name has failed loginUserFree times within
// loginUserWindow from anywhere, every attempt for it waits loginSlowStep
// more per further loginUserFree failures, up to loginSlowMax, before its
// password is compared. The owner still gets in, a few seconds later; each
// attacking address, allowed at most loginPairBurst comparisons in flight,
// guesses that much slower. Names are limited whether or not they exist,
// so the limits say nothing about which names are real.
const (
	loginAddrBurst  = 10
	loginPairBurst  = 5
	loginWindow     = time.Minute
	loginLockout    = time.Minute
	loginMaxLockout = time.Hour
	loginForget     = 2 * time.Hour
	maxLimiterKeys  = 10000

	loginUserWindow = 10 * time.Minute
	loginUserFree   = 20
	loginSlowStep   = time.Second
	loginSlowMax    = 5 * time.Second
	maxLimiterUsers = 10000
)

// limitKey is one budget: its name in the table and how many failures it
// allows within loginWindow.
type limitKey struct {
	id    string
	burst int
}

// addrKey groups IPv6 clients by /64: one host usually owns the whole
// network, and would otherwise get 2^64 fresh budgets.
func addrKey(a netip.Addr) limitKey {
	return limitKey{id: "addr " + addrGroup(a), burst: loginAddrBurst}
}

// pairKey is the budget of one user name from one address (group).
func pairKey(a netip.Addr, user string) limitKey {
	return limitKey{id: "pair " + addrGroup(a) + " " + user, burst: loginPairBurst}
}

func addrGroup(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown" // every unparsable peer shares one budget
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

type loginLimiter struct {
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*loginKey
	users map[string]*userFailures
}

type loginKey struct {
	fails     []time.Time // within the window, at most the burst
	lockouts  int         // how many lockouts so far: the backoff exponent
	until     time.Time   // locked out before this instant
	lastTouch time.Time
	inflight  int // attempts whose password is being compared now
}

// userFailures counts the failures of one user name from all addresses in
// one-minute buckets over loginUserWindow.
type userFailures struct {
	minute  int64 // Unix minute of buckets[0]
	buckets [loginUserWindow / time.Minute]int
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, keys: map[string]*loginKey{}, users: map[string]*userFailures{}}
}

// begin reserves one attempt for every key, or returns how long to wait.
// Attempts in flight count against the burst together with recent
// failures: otherwise a client could start many comparisons at once, all
// passing the check before the first failure is recorded. Each successful
// begin must be followed by one end.
func (l *loginLimiter) begin(keys ...limitKey) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		e, ok := l.keys[k.id]
		if !ok {
			continue
		}
		if now.Before(e.until) {
			d = max(d, e.until.Sub(now))
			continue
		}
		recent := 0
		for _, t := range e.fails {
			if now.Sub(t) < loginWindow {
				recent++
			}
		}
		if recent+e.inflight >= k.burst {
			d = max(d, time.Second) // the comparisons under way decide first
		}
	}
	if d > 0 {
		return d
	}
	for _, k := range keys {
		l.entryLocked(k.id, now).inflight++
	}
	return 0
}

// entryLocked returns the key's entry, creating it (and making room) when
// it is new.
func (l *loginLimiter) entryLocked(id string, now time.Time) *loginKey {
	e, ok := l.keys[id]
	if !ok {
		if len(l.keys) >= maxLimiterKeys {
			l.evictLocked(now)
		}
		e = &loginKey{lastTouch: now}
		l.keys[id] = e
	}
	return e
}

// end releases the attempts begin reserved.
func (l *loginLimiter) end(keys ...limitKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e, ok := l.keys[k.id]; ok && e.inflight > 0 {
			e.inflight--
		}
	}
}

// wait returns how long the longest lockout among keys still lasts.
func (l *loginLimiter) wait(keys ...limitKey) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		if e, ok := l.keys[k.id]; ok && now.Before(e.until) {
			d = max(d, e.until.Sub(now))
		}
	}
	return d
}

// fail records a failed login for every key and for the user name.
func (l *loginLimiter) fail(user string, keys ...limitKey) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		e := l.entryLocked(k.id, now)
		if now.Sub(e.lastTouch) > loginForget {
			e.lockouts = 0
		}
		e.lastTouch = now
		kept := e.fails[:0]
		for _, t := range e.fails {
			if now.Sub(t) < loginWindow {
				kept = append(kept, t)
			}
		}
		e.fails = append(kept, now)
		if len(e.fails) >= k.burst {
			e.until = now.Add(min(loginLockout<<min(e.lockouts, 10), loginMaxLockout))
			e.lockouts++
			e.fails = e.fails[:0]
		}
	}
	l.userFailLocked(user, now)
}

// succeed forgets the failures of the address and user name pair once the
// password was given. The address keeps its record: one valid account must
// not buy unlimited guesses at the others.
func (l *loginLimiter) succeed(pair limitKey) {
	l.mu.Lock()
	delete(l.keys, pair.id)
	l.mu.Unlock()
}

// slowdown returns how long an attempt for user waits before its password
// is compared: zero unless the name is being guessed from many places.
func (l *loginLimiter) slowdown(user string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.users[user]
	if !ok {
		return 0
	}
	n := u.count(now)
	if n < loginUserFree {
		return 0
	}
	return min(loginSlowStep*time.Duration(n/loginUserFree), loginSlowMax)
}

func (l *loginLimiter) userFailLocked(user string, now time.Time) {
	u, ok := l.users[user]
	if !ok {
		if len(l.users) >= maxLimiterUsers {
			l.evictUsersLocked(now)
		}
		u = &userFailures{}
		l.users[user] = u
	}
	u.add(now)
}

// evictUsersLocked makes room in the user name table: names without
// failures in the window first, then an eighth of the table, the names
// with the fewest failures (whose slow-down is the smallest or none). A
// batch keeps the cost of a flood of new names at O(log n) each.
func (l *loginLimiter) evictUsersLocked(now time.Time) {
	type load struct {
		name string
		n    int
	}
	loads := make([]load, 0, len(l.users))
	for name, u := range l.users {
		n := u.count(now)
		if n == 0 {
			delete(l.users, name)
			continue
		}
		loads = append(loads, load{name, n})
	}
	if len(l.users) < maxLimiterUsers {
		return
	}
	slices.SortFunc(loads, func(a, b load) int { return cmp.Compare(a.n, b.n) })
	for _, x := range loads[:len(loads)/8+1] {
		delete(l.users, x.name)
	}
}

// advance moves the buckets so that buckets[0] is the current minute.
func (u *userFailures) advance(now time.Time) {
	m := now.Unix() / 60
	shift := m - u.minute
	if shift <= 0 {
		return
	}
	if shift >= int64(len(u.buckets)) {
		u.buckets = [len(u.buckets)]int{}
	} else {
		copy(u.buckets[shift:], u.buckets[:int64(len(u.buckets))-shift])
		clear(u.buckets[:shift])
	}
	u.minute = m
}

func (u *userFailures) add(now time.Time) {
	u.advance(now)
	u.buckets[0]++
}

func (u *userFailures) count(now time.Time) int {
	u.advance(now)
	n := 0
	for _, c := range u.buckets {
		n += c
	}
	return n
}

// evictLocked makes room: first keys that no longer matter, then, if an
// attacker with many addresses filled the table, an eighth of it: the keys
// whose lockout ends first (unlocked ones before any locked one), so a
// flood of new addresses frees a locked-out one as late as possible. Keys
// with an attempt in flight stay. A batch keeps the cost of a flood at
// O(log n) per new key.
func (l *loginLimiter) evictLocked(now time.Time) {
	type victim struct {
		id    string
		until time.Time
	}
	victims := make([]victim, 0, len(l.keys))
	for k, e := range l.keys {
		if e.inflight > 0 {
			continue
		}
		if now.After(e.until) && now.Sub(e.lastTouch) > loginWindow && e.lockouts == 0 || now.Sub(e.lastTouch) > loginForget {
			delete(l.keys, k)
			continue
		}
		victims = append(victims, victim{k, e.until})
	}
	if len(l.keys) < maxLimiterKeys {
		return
	}
	slices.SortFunc(victims, func(a, b victim) int { return a.until.Compare(b.until) })
	for _, v := range victims[:min(len(victims), len(l.keys)/8+1)] {
		delete(l.keys, v.id)
	}
}
