package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"net/http"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/respond"
)

// Limits hands out the limiters of one configuration's rate limits. On a
// reload an unchanged limit keeps its limiter, and so its counters: a
// reload is no way to reset a client's budget.
//
// With cluster.redis, limits are shared by the cluster: their counters live
// in Redis under an id derived from the limit's settings, so instances with
// the same limit share one budget.
type Limits struct {
	prev, used map[string]Limiter // by limitKey
	conn       *redisconn.Conn
	// challenger answers limits with action: challenge (nil: they block);
	// observe counts those answers.
	challenger *challenge.Challenger
	observe    func(stage, result string)
}

// NewLimits returns the limits of a configuration; from are the previous
// configuration's on a reload (nil at start), conn the cluster's Redis
// connection (nil: limits are local to the process).
func NewLimits(conn *redisconn.Conn, from *Limits) *Limits {
	ls := &Limits{used: map[string]Limiter{}, conn: conn}
	if from != nil {
		ls.prev = from.used
	}
	return ls
}

// ChallengeWith makes limits with action: challenge answer with c (built
// by Build after this call); observe, when not nil, counts the answers by
// stage and result (metrics). Without it such limits block.
func (ls *Limits) ChallengeWith(c *challenge.Challenger, observe func(stage, result string)) {
	ls.challenger, ls.observe = c, observe
}

// Limit is one configured rate limit of a site or a route, with its limiter.
type Limit struct {
	cfg     config.RateLimitConfig
	rule    Rule
	limiter Limiter
	route   uint64 // for ip_route and fallback header keys
	shared  bool   // the limiter is shared by the cluster: keys must mean the same in every process
	// With action: challenge, answer serves the challenge to a client
	// over the limit, and ceiling is the budget of a client with a pass.
	answer      *challenge.Answer
	ceiling     Limiter
	ceilingRule Rule
}

var routeSeed = maphash.MakeSeed()

// LimitError is a rate limit that cannot be built.
type LimitError struct {
	Index int    // its position in the list given to Build
	Name  string // its name (the configuration names an unnamed limit by its field path)
	Err   error
}

func (e *LimitError) Error() string { return fmt.Sprintf("rate limit %s: %v", e.Name, e.Err) }

func (e *LimitError) Unwrap() error { return e.Err }

// Build returns the limits of a site (path "") or of one of its routes, or
// the problem of every limit that cannot be built. A site's limits are one
// budget across all its routes: build them once and give them to every
// route's stage.
func (ls *Limits) Build(site, path string, limits []config.RateLimitConfig) ([]*Limit, []*LimitError) {
	var out []*Limit
	var problems []*LimitError
	route := maphash.String(routeSeed, site+"\x00"+path)
	if ls.conn != nil {
		route = RouteID(site, path)
	}
	for i, rc := range limits {
		rule := Rule{Rate: rc.Rate, Burst: rc.Burst}
		if err := rule.Validate(); err != nil {
			problems = append(problems, &LimitError{Index: i, Name: rc.Name, Err: err})
			continue
		}
		key := limitKey(site, path, rc)
		l := &Limit{cfg: rc, rule: rule, limiter: ls.limiter(key, rule, rc.MaxKeys), route: route, shared: ls.conn != nil}
		if rc.Action == config.ActionChallenge && ls.challenger != nil {
			l.ceilingRule = Rule{Rate: rc.CeilingRate, Burst: rc.CeilingBurst}
			if err := l.ceilingRule.Validate(); err != nil {
				problems = append(problems, &LimitError{Index: i, Name: rc.Name, Err: fmt.Errorf("ceiling: %w", err)})
				continue
			}
			l.ceiling = ls.limiter(key+"\x00ceiling", l.ceilingRule, rc.MaxKeys)
			l.answer = challenge.NewAnswer(ls.challenger, audit.StageRateLimit, http.StatusTooManyRequests, ls.observe)
		}
		out = append(out, l)
	}
	return out, problems
}

// limiter returns the limiter of key: the previous configuration's when
// it had the same, else a new one (in Redis with cluster.redis).
func (ls *Limits) limiter(key string, rule Rule, maxKeys int) Limiter {
	limiter := ls.prev[key]
	if limiter == nil {
		if ls.conn != nil {
			sum := sha256.Sum256([]byte(key))
			limiter = NewRedis(ls.conn, rule, RedisOptions{ID: hex.EncodeToString(sum[:8]), MaxKeys: maxKeys})
		} else {
			limiter = NewMemory(rule, maxKeys)
		}
	}
	ls.used[key] = limiter
	return limiter
}

// limitKey identifies a limit and every setting that shapes its counters.
func limitKey(site, path string, rc config.RateLimitConfig) string {
	return fmt.Sprintf("%s\x00%s\x00%#v", site, path, rc)
}

// stage refuses a request over one of its limits.
type stage struct {
	site, route []*Limit
	next        http.Handler
}

// NewStage returns the rate-limit stage of a route in front of next: the
// site's shared budgets first, then the route's own. A request over a limit
// gets 429 with Retry-After and the RateLimit fields, and a record naming
// the limit. It returns next itself when there is no limit.
//
// A limit with action: challenge answers a request over it with the
// challenge page instead (429, the same headers and record, the reason
// saying so; see challenge.Answer). A client with a valid pass is not
// counted against the limit at all but against its ceiling, a separate,
// larger budget per the same key: over the ceiling it gets 429 whatever
// its pass, so a solved pass cannot carry a flood. The request that
// brings the solved answer is the first one counted against the ceiling.
func NewStage(site, route []*Limit, next http.Handler) http.Handler {
	if len(site) == 0 && len(route) == 0 {
		return next
	}
	return &stage{site: site, route: route, next: next}
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := audit.FromContext(r.Context())
	if e.Addr.IsValid() {
		// The request's arrival time, read once by the gateway for the
		// whole request (and a clock tests can set).
		now := e.Time
		if now.IsZero() {
			now = time.Now()
		}
		pass := 0 // 1: the request carries a valid pass, -1: not; 0: not looked at yet
		// No slice is built per request.
		for _, group := range [2][]*Limit{s.site, s.route} {
			for _, l := range group {
				k := l.key(r, e)
				if l.answer != nil {
					if pass == 0 {
						pass = -1
						if l.answer.Passed(r, e) {
							pass = 1
						}
					}
					if pass == 1 {
						if !l.withinCeiling(w, r, e, k, now) {
							return
						}
						l.answer.Note(challenge.ResultPassed)
						continue
					}
				}
				d := l.limiter.Allow(k, now)
				if d.Allowed {
					continue
				}
				reason := fmt.Sprintf("rate limit %s (%g/s, burst %d) exceeded", l.cfg.Name, l.cfg.Rate, l.cfg.Burst)
				h := http.Header{}
				SetHeaders(h, d, l.rule)
				if l.answer == nil {
					e.Block(audit.StageRateLimit, reason)
					respond.ErrorWithHeaders(w, r, http.StatusTooManyRequests, e.ID, h)
					return
				}
				if !l.answer.Serve(w, r, e, reason, h) {
					return
				}
				// Solved just now: from here on, as a client with a pass.
				pass = 1
				if !l.withinCeiling(w, r, e, k, now) {
					return
				}
			}
		}
	}
	s.next.ServeHTTP(w, r)
}

// withinCeiling counts a request of a client with a pass against l's
// ceiling; over it, the request is refused (429) and false returned.
func (l *Limit) withinCeiling(w http.ResponseWriter, r *http.Request, e *audit.Entry, k Key, now time.Time) bool {
	d := l.ceiling.Allow(k, now)
	if d.Allowed {
		return true
	}
	l.answer.Note(challenge.ResultCeiling)
	e.Block(audit.StageRateLimit, fmt.Sprintf("rate limit %s ceiling (%g/s, burst %d) exceeded by a client with a solved challenge",
		l.cfg.Name, l.ceilingRule.Rate, l.ceilingRule.Burst))
	h := http.Header{}
	SetHeaders(h, d, l.ceilingRule)
	respond.ErrorWithHeaders(w, r, http.StatusTooManyRequests, e.ID, h)
	return false
}

var _ http.Handler = (*stage)(nil)

// key is the budget a request draws from. A header key falls back to the
// client address when the header is missing, empty or sent more than once:
// otherwise leaving it out, or rotating it, would escape the limit.
func (l *Limit) key(r *http.Request, e *audit.Entry) Key {
	ipKey := KeyFromAddr(e.Addr, l.cfg.IPv6Prefix)
	switch l.cfg.Key {
	case config.KeyHeader:
		if vs := r.Header.Values(l.cfg.Header); len(vs) == 1 && vs[0] != "" {
			if l.shared {
				return SharedKeyFromString(vs[0])
			}
			return KeyFromString(vs[0])
		}
		return l.withRoute(ipKey)
	case config.KeyIPRoute:
		return l.withRoute(ipKey)
	default:
		return ipKey
	}
}

func (l *Limit) withRoute(k Key) Key {
	if l.shared {
		return k.SharedWith(l.route)
	}
	return k.With(l.route)
}
