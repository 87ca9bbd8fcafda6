package admin

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/internal/redistest"
)

func withRedis(conn *redisconn.Conn) envOption { return func(o *Options) { o.Redis = conn } }

// Two admin instances behind a load balancer share sessions and CSRF keys
// through Redis: a login form from one is accepted by the other, a session
// made on one works on the other (pages and forms), and a logout on one
// ends the session on both.
func TestSessionsSharedThroughRedis(t *testing.T) {
	ca := redistest.Shared(t)
	cb := redistest.Connect(t, func() *config.RedisConfig {
		c := redistest.Config(t, redistest.SharedAddr)
		c.KeyPrefix = ca.Prefix()
		return c
	}())
	a, b := newEnv(t, withRedis(ca)), newEnv(t, withRedis(cb))

	// The form comes from a, the login goes to b.
	anon, tok := a.loginForm(t, "")
	resp := b.do(t, req{method: "POST", path: "/login", cookies: []*http.Cookie{anon},
		form: url.Values{"csrf": {tok}, "username": {testUser}, "password": {testPassword}, "next": {"/"}}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login on b with a's form: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	s := browserSession{cookies: []*http.Cookie{cookie(resp, sessionCookie)}}
	// a knows the session b made, and its forms' tokens work on b.
	s.csrf = csrfFrom(t, a.page(t, s, "/bans", http.StatusOK))
	resp = b.do(t, req{method: "POST", path: "/bans", cookies: s.cookies,
		form: url.Values{"prefix": {"192.0.2.99"}, "duration": {"1h"}, "reason": {"test"}, "csrf": {s.csrf}}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("form from a posted to b: status %d: %s", resp.StatusCode, readBody(t, resp))
	}
	// Logout on b ends the session on a.
	resp = b.do(t, req{method: "POST", path: "/logout", cookies: s.cookies, form: url.Values{"csrf": {s.csrf}}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on b: status %d", resp.StatusCode)
	}
	if resp := a.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session still valid on a after logout on b: status %d", resp.StatusCode)
	}
}

// Without a shared store, each instance knows only its own sessions (the
// behaviour the shared store fixes).
func TestSessionsLocalWithoutRedis(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	s := a.login(t)
	if resp := b.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("b accepted a's session without a shared store: status %d", resp.StatusCode)
	}
}

// Redis unreachable: a session this instance has seen keeps working here,
// and a new login works here; when Redis is back, the shared store is
// used again.
func TestSessionsFallBackDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redistest.Config(t, srv.Addr)
	cfg.Timeout = time.Second
	conn := redistest.Connect(t, cfg)
	a := newEnv(t, withRedis(conn))
	s := a.login(t)
	srv.Freeze()
	if resp := a.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusOK {
		t.Fatalf("known session during the outage: status %d", resp.StatusCode)
	}
	if conn.Up() {
		t.Fatal("connection not marked down")
	}
	fresh := a.login(t)
	if resp := a.do(t, req{path: "/", cookies: fresh.cookies}); resp.StatusCode != http.StatusOK {
		t.Fatalf("session made during the outage: status %d", resp.StatusCode)
	}
	srv.Thaw()
	redistest.Eventually(t, 10*time.Second, "connection up", conn.Up)
	// The session made during the outage still works here (Redis does not
	// know it, and is not the reason to drop it).
	if resp := a.do(t, req{path: "/", cookies: fresh.cookies}); resp.StatusCode != http.StatusOK {
		t.Errorf("session made during the outage after recovery: status %d", resp.StatusCode)
	}
	if resp := a.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusOK {
		t.Errorf("shared session after recovery: status %d", resp.StatusCode)
	}
}
