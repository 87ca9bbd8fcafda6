// Package cache is a route's in-memory HTTP response cache, a shared cache
// in the sense of RFC 9111.
//
// Place in the request path: after the WAF and the protocol guard, before
// the proxy stage of the route. Every request is inspected by the rule
// engine before a stored response is served, and responses are stored as
// the proxy hands them out (the route's header edits applied).
//
// What it does:
//   - stores answers to GET that RFC 9111 lets a shared cache store (see
//     config.RouteCache for the exact rules), bounded by bytes, evicting the
//     least recently used;
//   - keys them by scheme, host, path and query, and tells variants apart by
//     the request headers the response's Vary names;
//   - serves fresh ones with Age and X-Cache: HIT, answers conditional
//     requests (If-None-Match, If-Modified-Since) itself, and revalidates
//     stale ones with the stored validators (a 304 refreshes the entry);
//   - collapses concurrent misses for the same request into one upstream
//     request (the others wait for it and are served its stored response);
//   - serves a stale response (X-Cache: STALE) when the upstream fails and
//     stale-if-error allows it.
//
// Cache poisoning: a stored response must depend only on what is in its key.
// A request that may fill the cache therefore reaches the upstream with only
// the keyed request (method, scheme, host, path, query) and the content
// negotiation headers Accept, Accept-Encoding and Accept-Language, plus
// Authorization and the route's forward_headers; every other header a client
// sent is dropped. If the response depends on one of the forwarded headers,
// RFC 9111 makes the upstream say so in Vary, and the cache keys on it.
package cache

import (
	"bytes"
	"container/list"
	"hash/maphash"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/config"
)

// Header is the response header that says where an answer came from: HIT
// (stored, fresh or just revalidated), MISS (from the upstream) or STALE
// (stored and stale, served because the upstream failed).
const Header = "X-Cache"

// passFor is how long a request that produced an unstorable response skips
// request collapsing ("hit-for-pass"), so that uncacheable URLs are not
// serialized behind one another.
const passFor = 5 * time.Second

// maxPass bounds the hit-for-pass table.
const maxPass = 10000

// maxVariants bounds the responses stored under one key (its Vary
// variants): a client choosing a new Accept-Language for every request
// would otherwise grow one key without limit, and every lookup of the key
// scans its variants under the cache's lock. The oldest variant goes first.
const maxVariants = 32

// passKey is a hit-for-pass entry's key: a 128-bit keyed hash of the flight
// key, which may be as long as the forwarded headers (tens of KiB).
type passKey [2]uint64

// Cache is one route's response cache. It is an http.Handler in front of
// the route's proxy stage.
type Cache struct {
	cfg     config.CacheConfig
	next    http.Handler
	forward []string // request headers a fill sends to the upstream, canonical
	now     func() time.Time

	mu      sync.Mutex
	items   map[string][]*entry // key → variants
	lru     list.List           // *entry, most recently used first
	size    int64
	flights map[string]*flight
	pass    map[passKey]time.Time
	seeds   [2]maphash.Seed

	hits, misses, stale atomic.Uint64
	waiting             atomic.Int64 // misses waiting for another request's fill
}

var _ http.Handler = (*Cache)(nil)

// New returns a cache in front of next (the route's proxy stage).
func New(cfg config.CacheConfig, next http.Handler) *Cache {
	c := &Cache{
		cfg: cfg, next: next, now: time.Now,
		items: map[string][]*entry{}, flights: map[string]*flight{}, pass: map[passKey]time.Time{},
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
	}
	c.forward = append([]string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization"}, cfg.ForwardHeaders...)
	slices.Sort(c.forward)
	c.forward = slices.Compact(c.forward)
	return c
}

// entry is one stored response (one variant of a key).
type entry struct {
	key          string
	vary         []string // canonical names the response varies on
	varyVals     []string // their normalized values in the request that filled it
	status       int
	header       http.Header // as sent to the client, minus Age, X-Cache, Set-Cookie
	body         []byte
	requestTime  time.Time
	responseTime time.Time
	initialAge   time.Duration
	freshness    time.Duration
	noCache      bool // validate before every use
	noStale      bool // must-revalidate: never serve stale
	staleIfError time.Duration
	hasSIE       bool
	size         int64
	elem         *list.Element
}

// flight is one upstream request that concurrent misses wait for.
type flight struct {
	done   chan struct{}
	result *entry // nil: nothing shareable came back
	xcache string
}

// Stats are counters for tests and metrics.
type Stats struct {
	Hits, Misses, Stale uint64
	Waiting             int64 // misses waiting now for a fill another request started
	Entries             int
	Bytes               int64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, vs := range c.items {
		n += len(vs)
	}
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Stale: c.stale.Load(), Waiting: c.waiting.Load(), Entries: n, Bytes: c.size}
}

// Key is the primary cache key of r: scheme, host and the request target as
// the client wrote it. Purge takes keys (or prefixes of keys) of this form,
// e.g. "https://shop.example/static/app.js".
func Key(r *http.Request) string {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return scheme + strings.ToLower(strings.TrimSuffix(r.Host, ".")) + r.URL.RequestURI()
}

// ServeHTTP answers from the cache or fills it.
func (c *Cache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.eligible(r) {
		c.next.ServeHTTP(w, r)
		return
	}
	key := Key(r)
	now := c.now()
	c.mu.Lock()
	e := c.lookupLocked(key, r)
	if e != nil && c.fresh(e, now) {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		c.hits.Add(1)
		c.serve(w, r, e, now, "HIT")
		return
	}
	if r.Method == http.MethodHead {
		// A HEAD is answered from a fresh GET response, never stored.
		c.mu.Unlock()
		c.misses.Add(1)
		w.Header().Set(Header, "MISS")
		c.next.ServeHTTP(w, c.fillRequest(r, nil))
		return
	}
	fk := c.flightKey(key, r)
	pk := c.passKey(fk)
	if until, ok := c.pass[pk]; ok && !now.Before(until) {
		delete(c.pass, pk)
	} else if ok {
		c.mu.Unlock()
		c.misses.Add(1)
		w.Header().Set(Header, "MISS")
		c.next.ServeHTTP(w, c.fillRequest(r, nil))
		return
	}
	if f, ok := c.flights[fk]; ok {
		c.mu.Unlock()
		c.waiting.Add(1)
		select {
		case <-f.done:
		case <-r.Context().Done():
			c.waiting.Add(-1)
			return // the client left while waiting
		}
		c.waiting.Add(-1)
		if f.result != nil {
			c.count(f.xcache)
			c.serve(w, r, f.result, c.now(), f.xcache)
			return
		}
		c.misses.Add(1)
		w.Header().Set(Header, "MISS")
		c.next.ServeHTTP(w, c.fillRequest(r, nil))
		return
	}
	f := &flight{done: make(chan struct{})}
	c.flights[fk] = f
	c.mu.Unlock()
	c.fill(w, r, key, fk, pk, f, e)
}

// passKey hashes a flight key for the hit-for-pass table.
func (c *Cache) passKey(fk string) passKey {
	return passKey{maphash.String(c.seeds[0], fk), maphash.String(c.seeds[1], fk)}
}

// addPassLocked marks a flight key as uncacheable for passFor. A full table
// loses its expired entries first, and everything only when most of it is
// still live (so that a full table is not scanned on every insertion).
func (c *Cache) addPassLocked(pk passKey, now time.Time) {
	if len(c.pass) >= maxPass {
		for k, until := range c.pass {
			if !now.Before(until) {
				delete(c.pass, k)
			}
		}
		if len(c.pass) >= maxPass*3/4 {
			clear(c.pass)
		}
	}
	c.pass[pk] = now.Add(passFor)
}

func (c *Cache) count(xcache string) {
	switch xcache {
	case "HIT":
		c.hits.Add(1)
	case "STALE":
		c.stale.Add(1)
	default:
		c.misses.Add(1)
	}
}

// eligible reports whether r may be served from or fill the cache; other
// requests pass through untouched.
func (c *Cache) eligible(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	if len(h["Range"]) > 0 || len(h["Upgrade"]) > 0 {
		return false // partial content and upgrades are not stored
	}
	if len(h["Cookie"]) > 0 && !c.cfg.IgnoreCookies {
		return false // a personal request: its answer may be personal too
	}
	if r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody) {
		return false
	}
	return !parseCacheControl(h["Cache-Control"]).noStore
}

// fillRequest is what reaches the upstream for r: the keyed request and the
// forwarded headers only (see the package comment), with the stored
// validators when revalidating.
func (c *Cache) fillRequest(r *http.Request, stale *entry) *http.Request {
	fr := r.WithContext(r.Context()) // a shallow copy with its own Header below
	fr.Header = make(http.Header, len(c.forward)+2)
	for _, name := range c.forward {
		if vs, ok := r.Header[name]; ok {
			fr.Header[name] = vs
		}
	}
	if stale != nil {
		if etag := stale.header.Get("ETag"); etag != "" {
			fr.Header.Set("If-None-Match", etag)
		}
		if lm := stale.header.Get("Last-Modified"); lm != "" {
			fr.Header.Set("If-Modified-Since", lm)
		}
	}
	fr.Body, fr.ContentLength, fr.GetBody = http.NoBody, 0, nil
	return fr
}

// flightKey identifies requests that produce the same fill request.
func (c *Cache) flightKey(key string, r *http.Request) string {
	var b strings.Builder
	b.WriteString(key)
	for _, name := range c.forward {
		b.WriteByte(0)
		b.WriteString(strings.Join(r.Header[name], ","))
	}
	return b.String()
}

// varyValue is the value of header name as the upstream would see it on a
// fill: the client's for a forwarded header, nothing for any other.
func (c *Cache) varyValue(r *http.Request, name string) string {
	if _, fwd := slices.BinarySearch(c.forward, name); !fwd {
		return ""
	}
	return normalize(r.Header[name])
}

// normalize joins a header's lines and removes optional whitespace, so that
// "gzip,br" and "gzip, br" select the same variant.
func normalize(vs []string) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, splitComma(v)...)
	}
	return strings.Join(parts, ",")
}

func (c *Cache) lookupLocked(key string, r *http.Request) *entry {
	for _, e := range c.items[key] {
		if c.variantMatches(e, r) {
			return e
		}
	}
	return nil
}

func (c *Cache) variantMatches(e *entry, r *http.Request) bool {
	for i, name := range e.vary {
		if c.varyValue(r, name) != e.varyVals[i] {
			return false
		}
	}
	return true
}

func (e *entry) age(now time.Time) time.Duration {
	return e.initialAge + max(0, now.Sub(e.responseTime))
}

func (c *Cache) fresh(e *entry, now time.Time) bool {
	return !e.noCache && e.freshness > e.age(now)
}

// staleUsable reports whether e may be served after an upstream failure.
func (c *Cache) staleUsable(e *entry, now time.Time) bool {
	if e.noStale {
		return false
	}
	window := c.cfg.StaleIfError
	if e.hasSIE { // the response's own stale-if-error wins
		window = e.staleIfError
	}
	return window > 0 && e.age(now)-e.freshness <= window
}

// serve writes a stored response, or a 304 when the client's own validators
// match it.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, e *entry, now time.Time, xcache string) {
	h := w.Header()
	for k, vs := range e.header {
		h[k] = vs // clipped slices: an Add downstream copies instead of writing into the entry
	}
	h.Set("Age", strconv.FormatInt(int64(e.age(now)/time.Second), 10))
	h.Set(Header, xcache)
	if e.status == http.StatusOK && notModified(r, e) {
		delete(h, "Content-Length")
		delete(h, "Content-Type")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.body)
	}
}

// notModified evaluates the client's conditional headers (RFC 9110 §13.2.2:
// If-None-Match wins over If-Modified-Since).
func notModified(r *http.Request, e *entry) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return etagMatches(inm, e.header.Get("ETag"))
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(e.header.Get("Last-Modified"))
	return err == nil && !lm.After(ims)
}

// Purge removes the responses stored under key (every variant) and reports
// how many were removed.
func (c *Cache) Purge(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.removeKeyLocked(key)
}

// PurgePrefix removes every response whose key starts with prefix, e.g.
// "https://shop.example/static/", and reports how many were removed.
func (c *Cache) PurgePrefix(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for key := range c.items {
		if strings.HasPrefix(key, prefix) {
			n += c.removeKeyLocked(key)
		}
	}
	return n
}

func (c *Cache) removeKeyLocked(key string) int {
	vs := c.items[key]
	for _, e := range vs {
		c.lru.Remove(e.elem)
		c.size -= e.size
	}
	delete(c.items, key)
	return len(vs)
}

// insertLocked stores e, replacing the variant it supersedes, and evicts
// the least recently used responses beyond max_size.
func (c *Cache) insertLocked(e *entry) {
	vs := c.items[e.key]
	for i, old := range vs {
		if slices.Equal(old.vary, e.vary) && slices.Equal(old.varyVals, e.varyVals) {
			c.lru.Remove(old.elem)
			c.size -= old.size
			vs = slices.Delete(vs, i, i+1)
			break
		}
	}
	for len(vs) >= maxVariants { // variants are kept oldest first
		old := vs[0]
		c.lru.Remove(old.elem)
		c.size -= old.size
		vs = slices.Delete(vs, 0, 1)
	}
	c.items[e.key] = append(vs, e)
	e.elem = c.lru.PushFront(e)
	c.size += e.size
	for c.size > c.cfg.MaxSize {
		last := c.lru.Back()
		if last == nil {
			break
		}
		c.removeEntryLocked(last.Value.(*entry))
	}
}

func (c *Cache) removeEntryLocked(e *entry) {
	c.lru.Remove(e.elem)
	c.size -= e.size
	vs := slices.DeleteFunc(c.items[e.key], func(x *entry) bool { return x == e })
	if len(vs) == 0 {
		delete(c.items, e.key)
	} else {
		c.items[e.key] = vs
	}
}

// fill forwards the request (as a fill request), streams the answer to the
// client while keeping a copy, and stores it when RFC 9111 allows. stale is
// the stored response being revalidated, or nil.
func (c *Cache) fill(w http.ResponseWriter, r *http.Request, key, fk string, pk passKey, f *flight, stale *entry) {
	fr := c.fillRequest(r, stale)
	// Only a fill that sent the stored validators revalidates: a 304 to a
	// client's own validators (were one forwarded) refreshes nothing.
	revalidating := stale != nil && (fr.Header.Get("If-None-Match") != "" || fr.Header.Get("If-Modified-Since") != "")
	fw := &fillWriter{c: c, client: w, req: fr, header: http.Header{}, stale: stale,
		revalidating: revalidating, requestTime: c.now()}
	completed := false
	var (
		result   *entry
		xcache   string
		pass     bool
		released bool
	)
	// release ends the flight: the waiters go on with the result, if any.
	release := func() {
		if released {
			return
		}
		released = true
		c.mu.Lock()
		delete(c.flights, fk)
		if pass {
			c.addPassLocked(pk, c.now())
		}
		c.mu.Unlock()
		f.result, f.xcache = result, xcache
		close(f.done)
	}
	// Deferred first, so it runs last and even when finishing the fill
	// panics: a flight that never ends would strand every later request
	// for the key.
	defer release()
	defer func() {
		// Runs on a panic too (an aborted stream), so waiters never hang.
		var storable bool
		result, xcache, storable = fw.finish(key, completed)
		pass = result == nil && completed && !storable
		release()
		if completed && fw.swallowed() && result != nil {
			c.count(xcache)
			c.serve(w, r, result, c.now(), xcache)
		}
	}()
	c.next.ServeHTTP(fw, fr)
	completed = true
}

// Ways a fill response is handled.
const (
	modePass        = iota // to the client, not stored
	modeStore              // to the client and kept
	modeRevalidated        // a 304 for our validators: swallowed, the stored response is served
	modeStale              // an upstream failure: swallowed, the stale response is served
)

// fillWriter sits between the proxy stage and the client during a fill.
type fillWriter struct {
	c            *Cache
	client       http.ResponseWriter
	req          *http.Request
	header       http.Header // what the proxy stage writes
	stale        *entry
	revalidating bool
	requestTime  time.Time

	decided  bool
	mode     int
	status   int
	verdict  verdict
	buf      bytes.Buffer
	tooLarge bool
}

func (fw *fillWriter) Header() http.Header { return fw.header }

func (fw *fillWriter) swallowed() bool {
	return fw.mode == modeRevalidated || fw.mode == modeStale
}

func (fw *fillWriter) WriteHeader(code int) {
	if fw.decided || code < 200 {
		return // informational answers are not forwarded on a fill
	}
	fw.decided, fw.status = true, code
	c, now := fw.c, fw.c.now()
	switch {
	case code == http.StatusNotModified && fw.revalidating:
		fw.mode = modeRevalidated
		return
	case code >= 500 && fw.stale != nil && c.staleUsable(fw.stale, now):
		fw.mode = modeStale
		return
	}
	fw.verdict = c.judge(fw.req, code, fw.header, now)
	fw.mode = modePass
	if fw.verdict.store {
		fw.mode = modeStore
		if cl, err := strconv.ParseInt(fw.header.Get("Content-Length"), 10, 64); err == nil && cl > c.cfg.MaxObjectSize {
			fw.mode, fw.tooLarge = modePass, true
		}
	}
	c.misses.Add(1)
	dst := fw.client.Header()
	for k, vs := range fw.header {
		dst[k] = vs
	}
	dst.Set(Header, "MISS")
	fw.client.WriteHeader(code)
}

func (fw *fillWriter) Write(b []byte) (int, error) {
	if !fw.decided {
		fw.WriteHeader(http.StatusOK)
	}
	switch fw.mode {
	case modeStore:
		if int64(fw.buf.Len()+len(b)) > fw.c.cfg.MaxObjectSize {
			fw.mode, fw.tooLarge = modePass, true
			fw.buf = bytes.Buffer{}
		} else {
			fw.buf.Write(b)
		}
		return fw.client.Write(b)
	case modePass:
		return fw.client.Write(b)
	}
	return len(b), nil
}

// Flush passes streaming flushes through (ReverseProxy flushes responses
// of unknown length).
func (fw *fillWriter) Flush() {
	if fw.mode == modePass || fw.mode == modeStore {
		_ = http.NewResponseController(fw.client).Flush()
	}
}

// finish turns the fill's outcome into a stored entry. storable reports
// whether the response itself could have been stored (an upload cut short
// or too large is storable, just not this time).
func (fw *fillWriter) finish(key string, completed bool) (*entry, string, bool) {
	c := fw.c
	now := c.now()
	if completed {
		// Trailers are set on the header after the body; the client's
		// header is where net/http looks for them.
		dst := fw.client.Header()
		if fw.mode == modePass || fw.mode == modeStore {
			for k, vs := range fw.header {
				if strings.HasPrefix(k, http.TrailerPrefix) || dst[k] == nil {
					dst[k] = vs
				}
			}
		}
	}
	switch fw.mode {
	case modeRevalidated:
		if !completed {
			return nil, "", true
		}
		e := c.refreshed(fw.stale, fw.header, fw.requestTime, now)
		return e, "HIT", true
	case modeStale:
		return fw.stale, "STALE", true
	case modeStore:
		if !completed || fw.tooLarge {
			return nil, "", true
		}
		if cl := fw.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(fw.buf.Len()) {
			return nil, "", true // cut short
		}
		e := c.newEntry(key, fw.req, fw.status, fw.header, bytes.Clone(fw.buf.Bytes()), fw.verdict, fw.requestTime, now)
		c.mu.Lock()
		c.insertLocked(e)
		c.mu.Unlock()
		return e, "HIT", true
	}
	return nil, "", fw.tooLarge || !fw.decided
}

// storedHeader copies what may be stored of a response header.
func storedHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		switch {
		case k == "Age" || k == Header || k == "Set-Cookie" || k == "Connection" || k == "Keep-Alive" ||
			k == "Transfer-Encoding" || k == "Trailer" || strings.HasPrefix(k, http.TrailerPrefix):
			continue
		}
		out[k] = slices.Clip(slices.Clone(vs))
	}
	return out
}

func (c *Cache) newEntry(key string, req *http.Request, status int, h http.Header, body []byte, v verdict, requestTime, responseTime time.Time) *entry {
	e := &entry{
		key: key, status: status, header: storedHeader(h), body: body,
		requestTime: requestTime, responseTime: responseTime,
		initialAge: initialAge(h, requestTime, responseTime),
		freshness:  v.freshness, noCache: v.cc.noCache,
		noStale:      v.cc.mustRevalidate || v.cc.proxyRevalidate || v.cc.hasSMaxAge,
		staleIfError: v.cc.staleIfError, hasSIE: v.cc.hasStaleIfError,
	}
	if e.header.Get("Date") == "" {
		e.header.Set("Date", responseTime.UTC().Format(http.TimeFormat))
	}
	for _, line := range h["Vary"] {
		for _, name := range splitComma(line) {
			name = http.CanonicalHeaderKey(name)
			if !slices.Contains(e.vary, name) {
				e.vary = append(e.vary, name)
				e.varyVals = append(e.varyVals, c.varyValue(req, name))
			}
		}
	}
	e.size = int64(len(key) + len(body) + 256)
	for k, vs := range e.header {
		e.size += int64(len(k))
		for _, v := range vs {
			e.size += int64(len(v) + 16)
		}
	}
	return e
}

// refreshed applies a 304's headers to a stored response (RFC 9111
// §4.3.4) and stores the result in its place, unless the new headers forbid
// storing; either way the result is served for this request.
func (c *Cache) refreshed(old *entry, h304 http.Header, requestTime, now time.Time) *entry {
	h := old.header.Clone()
	for k, vs := range h304 {
		switch k {
		case "Content-Length", "Content-Encoding", "Content-Type", "Transfer-Encoding", "Content-Range":
			continue // describe the (absent) body of the 304, not the stored one
		}
		h[k] = vs
	}
	v := c.judge(&http.Request{Header: http.Header{}}, old.status, h, now)
	req := &http.Request{Header: http.Header{}}
	for i, name := range old.vary { // the variant keeps its selecting values
		req.Header[name] = []string{old.varyVals[i]}
	}
	e := c.newEntry(old.key, req, old.status, h, old.body, v, requestTime, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.variantOf(old); cur != nil {
		c.removeEntryLocked(cur)
	}
	if v.store {
		c.insertLocked(e)
	}
	return e
}

// variantOf returns the stored entry old still is, if it was not evicted
// or replaced meanwhile.
func (c *Cache) variantOf(old *entry) *entry {
	for _, e := range c.items[old.key] {
		if e == old {
			return e
		}
	}
	return nil
}
