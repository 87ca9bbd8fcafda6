package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portcullis-waf/portcullis/internal/browsertest"
)

// Browser tests drive real headless Chromium against a real listener: what
// httptest cannot show (Secure SameSite=Strict cookies kept by a browser,
// the CSP letting our own script and SVG through, forms submitted as a
// browser submits them).

// browser starts headless Chromium with a fresh profile and returns a tab
// context bounded by timeout, and the console messages collected so far.
func browser(t testing.TB, timeout time.Duration, width, height int) (context.Context, func() []chromedp.ConsoleMessage) {
	t.Helper()
	path := browsertest.Chromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tctx, tcancel := chromedp.NewContext(actx)
	t.Cleanup(tcancel)
	if err := chromedp.Do(tctx); err != nil { // start the browser now, so its errors are named
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var msgs []chromedp.ConsoleMessage
	console := chromedp.Console(tctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
		}
	}()
	return tctx, func() []chromedp.ConsoleMessage {
		mu.Lock()
		defer mu.Unlock()
		return append([]chromedp.ConsoleMessage(nil), msgs...)
	}
}

// serve runs env's server on a loopback listener and returns its base URL
// under the name localhost: browsers keep Secure cookies for
// http://localhost, not for http://127.0.0.1.
func serve(t testing.TB, env *testEnv) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- env.srv.Serve(l, nil) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := env.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// Serve returns nil when Shutdown stopped it, and ErrServerClosed
		// when Shutdown came first: a test that ended early (a skip, a
		// fatal step) may clean up before the goroutine ran.
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v after Shutdown", err)
		}
	})
	return "http://localhost:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitLocation waits until the page's URL contains part (a click's
// navigation has landed) and returns it. Reads during the navigation may
// fail; they are retried until ctx ends.
func waitLocation(t *testing.T, ctx context.Context, part string) string {
	t.Helper()
	var loc string
	for {
		got, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil {
			loc = got
			if strings.Contains(loc, part) {
				return loc
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page never reached a URL with %q (last %q, %v)", part, loc, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestBrowser(t *testing.T) {
	// The browser first: without one the test skips before a server runs.
	ctx, console := browser(t, 50*time.Second, 1280, 900)
	env := newEnv(t)
	base := serve(t, env)

	// Each step gets its own deadline, so a hang names the step.
	step := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return c
	}

	t.Run("wrong password is refused", func(t *testing.T) {
		c := step(15 * time.Second)
		do(t, c, "log in with a wrong password",
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("username"), testUser),
			chromedp.SendKeys(chromedp.ID("password"), "not the password"),
			chromedp.Click(chromedp.ID("login-submit")),
			chromedp.WaitVisible(chromedp.ID("login-error")),
		)
		if msg := run(t, c, "error text", chromedp.Text(chromedp.ID("login-error"))); msg != "Wrong user name or password." {
			t.Fatalf("error %q", msg)
		}
		if loc := run(t, c, "location", chromedp.Location()); !strings.HasSuffix(loc, "/login") {
			t.Fatalf("at %s after a refused login", loc)
		}
	})

	t.Run("log in and see the overview chart", func(t *testing.T) {
		c := step(15 * time.Second)
		do(t, c, "log in",
			chromedp.Navigate(base+"/events?rule=942100"),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.SendKeys(chromedp.ID("username"), testUser),
			chromedp.SendKeys(chromedp.ID("password"), testPassword),
			chromedp.Click(chromedp.ID("login-submit")),
			chromedp.WaitVisible(chromedp.ID("events")),
		)
		// The login went back to the page asked for, filters and all.
		if loc := run(t, c, "location", chromedp.Location()); loc != base+"/events?rule=942100" {
			t.Fatalf("after login at %s", loc)
		}
		do(t, c, "open the overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("chart")))
		bars := run(t, c, "count bars", chromedp.Evaluate[int](`document.querySelectorAll('#chart rect.blocked').length`))
		if bars < 20 {
			t.Fatalf("chart shows %d blocked bars", bars)
		}
		// The stylesheet loaded under the CSP: bars are filled by class.
		fill := run(t, c, "bar colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('#chart rect.blocked')).fill`))
		if fill != "rgb(200, 55, 45)" {
			t.Fatalf("blocked bar fill %q: stylesheet not applied", fill)
		}
		// The session cookie is invisible to scripts (HttpOnly).
		if ck := run(t, c, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(ck, "portcullis") {
			t.Fatalf("script sees cookies %q", ck)
		}
	})

	t.Run("filter by rule and open an event", func(t *testing.T) {
		c := step(15 * time.Second)
		do(t, c, "filter with the form",
			chromedp.Navigate(base+"/events"),
			chromedp.WaitVisible(chromedp.ID("filters")),
			chromedp.SendKeys(chromedp.ID("filter-rule"), "920273"),
			chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`.chips`)),
		)
		loc := run(t, c, "location", chromedp.Location())
		if !strings.Contains(loc, "rule=920273") {
			t.Fatalf("filtered view at %s: the filter is not in the URL", loc)
		}
		if n := run(t, c, "rows", chromedp.Evaluate[int](`document.querySelectorAll('#events tbody tr').length`)); n != 1 {
			t.Fatalf("%d rows for rule 920273, want 1", n)
		}
		// A link on a rule id adds that filter.
		do(t, c, "click a rule id",
			chromedp.Click(chromedp.CSS(`#events a.rule-link[title^="SQL Injection"]`)),
		)
		// The old page's #events would satisfy a visibility wait before
		// the navigation lands: wait for the new URL first.
		loc = waitLocation(t, c, "rule=942100")
		do(t, c, "the filtered view", chromedp.WaitVisible(chromedp.ID("events")))
		if !strings.Contains(loc, "rule=920273") || !strings.Contains(loc, "rule=942100") {
			t.Fatalf("after clicking rule 942100: %s", loc)
		}
		do(t, c, "open the event",
			chromedp.Click(chromedp.CSS(`#events a.event-link`)),
			chromedp.WaitVisible(chromedp.ID("inbound-rules")),
		)
		if sum := run(t, c, "inbound sum", chromedp.Text(chromedp.ID("inbound-sum"))); sum != "18" {
			t.Fatalf("inbound sum %q, want 18", sum)
		}
		points := run(t, c, "points", chromedp.Evaluate[[]string](`[...document.querySelectorAll('#inbound-rules td.points')].map(e => e.textContent)`))
		if strings.Join(points, ",") != "5,5,5,3" {
			t.Fatalf("points per rule %v", points)
		}
		book := run(t, c, "bookkeeping", chromedp.Text(chromedp.ID("bookkeeping-rules")))
		if !strings.Contains(book, "949110") || !strings.Contains(book, "980170") {
			t.Fatalf("bookkeeping table %q", book)
		}
		sug := run(t, c, "suggestion", chromedp.Text(chromedp.ID("suggestion")))
		if !strings.Contains(sug, "rule: 942100") || !strings.Contains(sug, "target: ARGS:id") {
			t.Fatalf("suggestion %q", sug)
		}
		do(t, c, "copy the suggestion",
			chromedp.Click(chromedp.ID("copy-suggestion")),
			chromedp.Poll[chromedp.Void](`document.getElementById('copy-status').textContent !== ''`),
		)
	})

	t.Run("hostile record renders as text", func(t *testing.T) {
		c := step(10 * time.Second)
		do(t, c, "open the hostile record", chromedp.Navigate(base+"/events/req-xss-1"), chromedp.WaitVisible(chromedp.ID("fields")))
		injected := run(t, c, "injected elements", chromedp.Evaluate[int](`document.querySelectorAll('main img, main iframe, main svg[onload], main b, main script').length`))
		if injected != 0 {
			t.Fatalf("%d elements from record values in the page", injected)
		}
	})

	t.Run("state change without the CSRF token is refused", func(t *testing.T) {
		c := step(15 * time.Second)
		do(t, c, "ban through the form",
			chromedp.Navigate(base+"/bans"),
			chromedp.WaitVisible(chromedp.ID("ban-form")),
			chromedp.SendKeys(chromedp.ID("ban-prefix"), "192.0.2.44"),
			chromedp.SendKeys(chromedp.ID("ban-reason"), "browser test"),
			chromedp.Click(chromedp.ID("ban-submit")),
			chromedp.WaitVisible(chromedp.ID("bans")),
		)
		if txt := run(t, c, "bans table", chromedp.Text(chromedp.ID("bans"))); !strings.Contains(txt, "192.0.2.44/32") {
			t.Fatalf("ban not listed: %q", txt)
		}
		// The same form without its token: the browser still sends the
		// session cookie (same site), and the server refuses.
		do(t, c, "ban without the token",
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#ban-form input[name=csrf]').remove()`),
			chromedp.SetValue(chromedp.ID("ban-prefix"), "192.0.2.45"),
			chromedp.Click(chromedp.ID("ban-submit")),
			chromedp.WaitVisible(chromedp.CSS(`p.error`)),
		)
		if txt := run(t, c, "refusal", chromedp.Text(chromedp.CSS(`p.error`))); !strings.Contains(txt, "missing CSRF token") {
			t.Fatalf("refusal page says %q", txt)
		}
		// Scripted calls from our own page: refused without the header,
		// accepted with it.
		status := run(t, c, "fetch without token", chromedp.Evaluate[int](`fetch('/api/bans', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({prefix: '192.0.2.46'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if status != 403 {
			t.Fatalf("fetch without the CSRF header: %d, want 403", status)
		}
		do(t, c, "back to bans", chromedp.Navigate(base+"/bans"), chromedp.WaitVisible(chromedp.ID("ban-form")))
		status = run(t, c, "fetch with token", chromedp.Evaluate[int](`fetch('/api/bans', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': document.querySelector('input[name=csrf]').value}, body: JSON.stringify({prefix: '192.0.2.47'})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
		if status != 201 {
			t.Fatalf("fetch with the CSRF header: %d, want 201", status)
		}
		for addr, want := range map[string]bool{"192.0.2.44": true, "192.0.2.45": false, "192.0.2.46": false, "192.0.2.47": true} {
			if _, banned := env.bans.Banned(mustAddr(addr), env.clock.Now()); banned != want {
				t.Errorf("%s banned = %v, want %v", addr, banned, want)
			}
		}
	})

	t.Run("log out", func(t *testing.T) {
		c := step(10 * time.Second)
		do(t, c, "log out",
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/logout"] button`)),
			chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)),
			chromedp.WaitVisible(chromedp.ID("login-form")),
			chromedp.Navigate(base+"/bans"),
			chromedp.WaitVisible(chromedp.ID("login-form")),
		)
	})

	for _, m := range console() {
		if m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
			t.Errorf("browser console: %s", m)
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("browser test ran out of time")
	}
}

// TestBrowserSkipIsClean runs TestBrowser in a child process that finds no
// browser, outside CI: it must skip, not fail (its server cleanup once
// reported the ErrServerClosed of a Serve that started after Shutdown).
// With CI set, the same run must fail.
func TestBrowserSkipIsClean(t *testing.T) {
	if os.Getenv("PORTCULLIS_CHROMIUM") == "none" {
		t.Skip("already the child process")
	}
	for _, tc := range []struct {
		ci   string
		fail bool
		want string
	}{
		{"", false, "--- SKIP: TestBrowser "},
		{"true", true, "chromium is not installed, and CI is set"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBrowser$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "PORTCULLIS_CHROMIUM=none", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		if (err != nil) != tc.fail || !strings.Contains(string(out), tc.want) {
			t.Errorf("CI=%q: exit %v, want failure %v and %q in:\n%s", tc.ci, err, tc.fail, tc.want, out)
		}
	}
}
