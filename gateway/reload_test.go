package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// reloadConfig routes to upstream A or B; B also excludes the SQL rules for
// the argument "probe". So each answer says which configuration judged it:
// a probe is refused (403) under A and answered "B" under B; an answer "A"
// to a probe would be a mix of both.
const reloadConfig = `
listeners:
  - address: "LISTEN"
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
EXCLUSION`

const probeExclusion = `    waf:
      exclusions:
        - tags: [attack-sqli]
          target: ARGS:probe
`

func TestReloadUnderLoad(t *testing.T) {
	upA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") }))
	defer upA.Close()
	upB := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") }))
	defer upB.Close()
	text := func(b bool) string {
		s := strings.Replace(reloadConfig, "EXCLUSION", "", 1)
		if b {
			s = strings.Replace(reloadConfig, "EXCLUSION", probeExclusion, 1)
			s = strings.ReplaceAll(s, "UPSTREAM", upB.URL)
		}
		return s
	}
	tp := startProxy(t, strings.ReplaceAll(text(false), "LISTEN", "127.0.0.1:0"), upA.URL)
	configFor := func(b bool) *config.Config {
		cfg, err := config.Parse(tp.Config, []byte(strings.ReplaceAll(strings.ReplaceAll(text(b), "LISTEN", "127.0.0.1:0"), "UPSTREAM", upA.URL)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	// Warm up both rule sets so the baseline includes them.
	if err := tp.server.Reload(configFor(true), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tp.server.Reload(configFor(false), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	tp.server.WaitRetired()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(path string) (int, string, error) {
		resp, err := client.Get(tp.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	if status, body, err := get("/"); err != nil || status != 200 || body != "A" {
		t.Fatalf("before: %d %q %v", status, body, err)
	}
	runtime.GC()
	goroutines := runtime.NumGoroutine()
	fds := openFiles(t)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	probe := "/search?probe=" + url.QueryEscape("1' UNION SELECT password FROM users --")
	attack := "/search?q=" + url.QueryEscape("<script>alert(1)</script>")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, failures atomic.Int64
	var mu sync.Mutex
	var problems []string
	fail := func(format string, args ...any) {
		failures.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				switch i % 3 {
				case 0:
					status, body, err := get("/hello")
					if err != nil || status != 200 || (body != "A" && body != "B") {
						fail("benign: %d %q %v", status, body, err)
					}
				case 1:
					status, _, err := get(attack)
					if err != nil || status != 403 {
						fail("attack: %d %v", status, err)
					}
				case 2:
					status, body, err := get(probe)
					if err != nil || !(status == 403 || status == 200 && body == "B") {
						fail("probe judged by a mix of configurations: %d %q %v", status, body, err)
					}
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		if err := tp.server.Reload(configFor(i%2 == 0), 5*time.Second); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		// Let traffic reach each configuration: every worker counts a
		// request only after its previous one was answered.
		n := sent.Load()
		if !waitfor.True(30*time.Second, func() bool { return sent.Load() >= n+8 }) {
			t.Fatalf("no traffic after reload %d", i)
		}
	}
	close(stop)
	wg.Wait()
	tp.server.WaitRetired()
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed or were misjudged: %v", failures.Load(), sent.Load(), problems)
	}
	t.Logf("%d requests during 50 reloads", sent.Load())
	if n := tp.server.Pipeline().engines.Len(); n != 1 {
		t.Errorf("the last pipeline holds %d rule sets, want 1", n)
	}

	// Nothing leaks: goroutines and heap return to the baseline. Idle
	// keep-alive connections (client side and upstream side, each with its
	// goroutines) are not leaks; how many the four clients leave depends on
	// timing, so they are closed first.
	client.CloseIdleConnections()
	upA.CloseClientConnections()
	upB.CloseClientConnections()
	var after runtime.MemStats
	settled := eventually(func() bool {
		runtime.GC()
		runtime.ReadMemStats(&after)
		return runtime.NumGoroutine() <= goroutines+2 && after.HeapAlloc < before.HeapAlloc+before.HeapAlloc/2+8<<20 && openFiles(t) <= fds+2
	})
	if !settled {
		t.Errorf("after 50 reloads: goroutines %d (baseline %d), heap %d MiB (baseline %d MiB), open files %d (baseline %d)",
			runtime.NumGoroutine(), goroutines, after.HeapAlloc>>20, before.HeapAlloc>>20, openFiles(t), fds)
	}
}

// openFiles counts this process's file descriptors (sockets included).
func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors here: %v", err)
	}
	return len(entries)
}

func TestBadReloadKeepsServing(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, basicConfig, up.URL)
	bad := strings.Replace(basicConfig, "upstream: app", "upstream: nowhere", 1) + "waf:\n  paranoia: 9\n"
	_, checkErr := config.Parse("candidate.yaml", []byte(strings.ReplaceAll(bad, "UPSTREAM", up.URL)))
	if checkErr == nil {
		t.Fatal("bad config parsed")
	}
	if status, _, _ := do(t, "GET", tp.URL+"/hello", "", nil); status != 200 {
		t.Fatalf("before: %d", status)
	}
	// A config that parses but needs a restart is refused whole too.
	moved, err := config.Parse(tp.Config, []byte("listeners:\n  - address: \"127.0.0.1:1\"\n"+strings.ReplaceAll(basicConfig, "UPSTREAM", up.URL)))
	if err != nil {
		t.Fatal(err)
	}
	err = tp.server.Reload(moved, time.Second)
	if err == nil || !strings.HasSuffix(err.Error(), "restart required: listeners changed (the running configuration is unchanged)") {
		t.Errorf("listener change: %v", err)
	}
	if status, _, _ := do(t, "GET", tp.URL+"/hello", "", nil); status != 200 {
		t.Errorf("after refused reloads: %d", status)
	}
}
