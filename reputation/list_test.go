package reputation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"no name", Config{Inline: []string{"10.0.0.0/8"}}, []string{"list without a name"}},
		{"no source", Config{Name: "x"}, []string{`list "x": needs inline entries, a file or a URL`}},
		{"bad scheme", Config{Name: "x", URL: "ftp://example.invalid/list"}, []string{`list "x": URL "ftp://example.invalid/list" must be http or https`}},
		{"no host", Config{Name: "x", URL: "https:///list"}, []string{`has no host`}},
		{"unparsable URL hides secret", Config{Name: "x", URL: "https://u:secret@exa mple/%zz?key=secret"}, []string{`is not a valid URL`}},
		{"scheme error hides query", Config{Name: "x", URL: "gopher://h/?key=secret"}, []string{`"gopher://h/?REDACTED" must be http or https`}},
		{"max shrink", Config{Name: "x", Inline: []string{"10.0.0.0/8"}, MaxShrink: 1.5}, []string{"max shrink 1.5 is not between 0 and 1"}},
		{"negative", Config{Name: "x", Inline: []string{"10.0.0.0/8"}, Refresh: -1, MaxEntries: -1, FetchTimeout: -1},
			[]string{"refresh -1ns is negative", "max entries -1 is negative", "fetch timeout -1ns is negative"}},
		{"bad inline", Config{Name: "x", Inline: []string{"10.0.0.0/8", "10.0.0.300"}}, []string{`list "x": inline entry 2 ("10.0.0.300"): not an IP address or CIDR`}},
		{"empty inline", Config{Name: "x", Inline: []string{"# only a comment"}}, []string{`inline entry 1 ("# only a comment"): empty entry`}},
		{"too many inline", Config{Name: "x", Inline: []string{"10.0.0.0/8", "11.0.0.0/8"}, MaxEntries: 1}, []string{"2 inline entries, more than max entries 1"}},
		{"missing file", Config{Name: "x", File: "/nonexistent/list.txt"}, []string{`list "x": file: stat /nonexistent/list.txt: no such file`}},
		{"all at once", Config{Name: "x", URL: "ftp://h/", Inline: []string{"1.2.3.4/40", "nope"}, MaxShrink: 2, File: "/nonexistent"},
			[]string{"must be http or https", "max shrink 2", "inline entry 1", "inline entry 2", "/nonexistent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewList(tt.cfg)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q leaks the URL's credentials", err)
			}
		})
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// expectListed checks which addresses the list matches.
func expectListed(t *testing.T, l *List, on, off []string) {
	t.Helper()
	for _, a := range on {
		if _, ok := l.Lookup(mustAddr(a)); !ok {
			t.Errorf("%s: %s not listed", l.Name(), a)
		}
	}
	for _, a := range off {
		if p, ok := l.Lookup(mustAddr(a)); ok {
			t.Errorf("%s: %s listed by %s", l.Name(), a, p)
		}
	}
}

func TestInlineList(t *testing.T) {
	log, _ := testLogger()
	l, err := NewList(Config{Name: "office", Inline: []string{"192.0.2.0/24 # office", "2001:db8::1"}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	l.Start() // nothing to refresh: a no-op
	defer l.Stop()
	expectListed(t, l, []string{"192.0.2.9", "2001:db8::1", "::ffff:192.0.2.9"}, []string{"192.0.3.1", "2001:db8::2"})
	if p, _ := l.Lookup(mustAddr("192.0.2.9")); p != netip.MustParsePrefix("192.0.2.0/24") {
		t.Errorf("entry = %s", p)
	}
	st := l.Stats()
	if st.Entries != 2 || st.Failures != 0 || l.Name() != "office" {
		t.Errorf("stats = %+v", st)
	}
}

func writeList(t *testing.T, path string, lines ...string) {
	t.Helper()
	writeFileAtomic(t, path, []byte(strings.Join(lines, "\n")+"\n"))
}

func TestFileList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deny.netset")
	writeList(t, path, "# deny", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "192.0.2.1")
	log, logs := testLogger()
	l, err := NewList(Config{Name: "deny", Inline: []string{"10.0.0.0/8"}, File: path, Refresh: 5 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	expectListed(t, l, []string{"10.1.1.1", "198.51.100.1", "2001:db8::5", "192.0.2.1"}, []string{"192.0.2.2"})
	l.Start()
	defer l.Stop()

	// A changed file is picked up.
	writeList(t, path, "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "192.0.2.2")
	waitFor(t, "file reload", func() bool { _, ok := l.Lookup(mustAddr("192.0.2.2")); return ok })
	expectListed(t, l, []string{"10.1.1.1", "192.0.2.2"}, []string{"192.0.2.1"})
	if st := l.Stats(); st.Entries != 5 || st.Failures != 0 {
		t.Errorf("stats after reload = %+v", st)
	}

	// A malformed file keeps the last good entries and is counted once.
	writeList(t, path, "198.51.100.0/24", "203.0.113.0/24", "not-an-ip", "192.0.2.3")
	waitFor(t, "malformed file reported", func() bool { return l.Stats().Failures == 1 })
	// Not a synchronisation: a grace period for the negative assertion
	// ("once"), in which the periodic check runs several more times.
	time.Sleep(30 * time.Millisecond)
	st := l.Stats()
	if st.Failures != 1 || !strings.Contains(st.LastError, "line 3") || !strings.Contains(st.LastError, path) {
		t.Errorf("stats after malformed file = %+v", st)
	}
	expectListed(t, l, []string{"192.0.2.2"}, []string{"192.0.2.3"})

	// A file cut to a third of its entries is suspicious.
	writeList(t, path, "198.51.100.0/24")
	waitFor(t, "shrunk file reported", func() bool { return l.Stats().Suspicious == 1 })
	expectListed(t, l, []string{"192.0.2.2", "2001:db8::1"}, nil)

	// A vanished file too keeps the entries.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "missing file reported", func() bool { return l.Stats().Failures == 3 })
	expectListed(t, l, []string{"192.0.2.2"}, nil)
	if !strings.Contains(logs.String(), "list file reload failed") {
		t.Errorf("failures not logged:\n%s", logs)
	}
}

func TestFileListInitialErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	writeList(t, bad, "10.0.0.0/8", "10.0.0.0/99")
	_, err := NewList(Config{Name: "x", File: bad})
	if err == nil || !strings.Contains(err.Error(), `list "x": file `+bad+": line 2: not a CIDR") {
		t.Errorf("malformed file: %v", err)
	}
	if _, err := NewList(Config{Name: "x", File: dir}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

// feed is a controllable list server on 127.0.0.1.
type feed struct {
	mu       sync.Mutex
	status   int
	body     string
	etag     string
	lastMod  string
	block    bool // hold the request until the client gives up
	requests []http.Header
	srv      *httptest.Server
}

func newFeed(t *testing.T) *feed {
	f := &feed{status: http.StatusOK}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *feed) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Header.Clone())
	status, body, etag, lastMod, block := f.status, f.body, f.etag, f.lastMod, f.block
	f.mu.Unlock()
	if block {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if lastMod != "" {
		w.Header().Set("Last-Modified", lastMod)
	}
	if status == http.StatusOK && etag != "" && r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *feed) set(status int, etag, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.etag, f.body = status, etag, body
}

func (f *feed) lastRequest() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

// numbered returns a list body of n /24s starting at 10.0.0.0/24.
func numbered(n int) string {
	var b strings.Builder
	b.WriteString("; generated\n")
	for i := range n {
		fmt.Fprintf(&b, "10.%d.%d.0/24 ; SBL%d\n", i/256, i%256, i)
	}
	return b.String()
}

func TestFeedList(t *testing.T) {
	f := newFeed(t)
	const lastMod = "Mon, 01 Jan 2024 00:00:00 GMT"
	f.lastMod = lastMod
	f.set(http.StatusOK, `"v1"`, numbered(10))
	log, logs := testLogger()
	l, err := NewList(Config{Name: "drop", Inline: []string{"192.0.2.0/24"}, URL: f.srv.URL + "/drop.txt", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// First fetch: unconditional, entries from inline and feed.
	if h := f.lastRequest(); h.Get("If-None-Match") != "" || h.Get("If-Modified-Since") != "" || !strings.Contains(h.Get("User-Agent"), "Portcullis") {
		t.Errorf("first request headers: %v", h)
	}
	expectListed(t, l, []string{"192.0.2.1", "10.0.9.1"}, []string{"10.0.10.1"})
	st := l.Stats()
	if st.Entries != 11 || st.Failures != 0 || st.LastSuccess.IsZero() {
		t.Fatalf("after first fetch: %+v", st)
	}

	// Unchanged: a conditional request, 304, a success that keeps the list.
	before := st.LastSuccess
	time.Sleep(2 * time.Millisecond) // the clock must move for LastSuccess to change
	l.refresh(ctx)
	if h := f.lastRequest(); h.Get("If-None-Match") != `"v1"` || h.Get("If-Modified-Since") != lastMod {
		t.Errorf("refresh did not send the validators: %v", h)
	}
	st = l.Stats()
	if st.Entries != 11 || st.Failures != 0 || !st.LastSuccess.After(before) {
		t.Errorf("after 304: %+v", st)
	}

	// Changed list.
	f.set(http.StatusOK, `"v2"`, numbered(20))
	l.refresh(ctx)
	expectListed(t, l, []string{"10.0.19.1", "192.0.2.1"}, []string{"10.0.20.1"})
	if st = l.Stats(); st.Entries != 21 {
		t.Errorf("after change: %+v", st)
	}

	// Server error: last good list kept, failure counted.
	f.set(http.StatusInternalServerError, "", "oops")
	l.refresh(ctx)
	expectListed(t, l, []string{"10.0.19.1"}, nil)
	if st = l.Stats(); st.Failures != 1 || !strings.Contains(st.LastError, "500") || !st.LastFailure.After(st.LastSuccess) {
		t.Errorf("after 500: %+v", st)
	}

	// Malformed: kept, counted, and the error names the line.
	f.set(http.StatusOK, `"v3"`, numbered(20)+"10.0.0.0/8 extra\n")
	l.refresh(ctx)
	expectListed(t, l, []string{"10.0.19.1"}, []string{"10.200.0.1"})
	if st = l.Stats(); st.Failures != 2 || !strings.Contains(st.LastError, "line 22") {
		t.Errorf("after malformed: %+v", st)
	}
	// The rejected version's validators were not adopted.
	if h := f.lastRequest(); h.Get("If-None-Match") != `"v2"` {
		t.Errorf("validators after a rejected list: %v", h)
	}

	// Shrinking by more than half: suspicious, kept.
	f.set(http.StatusOK, `"v4"`, numbered(9))
	l.refresh(ctx)
	expectListed(t, l, []string{"10.0.19.1"}, nil)
	if st = l.Stats(); st.Failures != 3 || st.Suspicious != 1 || !strings.Contains(st.LastError, "shrank from 20 to 9") {
		t.Errorf("after shrink: %+v", st)
	}

	// Shrinking by exactly half is allowed.
	f.set(http.StatusOK, `"v5"`, numbered(10))
	l.refresh(ctx)
	expectListed(t, l, []string{"10.0.9.1"}, []string{"10.0.10.1"})
	if st = l.Stats(); st.Failures != 3 || st.Entries != 11 {
		t.Errorf("after halving: %+v", st)
	}

	// Too many entries for MaxEntries is rejected whole.
	l.cfg.MaxEntries = 15
	f.set(http.StatusOK, `"v6"`, numbered(16))
	l.refresh(ctx)
	if st = l.Stats(); st.Failures != 4 || !strings.Contains(st.LastError, "more than 15 entries") {
		t.Errorf("after oversized list: %+v", st)
	}
	expectListed(t, l, []string{"10.0.9.1"}, []string{"10.0.15.1"})

	for _, want := range []string{"feed loaded", "feed refresh failed", "rejected as suspicious"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestFeedLastModifiedOnly(t *testing.T) {
	var mu sync.Mutex
	var got []string
	const lm = "Tue, 02 Jan 2024 03:04:05 GMT"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("If-Modified-Since"))
		mu.Unlock()
		if r.Header.Get("If-Modified-Since") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", lm)
		io.WriteString(w, "192.0.2.0/24\n")
	}))
	defer srv.Close()
	l, err := NewList(Config{Name: "lm", URL: srv.URL, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	l.refresh(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != "" || got[1] != lm {
		t.Errorf("If-Modified-Since sent: %q", got)
	}
	if st := l.Stats(); st.Failures != 0 || st.Entries != 1 {
		t.Errorf("stats: %+v", st)
	}
}

func TestFeedUnexpected304(t *testing.T) {
	f := newFeed(t)
	f.set(http.StatusNotModified, "", "")
	l, err := NewList(Config{Name: "x", URL: f.srv.URL, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Failures != 1 || !strings.Contains(st.LastError, "unconditional") {
		t.Errorf("stats: %+v", st)
	}
}

func TestFeedInitialFailure(t *testing.T) {
	f := newFeed(t)
	f.set(http.StatusServiceUnavailable, "", "maintenance")
	log, logs := testLogger()
	l, err := NewList(Config{Name: "drop", Inline: []string{"192.0.2.0/24"}, URL: f.srv.URL, Refresh: 5 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatalf("a failed first fetch must not fail the configuration: %v", err)
	}
	st := l.Stats()
	if st.Entries != 1 || st.Failures != 1 || !strings.Contains(st.LastError, "503") || !st.LastSuccess.IsZero() {
		t.Errorf("after failed first fetch: %+v", st)
	}
	if !strings.Contains(logs.String(), "first feed fetch failed") {
		t.Errorf("not logged:\n%s", logs)
	}
	expectListed(t, l, []string{"192.0.2.1"}, []string{"10.0.0.1"})

	// The background refresh keeps trying and picks the feed up.
	f.set(http.StatusOK, `"v1"`, numbered(3))
	l.Start()
	defer l.Stop()
	waitFor(t, "feed after retry", func() bool { _, ok := l.Lookup(mustAddr("10.0.2.1")); return ok })
	if st := l.Stats(); st.Entries != 4 {
		t.Errorf("after retry: %+v", st)
	}
}

func TestFeedCachedCopyCoversAFailedStart(t *testing.T) {
	f := newFeed(t)
	cache := filepath.Join(t.TempDir(), "feeds", "drop.netset")
	f.set(http.StatusOK, `"v1"`, numbered(3))
	l, err := NewList(Config{Name: "drop", URL: f.srv.URL, CacheFile: cache})
	if err != nil {
		t.Fatal(err)
	}
	expectListed(t, l, []string{"10.0.2.1"}, []string{"192.0.2.1"})
	if st, err := os.Stat(cache); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", st, err)
	}

	// The next start finds the feed down: the cached copy is used, so
	// the deny list is not empty meanwhile.
	f.set(http.StatusServiceUnavailable, "", "down")
	log, logs := testLogger()
	l2, err := NewList(Config{Name: "drop", URL: f.srv.URL, CacheFile: cache, Refresh: 5 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	expectListed(t, l2, []string{"10.0.2.1", "10.0.0.1"}, []string{"192.0.2.1"})
	if !strings.Contains(logs.String(), "starting from the cached copy") {
		t.Errorf("not logged:\n%s", logs)
	}
	// The feed comes back smaller but within the shrink guard: it replaces
	// the cached copy, fetched unconditionally.
	f.set(http.StatusOK, `"v2"`, numbered(2))
	l2.Start()
	defer l2.Stop()
	waitFor(t, "feed after the outage", func() bool { _, ok := l2.Lookup(mustAddr("10.0.2.1")); return !ok })
	expectListed(t, l2, []string{"10.0.1.1"}, nil)
	// l2's refresher must not save the feed over the corrupt copy below.
	l2.Stop()

	// A corrupt cache is not used, and the start does not fail.
	if err := os.WriteFile(cache, []byte("not an address\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.set(http.StatusServiceUnavailable, "", "down")
	l3, err := NewList(Config{Name: "drop", URL: f.srv.URL, CacheFile: cache, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if l3.Stats().Entries != 0 || !strings.Contains(logs.String(), "no usable cached copy") {
		t.Errorf("corrupt cache: %+v\n%s", l3.Stats(), logs)
	}
}

func TestFeedTimeoutAndStop(t *testing.T) {
	f := newFeed(t)
	f.block = true
	start := time.Now()
	l, err := NewList(Config{Name: "slow", URL: f.srv.URL, FetchTimeout: 50 * time.Millisecond, Refresh: time.Millisecond, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("NewList took %s despite a 50ms fetch timeout", d)
	}
	if st := l.Stats(); st.Failures != 1 || !strings.Contains(st.LastError, "deadline") {
		t.Errorf("stats: %+v", st)
	}
	// Stop cancels a fetch in progress instead of waiting it out, and a
	// fetch cut short by Stop is not the feed's failure.
	l.cfg.FetchTimeout = time.Minute
	l.Start()
	f.mu.Lock()
	n := len(f.requests)
	f.mu.Unlock()
	waitFor(t, "a blocked refresh", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return len(f.requests) > n })
	start = time.Now()
	l.Stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Stop took %s", d)
	}
	if st := l.Stats(); st.Failures != 1 {
		t.Errorf("a cancelled fetch was counted: %+v", st)
	}
	l.Stop() // twice is fine
}

func TestFeedErrorsHideCredentials(t *testing.T) {
	// A port nobody listens on: the dial error quotes the URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log, logs := testLogger()
	l, err := NewList(Config{Name: "paid", URL: "http://user:secret@" + addr + "/list?key=secret", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Failures != 1 || st.LastError == "" {
		t.Fatalf("stats: %+v", st)
	}
	for what, s := range map[string]string{"LastError": st.LastError, "log": logs.String()} {
		if strings.Contains(s, "secret") {
			t.Errorf("%s leaks the credentials: %s", what, s)
		}
		if !strings.Contains(s, addr) {
			t.Errorf("%s does not name the host: %s", what, s)
		}
	}
}

func TestNoDowngrade(t *testing.T) {
	req := func(s string) *http.Request { u, _ := url.Parse(s); return &http.Request{URL: u} }
	if err := noDowngrade(req("http://a/"), []*http.Request{req("https://a/")}); err == nil {
		t.Error("https to http redirect allowed")
	}
	if err := noDowngrade(req("https://b/"), []*http.Request{req("https://a/")}); err != nil {
		t.Errorf("https to https refused: %v", err)
	}
	if err := noDowngrade(req("https://b/"), []*http.Request{req("http://a/")}); err != nil {
		t.Errorf("http to https refused: %v", err)
	}
	via := make([]*http.Request, 10)
	for i := range via {
		via[i] = req("https://a/")
	}
	if err := noDowngrade(req("https://b/"), via); err == nil {
		t.Error("11th redirect followed")
	}
}

func TestLimitedReader(t *testing.T) {
	tests := []struct {
		in      string
		n       int64
		wantErr bool
	}{
		{"12345", 5, false},
		{"123456", 5, true},
		{"", 0, false},
		{"1", 0, true},
	}
	for _, tt := range tests {
		got, err := io.ReadAll(&limitedReader{r: strings.NewReader(tt.in), n: tt.n})
		if tt.wantErr != errors.Is(err, errFeedTooLarge) {
			t.Errorf("%q limit %d: %q, %v", tt.in, tt.n, got, err)
		}
		if !tt.wantErr && string(got) != tt.in {
			t.Errorf("%q limit %d read %q", tt.in, tt.n, got)
		}
	}
}

// TestListConcurrentLookups runs lookups against refreshes (go test -race).
func TestListConcurrentLookups(t *testing.T) {
	f := newFeed(t)
	f.set(http.StatusOK, `"a"`, numbered(50))
	l, err := NewList(Config{Name: "c", URL: f.srv.URL, Refresh: time.Millisecond, Log: discard()})
	if err != nil {
		t.Fatal(err)
	}
	l.Start()
	defer l.Stop()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					l.Lookup(mustAddr("10.0.1.1"))
					l.Stats()
				}
			}
		})
	}
	for i := range 20 {
		f.set(http.StatusOK, fmt.Sprintf(`"%d"`, i), numbered(50+i))
		time.Sleep(time.Millisecond) // pacing: readers run between the changes
	}
	close(stop)
	wg.Wait()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
