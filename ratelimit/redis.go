package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

// Redis is the Limiter whose counters live in Redis, shared by every
// instance of a cluster: a limit of L requests per window holds across all
// of them, not per instance. Same rule, same GCRA as Memory; one round trip
// per decision at most, often none:
//
//   - Local pre-check. A refusal says the key's next request is allowed at
//     T. Other instances can only move T later (GCRA never gives capacity
//     back early), so until T the key can be refused here without asking
//     Redis, and the answer is the one Redis would give. T is taken from the
//     caller's clock reading made before the call, which is no later than
//     the script's: the local refusal never outlasts Redis's.
//   - One script. The decision is one Lua script (EVALSHA, and EVAL when
//     the server's script cache lost it), so concurrent instances never
//     interleave a read and a write of the same key.
//
// Clock. The script reads the Redis server's clock (TIME) rather than each
// instance's: instances whose clocks differ by δ would otherwise disagree
// about a key's state by δ·rate requests, and one with a clock far off would
// hand out or withhold whole bursts. One clock costs nothing (the script
// runs on the server anyway). Times are kept in whole microseconds, since
// Lua numbers are doubles and Unix nanoseconds do not fit their 53 bits; the
// emission interval is rounded to a whole microsecond (at least 1), so rates
// above 10^6 per second per key are treated as 10^6.
//
// Keys. <prefix>rl:<id>:<key in hex>, where prefix starts with the cluster's
// name and id names the limit (the same in every instance that has the same
// limit configured). Every write sets the key to expire when its TAT is
// reached — when the key is back to a full burst and indistinguishable from
// an absent one — so idle keys cost Redis nothing; that is at most the
// rule's window Burst/Rate. Keys must mean the same in every process: use
// KeyFromAddr, SharedKeyFromString and SharedWith, not the per-process
// KeyFromString and With.
//
// Degradation. When Redis fails or exceeds the call timeout, the connection
// is marked down (redisconn) and, until its probe sees Redis answer again,
// decisions come from a local Memory limiter with the same rule: each
// instance then enforces the limit on its own, so the cluster admits up to
// N times the limit for N instances. Counted in
// portcullis_redis_fallback_total{kind="ratelimit"}.
//
// Why not github.com/go-redis/redis_rate: it is GCRA over Redis too, but
// in float seconds (so its decisions differ from Memory's at the edges),
// under its own key scheme, and without what this type exists for: the
// exact local pre-check, the fallback to the local limiter with the same
// rule, and the Decision fields SetHeaders needs computed the same way.
// The script here is twenty lines; the dependency would not remove them.
type Redis struct {
	conn        *redisconn.Conn
	rule        Rule
	ns          string // key prefix of this limit
	intervalUS  int64
	tauUS       int64
	callerClock bool
	local       *Memory
	refused     refusedCache
}

var _ Limiter = (*Redis)(nil)

// RedisOptions configure a shared limiter.
type RedisOptions struct {
	// ID names the limit's key space. Instances enforcing the same limit
	// must use the same ID, and different limits different IDs. Required.
	ID string
	// MaxKeys bounds the local fallback limiter and the pre-check table,
	// as for NewMemory. Required.
	MaxKeys int
	// CallerClock makes the script use the time passed to Allow instead of
	// the server's clock: deterministic tests, and a way to compare against
	// Memory on the same arrivals. Not for production (see Redis).
	CallerClock bool
}

// gcraScript decides one request. KEYS[1] is the key; ARGV are the
// emission interval and Burst·interval in microseconds, and the time in
// microseconds or 0 for the server's clock, and milliseconds added to the
// expiry (0 on the server's clock; a minute on the caller's, whose clock
// need not advance with the server's that expires keys). It returns {allowed,
// reset_after_us, retry_after_us, remaining}. Numbers are written with
// %.0f: Lua's tostring would use 14 significant digits and round a
// microsecond timestamp.
var gcraScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local slack = tonumber(ARGV[4])
if now == nil or now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local clamped = false
if tat - now > tau then
  -- Only after the clock stepped back: treat the bucket as empty rather
  -- than refuse the key until the clock catches up (Memory does the same).
  tat = now + tau
  clamped = true
end
local ahead = tat + interval - now
if ahead > tau then
  if clamped then
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)) + slack)
  end
  return {0, tat - now, ahead - tau, 0}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX', math.max(1, math.ceil(ahead / 1000)) + slack)
return {1, ahead, 0, math.floor((tau - ahead) / interval)}
`)

// NewRedis returns a limiter for rule whose state is shared through conn.
// rule must pass Validate, and opts need an ID and MaxKeys of at least 1;
// NewRedis panics otherwise (configuration is validated before this).
func NewRedis(conn *redisconn.Conn, rule Rule, opts RedisOptions) *Redis {
	if opts.ID == "" {
		panic("ratelimit.NewRedis: empty ID")
	}
	local := NewMemory(rule, opts.MaxKeys) // validates rule and MaxKeys
	iv := max(int64(math.Round(1e6/rule.Rate)), 1)
	l := &Redis{
		conn:        conn,
		rule:        rule,
		ns:          conn.Prefix() + "rl:" + opts.ID + ":",
		intervalUS:  iv,
		tauUS:       iv * int64(rule.Burst),
		callerClock: opts.CallerClock,
		local:       local,
	}
	l.refused.init(min(opts.MaxKeys, 1<<16))
	return l
}

// Rule returns the rule the limiter enforces (for SetHeaders).
func (l *Redis) Rule() Rule { return l.rule }

// Local returns the fallback limiter (for its Stats).
func (l *Redis) Local() *Memory { return l.local }

// Allow implements Limiter. It waits for Redis at most the connection's
// timeout, and not at all while the connection is down.
func (l *Redis) Allow(key Key, now time.Time) Decision {
	if d, ok := l.refused.check(key, now); ok {
		d.Limit = l.rule.Burst
		l.conn.Metrics().LocalRefusal()
		return d
	}
	if !l.conn.Up() {
		l.conn.Metrics().Fallback("ratelimit")
		return l.local.Allow(key, now)
	}
	var clock, slack int64
	if l.callerClock {
		clock, slack = now.UnixMicro(), time.Minute.Milliseconds()
	}
	var res []int64
	err := l.conn.Do("ratelimit", func(ctx context.Context) error {
		var err error
		res, err = gcraScript.Run(ctx, l.conn.Client, []string{l.ns + key.String()}, l.intervalUS, l.tauUS, clock, slack).Int64Slice()
		if err == nil && len(res) != 4 {
			err = fmt.Errorf("rate-limit script returned %d values, want 4", len(res))
		}
		return err
	})
	if err != nil {
		l.conn.Metrics().Fallback("ratelimit")
		return l.local.Allow(key, now)
	}
	// The answer is bounded by what the script can return (the reset at
	// most Burst+1 intervals ahead, a retry at most one interval, the
	// remaining count at most Burst), so that a compromised or broken
	// Redis cannot make this instance refuse a key locally for longer
	// than one window, or send absurd headers.
	d := Decision{
		Allowed:    res[0] == 1,
		Limit:      l.rule.Burst,
		Remaining:  int(min(max(res[3], 0), int64(l.rule.Burst))),
		ResetAfter: time.Duration(min(max(res[1], 0), l.tauUS+l.intervalUS)) * time.Microsecond,
		RetryAfter: time.Duration(min(max(res[2], 0), l.intervalUS)) * time.Microsecond,
	}
	if !d.Allowed {
		l.refused.add(key, now, now.Add(d.RetryAfter), now.Add(d.ResetAfter))
	}
	return d
}

// refusedCache remembers keys refused until a known time, so that a client
// that keeps sending while refused costs no round trip. Bounded: when a
// shard is full, expired entries are dropped, and if none is, the new key
// is not remembered (it is then asked about, which is only slower).
// Entries are only an optimisation: dropping one changes no decision.
type refusedCache struct {
	perShard int
	shards   [16]refusedShard
}

type refusedShard struct {
	mu sync.Mutex
	m  map[Key]refusal
	_  [40]byte // keep neighbouring mutexes off one cache line
}

// refusal holds from the time of the refusal (from) until the key's next
// request is allowed (until). A clock reading before from means the clock
// stepped back; the entry then says nothing and Redis is asked.
type refusal struct{ from, until, reset time.Time }

func (c *refusedCache) init(maxKeys int) {
	c.perShard = max(maxKeys/len(c.shards), 1)
	for i := range c.shards {
		c.shards[i].m = map[Key]refusal{}
	}
}

func (c *refusedCache) shard(k Key) *refusedShard {
	h := (k.hi ^ k.lo*0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
	return &c.shards[h>>60]
}

// check returns the refusal for key at now, if key is known to be refused
// then. Limit is left for the caller.
func (c *refusedCache) check(key Key, now time.Time) (Decision, bool) {
	s := c.shard(key)
	s.mu.Lock()
	r, ok := s.m[key]
	if ok && !now.Before(r.until) {
		delete(s.m, key)
		ok = false
	}
	if ok && now.Before(r.from) {
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return Decision{}, false
	}
	return Decision{ResetAfter: r.reset.Sub(now), RetryAfter: r.until.Sub(now)}, true
}

func (c *refusedCache) add(key Key, now, until, reset time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists := s.m[key]; !exists && len(s.m) >= c.perShard {
		// A bounded look at entries from a random place (map order):
		// expired ones go.
		seen := 0
		for k, r := range s.m {
			if !now.Before(r.until) {
				delete(s.m, k)
			}
			if seen++; seen == 64 {
				break
			}
		}
		if len(s.m) >= c.perShard {
			return
		}
	}
	s.m[key] = refusal{from: now, until: until, reset: reset}
}
