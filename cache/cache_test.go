package cache

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// origin is a scriptable upstream: handle decides each answer; requests
// counts what reached it and last keeps the last request's headers.
type origin struct {
	requests atomic.Int64
	mu       sync.Mutex
	last     http.Header
	handle   func(w http.ResponseWriter, r *http.Request)
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	o.mu.Lock()
	o.last = r.Header.Clone()
	o.mu.Unlock()
	o.handle(w, r)
}

func (o *origin) lastHeader() http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// fixed answers every request with the headers and body given.
func fixed(status int, body string, kv ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestCache(cfg config.CacheConfig, o *origin) (*Cache, *clock) {
	if cfg.MaxSize == 0 {
		cfg.MaxSize = 1 << 20
	}
	if cfg.MaxObjectSize == 0 {
		cfg.MaxObjectSize = 64 << 10
	}
	c := New(cfg, o)
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.now = clk.now
	return c, clk
}

type result struct {
	status int
	body   string
	header http.Header
}

func send(c http.Handler, method, target string, kv ...string) result {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(kv); i += 2 {
		r.Header.Add(kv[i], kv[i+1])
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	return result{w.Code, w.Body.String(), w.Header()}
}

func TestCacheFreshnessRules(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header []string
		reqHdr []string
		stored bool
	}{
		{"max-age", 200, []string{"Cache-Control", "max-age=60"}, nil, true},
		{"s-maxage beats max-age=0", 200, []string{"Cache-Control", "max-age=0, s-maxage=60"}, nil, true},
		{"no-store", 200, []string{"Cache-Control", "no-store, max-age=60"}, nil, false},
		{"private", 200, []string{"Cache-Control", "private, max-age=60"}, nil, false},
		{"Expires in the future", 200, []string{"Date", "Fri, 02 Jan 2026 03:04:05 GMT", "Expires", "Fri, 02 Jan 2026 04:04:05 GMT"}, nil, true},
		{"Expires in the past, no validator", 200, []string{"Date", "Fri, 02 Jan 2026 03:04:05 GMT", "Expires", "Thu, 01 Jan 2026 00:00:00 GMT"}, nil, false},
		{"invalid Expires", 200, []string{"Expires", "soon"}, nil, false},
		{"no freshness, no validator", 200, nil, nil, false},
		{"Vary: *", 200, []string{"Cache-Control", "max-age=60", "Vary", "*"}, nil, false},
		{"Set-Cookie", 200, []string{"Cache-Control", "max-age=60", "Set-Cookie", "sid=1"}, nil, false},
		{"404 is cacheable", 404, []string{"Cache-Control", "max-age=60"}, nil, true},
		{"500 is not", 500, []string{"Cache-Control", "max-age=60"}, nil, false},
		{"302 with freshness", 302, []string{"Cache-Control", "max-age=60", "Location", "/x"}, nil, true},
		{"302 without", 302, []string{"Location", "/x", "ETag", `"a"`}, nil, false},
		{"Authorization", 200, []string{"Cache-Control", "max-age=60"}, []string{"Authorization", "Bearer x"}, false},
		{"Authorization with public", 200, []string{"Cache-Control", "public, max-age=60"}, []string{"Authorization", "Bearer x"}, true},
		{"Authorization with s-maxage", 200, []string{"Cache-Control", "s-maxage=60"}, []string{"Authorization", "Bearer x"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &origin{handle: fixed(tt.status, "body", tt.header...)}
			c, _ := newTestCache(config.CacheConfig{}, o)
			first := send(c, "GET", "http://s.test/a", tt.reqHdr...)
			second := send(c, "GET", "http://s.test/a", tt.reqHdr...)
			if first.header.Get(Header) != "MISS" {
				t.Errorf("first: X-Cache %q", first.header.Get(Header))
			}
			hit := second.header.Get(Header) == "HIT"
			if hit != tt.stored || (tt.stored && o.requests.Load() != 1) || (!tt.stored && o.requests.Load() != 2) {
				t.Errorf("stored=%v: second X-Cache %q, upstream requests %d", tt.stored, second.header.Get(Header), o.requests.Load())
			}
			if hit && (second.status != tt.status || second.body != "body") {
				t.Errorf("hit %d %q", second.status, second.body)
			}
		})
	}
}

func TestCacheAgeAndExpiry(t *testing.T) {
	o := &origin{handle: fixed(200, "v1", "Cache-Control", "max-age=60", "Age", "5")}
	c, clk := newTestCache(config.CacheConfig{}, o)
	send(c, "GET", "http://s.test/a")
	clk.advance(10 * time.Second)
	r := send(c, "GET", "http://s.test/a")
	if r.header.Get(Header) != "HIT" || r.header.Get("Age") != "15" {
		t.Errorf("after 10s: %s Age %s, want HIT and 15 (5 from upstream)", r.header.Get(Header), r.header.Get("Age"))
	}
	clk.advance(50 * time.Second) // age 65 > 60
	if r := send(c, "GET", "http://s.test/a"); r.header.Get(Header) != "MISS" || o.requests.Load() != 2 {
		t.Errorf("expired entry: %s, upstream %d", r.header.Get(Header), o.requests.Load())
	}
	// HEAD is answered from the stored GET, without a body.
	if r := send(c, "HEAD", "http://s.test/a"); r.header.Get(Header) != "HIT" || r.body != "" || r.header.Get("Content-Length") != "2" {
		t.Errorf("HEAD: %s %q %s", r.header.Get(Header), r.body, r.header.Get("Content-Length"))
	}
}

func TestCacheVary(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	}}
	c, _ := newTestCache(config.CacheConfig{}, o)
	en := send(c, "GET", "http://s.test/a", "Accept-Language", "en")
	fr := send(c, "GET", "http://s.test/a", "Accept-Language", "fr")
	en2 := send(c, "GET", "http://s.test/a", "Accept-Language", "en")
	fr2 := send(c, "GET", "http://s.test/a", "Accept-Language", "fr")
	if en.body != "lang=en" || fr.body != "lang=fr" || en2.body != "lang=en" || fr2.body != "lang=fr" {
		t.Errorf("variants mixed up: %q %q %q %q", en.body, fr.body, en2.body, fr2.body)
	}
	if en2.header.Get(Header) != "HIT" || fr2.header.Get(Header) != "HIT" || o.requests.Load() != 2 {
		t.Errorf("variants not stored: %s %s, upstream %d", en2.header.Get(Header), fr2.header.Get(Header), o.requests.Load())
	}
	if st := c.Stats(); st.Entries != 2 {
		t.Errorf("%d entries, want 2", st.Entries)
	}
}

// TestCachePoisoning: a header that is not part of the key cannot change
// what is stored, because it never reaches the upstream on a fill.
func TestCachePoisoning(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		// A typical unkeyed-input bug: links built from a forwarding header.
		host := r.Header.Get("X-Forwarded-Host")
		if host == "" {
			host = r.Host
		}
		fmt.Fprintf(w, `<script src="https://%s/app.js"></script> ua=%q`, host, r.Header.Get("User-Agent"))
	}}
	c, _ := newTestCache(config.CacheConfig{}, o)
	attack := send(c, "GET", "http://s.test/page", "X-Forwarded-Host", "evil.example", "User-Agent", "<script>x</script>")
	victim := send(c, "GET", "http://s.test/page")
	if strings.Contains(attack.body+victim.body, "evil") || strings.Contains(victim.body, "script>x") {
		t.Errorf("poisoned: attacker got %q, victim got %q", attack.body, victim.body)
	}
	if victim.header.Get(Header) != "HIT" {
		t.Errorf("victim: %s", victim.header.Get(Header))
	}
	if h := o.lastHeader(); h.Get("X-Forwarded-Host") != "" || h.Get("User-Agent") != "" {
		t.Errorf("unkeyed headers reached the upstream on a fill: %v", h)
	}
}

func TestCacheBypasses(t *testing.T) {
	o := &origin{handle: fixed(200, "x", "Cache-Control", "max-age=60")}
	c, _ := newTestCache(config.CacheConfig{}, o)
	for _, tt := range []struct {
		method string
		kv     []string
	}{
		{"POST", nil},
		{"GET", []string{"Cookie", "sid=1"}},
		{"GET", []string{"Range", "bytes=0-1"}},
		{"GET", []string{"Cache-Control", "no-store"}},
	} {
		r := send(c, tt.method, "http://s.test/b", tt.kv...)
		if r.header.Get(Header) != "" {
			t.Errorf("%s %v: X-Cache %q, want a bypass", tt.method, tt.kv, r.header.Get(Header))
		}
		if h := o.lastHeader(); len(tt.kv) > 0 && h.Get(tt.kv[0]) != tt.kv[1] {
			t.Errorf("bypass changed the request: %v", h)
		}
	}
	if st := c.Stats(); st.Entries != 0 {
		t.Errorf("bypassed requests stored %d entries", st.Entries)
	}
	// ignore_cookies: the cookie is neither sent on a fill nor a reason to
	// bypass.
	c2, _ := newTestCache(config.CacheConfig{IgnoreCookies: true}, o)
	send(c2, "GET", "http://s.test/b", "Cookie", "sid=1")
	if o.lastHeader().Get("Cookie") != "" {
		t.Error("cookie sent on a fill with ignore_cookies")
	}
	if r := send(c2, "GET", "http://s.test/b", "Cookie", "sid=2"); r.header.Get(Header) != "HIT" {
		t.Errorf("ignore_cookies: %s", r.header.Get(Header))
	}
}

func TestCacheSetCookieStoredWithout(t *testing.T) {
	o := &origin{handle: fixed(200, "x", "Cache-Control", "max-age=60", "Set-Cookie", "sid=secret")}
	c, _ := newTestCache(config.CacheConfig{StoreSetCookie: true}, o)
	first := send(c, "GET", "http://s.test/a")
	second := send(c, "GET", "http://s.test/a")
	if first.header.Get("Set-Cookie") != "sid=secret" {
		t.Error("the filling client lost its Set-Cookie")
	}
	if second.header.Get(Header) != "HIT" || second.header.Get("Set-Cookie") != "" {
		t.Errorf("hit: %s, Set-Cookie %q", second.header.Get(Header), second.header.Get("Set-Cookie"))
	}
}

func TestCacheRevalidation(t *testing.T) {
	var conditional atomic.Int64
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.Header().Set("X-Refreshed", "yes")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "full body")
	}}
	c, _ := newTestCache(config.CacheConfig{}, o)
	first := send(c, "GET", "http://s.test/r")
	second := send(c, "GET", "http://s.test/r")
	if first.body != "full body" || second.status != 200 || second.body != "full body" {
		t.Fatalf("first %q, second %d %q", first.body, second.status, second.body)
	}
	if conditional.Load() != 1 || second.header.Get(Header) != "HIT" || second.header.Get("X-Refreshed") != "yes" {
		t.Errorf("304 path: conditional %d, X-Cache %q, refreshed header %q", conditional.Load(), second.header.Get(Header), second.header.Get("X-Refreshed"))
	}
	// The client's own validator: a 304 from the cache after revalidation.
	third := send(c, "GET", "http://s.test/r", "If-None-Match", `W/"v1"`)
	if third.status != http.StatusNotModified || third.body != "" {
		t.Errorf("client conditional: %d %q", third.status, third.body)
	}
	// With Last-Modified only.
	o2 := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("Last-Modified", "Thu, 01 Jan 2026 00:00:00 GMT")
		if r.Header.Get("If-Modified-Since") != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "lm body")
	}}
	c2, _ := newTestCache(config.CacheConfig{}, o2)
	send(c2, "GET", "http://s.test/lm")
	if r := send(c2, "GET", "http://s.test/lm"); r.body != "lm body" || r.header.Get(Header) != "HIT" || o2.requests.Load() != 2 {
		t.Errorf("Last-Modified revalidation: %q %s, upstream %d", r.body, r.header.Get(Header), o2.requests.Load())
	}
	if r := send(c2, "GET", "http://s.test/lm", "If-Modified-Since", "Fri, 02 Jan 2026 00:00:00 GMT"); r.status != http.StatusNotModified {
		t.Errorf("client If-Modified-Since: %d", r.status)
	}
}

func TestCacheStaleIfError(t *testing.T) {
	var down atomic.Bool
	mk := func(cc string) *origin {
		return &origin{handle: func(w http.ResponseWriter, r *http.Request) {
			if down.Load() {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			w.Header().Set("Cache-Control", cc)
			_, _ = io.WriteString(w, "good")
		}}
	}
	for _, tt := range []struct {
		cc    string
		cfg   time.Duration
		stale bool
	}{
		{"max-age=10", time.Minute, true},
		{"max-age=10, stale-if-error=5", time.Minute, false}, // the response's directive wins: 20s stale > 5s
		{"max-age=10, stale-if-error=60", 0, true},
		{"max-age=10, must-revalidate", time.Minute, false},
		{"max-age=10", 0, false},
	} {
		down.Store(false)
		c, clk := newTestCache(config.CacheConfig{StaleIfError: tt.cfg}, mk(tt.cc))
		send(c, "GET", "http://s.test/s")
		clk.advance(30 * time.Second)
		down.Store(true)
		r := send(c, "GET", "http://s.test/s")
		got := r.status == 200 && r.body == "good" && r.header.Get(Header) == "STALE"
		if got != tt.stale {
			t.Errorf("%q with stale_if_error %s: %d %q %s", tt.cc, tt.cfg, r.status, r.body, r.header.Get(Header))
		}
	}
}

// TestCacheCollapsesMisses: 100 concurrent misses for one URL send one
// request upstream; all 100 get its answer.
func TestCacheCollapsesMisses(t *testing.T) {
	release := make(chan struct{})
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, "shared")
	}}
	c, _ := newTestCache(config.CacheConfig{}, o)
	var wg sync.WaitGroup
	var ok atomic.Int64
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := send(c, "GET", "http://s.test/hot"); r.status == 200 && r.body == "shared" {
				ok.Add(1)
			}
		}()
	}
	// Release the upstream once the other 99 wait for the first one's fill.
	queued := waitfor.True(30*time.Second, func() bool { return c.Stats().Waiting == 99 })
	close(release)
	wg.Wait()
	if !queued {
		t.Error("99 misses never waited together for one fill")
	}
	if c.Stats().Waiting != 0 {
		t.Errorf("still %d waiting after every answer", c.Stats().Waiting)
	}
	if o.requests.Load() != 1 || ok.Load() != 100 {
		t.Errorf("upstream requests %d (want 1), good answers %d (want 100)", o.requests.Load(), ok.Load())
	}
	// An unstorable answer is not shared: each waiter asks for itself,
	// and later requests skip collapsing for a while (hit-for-pass).
	release2 := make(chan struct{})
	o2 := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		<-release2
		w.Header().Set("Cache-Control", "private")
		_, _ = io.WriteString(w, "mine")
	}}
	c2, _ := newTestCache(config.CacheConfig{}, o2)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); send(c2, "GET", "http://s.test/private") }()
	}
	queued = waitfor.True(30*time.Second, func() bool { return c2.Stats().Waiting == 4 })
	close(release2)
	wg.Wait()
	if !queued {
		t.Error("4 misses never waited for the first one's unstorable answer")
	}
	if o2.requests.Load() != 5 {
		t.Errorf("private answers: upstream requests %d, want 5", o2.requests.Load())
	}
}

func TestCacheBoundsAndPurge(t *testing.T) {
	big := strings.Repeat("x", 20<<10)
	o := &origin{handle: fixed(200, big, "Cache-Control", "max-age=60")}
	c, _ := newTestCache(config.CacheConfig{MaxSize: 64 << 10, MaxObjectSize: 32 << 10}, o)
	for i := 0; i < 5; i++ {
		send(c, "GET", fmt.Sprintf("http://s.test/%d", i))
	}
	st := c.Stats()
	if st.Bytes > 64<<10 || st.Entries != 3 {
		t.Errorf("after 5 × 20KiB in 64KiB: %d entries, %d bytes", st.Entries, st.Bytes)
	}
	// Least recently used goes first: 2, 3, 4 are stored; touching 2
	// makes 3 the next to go.
	send(c, "GET", "http://s.test/2")
	send(c, "GET", "http://s.test/5")
	if r := send(c, "GET", "http://s.test/2"); r.header.Get(Header) != "HIT" {
		t.Error("recently used entry evicted")
	}
	if r := send(c, "GET", "http://s.test/3"); r.header.Get(Header) != "MISS" {
		t.Error("least recently used entry kept")
	}
	// Larger than max_object_size: served, not stored.
	o.handle = fixed(200, strings.Repeat("y", 40<<10), "Cache-Control", "max-age=60")
	send(c, "GET", "http://s.test/huge")
	if r := send(c, "GET", "http://s.test/huge"); r.header.Get(Header) != "MISS" || len(r.body) != 40<<10 {
		t.Errorf("oversized object: %s %d bytes", r.header.Get(Header), len(r.body))
	}

	o.handle = fixed(200, "p", "Cache-Control", "max-age=60")
	for _, p := range []string{"/static/a.js", "/static/b.js", "/static/c.js?v=2", "/other"} {
		send(c, "GET", "http://s.test"+p)
	}
	if n := c.Purge("http://s.test/static/a.js"); n != 1 {
		t.Errorf("Purge removed %d", n)
	}
	if n := c.PurgePrefix("http://s.test/static/"); n != 2 {
		t.Errorf("PurgePrefix removed %d, want 2", n)
	}
	if r := send(c, "GET", "http://s.test/static/b.js"); r.header.Get(Header) != "MISS" {
		t.Error("purged entry served")
	}
	if r := send(c, "GET", "http://s.test/other"); r.header.Get(Header) != "HIT" {
		t.Error("purge removed an unrelated entry")
	}
}

func TestParseCacheControl(t *testing.T) {
	d := parseCacheControl([]string{`public, max-age="30"`, "S-MAXAGE=99999999999999999999, stale-if-error=x, no-cache=\"Set-Cookie\""})
	if !d.public || d.maxAge != 30*time.Second || !d.hasSMaxAge || d.sMaxAge != (1<<31)*time.Second || d.hasStaleIfError || !d.noCache {
		t.Errorf("%+v", d)
	}
	if !etagMatches(`"a", W/"b"`, `"b"`) || etagMatches(`"a"`, `"b"`) || !etagMatches("*", `"x"`) || etagMatches(`"a"`, "") {
		t.Error("etag comparison")
	}
}

// BenchmarkCacheHit is the cost of a hit without the WAF (see the gateway
// benchmarks for a hit with it).
func BenchmarkCacheHit(b *testing.B) {
	o := &origin{handle: fixed(200, strings.Repeat("x", 4096), "Cache-Control", "max-age=600", "Content-Type", "text/plain")}
	c := New(config.CacheConfig{MaxSize: 1 << 20, MaxObjectSize: 64 << 10}, o)
	r := httptest.NewRequest("GET", "http://s.test/a", nil)
	c.ServeHTTP(httptest.NewRecorder(), r)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := discard{h: http.Header{}}
		c.ServeHTTP(&w, r)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }

// within runs f and fails the test if it has not returned after d (a
// request stranded behind a flight that never ends).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %s", what, d)
	}
}

// TestCacheForwardedValidators: a client's own If-None-Match reaching the
// upstream (forwarded by an older configuration) gets a 304 on a fill that
// revalidates nothing. That 304 is the client's answer, not a refresh of a
// stored response that does not exist: no panic, no stranded waiters.
func TestCacheForwardedValidators(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "body")
	}}
	c, _ := newTestCache(config.CacheConfig{ForwardHeaders: []string{"If-None-Match"}}, o)
	var r result
	within(t, 2*time.Second, "conditional fill", func() {
		r = send(c, "GET", "http://s.test/v", "If-None-Match", `"v1"`)
	})
	if r.status != http.StatusNotModified {
		t.Errorf("conditional fill: %d, want the upstream's 304", r.status)
	}
	within(t, 2*time.Second, "same request again", func() {
		r = send(c, "GET", "http://s.test/v", "If-None-Match", `"v1"`)
	})
	within(t, 2*time.Second, "plain request", func() { r = send(c, "GET", "http://s.test/v") })
	if r.status != 200 || r.body != "body" {
		t.Errorf("plain request: %d %q", r.status, r.body)
	}
}

// panicHeaderWriter panics when its header is asked for: a fault while a
// fill finishes.
type panicHeaderWriter struct{ *httptest.ResponseRecorder }

func (panicHeaderWriter) Header() http.Header { panic("client writer broke") }

// TestCacheFillPanicReleasesWaiters: whatever goes wrong while a fill
// finishes, its flight ends, so later requests for the key are not left
// waiting forever.
func TestCacheFillPanicReleasesWaiters(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = io.WriteString(w, "body")
	}}
	c, clk := newTestCache(config.CacheConfig{}, o)
	send(c, "GET", "http://s.test/p")
	clk.advance(5 * time.Second) // stale: the next request revalidates
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the broken writer did not panic")
			}
		}()
		c.ServeHTTP(panicHeaderWriter{httptest.NewRecorder()}, httptest.NewRequest("GET", "http://s.test/p", nil))
	}()
	var r result
	within(t, 2*time.Second, "request after a failed fill", func() { r = send(c, "GET", "http://s.test/p") })
	if r.status != 200 || r.body != "body" {
		t.Errorf("after a failed fill: %d %q", r.status, r.body)
	}
}

// TestCacheVariantsBounded: one key holds at most maxVariants responses;
// the oldest goes first.
func TestCacheVariantsBounded(t *testing.T) {
	o := &origin{handle: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		_, _ = io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	}}
	c, _ := newTestCache(config.CacheConfig{}, o)
	const n = maxVariants + 8
	for i := 0; i < n; i++ {
		send(c, "GET", "http://s.test/v", "Accept-Language", fmt.Sprintf("x-%d", i))
	}
	if st := c.Stats(); st.Entries != maxVariants {
		t.Errorf("%d variants of one key stored, want at most %d", st.Entries, maxVariants)
	}
	if r := send(c, "GET", "http://s.test/v", "Accept-Language", fmt.Sprintf("x-%d", n-1)); r.header.Get(Header) != "HIT" {
		t.Errorf("newest variant: %s", r.header.Get(Header))
	}
	if r := send(c, "GET", "http://s.test/v", "Accept-Language", "x-0"); r.header.Get(Header) != "MISS" || r.body != "lang=x-0" {
		t.Errorf("oldest variant kept: %s %q", r.header.Get(Header), r.body)
	}
	// The byte count follows the evictions.
	var sum int64
	c.mu.Lock()
	for _, vs := range c.items {
		for _, e := range vs {
			sum += e.size
		}
	}
	size, lru := c.size, c.lru.Len()
	c.mu.Unlock()
	if sum != size || lru != maxVariants {
		t.Errorf("size %d, entries sum %d, lru %d", size, sum, lru)
	}
}

// TestCachePassTable: hit-for-pass entries are small whatever the
// forwarded headers, and a full table loses its expired entries, not the
// live ones.
func TestCachePassTable(t *testing.T) {
	o := &origin{handle: fixed(200, "mine", "Cache-Control", "private")}
	c, clk := newTestCache(config.CacheConfig{ForwardHeaders: []string{"X-Tenant"}}, o)
	send(c, "GET", "http://s.test/p", "X-Tenant", strings.Repeat("t", 32<<10))
	c.mu.Lock()
	for _, k := range reflect.ValueOf(c.pass).MapKeys() {
		if size := k.Type().Size() + uintptr(reflectLen(k)); size > 32 {
			t.Errorf("hit-for-pass key of %d bytes", size)
		}
	}
	c.mu.Unlock()

	for i := 0; i < maxPass/2; i++ {
		send(c, "GET", fmt.Sprintf("http://s.test/old/%d", i))
	}
	clk.advance(passFor + time.Second) // those expire
	live := maxPass - c.passLen()
	for i := 0; i < live+1; i++ {
		send(c, "GET", fmt.Sprintf("http://s.test/new/%d", i))
	}
	if n := c.passLen(); n != live+1 {
		t.Errorf("hit-for-pass table holds %d after pruning, want the %d live entries", n, live+1)
	}
}

func (c *Cache) passLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pass)
}

func reflectLen(v reflect.Value) int {
	if v.Kind() == reflect.String {
		return v.Len()
	}
	return 0
}
