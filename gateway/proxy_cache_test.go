package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

const cacheConfig = `upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        cache:
          enabled: true
          max_size: 1MiB
`

// TestProxyCacheBehindWAF: the cache answers repeated requests, but only
// after the WAF judged each one; a burst of misses costs one upstream
// request; an unkeyed header cannot poison the stored page; purge works
// through the pipeline (#7).
func TestProxyCacheBehindWAF(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	up := newBackend(t, "up")
	up.Handler = func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/hot" {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "page %s for %s via %s", r.URL.Path, r.Host, r.Header.Get("X-Site-Host"))
	}
	tp := startProxy(t, cacheConfig, up.URL())
	client := &http.Client{Timeout: 5 * time.Second}
	fetch := func(path string, h http.Header) (int, string, http.Header) {
		req, _ := http.NewRequest(http.MethodGet, tp.URL+path, nil)
		req.Host = "portcullis.test"
		for k, vs := range h {
			req.Header[k] = vs
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}

	// Poisoning attempt first: the attacker's header never reaches the
	// upstream on a fill, so the stored page is the clean one.
	_, body, h := fetch("/page", http.Header{"X-Site-Host": {"evil.example"}})
	if h.Get("X-Cache") != "MISS" || strings.Contains(body, "evil") {
		t.Errorf("fill: %s %q", h.Get("X-Cache"), body)
	}
	_, body, h = fetch("/page", nil)
	if h.Get("X-Cache") != "HIT" || body != "page /page for portcullis.test via " || h.Get("X-Request-Id") == "" || h.Get("Age") == "" {
		t.Errorf("hit: %s %q %v", h.Get("X-Cache"), body, h)
	}
	if hits.Load() != 1 {
		t.Errorf("upstream requests %d, want 1", hits.Load())
	}

	// The same cached URL with an attack in a header: the WAF refuses it
	// before the cache could answer.
	status, body, h := fetch("/page", http.Header{"User-Agent": {"sqlmap/1.7"}})
	if status != http.StatusForbidden || h.Get("X-Cache") != "" || strings.Contains(body, "page /page") {
		t.Errorf("attack on a cached URL: %d %s %q", status, h.Get("X-Cache"), body)
	}

	// 100 concurrent misses for one URL, one upstream request.
	before := hits.Load()
	var wg sync.WaitGroup
	var good atomic.Int64
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, body, _ := fetch("/hot", nil); status == 200 && strings.HasPrefix(body, "page /hot") {
				good.Add(1)
			}
		}()
	}
	// Release the upstream once all 100 are in the pipeline: none can finish
	// before, so each either waits for the one fill or went upstream itself.
	var seen int64
	inFlight := waitfor.True(30*time.Second, func() bool { seen = tp.server.Pipeline().ActiveRequests(); return seen >= 100 })
	once.Do(func() { close(release) })
	wg.Wait()
	if !inFlight {
		t.Errorf("only %d of 100 concurrent misses in flight together", seen)
	}
	if got := hits.Load() - before; got != 1 || good.Load() != 100 {
		t.Errorf("100 concurrent misses: %d upstream requests (want 1), %d good answers", got, good.Load())
	}

	// Purge through the pipeline, as the admin API will.
	if n := tp.server.Pipeline().PurgeCache("http://portcullis.test/", true); n != 2 {
		t.Errorf("purged %d, want 2", n)
	}
	if _, _, h := fetch("/page", nil); h.Get("X-Cache") != "MISS" {
		t.Errorf("after purge: %s", h.Get("X-Cache"))
	}
}
