package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis-waf/portcullis/internal/redisconn"
)

// sessionStore keeps dashboard sessions by id. Implementations bound the
// idle and absolute lifetimes (sessionIdle, sessionAbsolute).
type sessionStore interface {
	create(id, user string, now time.Time)
	lookup(id string, now time.Time) (*session, bool)
	end(id string)
}

// memorySessions is the single-instance store: at most maxSessions, the
// least recently used one dropped for a new login.
type memorySessions struct {
	mu       sync.Mutex
	sessions map[[32]byte]*session // keyed by SHA-256 of the id
}

func newMemorySessions() *memorySessions {
	return &memorySessions{sessions: map[[32]byte]*session{}}
}

func (m *memorySessions) create(id, user string, now time.Time) {
	m.put(&session{user: user, id: id, created: now, lastUse: now}, now)
}

func (m *memorySessions) put(s *session, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now)
	k := sha256.Sum256([]byte(s.id))
	if _, exists := m.sessions[k]; !exists && len(m.sessions) >= maxSessions {
		// Drop the least recently used session rather than refuse the
		// operator who is logging in now.
		var oldest [32]byte
		var oldestUse time.Time
		first := true
		for k, s := range m.sessions {
			if first || s.lastUse.Before(oldestUse) {
				oldest, oldestUse, first = k, s.lastUse, false
			}
		}
		delete(m.sessions, oldest)
	}
	m.sessions[k] = s
}

func (m *memorySessions) lookup(id string, now time.Time) (*session, bool) {
	k := sha256.Sum256([]byte(id))
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[k]
	if !ok {
		return nil, false
	}
	if now.Sub(s.lastUse) > sessionIdle || now.Sub(s.created) > sessionAbsolute {
		delete(m.sessions, k)
		return nil, false
	}
	s.lastUse = now
	return s, true
}

func (m *memorySessions) end(id string) {
	m.mu.Lock()
	delete(m.sessions, sha256.Sum256([]byte(id)))
	m.mu.Unlock()
}

func (m *memorySessions) sweepLocked(now time.Time) {
	for k, s := range m.sessions {
		if now.Sub(s.lastUse) > sessionIdle || now.Sub(s.created) > sessionAbsolute {
			delete(m.sessions, k)
		}
	}
}

// redisSessions keeps sessions in Redis, so that every instance behind a
// load balancer knows them and a logout on one ends the session on all.
// Redis holds only the SHA-256 of each id (a reader of Redis learns no
// usable cookie), the user name and the creation time; the key expires
// after the idle lifetime, renewed on each use, never past the absolute one.
//
// While Redis is unreachable, sessions fall back to this instance's memory:
// sessions seen here recently (a copy is kept on each successful lookup)
// keep working on this instance, and logins made meanwhile work here only
// (until they expire). A logout made elsewhere during the outage reaches
// this instance only when Redis is back.
type redisSessions struct {
	conn  *redisconn.Conn
	ns    string
	local *memorySessions
	// made holds the ids (hashed) created locally during an outage: Redis
	// not knowing them is no reason to drop them.
	mu   sync.Mutex
	made map[[32]byte]bool
}

func newRedisSessions(conn *redisconn.Conn) *redisSessions {
	return &redisSessions{conn: conn, ns: conn.Prefix() + "admin:session:", local: newMemorySessions(), made: map[[32]byte]bool{}}
}

// sessionLookup renews and returns "<created ms> <user>", or nil when
// the session is unknown or over. ARGV: now (ms), idle (ms), absolute (ms).
var sessionLookup = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local created = tonumber(string.match(v, '^(%d+) '))
local now, idle, absolute = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if not created then return false end
local left = created + absolute - now
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('PEXPIRE', KEYS[1], math.min(idle, left))
return v
`)

func (r *redisSessions) key(id string) (string, [32]byte) {
	h := sha256.Sum256([]byte(id))
	return r.ns + hex.EncodeToString(h[:]), h
}

func (r *redisSessions) create(id, user string, now time.Time) {
	key, h := r.key(id)
	if r.conn.Up() {
		err := r.conn.Do("session", func(ctx context.Context) error {
			return r.conn.Client.Set(ctx, key, strconv.FormatInt(now.UnixMilli(), 10)+" "+user, sessionIdle).Err()
		})
		if err == nil {
			r.local.create(id, user, now)
			return
		}
	}
	r.conn.Metrics().Fallback("session")
	r.mu.Lock()
	r.made[h] = true
	r.mu.Unlock()
	r.local.create(id, user, now)
}

func (r *redisSessions) lookup(id string, now time.Time) (*session, bool) {
	key, h := r.key(id)
	if !r.conn.Up() {
		r.conn.Metrics().Fallback("session")
		return r.local.lookup(id, now)
	}
	var v string
	err := r.conn.Do("session", func(ctx context.Context) error {
		var err error
		v, err = sessionLookup.Run(ctx, r.conn.Client, []string{key}, now.UnixMilli(), sessionIdle.Milliseconds(), sessionAbsolute.Milliseconds()).Text()
		return err
	})
	switch {
	case errors.Is(err, redis.Nil):
		r.mu.Lock()
		made := r.made[h]
		r.mu.Unlock()
		if made {
			return r.local.lookup(id, now)
		}
		r.local.end(id) // ended or expired elsewhere
		return nil, false
	case err != nil:
		r.conn.Metrics().Fallback("session")
		return r.local.lookup(id, now)
	}
	ms, user, ok := strings.Cut(v, " ")
	created, perr := strconv.ParseInt(ms, 10, 64)
	if !ok || perr != nil {
		return nil, false
	}
	s := &session{user: user, id: id, created: time.UnixMilli(created), lastUse: now}
	r.local.put(&session{user: user, id: id, created: s.created, lastUse: now}, now)
	return s, true
}

func (r *redisSessions) end(id string) {
	key, h := r.key(id)
	r.local.end(id)
	r.mu.Lock()
	delete(r.made, h)
	r.mu.Unlock()
	_ = r.conn.Do("session", func(ctx context.Context) error { return r.conn.Client.Del(ctx, key).Err() })
}

// sharedCSRFKey returns the cluster's CSRF key, creating it on first use:
// every instance must derive the same token from a session, or a form
// rendered by one instance would be refused by another.
func sharedCSRFKey(conn *redisconn.Conn) ([]byte, error) {
	var fresh [32]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return nil, err
	}
	key := conn.Prefix() + "admin:csrf-key"
	var v string
	err := conn.Do("session", func(ctx context.Context) error {
		if err := conn.Client.SetNX(ctx, key, hex.EncodeToString(fresh[:]), 0).Err(); err != nil {
			return err
		}
		var err error
		v, err = conn.Client.Get(ctx, key).Result()
		return err
	})
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) < 32 {
		return nil, fmt.Errorf("admin: the CSRF key in redis (%s) is malformed", key)
	}
	return b, nil
}

// useRedis moves sessions and the CSRF key to Redis.
func (a *authenticator) useRedis(conn *redisconn.Conn, log *slog.Logger) {
	a.sessions = newRedisSessions(conn)
	load := func() {
		k, err := sharedCSRFKey(conn)
		if err != nil {
			log.Warn("admin: the cluster's CSRF key is not available; forms work on this instance only until redis answers", "err", err)
			return
		}
		a.key.Store(&k)
	}
	conn.OnRecover(load)
	load()
}
