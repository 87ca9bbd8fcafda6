package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/redistest"
)

// clusterNode is one running instance of a cluster.
type clusterNode struct {
	addr, admin, cfgPath string
	log                  *syncBuffer
}

func startClusterNode(t *testing.T, redisAddr, prefix, upstream string) *clusterNode {
	t.Helper()
	dir := t.TempDir()
	n := &clusterNode{cfgPath: filepath.Join(dir, "portcullis.yaml")}
	cfg := fmt.Sprintf(`listeners: [{address: %q}]
client_ip: {trusted_proxies: [127.0.0.1]}
upstreams: [{name: app, targets: [%q]}]
sites:
  - name: shop
    hosts: ["*"]
    filters:
      rate_limits: [{name: api, rate: 5, burst: 5, key: header, header: X-Api-Key}]
    routes: [{path: /, upstream: app}]
bans: {enabled: true}
admin: {listen: %q, auth: none}
tls: {state_dir: %q}
cluster:
  name: ci
  redis: {url: "redis://%s", timeout: 1s, key_prefix: %q}
`, "127.0.0.1:0", upstream, "127.0.0.1:0", dir, redisAddr, prefix)
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(binary, "run", "-c", n.cfgPath), 1, true)
	n.addr, n.admin, n.log = c.addrs[0], c.admin, c.log
	return n
}

// TestClusterSharesLimitsAndBans runs two instances on one (throwaway)
// Redis: a rate limit keyed by an API key is one budget across both; a ban
// made on the first through the CLI is enforced by the second and lifted
// likewise; with Redis frozen both keep serving, report degraded in
// /readyz and the metrics, and return to ready when it answers.
func TestClusterSharesLimitsAndBans(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	a := startClusterNode(t, srv.Addr, prefix, up.URL)
	b := startClusterNode(t, srv.Addr, prefix, up.URL)
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(n *clusterNode, from, key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+n.addr+"/", nil)
		req.Header.Set("X-Forwarded-For", from)
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	admin := func(n *clusterNode, path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + n.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s; logs:\n%s\n---\n%s", what, a.log.String(), b.log.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, n := range []*clusterNode{a, b} {
		if code, body := admin(n, "/readyz"); code != 200 || body != "ready\n" {
			t.Fatalf("readyz at start: %d %q", code, body)
		}
	}

	// One budget across both instances: 5 at once, then 5 a second. One
	// limiter per instance would let 2·(5 + 5·elapsed) through.
	start := time.Now()
	allowed := 0
	for i := range 40 {
		n := a
		if i%2 == 1 {
			n = b
		}
		switch code := get(n, fmt.Sprintf("198.51.100.%d", i+1), "key-1"); code {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	ceiling := 5 + 5*time.Since(start).Seconds() + 1
	if float64(allowed) > ceiling || allowed < 5 {
		t.Errorf("%d requests allowed across two instances in %v; one shared budget allows at most %.0f", allowed, time.Since(start), ceiling)
	}

	// A ban through the CLI on a reaches b, and the lift too.
	if out, errOut, code := runBinary(t, "bans", "add", "-c", a.cfgPath, "--admin", "http://"+a.admin, "192.0.2.8", "--for", "1h", "--reason", "cluster test"); code != 0 {
		t.Fatalf("bans add: %d %s%s", code, out, errOut)
	}
	poll("ban enforced on b", func() bool { return get(b, "192.0.2.8", "") == 403 })
	if out, errOut, code := runBinary(t, "bans", "remove", "-c", a.cfgPath, "--admin", "http://"+a.admin, "192.0.2.8"); code != 0 {
		t.Fatalf("bans remove: %d %s%s", code, out, errOut)
	}
	poll("ban lifted on b", func() bool { return get(b, "192.0.2.8", "") == 200 })

	// Redis stops answering: both serve, degraded.
	srv.Freeze()
	poll("a notices the outage", func() bool {
		get(a, "203.0.113.1", "key-2") // a rate-limit check finds out
		_, body := admin(a, "/readyz")
		return strings.HasPrefix(body, "ready\ndegraded: redis")
	})
	if code := get(a, "203.0.113.2", "key-3"); code != 200 {
		t.Errorf("request during the outage: %d", code)
	}
	if code, _ := admin(a, "/readyz"); code != 200 {
		t.Errorf("readyz status during the outage: %d, want 200 (degraded, still serving)", code)
	}
	_, m := admin(a, "/metrics")
	if metricValue(t, m, "portcullis_redis_degraded") != 1 || metricValue(t, m, `portcullis_redis_fallback_total{kind="ratelimit"}`) < 1 {
		t.Errorf("metrics during the outage lack the degraded state or fallbacks:\n%s", grepLines(m, "portcullis_redis"))
	}
	// A ban made during the outage on a reaches b once Redis is back.
	if out, errOut, code := runBinary(t, "bans", "add", "-c", a.cfgPath, "--admin", "http://"+a.admin, "192.0.2.9", "--for", "1h"); code != 0 {
		t.Fatalf("bans add during the outage: %d %s%s", code, out, errOut)
	}
	srv.Thaw()
	poll("a ready again", func() bool { _, body := admin(a, "/readyz"); return body == "ready\n" })
	poll("ban made during the outage enforced on b", func() bool { return get(b, "192.0.2.9", "") == 403 })
	if n := strings.Count(a.log.String(), "redis unreachable"); n != 1 {
		t.Errorf("%d 'redis unreachable' lines for one outage, want 1; log:\n%s", n, a.log.String())
	}
}

// TestCheckConnect: `portcullis check --connect` reports a reachable
// Redis and fails for an unreachable one.
func TestCheckConnect(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	write := func(addr string) string {
		p := filepath.Join(dir, "c.yaml")
		cfg := fmt.Sprintf(`upstreams: [{name: app, targets: ["http://127.0.0.1:1"]}]
sites: [{name: shop, hosts: ["*"], routes: [{path: /, upstream: app}]}]
tls: {state_dir: %q}
cluster: {name: ci, redis: {url: "redis://%s", dial_timeout: 500ms}}
`, dir, addr)
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out, errOut, code := runBinary(t, "check", "--connect", "-c", write(srv.Addr))
	if code != 0 || !strings.Contains(out, "cluster.redis: connected to "+srv.Addr) {
		t.Errorf("check --connect: exit %d\n%s%s", code, out, errOut)
	}
	srv.Stop()
	out, errOut, code = runBinary(t, "check", "--connect", "-c", write(srv.Addr))
	if code != 1 || !strings.Contains(errOut, "cluster.redis: cannot use "+srv.Addr) {
		t.Errorf("check --connect without redis: exit %d\n%s%s", code, out, errOut)
	}
	// Without --connect nothing is contacted.
	if _, errOut, code := runBinary(t, "check", "-c", write(srv.Addr)); code != 0 {
		t.Errorf("check without --connect: exit %d %s", code, errOut)
	}
}
