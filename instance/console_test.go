package instance

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// TestModeSwitchPersistence: a switch is applied as a reload, kept in the
// state directory, applied again after a restart and after POST
// /api/config; the console shows the running mode beside the file's; a
// switch back to the file's mode removes it; a switch the file no longer
// has a route for is kept, applies to nothing and is shown as stale.
func TestModeSwitchPersistence(t *testing.T) {
	dir, up, dead := t.TempDir(), backend(t), deadAddr(t)
	path := consoleConfig(t, dir, up.URL, dead, "")
	ref := admin.RouteRef{Site: "shop", Path: "/"}
	routeOf := func(inst *Instance) admin.ConsoleRoute {
		t.Helper()
		st := inst.ConsoleState()
		if len(st.Sites) != 1 || len(st.Sites[0].Routes) != 1 {
			t.Fatalf("state %+v", st)
		}
		return st.Sites[0].Routes[0]
	}

	var log syncBuffer
	inst := startConsoleInstance(t, path, &log)
	waitDead(t, inst, dead)
	if rt := routeOf(inst); rt.Mode != "block" || rt.FileMode != "block" || rt.Override != nil {
		t.Fatalf("at start: %+v", rt)
	}
	for _, tc := range []struct {
		name string
		ref  admin.RouteRef
		mode string
		ok   bool
	}{
		{"bad mode", ref, "off", false},
		{"unknown route", admin.RouteRef{Site: "shop", Path: "/nowhere"}, "detect", false},
		{"second route of that path", admin.RouteRef{Site: "shop", Path: "/", Nth: 1}, "detect", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := inst.SetRouteMode(tc.ref, tc.mode, "test"); res.OK != tc.ok {
				t.Fatalf("%+v", res)
			}
		})
	}
	if res := inst.SetRouteMode(ref, "detect", "alice"); !res.OK {
		t.Fatalf("switch: %+v", res)
	}
	if rt := routeOf(inst); rt.Mode != "detect" || rt.FileMode != "block" || rt.Override == nil || rt.Override.By != "alice" {
		t.Fatalf("after the switch: %+v", rt)
	}
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusOK {
		t.Fatalf("detect mode still blocks: %d", code)
	}

	// POST /api/config with the same file: the switch stays.
	text, _ := os.ReadFile(path)
	if res := inst.ApplyConfig(text, false, "test"); !res.OK {
		t.Fatalf("apply: %+v", res)
	}
	if rt := routeOf(inst); rt.Mode != "detect" {
		t.Fatalf("after POST /api/config: %+v", rt)
	}
	if err := inst.Stop(); err != nil {
		t.Fatal(err)
	}

	// A restart reads the switch back from the state directory.
	inst = startConsoleInstance(t, path, &log)
	waitDead(t, inst, dead)
	if rt := routeOf(inst); rt.Mode != "detect" || rt.FileMode != "block" || rt.Override == nil {
		t.Fatalf("after a restart: %+v", rt)
	}
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusOK {
		t.Fatalf("after a restart the switch is lost: %d", code)
	}
	if st := inst.ConsoleState(); st.FileDiffers {
		t.Fatal("the file is reported as differing from the configuration in force")
	}

	// Switched back to the file's mode: the entry is gone.
	if res := inst.SetRouteMode(ref, "block", "bob"); !res.OK {
		t.Fatalf("switch back: %+v", res)
	}
	if rt := routeOf(inst); rt.Mode != "block" || rt.Override != nil {
		t.Fatalf("after switching back: %+v", rt)
	}
	var doc overridesDoc
	data, err := os.ReadFile(filepath.Join(dir, "state", overridesFile))
	if err != nil || json.Unmarshal(data, &doc) != nil || len(doc.Routes) != 0 {
		t.Fatalf("overrides file %s (%v)", data, err)
	}
	if code := trafficStatus(t, inst, xssQuery); code != http.StatusForbidden {
		t.Fatalf("block mode lets the attack through: %d", code)
	}

	// A switch for a route the file then loses is kept and shown stale.
	if res := inst.SetRouteMode(ref, "detect", "carol"); !res.OK {
		t.Fatalf("%+v", res)
	}
	moved := strings.Replace(string(text), "      - path: /\n", "      - path: /shop\n", 1)
	if err := os.WriteFile(path, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	if st := inst.ConsoleState(); !st.FileDiffers {
		t.Fatal("an edited file is not reported as differing")
	}
	if res := inst.CheckAndReload("test"); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	st := inst.ConsoleState()
	if len(st.Overrides) != 1 || !st.Overrides[0].Stale || st.Sites[0].Routes[0].Mode != "block" {
		t.Fatalf("stale switch: %+v", st)
	}
	if !strings.Contains(log.String(), "console mode switch names no route") {
		t.Error("the stale switch is not logged")
	}
}

// TestModeSwitchStateFileErrors: an unreadable switches file stops the
// start (a route must not run in a mode nobody chose without saying so).
func TestModeSwitchStateFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"not JSON", "{", "fix or remove the file"},
		{"bad mode", `{"routes": [{"route": {"site": "shop", "path": "/"}, "mode": "off"}]}`, `mode "off" is not detect or block`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, up := t.TempDir(), backend(t)
			path := consoleConfig(t, dir, up.URL, deadAddr(t), "")
			if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "state", overridesFile), []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := mustLoad(t, path)
			inst, err := Start(Options{Config: cfg, ConfigPath: path, Log: discardLog()})
			if err == nil {
				_ = inst.Stop()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConsoleStateLimits: the state names every rate limit with how many
// clients it tracks.
func TestConsoleStateLimits(t *testing.T) {
	dir, up := t.TempDir(), backend(t)
	path := consoleConfig(t, dir, up.URL, deadAddr(t), "")
	data, _ := os.ReadFile(path)
	withLimits := strings.Replace(string(data), "        waf: {mode: block}\n",
		"        waf: {mode: block}\n        rate_limits: [{name: search, rate: 100, burst: 100}]\n", 1)
	if err := os.WriteFile(path, []byte(withLimits), 0o600); err != nil {
		t.Fatal(err)
	}
	inst := startConsoleInstance(t, path, io.Discard)
	trafficStatus(t, inst, "/")
	st := inst.ConsoleState()
	ls := st.Sites[0].Routes[0].Limits
	if len(ls) != 1 || ls[0].Name != "search" || !ls[0].TrackedKnown || ls[0].Tracked != 1 {
		t.Fatalf("limits %+v", ls)
	}
	if len(st.Pools) != 1 || len(st.Pools[0].Targets) != 2 {
		t.Fatalf("pools %+v", st.Pools)
	}
}

func mustLoad(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// waitDead waits until the health check has taken the dead target out, so
// that traffic goes to the live one only.
func waitDead(t *testing.T, inst *Instance, dead string) {
	t.Helper()
	ok := waitfor.True(20*time.Second, func() bool {
		for _, p := range inst.ConsoleState().Pools {
			for _, tg := range p.Targets {
				if tg.URL == dead && !tg.Up {
					return true
				}
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("the dead target %s was never taken out: %+v", dead, inst.ConsoleState().Pools)
	}
}

// TestModeSwitchConcurrent: switches and reloads run one at a time on the
// state in force when each runs: two switches on different routes made at
// once both stay (in memory and in the switches file), and a switch made
// while the file is reloaded keeps the reloaded configuration.
func TestModeSwitchConcurrent(t *testing.T) {
	dir, up, dead := t.TempDir(), backend(t), deadAddr(t)
	path := consoleConfig(t, dir, up.URL, dead, "")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	two := strings.Replace(string(text), "      - path: /\n", "      - path: /api\n        upstream: app\n        waf: {mode: block}\n      - path: /\n", 1)
	if err := os.WriteFile(path, []byte(two), 0o600); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	inst := startConsoleInstance(t, path, &log)
	apiRef, rootRef := admin.RouteRef{Site: "shop", Path: "/api"}, admin.RouteRef{Site: "shop", Path: "/"}
	// routes returns path → mode in force and the file's mode.
	routes := func() map[string][2]string {
		t.Helper()
		st := inst.ConsoleState()
		if len(st.Sites) != 1 || len(st.Sites[0].Routes) != 2 {
			t.Fatalf("state %+v", st)
		}
		out := map[string][2]string{}
		for _, rt := range st.Sites[0].Routes {
			out[rt.Ref.Path] = [2]string{rt.Mode, rt.FileMode}
		}
		return out
	}
	saved := func() map[string]string {
		t.Helper()
		var doc overridesDoc
		data, err := os.ReadFile(filepath.Join(dir, "state", overridesFile))
		if err != nil || json.Unmarshal(data, &doc) != nil {
			t.Fatalf("overrides file %s (%v)", data, err)
		}
		out := map[string]string{}
		for _, o := range doc.Routes {
			out[o.Route.Path] = o.Mode
		}
		return out
	}
	// at runs fs at once and waits for them.
	at := func(fs ...func() bool) {
		t.Helper()
		start := make(chan struct{})
		oks := make(chan bool, len(fs))
		for _, f := range fs {
			go func() {
				<-start
				oks <- f()
			}()
		}
		close(start)
		for range fs {
			if !<-oks {
				t.Fatal("a switch or reload failed")
			}
		}
	}
	switchTo := func(ref admin.RouteRef, mode string) func() bool {
		return func() bool { return inst.SetRouteMode(ref, mode, "test").OK }
	}

	for round := range 4 {
		at(switchTo(apiRef, "detect"), switchTo(rootRef, "detect"))
		if got := routes(); got["/api"][0] != "detect" || got["/"][0] != "detect" {
			t.Fatalf("round %d: after two switches at once: %v", round, got)
		}
		if got := saved(); len(got) != 2 || got["/api"] != "detect" || got["/"] != "detect" {
			t.Fatalf("round %d: switches file after two switches at once: %v", round, got)
		}
		at(switchTo(apiRef, "block"), switchTo(rootRef, "block"))
		if got := routes(); got["/api"][0] != "block" || got["/"][0] != "block" {
			t.Fatalf("round %d: after two switches back at once: %v", round, got)
		}
		if got := saved(); len(got) != 0 {
			t.Fatalf("round %d: switches file after two switches back at once: %v", round, got)
		}
	}

	// The file now puts /api in detect mode; a switch of / made while it
	// is reloaded must not bring the old file back, nor be lost.
	edited := strings.Replace(two, "      - path: /api\n        upstream: app\n        waf: {mode: block}\n", "      - path: /api\n        upstream: app\n        waf: {mode: detect}\n", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	at(func() bool { return inst.CheckAndReload("test").OK }, switchTo(rootRef, "detect"))
	if got := routes(); got["/api"] != [2]string{"detect", "detect"} || got["/"] != [2]string{"detect", "block"} {
		t.Fatalf("after a switch and a reload at once: %v", got)
	}
	// A switch after the reload keeps the reloaded configuration.
	if res := inst.SetRouteMode(rootRef, "block", "test"); !res.OK {
		t.Fatalf("%+v", res)
	}
	if got := routes(); got["/api"] != [2]string{"detect", "detect"} || got["/"] != [2]string{"block", "block"} {
		t.Fatalf("after a switch following the reload: %v", got)
	}
	if st := inst.ConsoleState(); st.FileDiffers {
		t.Fatal("a switch brought back the configuration the reload replaced")
	}
}
