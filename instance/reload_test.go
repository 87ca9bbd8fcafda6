package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/admin"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// TestReloadTriggersInActionLog (issue 17, item 7): reloads on SIGHUP and
// on a change of the file (server.watch_config) are in the action log
// beside the console's, with who triggered them and the result: ok, or
// refused with the count of the check's problems and their lines. They
// are served at /api/actions, listed on the console page and written to
// the action log file.
func TestReloadTriggersInActionLog(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	dir, adminAddr := t.TempDir(), privateLoopback(t)
	path := filepath.Join(dir, "portcullis.yaml")
	write := func(extra string) {
		t.Helper()
		cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
upstreams: [{name: app, targets: [%q]}]
sites: [{hosts: ["*"], routes: [{path: /, upstream: app}]}]
audit: {file: %q}
admin: {listen: %q, auth: none}
server: {shutdown_grace: 5s, watch_config: true}
%s`, up.URL, filepath.Join(dir, "audit.jsonl"), adminAddr, extra)
		// Written whole and renamed into place: the file watch never reads
		// half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan *Instance, 1)
	served := make(chan error, 1)
	go func() {
		served <- Run(ctx, Options{Config: cfg, ConfigPath: path, Log: slog.New(slog.NewTextHandler(&log, nil))}, func(i *Instance) { started <- i })
	}()
	var inst *Instance
	select {
	case inst = <-started:
	case err := <-served:
		t.Fatalf("Run: %v\n%s", err, log.String())
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Run after cancel: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	adminBase := "http://" + inst.AdminAddrs()[0].String()
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(p string) string {
		t.Helper()
		resp, err := client.Get(adminBase + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
		}
		return string(b)
	}
	actions := func() []admin.Action {
		t.Helper()
		var out struct{ Actions []admin.Action }
		if err := json.Unmarshal([]byte(get("/api/actions?limit=50")), &out); err != nil {
			t.Fatal(err)
		}
		return out.Actions
	}

	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name        string
		do          func()
		wantUser    string
		wantVia     string
		wantOK      bool
		wantResult  string
		wantProblem string // a part of the first problem line, "" for none
	}{
		{"file edited", func() { write("# edited\n") }, "file-watch", "watch_config", true, "reloaded in ", ""},
		{"SIGHUP", hup, "signal", "SIGHUP", true, "reloaded in ", ""},
		{"bad file edited", func() { write("waf: {paranoia: 9}\n") }, "file-watch", "watch_config", false, "refused: 1 problem(s)", "waf.paranoia"},
		{"SIGHUP with the bad file", hup, "signal", "SIGHUP", false, "refused: 1 problem(s)", "waf.paranoia"},
		{"file fixed", func() { write("") }, "file-watch", "watch_config", true, "reloaded in ", ""},
	}
	lastID := 0
	for _, s := range steps {
		s.do()
		var got *admin.Action
		if !waitfor.True(20*time.Second, func() bool {
			for _, a := range actions() {
				if a.ID > lastID && a.User == s.wantUser {
					got = &a
					return true
				}
			}
			return false
		}) {
			t.Fatalf("%s: no action by %q; actions %+v\nlog:\n%s", s.name, s.wantUser, actions(), log.String())
		}
		lastID = got.ID
		if got.Via != s.wantVia || got.What != "reload" || got.Target != path || got.OK != s.wantOK || !strings.HasPrefix(got.Result, s.wantResult) {
			t.Errorf("%s: %+v", s.name, *got)
		}
		if (s.wantProblem == "") != (len(got.Problems) == 0) || s.wantProblem != "" && (len(got.Problems) != 1 || !strings.Contains(got.Problems[0], s.wantProblem)) {
			t.Errorf("%s: problems %q, want one with %q", s.name, got.Problems, s.wantProblem)
		}
	}
	if page := get("/console"); !strings.Contains(page, "<td>signal</td>") || !strings.Contains(page, "<td>file-watch</td>") {
		t.Errorf("the console does not list the triggered reloads")
	}
	stop()
	data, err := os.ReadFile(filepath.Join(cfg.TLS.StateDir, "admin-actions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), `"user":"signal"`); n != 2 {
		t.Errorf("%d SIGHUP reloads in the action log file, want 2:\n%s", n, data)
	}
	if n := strings.Count(string(data), `"user":"file-watch"`); n != 3 {
		t.Errorf("%d file-watch reloads in the action log file, want 3:\n%s", n, data)
	}
}
