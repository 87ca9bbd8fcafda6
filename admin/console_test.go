package admin

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
)

// console is a Console with a fixed state that switches modes in memory
// and refuses a reload when told to: the admin side's part of the console
// under test (the instance's real one runs in instance's tests).
type console struct {
	mu       sync.Mutex
	state    ConsoleState
	problems []string // a reload is refused with these
	calls    []string
}

func (c *console) ConsoleState() ConsoleState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *console) CheckAndReload(by string) ConsoleResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "reload by "+by)
	if c.problems != nil {
		return ConsoleResult{Message: "refused: 1 problem(s)", Problems: c.problems}
	}
	return ConsoleResult{OK: true, Message: "applied in 3ms", Duration: "3ms"}
}

func (c *console) SetRouteMode(ref RouteRef, mode, by string) ConsoleResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "mode "+ref.String()+" "+mode+" by "+by)
	for si := range c.state.Sites {
		for ri := range c.state.Sites[si].Routes {
			if rt := &c.state.Sites[si].Routes[ri]; rt.Ref == ref {
				rt.Mode = mode
			}
		}
	}
	return ConsoleResult{OK: true, Message: ref.String() + " is now in " + mode + " mode"}
}

func (c *console) called() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func consoleState() ConsoleState {
	return ConsoleState{
		ConfigFile: "/etc/portcullis/portcullis.yaml",
		Sites: []ConsoleSite{{
			Name: "shop", Hosts: []string{"shop.example.com"},
			Limits: []ConsoleLimit{{Name: "site", Rate: 50, Burst: 100, Key: "ip", Tracked: 12, TrackedKnown: true}},
			Routes: []ConsoleRoute{
				{Ref: RouteRef{Site: "shop", Path: "/"}, Upstream: "app", Mode: "block", FileMode: "block", Profile: "portcullis"},
				{Ref: RouteRef{Site: "shop", Path: "/login"}, Upstream: "app", Mode: "detect", FileMode: "block", Profile: "stock-crs", Paranoia: 2,
					Override: &ModeOverride{Route: RouteRef{Site: "shop", Path: "/login"}, Mode: "detect", By: "alice", At: testNow.Add(-time.Hour)},
					Limits:   []ConsoleLimit{{Name: "login", Rate: 0.1, Burst: 5, Key: "ip", Tracked: 3, TrackedKnown: true}}},
			},
		}},
		Pools: []ConsolePool{{Name: "app", Targets: []ConsoleTarget{
			{URL: "http://10.0.0.11:8080", Up: true, Checked: true, Since: testNow.Add(-2 * time.Hour), LastCheck: testNow.Add(-5 * time.Second)},
			{URL: "http://10.0.0.12:8080", Up: false, Checked: true, Since: testNow.Add(-3 * time.Minute), LastCheck: testNow.Add(-time.Second), ErrorClass: "connection refused"},
		}}},
		Lists: []ConsoleList{{Name: "tor-exits", Feed: true, Entries: 1234, LastSuccess: testNow.Add(-10 * time.Minute)}},
		Certs: []ConsoleCert{
			{Host: "shop.example.com", Expiry: testNow.Add(60 * 24 * time.Hour)},
			{Host: "old.example.com", Expiry: testNow.Add(5 * 24 * time.Hour), RenewError: "acme: rate limited"},
			{Host: "gone.example.com", Expiry: testNow.Add(-time.Hour)},
		},
	}
}

func withConsole(c *console) envOption { return func(o *Options) { o.Console = c } }

// TestConsolePage: the page shows each route's mode and where it differs
// from the file, the down target with its error class, the limits with
// their refusals counted from the records, lists, certificates by how soon
// they expire, and the bans.
func TestConsolePage(t *testing.T) {
	c := &console{state: consoleState()}
	env := newEnv(t, withConsole(c))
	// Two refusals by the login limit in the last hour, one by the site's,
	// and one older than the window.
	var recs []*audit.Entry
	for i, at := range []time.Duration{-time.Minute, -2 * time.Minute, -3 * time.Minute, -2 * time.Hour} {
		name := "login"
		if i == 2 {
			name = "site"
		}
		recs = append(recs, &audit.Entry{ID: "rl-" + name + string(rune('a'+i)), Time: testNow.Add(at), ClientIP: "192.0.2.9", Host: "shop.example.com",
			Method: "POST", URI: "/login", Site: "shop", Route: "/login", Status: 429, Action: audit.ActionBlocked, Stage: audit.StageRateLimit,
			Reason: "rate limit " + name + " (0.1/s, burst 5) exceeded"})
	}
	insertAll(t, env.store, recs)
	if err := env.bans.Add(bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Reason: "scanner", Source: bans.SourceManual, Created: testNow.Add(-time.Minute), Until: testNow.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s := env.login(t)
	resp := env.do(t, req{path: "/console", cookies: s.cookies})
	page := readBody(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, page)
	}
	if testing.Verbose() {
		t.Log(page)
	}
	for _, want := range []string{
		`<span class="mode mode-block">block</span>`,
		`<span class="mode mode-detect">detect</span>`,
		`file: block — switched by alice`,
		`1 route(s) run in a WAF mode other than the file's`,
		`href="/console/mode?mode=detect&amp;nth=0&amp;path=%2F&amp;site=shop"`,
		`href="/console/mode?mode=block&amp;nth=0&amp;path=%2Flogin&amp;site=shop"`,
		`<td class="state bad">down</td>`,
		`<td class="error-class">connection refused</td>`,
		`1 of 2 usable`,
		`login: 0.1/s, burst 5, by ip · 3 tracked · <span class="refused">2</span> refused`,
		`site: 50/s, burst 100, by ip · 12 tracked · <span class="refused">1</span> refused`,
		`1,234`,
		`<td class="warn">5 days left</td>`,
		`<td class="bad">expired</td>`,
		`<td class="ok">60 days left</td>`,
		`acme: rate limited`,
		`<span id="ban-count">1</span>`,
		`198.51.100.7/32`,
		`<a href="/console" aria-current="page">Console</a>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "10.0.0.12:8080: connect") {
		t.Error("page shows an upstream error text")
	}

	var st ConsoleState
	resp = env.do(t, req{path: "/api/console", header: bearer()})
	if err := json.Unmarshal([]byte(readBody(t, resp)), &st); err != nil || len(st.Sites) != 1 || st.Pools[0].Targets[1].ErrorClass != "connection refused" {
		t.Fatalf("GET /api/console: %d %v %+v", resp.StatusCode, err, st)
	}
}

// TestConsoleActionsCSRF: every console action needs the session's CSRF
// token and a same-origin request; a refused one changes nothing.
func TestConsoleActionsCSRF(t *testing.T) {
	modeForm := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "site": {"shop"}, "path": {"/"}, "nth": {"0"}, "mode": {"detect"}, "confirm": {"yes"}}
	}
	tests := []struct {
		name   string
		path   string
		form   func(tok string) url.Values
		token  func(real string) string
		header map[string]string
		status int
		call   string
	}{
		{"reload without token", "/console/reload", func(string) url.Values { return url.Values{} }, nil, nil, http.StatusForbidden, ""},
		{"reload with a wrong token", "/console/reload", func(string) url.Values { return url.Values{"csrf": {strings.Repeat("ab", 32)}} }, nil, nil, http.StatusForbidden, ""},
		{"reload cross-site", "/console/reload", func(tok string) url.Values { return url.Values{"csrf": {tok}} }, nil,
			map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}, http.StatusForbidden, ""},
		{"reload", "/console/reload", func(tok string) url.Values { return url.Values{"csrf": {tok}} }, nil, nil, http.StatusSeeOther, "reload by admin console (" + testUser + ")"},
		{"switch without token", "/console/mode", func(string) url.Values { return modeForm("") }, nil, nil, http.StatusForbidden, ""},
		{"switch with another session's token", "/console/mode", modeForm, func(string) string { return "other" }, nil, http.StatusForbidden, ""},
		{"switch cross-site", "/console/mode", modeForm, nil, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, ""},
		{"switch", "/console/mode", modeForm, nil, nil, http.StatusSeeOther, "mode shop / detect by " + testUser},
		{"lift ban without token", "/bans/lift", func(string) url.Values { return url.Values{"prefix": {"198.51.100.7"}, "next": {"console"}} }, nil, nil, http.StatusForbidden, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &console{state: consoleState()}
			env := newEnv(t, withConsole(c))
			s := env.login(t)
			tok := s.csrf
			if tc.token != nil {
				other := env.login(t)
				tok = other.csrf // valid, but bound to another session
			}
			resp := env.do(t, req{method: "POST", path: tc.path, cookies: s.cookies, form: tc.form(tok), header: tc.header})
			body := readBody(t, resp)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			calls := c.called()
			switch {
			case tc.call == "" && len(calls) > 0:
				t.Fatalf("refused request still acted: %v", calls)
			case tc.call != "" && (len(calls) != 1 || calls[0] != tc.call):
				t.Fatalf("calls %v, want [%s]", calls, tc.call)
			}
			if tc.status == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/console?done=") {
				t.Fatalf("redirected to %q", resp.Header.Get("Location"))
			}
			if n := len(env.srv.actions.list(10)); (tc.call != "") != (n == 1) {
				t.Fatalf("%d action(s) recorded", n)
			}
		})
	}
}

// TestConsoleModeSwitch: the confirmation page changes nothing; the switch
// needs the confirmation, a known route and a valid mode; a done switch is
// in the action log with who, what and the result.
func TestConsoleModeSwitch(t *testing.T) {
	c := &console{state: consoleState()}
	env := newEnv(t, withConsole(c))
	s := env.login(t)

	resp := env.do(t, req{path: "/console/mode?site=shop&path=%2F&nth=0&mode=detect", cookies: s.cookies})
	page := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="confirm-switch"`) || !strings.Contains(page, "no longer refuses them") {
		t.Fatalf("confirmation page: %d %s", resp.StatusCode, page)
	}
	if calls := c.called(); len(calls) != 0 {
		t.Fatalf("the confirmation page acted: %v", calls)
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
	}{
		{"not confirmed", url.Values{"site": {"shop"}, "path": {"/"}, "mode": {"detect"}}, http.StatusBadRequest},
		{"bad mode", url.Values{"site": {"shop"}, "path": {"/"}, "mode": {"off"}, "confirm": {"yes"}}, http.StatusBadRequest},
		{"unknown route", url.Values{"site": {"shop"}, "path": {"/nowhere"}, "mode": {"detect"}, "confirm": {"yes"}}, http.StatusNotFound},
		{"bad nth", url.Values{"site": {"shop"}, "path": {"/"}, "nth": {"x"}, "mode": {"detect"}, "confirm": {"yes"}}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("csrf", s.csrf)
			if resp := env.do(t, req{method: "POST", path: "/console/mode", cookies: s.cookies, form: tc.form}); resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if calls := c.called(); len(calls) != 0 {
				t.Fatalf("acted: %v", calls)
			}
		})
	}
	resp = env.do(t, req{method: "POST", path: "/console/mode", cookies: s.cookies,
		form: url.Values{"csrf": {s.csrf}, "site": {"shop"}, "path": {"/"}, "nth": {"0"}, "mode": {"detect"}, "confirm": {"yes"}}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("switch: %d", resp.StatusCode)
	}
	page = readBody(t, env.do(t, req{path: strings.TrimSuffix(resp.Header.Get("Location"), "#result"), cookies: s.cookies}))
	for _, want := range []string{`id="result"`, "waf mode: shop /: block → detect", "shop / is now in detect mode", "<td>" + testUser + "</td><td>console</td><td>waf mode</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("after the switch the page lacks %q", want)
		}
	}
}

// TestConsoleReloadProblems: a refused reload shows every problem as
// `portcullis check` names it, and says nothing was changed.
func TestConsoleReloadProblems(t *testing.T) {
	c := &console{state: consoleState(), problems: []string{
		"/etc/portcullis/portcullis.yaml:12: sites[0].waf.paranoia: must be 1 to 4",
		"/etc/portcullis/portcullis.yaml:20: upstreams[0].targets[0]: scheme must be http or https",
	}}
	env := newEnv(t, withConsole(c))
	s := env.login(t)
	resp := env.do(t, req{method: "POST", path: "/console/reload", cookies: s.cookies, form: url.Values{"csrf": {s.csrf}}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	page := readBody(t, env.do(t, req{path: strings.TrimSuffix(resp.Header.Get("Location"), "#result"), cookies: s.cookies}))
	for _, want := range append([]string{"Nothing was changed", "Refused"}, c.problems...) {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	acts := env.srv.actions.list(1)
	if len(acts) != 1 || acts[0].OK || acts[0].What != "reload" || len(acts[0].Problems) != 2 || acts[0].User != testUser {
		t.Fatalf("action log: %+v", acts)
	}
}

// TestActionLogFile: actions are appended to the file and read back by the
// next server; a torn last line is skipped.
func TestActionLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin-actions.jsonl")
	c := &console{state: consoleState()}
	env := newEnv(t, withConsole(c), func(o *Options) { o.ActionLog = path })
	s := env.login(t)
	env.do(t, req{method: "POST", path: "/console/reload", cookies: s.cookies, form: url.Values{"csrf": {s.csrf}}})
	if err := env.bans.Add(bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Source: bans.SourceManual, Created: testNow, Until: testNow.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	resp := env.do(t, req{method: "POST", path: "/bans/lift", cookies: s.cookies, form: url.Values{"csrf": {s.csrf}, "prefix": {"198.51.100.7"}, "next": {"console"}}})
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/console?done=") {
		t.Fatalf("lift from the console went to %q", loc)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id": 99, "what": "torn`)
	f.Close()

	srv, err := New(Options{Store: env.store, ActionLog: path, Auth: Auth{None: true}})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.actions.list(10)
	if len(got) != 2 || got[0].What != "lift ban" || got[0].Target != "198.51.100.7/32" || !got[0].OK || got[1].What != "reload" || got[1].User != testUser {
		t.Fatalf("read back %+v", got)
	}
	a, _ := srv.actions.add(Action{What: "reload"}, testNow)
	if a.ID != 3 {
		t.Fatalf("next id %d, want 3", a.ID)
	}
	var api struct{ Actions []Action }
	resp = (&testEnv{srv: srv}).do(t, req{path: "/api/actions?limit=1"})
	body := readBody(t, resp)
	if err := json.Unmarshal([]byte(body), &api); err != nil || len(api.Actions) != 1 || api.Actions[0].ID != 3 {
		t.Fatalf("GET /api/actions: %v %s", err, body)
	}

	// Read back after the add: the torn line was ended on open, so the
	// entry appended after it is a line of its own.
	reopen := func() []Action {
		t.Helper()
		srv, err := New(Options{Store: env.store, ActionLog: path, Auth: Auth{None: true}})
		if err != nil {
			t.Fatal(err)
		}
		return srv.actions.list(10)
	}
	if got := reopen(); len(got) != 3 || got[0].ID != 3 || got[0].What != "reload" {
		t.Fatalf("read back after the add: %+v", got)
	}
	// A line longer than any entry is skipped and the lines after it read.
	f, err = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id": 98, "what": "` + strings.Repeat("x", maxActionLine) + "\"}\n")
	f.WriteString(`{"id": 7, "what": "after the long line", "ok": true}` + "\n")
	f.Close()
	if got := reopen(); len(got) != 4 || got[0].ID != 7 || got[0].What != "after the long line" || got[1].ID != 3 {
		t.Fatalf("read back after a long line: %+v", got)
	}
}

// TestConsoleTokenPost: a page form posted with a bearer token (no
// session, no CSRF token) reaches the handler with its fields read.
func TestConsoleTokenPost(t *testing.T) {
	c := &console{state: consoleState()}
	env := newEnv(t, withConsole(c))
	if err := env.bans.Add(bans.Ban{Prefix: netip.MustParsePrefix("198.51.100.7/32"), Source: bans.SourceManual, Created: testNow, Until: testNow.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		form       url.Values
		location   string
	}{
		{"mode switch", "/console/mode", url.Values{"site": {"shop"}, "path": {"/"}, "nth": {"0"}, "mode": {"detect"}, "confirm": {"yes"}}, "/console?done="},
		{"lift ban", "/bans/lift", url.Values{"prefix": {"198.51.100.7"}, "next": {"console"}}, "/console?done="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := env.do(t, req{method: "POST", path: tc.path, form: tc.form, header: bearer()})
			body := readBody(t, resp)
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), tc.location) {
				t.Fatalf("status %d, location %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
		})
	}
	if calls := c.called(); len(calls) != 1 || !strings.HasPrefix(calls[0], "mode shop / detect by ") {
		t.Fatalf("calls %v", calls)
	}
	if left := env.bans.List(testNow); len(left) != 0 {
		t.Fatalf("bans still in force: %+v", left)
	}
	got := env.srv.actions.list(10)
	if len(got) != 2 || got[0].What != "lift ban" || !got[0].OK || got[1].What != "waf mode" || !got[1].OK {
		t.Fatalf("actions %+v", got)
	}
}
