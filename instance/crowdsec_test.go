package instance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/lapitest"
)

// TestCrowdSecEndToEnd (issue 17, item 8): a running instance with a
// crowdsec section against Debian's real Local API. A decision added with
// cscli is enforced within a bounded time (poll interval plus slack) and
// lifted when deleted; a request Portcullis blocks shows up in
// `cscli alerts list` as a portcullis/waf alert from the client.
func TestCrowdSecEndToEnd(t *testing.T) {
	lapi := lapitest.Start(t)
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	dir := t.TempDir()
	keyFile, pwFile := filepath.Join(dir, "bouncer.key"), filepath.Join(dir, "machine.pw")
	if err := os.WriteFile(keyFile, []byte(lapi.BouncerKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(lapi.MachinePassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`bans: {enabled: true}
crowdsec:
  lapi_url: %q
  bouncer: {api_key_file: %q, poll_interval: 1s}
  signals: {machine_id: %q, password_file: %q, flush_interval: 200ms}
`, lapi.URL, keyFile, lapi.MachineID, pwFile)
	path := writeConfig(t, dir, "127.0.0.1:0", privateLoopback(t), up.URL, extra)
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
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			t.Logf("instance log:\n%s", log.String())
		}
	}()
	base := "http://" + inst.Addrs()[0].String()
	client := &http.Client{Timeout: 10 * time.Second}
	status := func(path string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = "shop.test"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Bounded: the poll interval (1s) plus slack for a loaded machine.
	within := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, d)
			}
		}
	}
	if s := status("/"); s != 200 {
		t.Fatalf("before any decision: %d", s)
	}

	lapi.Cscli(t, "decisions", "add", "--ip", "127.0.0.1", "--duration", "10m", "--reason", "e2e")
	within("ban enforced", 15*time.Second, func() bool { return status("/") == 403 })
	n := reached.Load()
	if status("/page") != 403 || reached.Load() != n {
		t.Error("a banned client reached the upstream")
	}
	lapi.Cscli(t, "decisions", "delete", "--ip", "127.0.0.1")
	within("ban lifted", 15*time.Second, func() bool { return status("/") == 200 })

	// A block of Portcullis's own becomes a CrowdSec alert.
	if s := status("/search?q=1%27%20OR%20%271%27%3D%271"); s != 403 {
		t.Fatalf("attack: %d", s)
	}
	var found *lapitest.Alert
	within("alert in cscli alerts list", 20*time.Second, func() bool {
		for _, a := range lapi.Alerts(t) {
			if a.Scenario == "portcullis/waf" {
				found = &a
				return true
			}
		}
		return false
	})
	if found.Source.Value != "127.0.0.1" || found.MachineID != lapi.MachineID || !strings.Contains(found.Message, "Portcullis blocked") {
		t.Errorf("alert %+v", *found)
	}
	// The ban-stage blocks of the CrowdSec ban were not echoed back.
	for _, a := range lapi.Alerts(t) {
		if a.Scenario == "portcullis/ban" {
			t.Errorf("ban-stage block signalled: %+v", a)
		}
	}
}
