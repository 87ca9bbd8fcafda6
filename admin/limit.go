package admin

import (
	"net/netip"
	"sync"
	"time"
)

// Login rate limits. A key (a client address, or a user name) may fail
// loginBurst times within loginWindow; the next failure locks it out for
// loginLockout, doubling with every further lockout up to loginMaxLockout.
// A key that stays quiet for loginForget starts over.
//
// Failures, not attempts, are counted, so an operator who types the password
// right is never held back by their own successful logins. User names are
// limited whether or not they exist, so the limit says nothing about which
// names are real.
const (
	loginBurst      = 5
	loginWindow     = time.Minute
	loginLockout    = time.Minute
	loginMaxLockout = time.Hour
	loginForget     = 2 * time.Hour
	maxLimiterKeys  = 10000
)

type loginLimiter struct {
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*loginKey
}

type loginKey struct {
	fails     []time.Time // within the window, at most loginBurst
	lockouts  int         // how many lockouts so far: the backoff exponent
	until     time.Time   // locked out before this instant
	lastTouch time.Time
	inflight  int // attempts whose password is being compared now
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, keys: map[string]*loginKey{}}
}

// addrKey groups IPv6 clients by /64: one host usually owns the whole
// network, and would otherwise get 2^64 fresh budgets.
func addrKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr " + p.String()
	}
	return "addr " + a.String()
}

func userKey(name string) string { return "user " + name }

// wait returns how long the longest lockout among keys still lasts; zero
// means the attempt may go ahead.
// begin reserves one attempt for every key, or returns how long to wait.
// Attempts in flight count against the burst together with recent
// failures: otherwise a client could start many comparisons at once, all
// passing the check before the first failure is recorded. Each successful
// begin must be followed by one end.
func (l *loginLimiter) begin(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		e, ok := l.keys[k]
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
		if recent+e.inflight >= loginBurst {
			d = max(d, time.Second) // the comparisons under way decide first
		}
	}
	if d > 0 {
		return d
	}
	for _, k := range keys {
		e, ok := l.keys[k]
		if !ok {
			if len(l.keys) >= maxLimiterKeys {
				l.evictLocked(now)
			}
			e = &loginKey{lastTouch: now}
			l.keys[k] = e
		}
		e.inflight++
	}
	return 0
}

// end releases the attempts begin reserved.
func (l *loginLimiter) end(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e, ok := l.keys[k]; ok && e.inflight > 0 {
			e.inflight--
		}
	}
}

func (l *loginLimiter) wait(keys ...string) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var d time.Duration
	for _, k := range keys {
		if e, ok := l.keys[k]; ok && now.Before(e.until) {
			d = max(d, e.until.Sub(now))
		}
	}
	return d
}

// fail records a failed login for every key.
func (l *loginLimiter) fail(keys ...string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		e, ok := l.keys[k]
		if !ok {
			if len(l.keys) >= maxLimiterKeys {
				l.evictLocked(now)
			}
			e = &loginKey{}
			l.keys[k] = e
		}
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
		if len(e.fails) >= loginBurst {
			e.until = now.Add(min(loginLockout<<min(e.lockouts, 10), loginMaxLockout))
			e.lockouts++
			e.fails = e.fails[:0]
		}
	}
}

// succeed forgets the failures of a user name once its password was given.
// The address keeps its record: one valid account must not buy unlimited
// guesses at the others.
func (l *loginLimiter) succeed(user string) {
	l.mu.Lock()
	delete(l.keys, userKey(user))
	l.mu.Unlock()
}

// evictLocked makes room: first keys that no longer matter, then, if an
// attacker with many addresses filled the table, any one key. The per-user
// keys still bound guessing at each name.
func (l *loginLimiter) evictLocked(now time.Time) {
	for k, e := range l.keys {
		if now.After(e.until) && now.Sub(e.lastTouch) > loginWindow && e.lockouts == 0 || now.Sub(e.lastTouch) > loginForget {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxLimiterKeys {
		return
	}
	for k := range l.keys {
		delete(l.keys, k)
		return
	}
}
