// Package lapitest gives tests a real CrowdSec Local API: Debian's
// crowdsec package, run with `crowdsec -no-cs` (the LAPI alone, no log
// processing) on a free loopback port, with a configuration, SQLite
// database and credentials in the test's temporary directory. Decisions
// are added and deleted with the real cscli.
//
// Outside CI a test that needs it skips with a message when crowdsec is
// not installed; with the environment variable CI set it fails instead.
package lapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// LAPI is a running Local API.
type LAPI struct {
	URL             string // http://127.0.0.1:PORT
	BouncerKey      string // of bouncer "portcullis"
	MachineID       string // a watcher for Portcullis's signals
	MachinePassword string

	dir    string
	config string
	cmd    *exec.Cmd
	log    *bytes.Buffer
}

// Start runs a Local API for t; it stops when t ends.
func Start(t testing.TB) *LAPI {
	t.Helper()
	for _, bin := range []string{"crowdsec", "cscli"} {
		if _, err := exec.LookPath(bin); err != nil {
			msg := fmt.Sprintf("%s not found: install Debian's crowdsec package (apt-get install -y crowdsec)", bin)
			if os.Getenv("CI") != "" {
				t.Fatalf("%s (CI is set: a missing service is a failure)", msg)
			}
			t.Skipf("%s; skipping", msg)
		}
	}
	dir := t.TempDir()
	l := &LAPI{dir: dir, config: filepath.Join(dir, "config.yaml"), MachineID: "portcullis-test", MachinePassword: "pw-" + filepath.Base(dir)}
	port := freePort(t)
	l.URL = "http://127.0.0.1:" + port
	for _, d := range []string{"data", "hub", "notifications"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "simulation.yaml"), "simulation: false\n")
	// The package's default profile: alerts asking for remediation about an
	// address become a 4h ban.
	write(t, filepath.Join(dir, "profiles.yaml"), `name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
on_success: break
`)
	write(t, l.config, fmt.Sprintf(`common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: .
config_paths:
  config_dir: %[1]s/
  data_dir: %[1]s/data/
  simulation_path: %[1]s/simulation.yaml
  hub_dir: %[1]s/hub/
  index_path: %[1]s/hub/.index.json
  notification_dir: %[1]s/notifications/
  plugin_dir: /usr/lib/crowdsec/plugins/
cscli:
  output: json
db_config:
  log_level: info
  type: sqlite
  db_path: %[1]s/data/crowdsec.db
  use_wal: true # the LAPI writes (bouncer pulls) while cscli adds decisions
api:
  client:
    insecure_skip_verify: false
    credentials_path: %[1]s/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: 127.0.0.1:%[2]s
    profiles_path: %[1]s/profiles.yaml
    trusted_ips: [127.0.0.1]
prometheus:
  enabled: false
`, dir, port))
	// cscli writes straight into the database: the LAPI need not run yet.
	l.Cscli(t, "machines", "add", "cscli-local", "--auto", "--force", "-f", filepath.Join(dir, "local_api_credentials.yaml"))
	l.BouncerKey = strings.TrimSpace(l.Cscli(t, "bouncers", "add", "portcullis", "-o", "raw"))
	l.Cscli(t, "machines", "add", l.MachineID, "--password", l.MachinePassword, "--force", "-f", os.DevNull)

	l.log = &bytes.Buffer{}
	l.cmd = exec.Command("crowdsec", "-c", l.config, "-no-cs")
	l.cmd.Dir = dir
	l.cmd.Stdout, l.cmd.Stderr = l.log, l.log
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start crowdsec: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = l.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = l.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = l.cmd.Process.Kill()
			<-exited
		}
	})
	// Ready when the decision stream answers the bouncer.
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", l.URL+"/v1/decisions?ip=192.0.2.1", nil)
		req.Header.Set("X-Api-Key", l.BouncerKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return l
			}
		}
		select {
		case <-exited:
			t.Fatalf("crowdsec exited:\n%s", l.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the LAPI did not answer within 30s (last error %v):\n%s", err, l.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Cscli runs cscli against this LAPI's configuration and returns its
// standard output; a failure fails the test.
func (l *LAPI) Cscli(t testing.TB, args ...string) string {
	t.Helper()
	// SQLite answers "database is locked" when a write of the LAPI's own
	// (a bouncer's pull time) overlaps: a few tries, as an operator would.
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "cscli", append([]string{"-c", l.config, "--error"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		if err == nil {
			return out.String()
		}
		if attempt < 5 && strings.Contains(out.String()+errb.String(), "database is locked") {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
			continue
		}
		t.Fatalf("cscli %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
}

// Alert is what `cscli alerts list -o json` says of an alert.
type Alert struct {
	ID          int64  `json:"id"`
	Scenario    string `json:"scenario"`
	Message     string `json:"message"`
	EventsCount int    `json:"events_count"`
	MachineID   string `json:"machine_id"`
	Source      struct {
		Scope string `json:"scope"`
		Value string `json:"value"`
	} `json:"source"`
	Events []struct {
		Meta []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"meta"`
	} `json:"events"`
}

// Alerts lists every alert (-a: alerts without decisions too).
func (l *LAPI) Alerts(t testing.TB) []Alert {
	t.Helper()
	out := l.Cscli(t, "alerts", "list", "-a", "-l", "0", "-o", "json")
	var alerts []Alert
	if s := strings.TrimSpace(out); s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &alerts); err != nil {
			t.Fatalf("cscli alerts list: %v\n%s", err, out)
		}
	}
	return alerts
}

func write(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort picks a loopback port nobody listens on now. The LAPI binds it
// a moment later; another process taking it meanwhile makes Start fail
// clearly (crowdsec exits).
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
