package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// banTarget runs a Portcullis instance for the bans tests and tells the
// status a client address gets.
type banTarget struct {
	*child
	cfgPath string
}

func startBanTarget(t *testing.T, dir, extra string, uid int) *banTarget {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	cfgPath := filepath.Join(dir, "portcullis.yaml")
	cfg := fmt.Sprintf("listeners: [{address: \"127.0.0.1:0\"}]\nclient_ip: {trusted_proxies: [127.0.0.1]}\nbans: {enabled: true}\nupstreams: [{name: app, targets: [%q]}]\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n%s",
		up.URL, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "run", "-c", cfgPath)
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	bt := &banTarget{child: startChild(t, cmd, 1, strings.Contains(extra, "admin:")), cfgPath: cfgPath}
	t.Cleanup(func() { _ = bt.stop() })
	return bt
}

func (bt *banTarget) status(client string) int {
	req, _ := http.NewRequest("GET", "http://"+bt.addr()+"/", nil)
	req.Host = "shop.test"
	req.Header.Set("X-Forwarded-For", client)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		bt.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (bt *banTarget) waitStatus(client string, want int) {
	bt.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for bt.status(client) != want {
		if time.Now().After(deadline) {
			bt.t.Fatalf("%s never got %d; log:\n%s", client, want, bt.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBansAsRootAgainstAnotherUser: the shipped deployments run the
// instance as another user than the operator's root shell (systemd's
// DynamicUser, the image's non-root user). `bans add` as root must reach
// it and say so, and say when no instance is there to apply it (#13: it
// said "queued" and the instance could never read the root-owned spool).
func TestBansAsRootAgainstAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root; this test starts the instance as uid 65534")
		}
		t.Skip("needs root to start the instance as another user (uid 65534)")
	}
	const nobody = 65534
	dir, err := os.MkdirTemp("", "portcullis-uid")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The instance's user can reach the binary and own its directory.
	for _, d := range []string{filepath.Dir(binary), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	bt := startBanTarget(t, dir, "", nobody)
	bt.waitStatus("192.0.2.8", 200)

	// Flags after the address count (#13).
	out, errOut, code := runBinary(t, "bans", "add", "-c", bt.cfgPath, "192.0.2.8", "--for", "2h", "--reason", "root's ban")
	if code != 0 || !strings.Contains(out, "add 192.0.2.8/32: applied by the running instance") {
		t.Fatalf("bans add: exit %d\n%s%s\nlog:\n%s", code, out, errOut, bt.log.String())
	}
	bt.waitStatus("192.0.2.8", 403)
	out, _, code = runBinary(t, "bans", "list", "-c", bt.cfgPath)
	if code != 0 || !strings.Contains(out, "192.0.2.8/32") || !strings.Contains(out, "root's ban") || strings.Contains(out, "not yet applied") {
		t.Errorf("bans list: %d\n%s", code, out)
	}
	// The --for given after the address: about two hours, not the default hour.
	if !strings.Contains(out, time.Now().Add(2*time.Hour).UTC().Format("2006-01-02T15")) && !strings.Contains(out, time.Now().Add(2*time.Hour-time.Minute).UTC().Format("2006-01-02T15")) {
		t.Errorf("ban does not last --for 2h:\n%s", out)
	}
	state := filepath.Join(dir, "portcullis-state")
	if st, err := os.Stat(state); err != nil || st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != nobody {
		t.Errorf("state directory: %v %v (want 0700, owned by the instance's user)", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Join(state, "bans.json.d")); err != nil || st.Sys().(*syscall.Stat_t).Uid != nobody {
		t.Errorf("spool not owned by the instance's user: %v", err)
	}

	// No instance: the command says it was not applied, and queues it.
	bt.stop()
	out, _, code = runBinary(t, "bans", "remove", "-c", bt.cfgPath, "192.0.2.8")
	if code != 0 || !strings.Contains(out, "not applied now: no running Portcullis instance uses") {
		t.Errorf("bans remove without an instance: exit %d\n%s", code, out)
	}
	// It applies at the next start.
	bt2 := startBanTarget(t, dir, "", nobody)
	bt2.waitStatus("192.0.2.8", 200)
}

// TestBansThroughTheAdminAPI: with an admin block, bans go through the
// running instance's API, authenticated with PORTCULLIS_ADMIN_TOKEN.
func TestBansThroughTheAdminAPI(t *testing.T) {
	dir := t.TempDir()
	const token = "test-token-4f1c"
	sum := sha256.Sum256([]byte(token))
	bt := startBanTarget(t, dir, fmt.Sprintf("admin: {listen: \"127.0.0.1:0\", auth: {tokens: [{name: cli, sha256: %s}]}}\n", hex.EncodeToString(sum[:])), -1)
	bt.waitStatus("192.0.2.9", 200)
	// The file names port 0: --admin names the bound address (that -c
	// alone finds the admin listener is TestAdminAddressFromTheConfiguration).
	adminFlag := []string{"--admin", bt.adminURL()}

	t.Setenv("PORTCULLIS_ADMIN_TOKEN", "wrong")
	_, errOut, code := runBinary(t, append([]string{"bans", "add", "192.0.2.9", "-c", bt.cfgPath}, adminFlag...)...)
	if code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "PORTCULLIS_ADMIN_TOKEN") {
		t.Errorf("wrong token: exit %d %s", code, errOut)
	}
	t.Setenv("PORTCULLIS_ADMIN_TOKEN", token)
	out, errOut, code := runBinary(t, append([]string{"bans", "add", "192.0.2.9", "-c", bt.cfgPath, "--for", "3h"}, adminFlag...)...)
	if code != 0 || !strings.Contains(out, "banned 192.0.2.9/32 until") || !strings.Contains(out, "applied by the running instance") {
		t.Fatalf("bans add: exit %d %s %s", code, out, errOut)
	}
	if s := bt.status("192.0.2.9"); s != 403 {
		t.Errorf("banned client: %d", s)
	}
	if out, _, code := runBinary(t, append([]string{"bans", "list", "-c", bt.cfgPath}, adminFlag...)...); code != 0 || !strings.Contains(out, "192.0.2.9/32") {
		t.Errorf("bans list: %d %s", code, out)
	}
	if out, errOut, code := runBinary(t, append([]string{"bans", "remove", "-c", bt.cfgPath, "192.0.2.9"}, adminFlag...)...); code != 0 || !strings.Contains(out, "lifted") {
		t.Errorf("bans remove: %d %s %s", code, out, errOut)
	}
	if s := bt.status("192.0.2.9"); s != 200 {
		t.Errorf("lifted client: %d", s)
	}
	// health asks the same listener's /readyz.
	if out, errOut, code := runBinary(t, append([]string{"health", "-c", bt.cfgPath}, adminFlag...)...); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("health: %d %s %s", code, out, errOut)
	}
	if err := bt.stop(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if _, errOut, code := runBinary(t, append([]string{"health", "-c", bt.cfgPath, "--timeout", "2s"}, adminFlag...)...); code != 1 || !strings.Contains(errOut, "not ready") {
		t.Errorf("health of a stopped instance: %d %s", code, errOut)
	}
}
