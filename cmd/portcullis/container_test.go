package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerfile is what the image sets: its environment, the run command and
// the health check command.
type dockerfile struct {
	env             map[string]string
	cmd, healthArgs []string
	user            string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := dockerfile{env: map[string]string{}}
	var lines []string
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cont += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		lines = append(lines, cont+l)
		cont = ""
	}
	jsonArgs := regexp.MustCompile(`\[.*\]`)
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "ENV "):
			k, v, _ := strings.Cut(strings.TrimPrefix(l, "ENV "), "=")
			d.env[k] = v
		case strings.HasPrefix(l, "CMD "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "CMD ")), &d.cmd); err != nil {
				t.Fatalf("CMD: %v", err)
			}
		case strings.HasPrefix(l, "HEALTHCHECK "):
			if err := json.Unmarshal([]byte(jsonArgs.FindString(l)), &d.healthArgs); err != nil {
				t.Fatalf("HEALTHCHECK: %v", err)
			}
		case strings.HasPrefix(l, "USER "):
			d.user = strings.TrimPrefix(l, "USER ")
		}
	}
	return d
}

// unusedAddr returns a loopback address with a port nothing listens on
// now. The host is a random one of 127.0.0.0/8 other than 127.0.0.1: a
// port another test binds on 127.0.0.1 (port 0 everywhere) or a
// connection it makes is never in conflict with it; only a wildcard
// listener on the same port would be.
func unusedAddr(t *testing.T) string {
	t.Helper()
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	host := fmt.Sprintf("127.%d.%d.%d", 1+b[0]%254, b[1], 1+b[2]%254)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestContainerDefaults runs the binary as the image does, without Docker
// (none on the build machines): the Dockerfile's environment, command and
// health check, a non-root user, the configuration in a directory that user
// cannot write (the read-only mount) and the state volume owned by it
// (#13: the default state directory landed under the config mount).
func TestContainerDefaults(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root; this test starts the instance as uid 65532")
		}
		t.Skip("needs root to run the instance as the image's non-root user")
	}
	const nonroot = 65532 // distroless's nonroot
	d := readDockerfile(t)
	if d.user != "nonroot:nonroot" || d.env["PORTCULLIS_STATE_DIR"] != "/var/lib/portcullis" || len(d.cmd) == 0 || len(d.healthArgs) < 2 {
		t.Fatalf("Dockerfile: %+v", d)
	}
	root, err := os.MkdirTemp("", "portcullis-image")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	etc, state := filepath.Join(root, "etc/portcullis"), filepath.Join(root, "var/lib/portcullis")
	for _, dir := range []string{etc, state} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nonroot, nonroot); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{root, filepath.Dir(binary)} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	writeConfig := func(addr string) {
		// A minimal user configuration: no paths at all.
		cfg := fmt.Sprintf("listeners: [{address: %q}]\nupstreams: [{name: app, targets: [%q]}]\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n", addr, up.URL)
		if err := os.WriteFile(filepath.Join(etc, "portcullis.yaml"), []byte(cfg), 0o444); err != nil { // root writes it in the read-only mount
			t.Fatal(err)
		}
	}
	if err := os.Chmod(etc, 0o555); err != nil { // the read-only mount
		t.Fatal(err)
	}
	inImage := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			a = strings.ReplaceAll(a, "/etc/portcullis", etc)
			out[i] = strings.ReplaceAll(a, "/var/lib/portcullis", state)
		}
		return out
	}
	env := append(os.Environ(), "PORTCULLIS_STATE_DIR="+inImage([]string{d.env["PORTCULLIS_STATE_DIR"]})[0])
	start := func(args []string) *exec.Cmd {
		cmd := exec.Command(binary, inImage(args)...)
		cmd.Env, cmd.Dir = env, state
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot}}
		return cmd
	}
	health := func() (int, string) {
		cmd := start(d.healthArgs[1:]) // [0] is the binary's path in the image
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	// The image's health check finds the listener in the configuration, so
	// the port must be named there before the start: see unusedAddr for
	// why it is not taken meanwhile, and a retry with another address for
	// the rare case it was.
	var (
		srv    *exec.Cmd
		log    *syncBuffer
		exited chan error
		addr   string
	)
	for attempt := 1; srv == nil; attempt++ {
		addr = unusedAddr(t)
		writeConfig(addr)
		if code, out := health(); code != 1 {
			if attempt < 3 && code == 0 {
				continue // something else answers there
			}
			t.Fatalf("health before the start: exit %d %s", code, out)
		}
		cmd := start(d.cmd)
		log = &syncBuffer{}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited = make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(60 * time.Second)
		for healthy, gone := false, false; !healthy && !gone; {
			if code, _ := health(); code == 0 {
				healthy, srv = true, cmd
				break
			}
			select {
			case err := <-exited:
				if attempt >= 3 || !strings.Contains(log.String(), "address already in use") {
					t.Fatalf("the image's command exited: %v\n%s", err, log.String())
				}
				t.Logf("attempt %d: %s was taken before the instance bound it; another address", attempt, addr)
				gone = true
			case <-time.After(200 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("never healthy:\n%s", log.String())
			}
		}
	}
	defer func() { _ = srv.Process.Kill() }()
	if status, _ := get(t, "http://"+addr+"/?q=%3Cscript%3Ealert(1)%3C/script%3E"); status != 403 {
		t.Errorf("attack: %d", status)
	}
	_ = srv.Process.Signal(syscall.SIGTERM)
	if err := <-exited; err != nil {
		t.Fatalf("exit: %v\n%s", err, log.String())
	}
	for _, name := range []string{"portcullis-audit.jsonl", "audit.db"} {
		if _, err := os.Stat(filepath.Join(state, name)); err != nil {
			t.Errorf("%s not in the state volume: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(etc); len(entries) != 1 {
		t.Errorf("something was written beside the configuration: %v", entries)
	}
}
