package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/internal/testfs"
)

// TestAuditOnAFullDisk runs the binary with its audit file and database
// on a 4 MiB tmpfs, fills the file system while it serves, and frees it
// again (issue 13): under on_failure: refuse requests get 503 and /readyz
// fails while the audit cannot be written; under serve both go on, with
// /readyz saying "degraded". The metrics show the degraded audit and the
// lost records, errors are logged once per interval, and once space
// returns the same process writes records again, whole lines only.
func TestAuditOnAFullDisk(t *testing.T) {
	for _, policy := range []string{"refuse", "serve"} {
		t.Run(policy, func(t *testing.T) { auditOnAFullDisk(t, policy) })
	}
}

func auditOnAFullDisk(t *testing.T, policy string) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	dir := testfs.Small(t, 4<<20)
	cfgDir := t.TempDir()
	cfgPath := filepath.Join(cfgDir, "portcullis.yaml")
	jsonl := filepath.Join(dir, "audit.jsonl")
	cfg := fmt.Sprintf(`listeners: [{address: "127.0.0.1:0"}]
client_ip: {trusted_proxies: [127.0.0.1]}
upstreams: [{name: app, targets: [%q]}]
sites: [{name: shop, hosts: ["*"], routes: [{path: /, upstream: app}]}]
audit: {file: %q, on_failure: %s, store: {path: %q}}
admin: {listen: "127.0.0.1:0", auth: none}
tls: {state_dir: %q}
`, up.URL, jsonl, policy, filepath.Join(dir, "audit.db"), cfgDir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, exec.Command(binary, "run", "-c", cfgPath), 1, true)
	addr, adminAddr, stderr := c.addr(), c.admin, c.log
	client := &http.Client{Timeout: 10 * time.Second}
	n := 0
	send := func(attack bool) (int, string, string) {
		t.Helper()
		n++
		target := "http://" + addr + "/"
		if attack {
			target += "?q=%3Cscript%3Ealert(" + strconv.Itoa(n) + ")%3C/script%3E"
		}
		req, _ := http.NewRequest("GET", target, nil)
		// A new client each time: aggregation keeps them all in full.
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", n%250+1))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Request-Id"), string(body)
	}
	admin := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + adminAddr + path)
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
				t.Fatalf("%s: not within 20s; log:\n%s", what, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	recorded := func(id string) bool {
		data, _ := os.ReadFile(jsonl)
		return strings.Contains(string(data), `"id":"`+id+`"`)
	}

	status, id, _ := send(true)
	if status != 403 {
		t.Fatalf("attack before: %d", status)
	}
	poll("the first record in the audit file", func() bool { return recorded(id) })

	// Fill the file system, and top it up whenever the process frees a
	// little (a truncated WAL, a cut partial line): near a full disk the
	// audit may write a small batch now and then, so each check polls
	// until it holds.
	filler := filepath.Join(dir, "filler")
	full := func() { testfs.Fill(t, filler, 0) }
	full()
	outage := time.Now()
	metrics := func() string { _, m := admin("/metrics"); return m }
	poll("the metrics showing the degraded audit and the lost records", func() bool {
		full()
		send(true)
		m := metrics()
		return strings.Contains(m, "portcullis_audit_degraded 1\n") && metricValue(t, m, `portcullis_audit_records_dropped_total{reason="sink_failed"}`) > 0
	})
	switch policy {
	case "refuse":
		poll("/readyz failing and requests refused", func() bool {
			full()
			code, body := admin("/readyz")
			if code != 503 || !strings.HasPrefix(body, "not ready: degraded: audit records cannot be written") {
				return false
			}
			status, id, page := send(false)
			if status == 503 && (id == "" || strings.Contains(page, "audit") || !strings.Contains(page, id)) {
				t.Errorf("refusal page %q (request id %q): must be the neutral page", page, id)
			}
			return status == 503
		})
	case "serve":
		poll("/readyz ready but degraded", func() bool {
			full()
			code, body := admin("/readyz")
			return code == 200 && strings.HasPrefix(body, "ready\ndegraded: audit records cannot be written")
		})
		if status, _, _ := send(false); status != 200 {
			t.Errorf("benign request while serving degraded: %d", status)
		}
	}
	_, usedFull := testfs.Usage(t, dir)

	// Space returns: the same process recovers by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	poll("readiness after space returned", func() bool { c, b := admin("/readyz"); return c == 200 && b == "ready\n" })
	outageFor := time.Since(outage)
	if status, _, _ := send(false); status != 200 {
		t.Errorf("benign request after recovery: %d", status)
	}
	status, id, _ = send(true)
	if status != 403 {
		t.Fatalf("attack after recovery: %d", status)
	}
	poll("a record written after recovery", func() bool { return recorded(id) })
	m := metrics()
	if !strings.Contains(m, "portcullis_audit_degraded 0\n") {
		t.Errorf("metrics after recovery:\n%s", grepLines(m, "portcullis_audit_"))
	}
	sizes, used := testfs.Usage(t, dir)
	t.Logf("on_failure %s: file system of %d bytes, %d used while full; after recovery %d used (JSONL %d, database %d, WAL %d); outage %s; %s",
		policy, 4<<20, usedFull, used, sizes["audit.jsonl"], sizes["audit.db"], sizes["audit.db-wal"], outageFor.Round(time.Millisecond),
		strings.Join(grepLines(m, `portcullis_audit_(records_written|records_dropped|sink_records_lost)`), ", "))

	if err := c.stop(); err != nil {
		t.Fatalf("exit: %v; log:\n%s", err, stderr.String())
	}
	f, err := os.Open(jsonl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := audit.Read(f, func(*audit.Entry) error { return nil })
	if err != nil || res.TornTail {
		t.Errorf("audit file after the outage: %+v %v", res, err)
	}
	// Rate-limited: per failing sink one line per 10s of outage, plus the
	// first.
	lines := strings.Count(stderr.String(), `msg="audit sink failing"`)
	if limit := 2 * (int(outageFor/(10*time.Second)) + 2); lines == 0 || lines > limit {
		t.Errorf("%d 'audit sink failing' lines for an outage of %s (at most %d); log:\n%s", lines, outageFor, limit, stderr.String())
	}
}

// metricValue is the value of the series that starts with name.
func metricValue(t *testing.T, exposition, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

func grepLines(s, pattern string) []string {
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if re.MatchString(l) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}
