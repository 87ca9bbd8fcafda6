package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogin(t *testing.T) {
	env := newEnv(t)
	refused := ""
	for _, tc := range []struct {
		name       string
		user, pass string
		want       int
	}{
		{"right password", testUser, testPassword, http.StatusSeeOther},
		{"wrong password", testUser, "wrong", http.StatusUnauthorized},
		{"unknown user", "mallory", testPassword, http.StatusUnauthorized},
		{"empty password", testUser, "", http.StatusUnauthorized},
		{"user name differs in case", "Alice", testPassword, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.tryLogin(t, "192.0.2.50:1000", tc.user, tc.pass)
			body := readBody(t, resp)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			sc := cookie(resp, sessionCookie)
			if tc.want != http.StatusSeeOther {
				if sc != nil {
					t.Fatal("a refused login set a session cookie")
				}
				// A wrong name and a wrong password must be told apart by
				// nothing: same status, same message.
				msg := body[strings.Index(body, `id="login-error"`):]
				msg = msg[:strings.Index(msg, "</p>")]
				if refused == "" {
					refused = msg
				} else if msg != refused {
					t.Fatalf("refusal %q differs from %q", msg, refused)
				}
				return
			}
			if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" {
				t.Fatalf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/", sc)
			}
			if len(sc.Value) != 64 {
				t.Fatalf("session id %q is not 256 bits of hex", sc.Value)
			}
			if loc := resp.Header.Get("Location"); loc != "/" {
				t.Fatalf("redirect to %q, want /", loc)
			}
		})
	}
}

func TestAccess(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	for _, tc := range []struct {
		name     string
		r        req
		want     int
		location string
	}{
		{"page without session redirects to login", req{path: "/events?rule=942100"}, http.StatusSeeOther, "/login?next=%2Fevents%3Frule%3D942100"},
		{"page with session", req{path: "/", cookies: s.cookies}, http.StatusOK, ""},
		{"page with unknown session", req{path: "/", cookies: []*http.Cookie{{Name: sessionCookie, Value: strings.Repeat("ab", 32)}}}, http.StatusSeeOther, "/login?next=%2F"},
		{"api without token", req{path: "/api/events"}, http.StatusUnauthorized, ""},
		{"api with token", req{path: "/api/events", header: bearer()}, http.StatusOK, ""},
		{"api with wrong token", req{path: "/api/events", header: map[string]string{"Authorization": "Bearer nope"}}, http.StatusUnauthorized, ""},
		{"api with token in basic scheme", req{path: "/api/events", header: map[string]string{"Authorization": "Basic " + testToken}}, http.StatusUnauthorized, ""},
		{"api with session cookie", req{path: "/api/summary", cookies: s.cookies}, http.StatusOK, ""},
		{"bad token beats good cookie", req{path: "/api/events", cookies: s.cookies, header: map[string]string{"Authorization": "Bearer nope"}}, http.StatusUnauthorized, ""},
		{"basic credentials for a proxy in front are ignored", req{path: "/", cookies: s.cookies, header: map[string]string{"Authorization": "Basic YWxpY2U6eA=="}}, http.StatusOK, ""},
		{"static assets are public", req{path: "/static/admin.css"}, http.StatusOK, ""},
		{"no directory listing", req{path: "/static/"}, http.StatusNotFound, ""},
		{"login form is public", req{path: "/login"}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(t, tc.r)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, readBody(t, resp))
			}
			if tc.location != "" && resp.Header.Get("Location") != tc.location {
				t.Fatalf("Location %q, want %q", resp.Header.Get("Location"), tc.location)
			}
			if resp.StatusCode == http.StatusUnauthorized && !strings.Contains(resp.Header.Get("Content-Type"), "json") {
				t.Fatalf("API refusal is %s, want JSON", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	other := env.login(t) // a second session: its token must not work for the first
	form := func(tok string) url.Values {
		v := url.Values{"prefix": {"192.0.2.99"}, "duration": {"1h"}, "reason": {"test"}}
		if tok != "" {
			v.Set("csrf", tok)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		r    req
		want int
	}{
		{"form without token", req{method: "POST", path: "/bans", cookies: s.cookies, form: form("")}, http.StatusForbidden},
		{"form with another session's token", req{method: "POST", path: "/bans", cookies: s.cookies, form: form(other.csrf)}, http.StatusForbidden},
		{"form with garbage token", req{method: "POST", path: "/bans", cookies: s.cookies, form: form("00")}, http.StatusForbidden},
		{"form with token", req{method: "POST", path: "/bans", cookies: s.cookies, form: form(s.csrf)}, http.StatusSeeOther},
		{"form with token in the header", req{method: "POST", path: "/bans", cookies: s.cookies, form: form(""), header: map[string]string{csrfHeader: s.csrf}}, http.StatusSeeOther},
		{"form with token from another site", req{method: "POST", path: "/bans", cookies: s.cookies, form: form(s.csrf),
			header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}}, http.StatusForbidden},
		{"lift without token", req{method: "POST", path: "/bans/lift", cookies: s.cookies, form: url.Values{"prefix": {"192.0.2.99"}}}, http.StatusForbidden},
		{"logout without token", req{method: "POST", path: "/logout", cookies: s.cookies}, http.StatusForbidden},
		{"api with cookie, no token", req{method: "POST", path: "/api/bans", cookies: s.cookies, body: `{"prefix":"192.0.2.98"}`,
			header: map[string]string{"Content-Type": "application/json"}}, http.StatusForbidden},
		{"api with cookie and token header", req{method: "POST", path: "/api/bans", cookies: s.cookies, body: `{"prefix":"192.0.2.98"}`,
			header: map[string]string{"Content-Type": "application/json", csrfHeader: s.csrf}}, http.StatusCreated},
		{"api delete with cookie, no token", req{method: "DELETE", path: "/api/bans/192.0.2.98", cookies: s.cookies}, http.StatusForbidden},
		{"api delete with cookie and token header", req{method: "DELETE", path: "/api/bans/192.0.2.98", cookies: s.cookies,
			header: map[string]string{csrfHeader: s.csrf}}, http.StatusNoContent},
		{"api with bearer token needs no CSRF token", req{method: "POST", path: "/api/bans", body: `{"prefix":"192.0.2.97"}`,
			header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}}, http.StatusCreated},
		{"login without token", req{method: "POST", path: "/login", form: url.Values{"username": {testUser}, "password": {testPassword}}}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(t, tc.r)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, readBody(t, resp))
			}
		})
	}
	// The refused form changed nothing; the accepted one did.
	prefixes := map[string]bool{}
	for _, b := range env.bans.List(env.clock.Now()) {
		prefixes[b.Prefix.String()] = true
	}
	if !prefixes["192.0.2.99/32"] || prefixes["192.0.2.98/32"] || !prefixes["192.0.2.97/32"] {
		t.Fatalf("bans after the CSRF cases: %v", prefixes)
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Run("parallel guesses share one budget", func(t *testing.T) {
		env := newEnv(t)
		const attacker = "192.0.2.70:5000"
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for range 40 {
			wg.Go(func() {
				resp := env.tryLogin(t, attacker, testUser, "guess")
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[http.StatusUnauthorized] > loginPairBurst || codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != 40 {
			t.Errorf("40 parallel wrong passwords: %v; at most %d may be compared", codes, loginPairBurst)
		}
	})
	t.Run("per client address", func(t *testing.T) {
		env := newEnv(t)
		const attacker = "192.0.2.66:5000"
		for i := range loginAddrBurst {
			if resp := env.tryLogin(t, attacker, fmt.Sprintf("user%d", i), "guess"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failure %d: status %d, want 401", i+1, resp.StatusCode)
			}
		}
		// Locked out now, even with the right password, for any name.
		resp := env.tryLogin(t, attacker, testUser, testPassword)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("after %d failures: status %d (Retry-After %q), want 429 with Retry-After", loginAddrBurst, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		// The same network's /64 shares the budget; another address does not.
		if resp := env.tryLogin(t, "192.0.2.67:5000", testUser, testPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("other address: status %d, want 303", resp.StatusCode)
		}
		// After the lockout the right password works again.
		env.clock.Add(loginLockout + time.Second)
		if resp := env.tryLogin(t, attacker, testUser, testPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the lockout: status %d, want 303", resp.StatusCode)
		}
	})
	t.Run("IPv6 clients are counted by /64", func(t *testing.T) {
		env := newEnv(t)
		for i := range loginAddrBurst {
			remote := fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1)
			if resp := env.tryLogin(t, remote, fmt.Sprintf("user%d", i), "guess"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failure %d: status %d, want 401", i+1, resp.StatusCode)
			}
		}
		if resp := env.tryLogin(t, "[2001:db8:1:2::ffff]:5000", testUser, testPassword); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("same /64: status %d, want 429", resp.StatusCode)
		}
		if resp := env.tryLogin(t, "[2001:db8:1:3::1]:5000", testUser, testPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("another /64: status %d, want 303", resp.StatusCode)
		}
	})
	t.Run("per address and user name", func(t *testing.T) {
		// A colleague behind the same address mistypes their own
		// password: their name is locked out there, the owner's is not.
		env := newEnv(t)
		const office = "192.0.2.80:5000"
		for i := range loginPairBurst {
			if resp := env.tryLogin(t, office, "bob", "typo"); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("failure %d: status %d, want 401", i+1, resp.StatusCode)
			}
		}
		if resp := env.tryLogin(t, office, "bob", "typo"); resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("bob after %d failures: status %d, want 429", loginPairBurst, resp.StatusCode)
		}
		if resp := env.tryLogin(t, office, testUser, testPassword); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("the owner at the same address: status %d, want 303", resp.StatusCode)
		}
	})
	// Issue 13: five wrong passwords for the owner's name from anywhere
	// locked the owner out everywhere, again and again.
	t.Run("an attacker elsewhere cannot lock the owner out", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			attackers int // addresses, each failing loginPairBurst times
			slowed    bool
		}{
			{"one address", 1, false},
			{"a few addresses", 3, false},
			{"distributed guessing", 12, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env := newEnv(t)
				var mu sync.Mutex
				var delays []time.Duration
				env.srv.pause = func(_ context.Context, d time.Duration) error {
					mu.Lock()
					delays = append(delays, d)
					mu.Unlock()
					return nil
				}
				for a := range tc.attackers {
					remote := fmt.Sprintf("198.51.100.%d:5000", a+1)
					for i := range loginPairBurst {
						if resp := env.tryLogin(t, remote, testUser, "guess"); resp.StatusCode != http.StatusUnauthorized {
							t.Fatalf("attacker %d failure %d: status %d, want 401", a+1, i+1, resp.StatusCode)
						}
					}
					// The attacker's own address is locked out for the name.
					if resp := env.tryLogin(t, remote, testUser, "guess"); resp.StatusCode != http.StatusTooManyRequests {
						t.Fatalf("attacker %d after %d failures: status %d, want 429", a+1, loginPairBurst, resp.StatusCode)
					}
				}
				mu.Lock()
				delays = nil
				mu.Unlock()
				if resp := env.tryLogin(t, "203.0.113.99:443", testUser, testPassword); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("the owner from another address: status %d, want 303: %s", resp.StatusCode, readBody(t, resp))
				}
				mu.Lock()
				got := slices.Clone(delays)
				mu.Unlock()
				if tc.slowed != (len(got) == 1 && got[0] > 0 && got[0] <= loginSlowMax) || !tc.slowed && len(got) != 0 {
					t.Fatalf("the owner's login waited %v; slowed down expected: %v (at most %s)", got, tc.slowed, loginSlowMax)
				}
			})
		}
	})
	t.Run("slow-down grows with the failures and is capped", func(t *testing.T) {
		clock := &testClock{t: testNow}
		l := newLoginLimiter(clock.Now)
		for n, want := range map[int]time.Duration{
			loginUserFree - 1:   0,
			loginUserFree:       loginSlowStep,
			3 * loginUserFree:   3 * loginSlowStep,
			100 * loginUserFree: loginSlowMax,
		} {
			name := fmt.Sprintf("u%d", n)
			for i := range n {
				l.fail(name, pairKey(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), name))
			}
			if got := l.slowdown(name); got != want {
				t.Errorf("after %d failures: slow-down %s, want %s", n, got, want)
			}
		}
		// Failures older than the window no longer count.
		clock.Add(loginUserWindow)
		if got := l.slowdown(fmt.Sprintf("u%d", 100*loginUserFree)); got != 0 {
			t.Errorf("after the window: slow-down %s, want 0", got)
		}
	})
	t.Run("tables are bounded", func(t *testing.T) {
		clock := &testClock{t: testNow}
		l := newLoginLimiter(clock.Now)
		locked := addrKey(netip.MustParseAddr("192.0.2.1"))
		for range loginAddrBurst {
			l.fail("x", locked)
		}
		for i := range maxLimiterKeys + 500 {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			name := fmt.Sprintf("name%d", i)
			l.fail(name, addrKey(a), pairKey(a, name))
		}
		if len(l.keys) > maxLimiterKeys || len(l.users) > maxLimiterUsers {
			t.Fatalf("%d keys, %d user names; bounds %d and %d", len(l.keys), len(l.users), maxLimiterKeys, maxLimiterUsers)
		}
		// Filling the table evicts keys that are not locked out first.
		if l.wait(locked) == 0 {
			t.Fatal("a locked-out address was evicted by a flood of new ones")
		}
	})
	t.Run("backoff doubles", func(t *testing.T) {
		clock := &testClock{t: testNow}
		l := newLoginLimiter(clock.Now)
		k := limitKey{id: "k", burst: loginPairBurst}
		for lockout, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
			for range loginPairBurst {
				l.fail("u", k)
			}
			if got := l.wait(k); got != want {
				t.Fatalf("lockout %d lasts %s, want %s", lockout+1, got, want)
			}
			clock.Add(want)
			if got := l.wait(k); got != 0 {
				t.Fatalf("lockout %d still %s after it ended", lockout+1, got)
			}
		}
		clock.Add(loginForget + time.Second)
		for range loginPairBurst {
			l.fail("u", k)
		}
		if got := l.wait(k); got != loginLockout {
			t.Fatalf("after a quiet period: lockout %s, want %s", got, loginLockout)
		}
	})
}

func TestSessionEnds(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	if resp := env.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	t.Run("logout", func(t *testing.T) {
		resp := env.do(t, req{method: "POST", path: "/logout", cookies: s.cookies, form: url.Values{"csrf": {s.csrf}}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: status %d", resp.StatusCode)
		}
		if c := cookie(resp, sessionCookie); c == nil || c.MaxAge >= 0 {
			t.Fatalf("logout did not clear the cookie: %+v", c)
		}
		// The old cookie is dead on the server, not just in the browser.
		if resp := env.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after logout: status %d, want a redirect to login", resp.StatusCode)
		}
	})
	t.Run("idle expiry", func(t *testing.T) {
		s := env.login(t)
		env.clock.Add(sessionIdle + time.Second)
		if resp := env.do(t, req{path: "/", cookies: s.cookies}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after %s idle: status %d, want a redirect to login", sessionIdle, resp.StatusCode)
		}
	})
	t.Run("absolute expiry", func(t *testing.T) {
		s := env.login(t)
		for range int(sessionAbsolute / (sessionIdle / 2)) {
			env.clock.Add(sessionIdle / 2)
			env.do(t, req{path: "/bans", cookies: s.cookies})
		}
		env.clock.Add(time.Second)
		if resp := env.do(t, req{path: "/bans", cookies: s.cookies}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after %s: status %d, want a redirect to login", sessionAbsolute, resp.StatusCode)
		}
	})
}

func TestLoginRedirectStaysLocal(t *testing.T) {
	env := newEnv(t)
	for next, want := range map[string]string{
		"/events?rule=1":       "/events?rule=1",
		"//evil.example/x":     "/",
		"https://evil.example": "/",
		`/\evil.example`:       "/",
		"javascript:alert(1)":  "/",
		"":                     "/",
	} {
		anon, tok := env.loginForm(t, "")
		resp := env.do(t, req{method: "POST", path: "/login", cookies: []*http.Cookie{anon},
			form: url.Values{"csrf": {tok}, "username": {testUser}, "password": {testPassword}, "next": {next}}})
		if loc := resp.Header.Get("Location"); loc != want {
			t.Errorf("next %q: redirect to %q, want %q", next, loc, want)
		}
	}
}

func TestAuthNone(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.Auth = Auth{None: true} })
	for _, tc := range []struct {
		name string
		r    req
		want int
	}{
		{"loopback page", req{path: "/"}, http.StatusOK},
		{"loopback API", req{path: "/api/events"}, http.StatusOK},
		{"IPv6 loopback", req{path: "/", remote: "[::1]:5000", host: "[::1]:9090"}, http.StatusOK},
		{"remote peer", req{path: "/", remote: "192.0.2.1:5000"}, http.StatusForbidden},
		{"DNS rebinding host", req{path: "/", host: "evil.example:9090"}, http.StatusForbidden},
		{"form without token", req{method: "POST", path: "/bans", form: url.Values{"prefix": {"192.0.2.5"}}}, http.StatusForbidden},
		{"cross-site JSON API", req{method: "POST", path: "/api/bans", body: `{"prefix":"192.0.2.5"}`,
			header: map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden},
		{"API form post (no JSON)", req{method: "POST", path: "/api/bans", body: `prefix=192.0.2.5`,
			header: map[string]string{"Content-Type": "text/plain"}}, http.StatusForbidden},
		{"script JSON API", req{method: "POST", path: "/api/bans", body: `{"prefix":"192.0.2.5"}`,
			header: map[string]string{"Content-Type": "application/json"}}, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(t, tc.r)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, readBody(t, resp))
			}
		})
	}
	t.Run("form with token", func(t *testing.T) {
		resp := env.do(t, req{path: "/bans"})
		anon := cookie(resp, anonCookie)
		tok := csrfFrom(t, readBody(t, resp))
		resp = env.do(t, req{method: "POST", path: "/bans", cookies: []*http.Cookie{anon}, form: url.Values{"csrf": {tok}, "prefix": {"192.0.2.6"}}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d: %s", resp.StatusCode, readBody(t, resp))
		}
	})
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		auth Auth
		addr string
		ok   bool
	}{
		{Auth{None: true}, "127.0.0.1:9090", true},
		{Auth{None: true}, "[::1]:9090", true},
		{Auth{None: true}, "localhost:9090", true},
		{Auth{None: true}, "0.0.0.0:9090", false},
		{Auth{None: true}, ":9090", false},
		{Auth{None: true}, "192.0.2.1:9090", false},
		{Auth{Users: []User{{Name: "a"}}}, "0.0.0.0:9090", true},
	} {
		if err := tc.auth.Validate(tc.addr); (err == nil) != tc.ok {
			t.Errorf("Validate(%q) with none=%v: %v, want ok=%v", tc.addr, tc.auth.None, err, tc.ok)
		}
	}
	// Serve checks the real listener too.
	env := newEnv(t, func(o *Options) { o.Auth = Auth{None: true} })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fake := &addrListener{Listener: l, addr: &net.TCPAddr{IP: net.IPv4zero, Port: 9090}}
	if err := env.srv.Serve(fake, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Serve on 0.0.0.0 with auth none: %v, want a refusal", err)
	}
}

// addrListener reports a different address than it listens on.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l *addrListener) Addr() net.Addr { return l.addr }

func TestNewRejects(t *testing.T) {
	base := newEnv(t)
	st := base.srv.opts.Store
	for _, tc := range []struct {
		name string
		auth Auth
		want string
	}{
		{"nothing", Auth{}, "needs users and/or tokens"},
		{"none with users", Auth{None: true, Users: []User{{Name: "a", PasswordHash: "x"}}}, "cannot be combined"},
		{"plain password", Auth{Users: []User{{Name: "a", PasswordHash: "hunter2"}}}, `user "a": password hash is not a bcrypt hash`},
		{"empty name", Auth{Users: []User{{Name: " ", PasswordHash: "x"}}}, "name is empty"},
		{"token not hex", Auth{Tokens: []Token{{Name: "ci", SHA256: "zz"}}}, `token 0 ("ci"): sha256 must be 64 hex digits`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Store: st, Auth: tc.auth})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(Options{Auth: Auth{None: true}}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}

func TestSecurityHeaders(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	for _, path := range []string{"/", "/login", "/events", "/api/events", "/static/admin.js", "/nope"} {
		resp := env.do(t, req{path: path, cookies: s.cookies})
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", path, h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
	}
}

func TestHandle(t *testing.T) {
	env := newEnv(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	env.srv.Handle("GET /healthz", ok, true)
	env.srv.Handle("GET /metrics", ok, false)
	for _, tc := range []struct {
		r    req
		want int
	}{
		{req{path: "/healthz"}, http.StatusOK},
		{req{path: "/metrics"}, http.StatusUnauthorized},
		{req{path: "/metrics", header: bearer()}, http.StatusOK},
	} {
		if resp := env.do(t, tc.r); resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.r.path, resp.StatusCode, tc.want)
		}
	}
}
