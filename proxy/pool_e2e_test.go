package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/internal/upstreamtest"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// The proofs of issue #7 for upstream pools: distribution per policy,
// sticky sessions, ejection and readmission by passive and active checks,
// no client-visible errors while a target dies, POSTs never replayed.

func TestProxyBalancingPolicies(t *testing.T) {
	a, b, c := upstreamtest.New(t, "a"), upstreamtest.New(t, "b"), upstreamtest.New(t, "c")
	client := &http.Client{Timeout: 5 * time.Second}
	run := func(t *testing.T, upstream string, n int, header func(i int) http.Header) []string {
		t.Helper()
		tp := startFront(t, poolConfig(upstream, a, b, c))
		var bodies []string
		for i := 0; i < n; i++ {
			var h http.Header
			if header != nil {
				h = header(i)
			}
			status, body := get(client, tp.URL+"/x", h)
			if status != http.StatusOK {
				t.Fatalf("request %d: %d %s", i, status, body)
			}
			bodies = append(bodies, body)
		}
		return bodies
	}

	t.Run("round_robin", func(t *testing.T) {
		got := counts(run(t, "  - name: app\n    targets: TARGETS\n", 300, nil))
		for _, name := range []string{"a", "b", "c"} {
			if got[name] != 100 {
				t.Errorf("round_robin: %v, want 100 each", got)
				break
			}
		}
	})

	t.Run("weighted_round_robin", func(t *testing.T) {
		up := "  - name: app\n    policy: weighted_round_robin\n    targets:\n      - TA\n      - url: TB\n        weight: 2\n      - url: TC\n        weight: 3\n"
		up = strings.NewReplacer("TA", a.URL(), "TB", b.URL(), "TC", c.URL()).Replace(up)
		bodies := run(t, up, 600, nil)
		got := counts(bodies)
		if got["a"] != 100 || got["b"] != 200 || got["c"] != 300 {
			t.Errorf("weighted 1:2:3 over 600: %v", got)
		}
		// Smooth: the heaviest target never gets three requests in a row
		// (plain weighted round robin sends them in bursts of its weight).
		for i := 2; i < len(bodies); i++ {
			if bodies[i] == "c" && bodies[i-1] == "c" && bodies[i-2] == "c" {
				t.Fatalf("c three times in a row at %d: %v", i, bodies[:12])
			}
		}
	})

	t.Run("ip_hash", func(t *testing.T) {
		got := counts(run(t, "  - name: app\n    policy: ip_hash\n    targets: TARGETS\n", 60, nil))
		if len(got) != 1 {
			t.Errorf("one client address went to several targets: %v", got)
		}
	})

	t.Run("hash_cookie_sticky", func(t *testing.T) {
		up := "  - name: app\n    policy: hash\n    hash_on:\n      cookie: session\n    targets: TARGETS\n"
		tp := startFront(t, poolConfig(up, a, b, c))
		share := map[string]int{}
		for i := 0; i < 300; i++ {
			h := http.Header{"Cookie": {fmt.Sprintf("theme=dark; session=user-%d", i)}}
			first := ""
			for j := 0; j < 3; j++ { // every session sticks to its target
				status, body := get(client, tp.URL+"/x", h)
				if status != http.StatusOK {
					t.Fatalf("%d %s", status, body)
				}
				if first == "" {
					first = body
				} else if body != first {
					t.Fatalf("session user-%d moved from %s to %s", i, first, body)
				}
			}
			share[first]++
		}
		// Consistent hashing with 100 points per target: each third of the
		// sessions within a wide tolerance.
		for _, name := range []string{"a", "b", "c"} {
			if share[name] < 60 || share[name] > 150 {
				t.Errorf("sessions per target %v, want about 100 each", share)
				break
			}
		}
	})

	// With one slow target, least_connections and random_two_choices send
	// it far less than its third: it always has requests in flight.
	for _, policy := range []string{"least_connections", "random_two_choices"} {
		t.Run(policy+"_avoids_busy_target", func(t *testing.T) {
			slow := upstreamtest.New(t, "slow")
			slow.Handler = func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(150 * time.Millisecond) // the behaviour under test: a slow target
				_, _ = io.WriteString(w, "slow")
			}
			tp := startFront(t, poolConfig("  - name: app\n    policy: "+policy+"\n    targets: TARGETS\n", slow, b, c))
			var mu sync.Mutex
			var bodies []string
			var wg sync.WaitGroup
			deadline := time.Now().Add(900 * time.Millisecond)
			for g := 0; g < 6; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						status, body := get(client, tp.URL+"/x", nil)
						mu.Lock()
						bodies = append(bodies, fmt.Sprintf("%d %s", status, body))
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			got := counts(bodies)
			total := len(bodies)
			limit := total / 10
			if policy == "random_two_choices" {
				limit = total / 6
			}
			if got["200 slow"] > limit || got["200 b"] == 0 || got["200 c"] == 0 || got["200 slow"]+got["200 b"]+got["200 c"] != total {
				t.Errorf("%s: %v of %d, want the slow target under %d", policy, got, total, limit)
			}
			t.Logf("%s: %v", policy, got)
		})
	}
}

func TestProxyPassiveCheckEjectsAndReadmits(t *testing.T) {
	a, b, c := upstreamtest.New(t, "a"), upstreamtest.New(t, "b"), upstreamtest.New(t, "c")
	up := `  - name: app
    targets: TARGETS
    passive_check:
      consecutive_failures: 2
      cool_down: 400ms
`
	tp := startFront(t, poolConfig(up, a, b, c))
	client := &http.Client{Timeout: 5 * time.Second}
	c.Kill()
	// Round robin sends every third request to c; each failure there is
	// retried on another target, so the client sees none of them.
	ejectedAfter := -1
	for i := 1; i <= 30; i++ {
		if status, body := get(client, tp.URL+"/x", nil); status != http.StatusOK {
			t.Fatalf("request %d after the kill: %d %s", i, status, body)
		}
		if tp.pool.Status()[2].Ejected {
			ejectedAfter = i
			break
		}
	}
	// Two failures in a row at every third request: ejected within 6.
	if ejectedAfter < 0 || ejectedAfter > 6 {
		t.Fatalf("c ejected after %d requests, want at most 6", ejectedAfter)
	}
	t.Logf("passive check ejected the dead target after %d requests", ejectedAfter)
	c.Start(t)
	if !eventually(func() bool { return !tp.pool.Status()[2].Ejected }) { // the 400ms cool-down
		t.Fatal("the ejected target never came back after its cool-down")
	}
	before := c.Hits.Load()
	for i := 0; i < 9; i++ {
		if status, body := get(client, tp.URL+"/x", nil); status != http.StatusOK {
			t.Fatalf("after recovery: %d %s", status, body)
		}
	}
	if got := c.Hits.Load() - before; got < 2 {
		t.Errorf("recovered target got %d of 9 requests after its cool-down, want about 3", got)
	}
}

func TestProxyActiveCheckTakesOutAndBringsBack(t *testing.T) {
	a, b, c := upstreamtest.New(t, "a"), upstreamtest.New(t, "b"), upstreamtest.New(t, "c")
	up := `  - name: app
    targets: TARGETS
    health_check:
      path: /healthz
      expect_status: "200-299"
      interval: 200ms
      timeout: 150ms
      rise: 2
      fall: 2
    passive_check:
      disabled: true
`
	tp := startFront(t, poolConfig(up, a, b, c))
	client := &http.Client{Timeout: 5 * time.Second}
	pool := tp.pool
	c.Sick.Store(true) // answers 503 to checks, still 200 to traffic
	start := time.Now()
	if !eventually(func() bool { return !pool.Status()[2].Up }) {
		t.Fatal("sick target never marked down")
	}
	down := time.Since(start) // about fall × interval; logged, not asserted (a loaded machine stalls)
	before := c.Hits.Load()
	for i := 0; i < 30; i++ {
		if status, _ := get(client, tp.URL+"/x", nil); status != http.StatusOK {
			t.Fatalf("status %d while c is down", status)
		}
	}
	if c.Hits.Load() != before {
		t.Errorf("down target got %d requests", c.Hits.Load()-before)
	}
	c.Sick.Store(false)
	start = time.Now()
	if !eventually(func() bool { return pool.Status()[2].Up }) {
		t.Fatal("recovered target never brought back")
	}
	up2 := time.Since(start)
	for i := 0; i < 30; i++ {
		get(client, tp.URL+"/x", nil)
	}
	if c.Hits.Load()-before < 5 {
		t.Errorf("recovered target got %d of 30 requests", c.Hits.Load()-before)
	}
	t.Logf("active check: down after %s, back after %s", down.Round(time.Millisecond), up2.Round(time.Millisecond))

	// A target that is really dead (connection refused) goes down too.
	a.Kill()
	if !eventually(func() bool { return !pool.Status()[0].Up }) {
		t.Fatal("dead target never marked down")
	}
	// Every target down: a neutral 503, and the cause only in the record.
	b.Kill()
	c.Kill()
	if !eventually(func() bool { st := pool.Status(); return !st[1].Up && !st[2].Up }) {
		t.Fatal("targets never marked down")
	}
	status, body, id := do(t, http.MethodGet, tp.URL+"/x", "", nil)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("all down: %d %s", status, body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "healthy") || !strings.Contains(body, id) {
		t.Errorf("503 page leaks the cause or lacks the request id: %s", body)
	}
	e := tp.entryFor(t, id)
	if e.Stage != "proxy" || e.Action != "error" || !strings.Contains(e.Reason, "upstream app: no healthy target") {
		t.Errorf("record: stage %q action %q reason %q", e.Stage, e.Action, e.Reason)
	}
}

func TestProxyNoErrorsWhileATargetDies(t *testing.T) {
	a, b, c := upstreamtest.New(t, "a"), upstreamtest.New(t, "b"), upstreamtest.New(t, "c")
	for _, be := range []*upstreamtest.Backend{a, b, c} {
		be.Handler = func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * time.Millisecond) // keep requests in flight when the target dies
			_, _ = io.WriteString(w, "ok")
		}
	}
	tp := startFront(t, poolConfig("  - name: app\n    policy: least_connections\n    targets: TARGETS\n", a, b, c))
	client := &http.Client{Timeout: 5 * time.Second}
	var total, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, body := get(client, tp.URL+"/x", nil)
				total.Add(1)
				if status != http.StatusOK {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", status, body))
				}
			}
		}()
	}
	// Kill c while traffic flows to it, then keep the load on until 200
	// more requests were answered: the failures would happen in between.
	if !waitfor.True(30*time.Second, func() bool { return c.Hits.Load() >= 20 }) {
		close(stop)
		wg.Wait()
		t.Fatalf("c got %d requests before the kill, want 20", c.Hits.Load())
	}
	c.Kill()
	killedAt := total.Load()
	ok := waitfor.True(30*time.Second, func() bool { return total.Load() >= killedAt+200 })
	close(stop)
	wg.Wait()
	if !ok {
		t.Fatalf("only %d requests after the kill", total.Load()-killedAt)
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed while one of three targets died; first: %v", failed.Load(), total.Load(), firstFailure.Load())
	}
	if c.Hits.Load() == 0 {
		t.Error("the dying target never got traffic: the test proved nothing")
	}
	t.Logf("%d requests, 0 errors; the killed target had served %d", total.Load(), c.Hits.Load())
}

func TestProxyNeverReplaysNonIdempotent(t *testing.T) {
	// crash reads the whole request, then drops the connection without an
	// answer: the upstream may have acted on it.
	crash := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	a, b := upstreamtest.New(t, "a"), upstreamtest.New(t, "b")
	a.Handler = crash
	tp := startFront(t, poolConfig("  - name: app\n    targets: TARGETS\n", a, b))

	// Round robin starts at a.
	status, _, _ := do(t, http.MethodPost, tp.URL+"/order", "item=1", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if status != http.StatusBadGateway {
		t.Errorf("POST after a crash: status %d, want 502", status)
	}
	if got := a.Posts.Load() + b.Posts.Load(); got != 1 {
		t.Fatalf("the POST reached upstreams %d times, want exactly once", got)
	}
	// The same failure on an idempotent request is retried on b.
	status, body, _ := do(t, http.MethodPut, tp.URL+"/order/1", "item=1", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	if status != http.StatusOK || body != "b" {
		t.Errorf("PUT after a crash: %d %q, want 200 from b", status, body)
	}
	// A POST that never reached a target (connection refused) is safe to
	// send elsewhere: exactly one upstream gets it.
	a.Kill()
	before := b.Posts.Load()
	for i := 0; i < 2; i++ { // one of the two starts at a
		status, body, _ = do(t, http.MethodPost, tp.URL+"/order", "item=2", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		if status != http.StatusOK || body != "b" {
			t.Errorf("POST with a dead target: %d %q", status, body)
		}
	}
	if got := b.Posts.Load() - before; got != 2 {
		t.Errorf("b got %d POSTs, want 2", got)
	}
}

func TestProxyConnectionLimit(t *testing.T) {
	release := make(chan struct{})
	a := upstreamtest.New(t, "a")
	a.Handler = func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "a")
	}
	up := "  - name: app\n    targets:\n      - url: TA\n        max_conns: 1\n"
	tp := startFront(t, poolConfig(strings.ReplaceAll(up, "TA", a.URL())))
	first := make(chan int)
	go func() {
		status, _ := get(&http.Client{Timeout: 5 * time.Second}, tp.URL+"/slow", nil)
		first <- status
	}()
	if !eventually(func() bool { return tp.pool.Status()[0].InFlight == 1 }) {
		t.Fatal("first request never in flight")
	}
	status, body, id := do(t, http.MethodGet, tp.URL+"/x", "", nil)
	if status != http.StatusServiceUnavailable {
		t.Errorf("second request at max_conns 1: %d %s", status, body)
	}
	if e := tp.entryFor(t, id); !strings.Contains(e.Reason, "connection limit") {
		t.Errorf("reason %q", e.Reason)
	}
	close(release)
	if s := <-first; s != http.StatusOK {
		t.Errorf("first request: %d", s)
	}
}

// TestProxyRouteOverrides: a route's settings on top of its pool: a silent
// upstream gives 504 at the route's response_header_timeout, not the
// upstream's 60 s; header edits both ways; the body limit for declared and
// chunked bodies. (Choosing a route by method and header is the gateway's
// router: TestRoutesByMethodAndHeader there.)
func TestProxyRouteOverrides(t *testing.T) {
	up := upstreamtest.New(t, "up")
	up.Handler = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-r.Context().Done() // silent until the proxy gives up and hangs up
			return
		}
		w.Header().Set("Server", "secret/1.0")
		w.Header().Set("X-Seen-Debug", r.Header.Get("X-Debug"))
		w.Header().Set("X-Seen-Prefix", r.Header.Get("X-Forwarded-Prefix"))
		w.Header().Set("X-Seen-Route", strings.Join(r.Header.Values("X-Route"), ","))
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, n)
	}
	cfg := `upstreams:
  - name: app
    targets: ["` + up.URL() + `"]
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        response_header_timeout: 200ms
        max_body_size: 100
        request_headers:
          remove: [X-Debug]
          set:
            X-Forwarded-Prefix: /shop
          add:
            X-Route: main
        response_headers:
          remove: [Server]
          add:
            X-Frame-Options: DENY
`
	tp := startFront(t, cfg)
	status, _, _ := do(t, http.MethodGet, tp.URL+"/slow", "", nil)
	if status != http.StatusGatewayTimeout {
		t.Errorf("slow upstream: %d, want 504", status)
	}
	req, _ := http.NewRequest(http.MethodGet, tp.URL+"/x", nil)
	req.Host = "portcullis.test"
	req.Header.Set("X-Debug", "1")
	req.Header.Set("X-Forwarded-Prefix", "/evil")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if h.Get("Server") != "" || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Seen-Debug") != "" || h.Get("X-Seen-Prefix") != "/shop" || h.Get("X-Seen-Route") != "main" {
		t.Errorf("header edits: %v", h)
	}
	// Body limit: declared length and chunked both refused with 413.
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if status, _, _ := do(t, http.MethodPut, tp.URL+"/x", strings.Repeat("a", 101), form); status != http.StatusRequestEntityTooLarge {
		t.Errorf("declared 101 bytes over max_body_size 100: %d", status)
	}
	if status, body, _ := do(t, http.MethodPut, tp.URL+"/x", strings.Repeat("a", 100), form); status != http.StatusOK || body != "PUT /x 100" {
		t.Errorf("100 bytes: %d %q", status, body)
	}
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte(strings.Repeat("b", 150))); _ = pw.Close() }()
	creq, _ := http.NewRequest(http.MethodPut, tp.URL+"/x", bufio.NewReader(pr))
	creq.Host = "portcullis.test"
	creq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cresp, err := http.DefaultClient.Do(creq); err != nil {
		t.Errorf("chunked over the limit: %v", err)
	} else {
		cresp.Body.Close()
		if cresp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked 150 bytes over max_body_size 100: %d", cresp.StatusCode)
		}
	}
}

// TestProxyClientFailuresLeaveTargetsHealthy: a client that sends too much,
// breaks off its body or uploads too slowly for the route's timeout is the
// client's failure, not the targets'. None of it may count against a target
// in the passive check, nor be retried on the others; before, five
// oversized chunked PUTs ejected all three targets and everyone got 503.
func TestProxyClientFailuresLeaveTargetsHealthy(t *testing.T) {
	a, b, c := upstreamtest.New(t, "a"), upstreamtest.New(t, "b"), upstreamtest.New(t, "c")
	up := `  - name: app
    targets: TARGETS
    passive_check:
      consecutive_failures: 1
      cool_down: 1m
`
	cfg := "upstreams:\n" + strings.ReplaceAll(up, "TARGETS", `["`+a.URL()+`", "`+b.URL()+`", "`+c.URL()+`"]`) + `
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        max_body_size: 100
        timeout: 300ms
`
	tp := startFront(t, cfg)
	healthy := func(what string) {
		t.Helper()
		for i, s := range tp.pool.Status() {
			if s.Ejected || !s.Up {
				t.Fatalf("after %s: target %d (%s) ejected", what, i, s.URL)
			}
		}
	}
	addr := strings.TrimPrefix(tp.URL, "http://")
	raw := func(req string, pause time.Duration, rest string) string {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, req)
		if pause > 0 {
			time.Sleep(pause) // the behaviour under test: a client that stalls mid-body
			_, _ = io.WriteString(conn, rest)
		}
		if cw, ok := conn.(*net.TCPConn); ok && pause == 0 {
			_ = cw.CloseWrite() // the body ends here, truncated
		}
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return line
	}
	hits := func() int64 { return a.Hits.Load() + b.Hits.Load() + c.Hits.Load() }

	// Oversized chunked bodies: 413, each sent to one target at most.
	for i := 0; i < 5; i++ {
		chunk := strings.Repeat("x", 500)
		line := raw(fmt.Sprintf("PUT /up HTTP/1.1\r\nHost: portcullis.test\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk), 0, "")
		if !strings.Contains(line, " 413 ") {
			t.Fatalf("oversized chunked PUT %d: %q, want 413", i, line)
		}
	}
	// Not a synchronisation but a grace period for a negative assertion: a
	// retry, if there were one, would reach a backend just after the client
	// had its 413, and nothing signals a request that was never sent.
	time.Sleep(50 * time.Millisecond)
	if got := hits(); got > 5 {
		t.Errorf("five oversized PUTs reached targets %d times: retried", got)
	}
	healthy("five oversized chunked PUTs")

	// Truncated chunked bodies: the client closes mid-chunk, or breaks the
	// chunked framing and waits.
	for i := 0; i < 5; i++ {
		raw("PUT /up HTTP/1.1\r\nHost: portcullis.test\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n40\r\nonly a few bytes", 0, "")
		line := raw("PUT /up HTTP/1.1\r\nHost: portcullis.test\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n", 20*time.Millisecond, "zz\r\n")
		if !strings.Contains(line, " 400 ") {
			t.Errorf("broken chunked body %d: %q, want 400", i, line)
		}
	}
	healthy("ten truncated or broken chunked PUTs")

	// Uploads slower than the route's timeout.
	for i := 0; i < 3; i++ {
		raw("PUT /up HTTP/1.1\r\nHost: portcullis.test\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n", 450*time.Millisecond, "5\r\nworld\r\n0\r\n\r\n")
	}
	healthy("three uploads slower than the route timeout")

	// The pool still answers.
	if status, body := get(&http.Client{Timeout: 5 * time.Second}, tp.URL+"/x", nil); status != http.StatusOK {
		t.Fatalf("after client failures: %d %s", status, body)
	}
}

// TestProxyIdempotencyKeyIsOptIn: a client's Idempotency-Key does not make
// its POST replayable unless the upstream says its targets honour the key.
func TestProxyIdempotencyKeyIsOptIn(t *testing.T) {
	crash := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for _, header := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
		for _, optIn := range []bool{false, true} {
			a, b := upstreamtest.New(t, "a"), upstreamtest.New(t, "b")
			a.Handler = crash
			up := "  - name: app\n    targets: TARGETS\n"
			if optIn {
				up += "    retries:\n      idempotency_key: true\n"
			}
			tp := startFront(t, poolConfig(up, a, b))
			h := form.Clone()
			h.Set(header, "order-42")
			status, body, _ := do(t, http.MethodPost, tp.URL+"/order", "item=1", h) // round robin starts at a
			posts := a.Posts.Load() + b.Posts.Load()
			switch {
			case !optIn && (status != http.StatusBadGateway || posts != 1):
				t.Errorf("%s, default: %d %q, reached upstreams %d times; want 502, once", header, status, body, posts)
			case optIn && (status != http.StatusOK || body != "b" || posts != 2):
				t.Errorf("%s, idempotency_key: true: %d %q, reached upstreams %d times; want 200 from b after a replay", header, status, body, posts)
			}
		}
	}
}
