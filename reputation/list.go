package reputation

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/internal/every"
)

// Defaults for Config.
const (
	DefaultRefresh      = time.Hour
	DefaultMaxShrink    = 0.5
	DefaultFetchTimeout = 15 * time.Second
	// MaxFeedBytes bounds a feed download. Real feeds are a few MiB; a
	// million IPv6 CIDRs with comments stay under this.
	MaxFeedBytes = 128 << 20
)

// userAgent names us to feed operators, who ask for it (FireHOL, Spamhaus).
const userAgent = "Portcullis-WAF reputation list fetcher"

// Config describes one List. NewList validates it.
type Config struct {
	// Name identifies the list in logs and audit records. Required.
	Name string
	// Inline entries: one IP or CIDR each, as in ParseList (a trailing
	// "# comment" is allowed).
	Inline []string
	// File is a local list in ParseList's format. It is read when the list
	// is built (an error then is a configuration error) and re-read when
	// its size or modification time changes, checked every Refresh.
	File string
	// URL is an http or https feed in ParseList's format, fetched when the
	// list is built and every Refresh afterwards with conditional requests
	// (If-None-Match, If-Modified-Since). If the first fetch fails the list
	// starts without the feed's entries and keeps retrying.
	//
	// Security: over plain http anyone on the path can change the list;
	// prefer https. Credentials in the URL (user info, query) are never
	// logged.
	URL string
	// Refresh is how often URL is fetched and File checked for changes.
	// Default: 1h. Feed operators ask for no more than hourly fetches
	// (Spamhaus DROP changes a few times a day).
	Refresh time.Duration
	// MaxShrink rejects a refresh of File or URL whose entry count falls by
	// more than this fraction of that source's last good count, as
	// suspicious: a truncated download, a half-written file or a feed that
	// suddenly returns next to nothing would otherwise silently drop
	// most of a deny list. 0 means the default 0.5; 1 disables the check.
	// A deliberate large cut in File takes effect when the configuration
	// is reloaded (a new List has no previous count).
	MaxShrink float64
	// CacheFile, when set, keeps the last good copy of the feed on disk
	// (written atomically, 0600). When the first fetch fails, NewList
	// starts from it, so a deny feed that is down while Portcullis starts
	// does not leave the list empty until the feed comes back.
	CacheFile string
	// FetchTimeout bounds one feed fetch, including the first one, which
	// NewList waits for. Default: 15s.
	FetchTimeout time.Duration
	// HTTPClient fetches URL. Default: a client that follows up to 10
	// redirects but never from https to http.
	HTTPClient *http.Client
	// MaxEntries bounds the entries of each source (inline, file, feed);
	// a source with more is rejected. Default: DefaultMaxEntries.
	MaxEntries int
	// Log receives refresh results. Default: slog.Default().
	Log *slog.Logger
}

// Stats describes a list's health, for metrics and the admin API.
type Stats struct {
	// Entries is the number of distinct prefixes in use.
	Entries int
	// LastSuccess is when File or URL was last loaded, or the feed
	// confirmed unchanged (304); zero if never (always, for a list of
	// inline entries only).
	LastSuccess time.Time
	// Failures counts failed or rejected refreshes (fetch errors, bad
	// status, malformed or suspicious lists, unreadable files), including
	// a failed first feed fetch.
	Failures uint64
	// LastError describes the most recent failure; it is kept after later
	// successes (compare LastFailure with LastSuccess).
	LastError string
	// LastFailure is when the most recent failure happened.
	LastFailure time.Time
	// Suspicious counts the refreshes among Failures that MaxShrink
	// rejected.
	Suspicious uint64
}

// List is a named, refreshable Set. Lookup is safe for concurrent use and
// never blocks: refreshes build a new Set beside the current one and swap
// it in atomically, or keep the current one.
type List struct {
	cfg     Config
	log     *slog.Logger
	safeURL string // URL without credentials, for logs and errors
	set     atomic.Pointer[Set]

	// refreshMu serialises refreshes; it guards the sources below.
	refreshMu  sync.Mutex
	inline     []netip.Prefix
	file, feed source
	fileStamp  string
	etag, lmod string // validators of the feed in use

	statsMu sync.Mutex
	stats   Stats

	loop every.Loop // periodic refresh
}

// source is the last good content of a file or feed.
type source struct {
	entries []netip.Prefix
	loaded  bool // entries is a good load (possibly empty), not "never loaded"
}

// NewList validates cfg and loads the list: inline entries and File now (an
// error is a configuration error), URL with one fetch bounded by
// FetchTimeout (a failure is logged and counted; the list starts without
// the feed). Call Start to refresh in the background.
func NewList(cfg Config) (*List, error) {
	// Every problem is reported at once, each naming the list.
	errs := cfg.normalise()
	l := &List{cfg: cfg, log: cfg.Log.With("list", cfg.Name)}
	if cfg.URL != "" {
		l.safeURL = redactURL(cfg.URL)
		l.log = l.log.With("url", l.safeURL)
	}
	for i, s := range cfg.Inline {
		p, ok, err := parseEntry(s)
		if err == nil && !ok {
			err = errors.New("empty entry")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("list %q: inline entry %d (%q): %w", cfg.Name, i+1, s, err))
			continue
		}
		l.inline = append(l.inline, p)
	}
	if cfg.MaxEntries > 0 && len(l.inline) > cfg.MaxEntries {
		errs = append(errs, fmt.Errorf("list %q: %d inline entries, more than max entries %d", cfg.Name, len(l.inline), cfg.MaxEntries))
	}
	l.refreshMu.Lock()
	defer l.refreshMu.Unlock()
	if cfg.File != "" {
		if err := l.loadFileLocked(); err != nil {
			errs = append(errs, fmt.Errorf("list %q: %w", cfg.Name, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	l.rebuild()
	if cfg.URL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.FetchTimeout)
		err := l.refreshFeedLocked(ctx, context.Background())
		cancel()
		if err != nil {
			l.startFromCacheLocked(err)
		}
	}
	return l, nil
}

// normalise fills in defaults and returns every invalid setting.
func (c *Config) normalise() []error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("list without a name"))
	}
	name := c.Name
	if len(c.Inline) == 0 && c.File == "" && c.URL == "" {
		errs = append(errs, fmt.Errorf("list %q: needs inline entries, a file or a URL", name))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil:
			// Not wrapped: url.Error quotes the whole URL, credentials and all.
			errs = append(errs, fmt.Errorf("list %q: URL %q is not a valid URL", name, redactURL(c.URL)))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("list %q: URL %q must be http or https", name, redactURL(c.URL)))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("list %q: URL %q has no host", name, redactURL(c.URL)))
		}
	}
	if c.Refresh < 0 {
		errs = append(errs, fmt.Errorf("list %q: refresh %s is negative", name, c.Refresh))
	}
	if c.FetchTimeout < 0 {
		errs = append(errs, fmt.Errorf("list %q: fetch timeout %s is negative", name, c.FetchTimeout))
	}
	if c.MaxShrink < 0 || c.MaxShrink > 1 || c.MaxShrink != c.MaxShrink {
		errs = append(errs, fmt.Errorf("list %q: max shrink %v is not between 0 and 1", name, c.MaxShrink))
	}
	if c.MaxEntries < 0 {
		errs = append(errs, fmt.Errorf("list %q: max entries %d is negative", name, c.MaxEntries))
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.MaxShrink == 0 {
		c.MaxShrink = DefaultMaxShrink
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = DefaultFetchTimeout
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{CheckRedirect: noDowngrade}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return errs
}

// noDowngrade follows redirects like the default client but refuses to go
// from https to http, where the list could be changed in transit.
func noDowngrade(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("refusing a redirect from https to http")
	}
	return nil
}

// redactURL drops user info and query, where feed credentials live.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment = ""
	return u.String()
}

// Name returns the list's name.
func (l *List) Name() string { return l.cfg.Name }

// Lookup reports whether addr is on the list and the most specific entry
// that matched. See Set.Lookup.
func (l *List) Lookup(addr netip.Addr) (entry netip.Prefix, ok bool) {
	return l.set.Load().Lookup(addr)
}

// Stats returns a snapshot of the list's health.
func (l *List) Stats() Stats {
	l.statsMu.Lock()
	st := l.stats
	l.statsMu.Unlock()
	st.Entries = l.set.Load().Len()
	return st
}

// Start refreshes File and URL every Refresh until Stop. It does nothing
// for a list of inline entries only, or when already started.
func (l *List) Start() {
	if l.cfg.File == "" && l.cfg.URL == "" {
		return
	}
	l.loop.Start(l.cfg.Refresh, l.refresh)
}

// Stop ends refreshing; the current list stays in use.
func (l *List) Stop() { l.loop.Stop() }

// refresh runs one refresh round: File if it changed, then URL.
func (l *List) refresh(ctx context.Context) {
	l.refreshMu.Lock()
	defer l.refreshMu.Unlock()
	if l.cfg.File != "" {
		if err := l.reloadFileLocked(); err != nil {
			l.log.Error("list file reload failed; keeping the last good entries", "file", l.cfg.File, "err", err)
		}
	}
	if l.cfg.URL != "" && ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, l.cfg.FetchTimeout)
		err := l.refreshFeedLocked(fctx, ctx)
		cancel()
		if err != nil {
			l.log.Error("feed refresh failed; keeping the last good entries", "err", err)
		}
	}
}

// loadFileLocked reads File for NewList: no previous entries, so no
// shrink check, and any error is the caller's.
func (l *List) loadFileLocked() error {
	stamp, err := fileStamp(l.cfg.File)
	if err != nil {
		return fmt.Errorf("file: %w", err)
	}
	entries, err := readListFile(l.cfg.File, l.cfg.MaxEntries)
	if err != nil {
		return err
	}
	l.fileStamp = stamp
	l.file = source{entries: entries, loaded: true}
	l.succeeded()
	return nil
}

// reloadFileLocked re-reads File if its stamp changed. A broken file is
// reported once per change, not on every check.
func (l *List) reloadFileLocked() error {
	stamp, err := fileStamp(l.cfg.File)
	if err != nil {
		stamp = "error: " + err.Error()
	}
	if stamp == l.fileStamp {
		return nil
	}
	l.fileStamp = stamp
	if err != nil {
		return l.failed(fmt.Errorf("file: %w", err), false)
	}
	entries, err := readListFile(l.cfg.File, l.cfg.MaxEntries)
	if err != nil {
		return l.failed(err, false)
	}
	if err := l.checkShrink("file "+l.cfg.File, l.file, entries); err != nil {
		return l.failed(err, true)
	}
	l.file = source{entries: entries, loaded: true}
	l.rebuild()
	l.succeeded()
	l.log.Info("list file reloaded", "file", l.cfg.File, "file_entries", len(entries), "entries", l.set.Load().Len())
	return nil
}

// refreshFeedLocked fetches URL and, if it changed and looks sane, swaps
// its entries in. A fetch cut short because run was cancelled (Stop) is
// not a failure of the feed and is neither counted nor reported.
func (l *List) refreshFeedLocked(ctx, run context.Context) error {
	entries, etag, lmod, notModified, err := l.fetch(ctx)
	if err != nil {
		if run.Err() != nil {
			return nil
		}
		return l.failed(err, false)
	}
	if notModified {
		l.succeeded()
		l.log.Debug("feed not modified")
		return nil
	}
	if err := l.checkShrink("feed", l.feed, entries); err != nil {
		return l.failed(err, true)
	}
	// The cached copy is saved before the new entries serve, so a list
	// seen serving them has also saved them for the next start.
	l.writeCache(entries)
	l.feed = source{entries: entries, loaded: true}
	l.etag, l.lmod = etag, lmod
	l.rebuild()
	l.succeeded()
	l.log.Info("feed loaded", "feed_entries", len(entries), "entries", l.set.Load().Len())
	return nil
}

// fetch downloads the feed, conditionally when validators are known.
func (l *List) fetch(ctx context.Context) (entries []netip.Prefix, etag, lmod string, notModified bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.cfg.URL, nil)
	if err != nil {
		return nil, "", "", false, fmt.Errorf("feed request: %w", redactErr(err, l.safeURL))
	}
	req.Header.Set("User-Agent", userAgent)
	// Validators are those of the list in use, not of a rejected one: a
	// bad feed is fetched in full, rejected and reported on every refresh
	// until its publisher fixes it, rather than confirmed by a 304.
	conditional := l.feed.loaded && (l.etag != "" || l.lmod != "")
	if conditional {
		if l.etag != "" {
			req.Header.Set("If-None-Match", l.etag)
		}
		if l.lmod != "" {
			req.Header.Set("If-Modified-Since", l.lmod)
		}
	}
	resp, err := l.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, "", "", false, fmt.Errorf("feed fetch: %w", redactErr(err, l.safeURL))
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if !conditional {
			return nil, "", "", false, errors.New("feed answered 304 Not Modified to an unconditional request")
		}
		return nil, "", "", true, nil
	default:
		return nil, "", "", false, fmt.Errorf("feed answered %s", resp.Status)
	}
	entries, err = ParseList(&limitedReader{r: resp.Body, n: MaxFeedBytes}, l.cfg.MaxEntries)
	if err != nil {
		return nil, "", "", false, fmt.Errorf("feed: %w", redactErr(err, l.safeURL))
	}
	return entries, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"), false, nil
}

// checkShrink rejects a new load of a source that lost more than MaxShrink
// of its last good entries.
func (l *List) checkShrink(what string, last source, entries []netip.Prefix) error {
	if !last.loaded || len(last.entries) == 0 {
		return nil
	}
	before, after := len(last.entries), len(entries)
	if after < before && float64(before-after) > l.cfg.MaxShrink*float64(before) {
		return fmt.Errorf("%s shrank from %d to %d entries, more than max shrink %.0f%%; rejected as suspicious",
			what, before, after, l.cfg.MaxShrink*100)
	}
	return nil
}

// rebuild swaps in a Set of every source's last good entries.
func (l *List) rebuild() {
	all := make([]netip.Prefix, 0, len(l.inline)+len(l.file.entries)+len(l.feed.entries))
	all = append(all, l.inline...)
	all = append(all, l.file.entries...)
	all = append(all, l.feed.entries...)
	l.set.Store(NewSet(all))
}

func (l *List) succeeded() {
	l.statsMu.Lock()
	l.stats.LastSuccess = time.Now()
	l.statsMu.Unlock()
}

// failed records err and returns it.
func (l *List) failed(err error, suspicious bool) error {
	l.statsMu.Lock()
	l.stats.Failures++
	if suspicious {
		l.stats.Suspicious++
	}
	l.stats.LastError = err.Error()
	l.stats.LastFailure = time.Now()
	l.statsMu.Unlock()
	return err
}

// fileStamp identifies a file's current contents cheaply.
func fileStamp(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	return fmt.Sprintf("%d:%d", st.Size(), st.ModTime().UnixNano()), nil
}

func readListFile(path string, maxEntries int) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	defer f.Close()
	entries, err := ParseList(f, maxEntries)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", path, err)
	}
	return entries, nil
}

// limitedReader fails, rather than truncating silently as io.LimitReader
// does, when the body exceeds n bytes: a cut list must not pass for whole.
type limitedReader struct {
	r io.Reader
	n int64 // bytes still allowed
}

var errFeedTooLarge = fmt.Errorf("feed larger than %d MiB", MaxFeedBytes>>20)

func (lr *limitedReader) Read(p []byte) (int, error) {
	if lr.n < 0 {
		return 0, errFeedTooLarge
	}
	if int64(len(p)) > lr.n+1 {
		p = p[:lr.n+1] // one byte more than allowed reveals an overrun
	}
	n, err := lr.r.Read(p)
	lr.n -= int64(n)
	if lr.n < 0 {
		return n, errFeedTooLarge
	}
	return n, err
}

// redactErr replaces the URL that net/http puts in its errors, query and
// all, with the redacted one.
func redactErr(err error, safe string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = safe
	}
	return err
}

// startFromCacheLocked loads the cached copy of the feed after a failed
// first fetch. The validators stay empty, so the next refresh fetches the
// feed in full; the shrink guard compares it with the cached copy.
func (l *List) startFromCacheLocked(fetchErr error) {
	if l.cfg.CacheFile == "" {
		l.log.Warn("first feed fetch failed; the list starts without the feed's entries and retries every refresh interval",
			"err", fetchErr, "entries", l.set.Load().Len(), "refresh", l.cfg.Refresh)
		return
	}
	entries, err := readListFile(l.cfg.CacheFile, l.cfg.MaxEntries)
	if err != nil {
		l.log.Warn("first feed fetch failed and there is no usable cached copy; the list starts without the feed's entries and retries every refresh interval",
			"err", fetchErr, "cache", l.cfg.CacheFile, "cache_err", err, "entries", l.set.Load().Len(), "refresh", l.cfg.Refresh)
		return
	}
	l.feed = source{entries: entries, loaded: true}
	l.rebuild()
	st, _ := os.Stat(l.cfg.CacheFile)
	var saved time.Time
	if st != nil {
		saved = st.ModTime()
	}
	l.log.Warn("first feed fetch failed; starting from the cached copy and retrying every refresh interval",
		"err", fetchErr, "cache", l.cfg.CacheFile, "cached_at", saved, "feed_entries", len(entries), "refresh", l.cfg.Refresh)
}

// writeCache saves the feed's entries for the next start: written to a
// temporary file and renamed, so a crash never leaves a half list behind.
func (l *List) writeCache(entries []netip.Prefix) {
	if l.cfg.CacheFile == "" {
		return
	}
	err := func() error {
		if err := os.MkdirAll(filepath.Dir(l.cfg.CacheFile), 0o700); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(l.cfg.CacheFile), filepath.Base(l.cfg.CacheFile)+".tmp*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
		w := bufio.NewWriter(tmp)
		fmt.Fprintf(w, "# last good copy of feed %s (list %q), saved %s\n", l.safeURL, l.cfg.Name, time.Now().UTC().Format(time.RFC3339))
		for _, p := range entries {
			w.WriteString(p.String())
			w.WriteByte('\n')
		}
		if err := errors.Join(w.Flush(), tmp.Sync(), tmp.Close()); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), l.cfg.CacheFile)
	}()
	if err != nil {
		l.log.Warn("could not save the feed's cached copy", "cache", l.cfg.CacheFile, "err", err)
	}
}
