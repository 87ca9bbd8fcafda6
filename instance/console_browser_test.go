package instance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/browsertest"
)

// The console end to end: a real instance (gateway, upstream pool with
// health checks, admin listener) driven by real Chromium, and real requests
// through the gateway.

const consoleUser, consolePassword = "operator", "correct horse battery staple"

// xssQuery is a request the rule engine blocks in block mode.
const xssQuery = "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E"

var (
	hashOnce    sync.Once
	consoleHash []byte
	hashErr     error
)

// consoleConfig writes a configuration with a login, a pool of a live and
// a dead target with an active health check, and one route in block mode.
// extra is appended (a broken setting, for the reload test).
func consoleConfig(t *testing.T, dir, live, dead, extra string) string {
	t.Helper()
	hashOnce.Do(func() { consoleHash, hashErr = bcrypt.GenerateFromPassword([]byte(consolePassword), bcrypt.MinCost) })
	if hashErr != nil {
		t.Fatal(hashErr)
	}
	hash := consoleHash // one hash: a new salt would change admin, which needs a restart
	path := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
upstreams:
  - name: app
    targets: [%q, %q]
    health_check: {path: /healthz, interval: 100ms, timeout: 90ms, rise: 1, fall: 1}
sites:
  - name: shop
    hosts: ["*"]
    routes:
      - path: /
        upstream: app
        waf: {mode: block}
tls: {state_dir: %q}
audit: {file: %q}
admin:
  listen: "127.0.0.1:0"
  auth:
    users: [{name: %s, password_hash: %q}]
server: {shutdown_grace: 2s}
%s`, live, dead, filepath.Join(dir, "state"), filepath.Join(dir, "audit.jsonl"), consoleUser, hash, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startConsoleInstance starts an instance from path and stops it at the
// end of the test.
func startConsoleInstance(t *testing.T, path string, log io.Writer) *Instance {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := Start(Options{Config: cfg, ConfigPath: path, Log: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inst.Stop() })
	return inst
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func backend(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the upstream") }))
	t.Cleanup(up.Close)
	return up
}

// trafficStatus sends one request through the gateway.
func trafficStatus(t *testing.T, inst *Instance, path string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + inst.Addrs()[0].String() + path)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func newTab(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browsertest.Chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("password-store", "basic"), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tctx, tcancel := chromedp.NewContext(actx)
	t.Cleanup(tcancel)
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tctx
}

func browse(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second) // a hang names its step
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func read[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return read(t, ctx, "text of "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// dropResult removes the last action's result from the page, so that
// waiting for the next one cannot be satisfied by the old page.
var dropResult = chromedp.Evaluate[chromedp.Void](`document.getElementById('result')?.remove()`)

// TestConsoleBrowser: an operator logs in, sees the route in block mode and
// the dead target down, switches the route to detect through the
// confirmation page and the gateway stops blocking; a reload of a broken
// file shows its problems with file:line and changes nothing; a reload of
// a good file keeps the switch.
func TestConsoleBrowser(t *testing.T) {
	ctx := newTab(t, 90*time.Second)
	dir, up, dead := t.TempDir(), backend(t), deadAddr(t)
	path := consoleConfig(t, dir, up.URL, dead, "")
	var log syncBuffer
	inst := startConsoleInstance(t, path, &log)
	// localhost: Chromium keeps the Secure session cookie for it.
	base := "http://localhost:" + strconv.Itoa(inst.AdminAddrs()[0].(*net.TCPAddr).Port)

	if code := trafficStatus(t, inst, xssQuery); code != http.StatusForbidden {
		t.Fatalf("before the switch the attack got %d, want 403", code)
	}

	// Log in; the console is where the login goes back to.
	browse(t, ctx, "log in",
		chromedp.Navigate(base+"/console"),
		chromedp.WaitVisible(chromedp.ID("login-form")),
		chromedp.SendKeys(chromedp.ID("username"), consoleUser),
		chromedp.SendKeys(chromedp.ID("password"), consolePassword),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#sites")),
	)
	row := "#route-shop-_-0"
	if mode := text(t, ctx, row+" .mode"); mode != "block" {
		t.Fatalf("route mode %q, want block", mode)
	}
	// The stylesheet loaded under the admin listener's CSP: the mode is
	// coloured by class.
	if bg := read(t, ctx, "mode colour", chromedp.Evaluate[string](`getComputedStyle(document.querySelector('`+row+` .mode')).backgroundColor`)); bg != "rgb(251, 227, 225)" {
		t.Fatalf("block mode background %q: stylesheet not applied", bg)
	}

	// The dead target: the health check finds it within a few probes;
	// the page is loaded again until it shows.
	deadRow := fmt.Sprintf(`#pools tr.target[data-url=%q]`, dead)
	deadline := time.Now().Add(20 * time.Second)
	var state string
	for {
		browse(t, ctx, "load the console", chromedp.Navigate(base+"/console"), chromedp.WaitVisible(chromedp.ID("pools")))
		if state = text(t, ctx, deadRow+" td.state"); state == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead target shows %q", state)
		}
	}
	if class := text(t, ctx, deadRow+" td.error-class"); class != "connection refused" {
		t.Fatalf("dead target's error class %q", class)
	}
	if live := text(t, ctx, fmt.Sprintf(`#pools tr.target[data-url=%q] td.state`, up.URL)); live != "up" {
		t.Fatalf("live target shows %q", live)
	}

	// Switch to detect: the confirmation page first, nothing changed yet.
	browse(t, ctx, "open the switch", chromedp.Click(chromedp.CSS(row+" a.switch")), chromedp.WaitVisible(chromedp.ID("confirm-switch")))
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusForbidden {
		t.Fatalf("the confirmation page alone changed the mode: %d", code)
	}
	browse(t, ctx, "confirm the switch", chromedp.Click(chromedp.ID("confirm-switch")), chromedp.WaitVisible(chromedp.ID("result")))
	result, mode := text(t, ctx, "#result-text"), text(t, ctx, row+" .mode")
	if !strings.Contains(result, "Done") || !strings.Contains(result, "now in detect mode") || mode != "detect" {
		t.Fatalf("after the switch: result %q, mode %q", result, mode)
	}
	if differs := text(t, ctx, row+" .differs"); !strings.Contains(differs, "file: block") || !strings.Contains(differs, consoleUser) {
		t.Fatalf("differs note %q", differs)
	}
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusOK {
		t.Fatalf("after the switch to detect the attack got %d, want 200 (passed and recorded)", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", overridesFile)); err != nil {
		t.Fatalf("the switch is not kept: %v", err)
	}

	// A broken file: every problem with file:line, the old configuration
	// keeps serving.
	consoleConfig(t, dir, up.URL, dead, "waf: {paranoia: 9}\n")
	browse(t, ctx, "reload a broken file", dropResult, chromedp.Click(chromedp.ID("reload")), chromedp.WaitVisible(chromedp.ID("result-problems")))
	if problems := text(t, ctx, "#result-problems"); !strings.Contains(problems, path+":") || !strings.Contains(problems, "waf.paranoia") {
		t.Fatalf("problems %q do not name %s:line and the field", problems, path)
	}
	browse(t, ctx, "the file differs", chromedp.WaitVisible(chromedp.ID("file-differs")))
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusOK {
		t.Fatalf("after the refused reload: %d, want 200 (the running configuration, in detect mode)", code)
	}
	if code := trafficStatus(t, inst, "/"); code != http.StatusOK {
		t.Fatalf("after the refused reload a plain request got %d", code)
	}

	// A good file again: applied, and the switch survives the reload.
	consoleConfig(t, dir, up.URL, dead, "")
	browse(t, ctx, "reload a good file", dropResult, chromedp.Click(chromedp.ID("reload")), chromedp.WaitVisible(chromedp.ID("result")))
	if result, mode := text(t, ctx, "#result-text"), text(t, ctx, row+" .mode"); !strings.Contains(result, "Done") || mode != "detect" {
		t.Fatalf("after a good reload: %q, mode %q", result, mode)
	}
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusOK {
		t.Fatalf("after the reload the switch was lost: %d", code)
	}

	// The action log shows who did what.
	actions := text(t, ctx, "#action-log")
	for _, want := range []string{"waf mode", "shop /: block → detect", "reload", consoleUser} {
		if !strings.Contains(actions, want) {
			t.Errorf("action log lacks %q:\n%s", want, actions)
		}
	}
	// A POST without the token, from the logged-in page itself, is refused.
	status := read(t, ctx, "post without a token", chromedp.Evaluate[int](`fetch('/console/reload', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: ''}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != http.StatusForbidden {
		t.Fatalf("POST without a token: %d", status)
	}
}
