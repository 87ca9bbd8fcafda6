// Package crowdsec connects Portcullis to a CrowdSec Local API (LAPI), the
// way CrowdSec's own bouncers and log processors do, in both directions.
//
// Place in the request path: beside it, never on it. The Bouncer pulls
// decisions from /v1/decisions/stream in the background and writes them
// into the ban table (bans.Store), which the first cheap filter of the
// pipeline consults: a client CrowdSec banned is refused like any banned
// client, before rate limits and the rule engine. Signals is an audit
// sink: after a response ends, the audit writer hands it the record of
// every blocked request, which it queues (bounded, never waiting) and
// sends to /v1/alerts in batches as a logged-in watcher.
package crowdsec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/bans"
)

// userAgent names Portcullis to the LAPI. It must be name/version: the
// LAPI 1.4 reads the version after the slash and refuses a watcher login
// without one ("incorrect Username or Password").
const userAgent = "portcullis/1"

// maxStreamBytes bounds one answer of the decision stream. The first one
// (startup) holds every active decision: a community blocklist of tens of
// thousands of addresses is a few megabytes.
const maxStreamBytes = 64 << 20

// BouncerOptions configure a Bouncer.
type BouncerOptions struct {
	URL      string        // the LAPI's base URL, without a trailing slash
	APIKey   string        // from cscli bouncers add
	Interval time.Duration // between pulls
	Timeout  time.Duration // of one pull
	Store    *bans.Store   // where decisions become bans
	Log      *slog.Logger  // nil: discarded
	// Client makes the requests; nil: a client with Timeout.
	Client *http.Client
}

// BouncerStats count what the bouncer did since it started.
type BouncerStats struct {
	Pulls, Failures  int64
	Added, Lifted    int64
	Skipped, Refused int64 // not a ban of an address or range; refused by the ban table
	LastSuccess      time.Time
	LastError        string // "" after a success
}

// Bouncer mirrors the LAPI's ban decisions into the ban table.
type Bouncer struct {
	o      BouncerOptions
	client *http.Client

	mu sync.Mutex
	// live holds, per banned prefix, the decisions behind it (id → end):
	// CrowdSec may hold several for one address (several scenarios), and
	// the ban lasts until the last one ends or is deleted.
	live    map[netip.Prefix]map[int64]time.Time
	startup bool // the next pull asks for every active decision
	stats   BouncerStats

	pulls, failures atomic.Int64
	running         atomic.Bool
	stop            chan struct{}
	done            chan struct{}
	once            sync.Once
}

// NewBouncer prepares a bouncer; Start begins pulling.
func NewBouncer(o BouncerOptions) (*Bouncer, error) {
	if o.URL == "" || o.APIKey == "" || o.Store == nil {
		return nil, errors.New("crowdsec: bouncer needs the LAPI URL, an API key and the ban table")
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: o.Timeout}
	}
	return &Bouncer{o: o, client: client, live: map[netip.Prefix]map[int64]time.Time{}, startup: true,
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start pulls at once, then every Interval, until Close.
func (b *Bouncer) Start() {
	b.running.Store(true)
	go func() {
		defer close(b.done)
		t := time.NewTicker(b.o.Interval)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), b.o.Timeout)
			err := b.Pull(ctx)
			cancel()
			if err != nil {
				b.o.Log.Warn("CrowdSec decisions not pulled; bans from CrowdSec may be stale", "lapi", b.o.URL, "err", err)
			}
			select {
			case <-b.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Close stops pulling. Bans already in the table stay until they end or
// the next run's first pull finds their decisions gone.
func (b *Bouncer) Close() {
	b.once.Do(func() { close(b.stop) })
	if b.running.Load() {
		<-b.done
	}
}

// Stats returns the counters.
func (b *Bouncer) Stats() BouncerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stats
	st.Pulls, st.Failures = b.pulls.Load(), b.failures.Load()
	return st
}

// Decision is one entry of the LAPI's decision stream.
type Decision struct {
	ID       int64  `json:"id"`
	Origin   string `json:"origin"`
	Scenario string `json:"scenario"`
	Scope    string `json:"scope"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	Duration string `json:"duration"` // Go duration, time left; negative once over
}

// Stream is one answer of /v1/decisions/stream.
type Stream struct {
	New     []Decision `json:"new"`
	Deleted []Decision `json:"deleted"`
}

// ParseStream decodes an answer of the decision stream.
func ParseStream(data []byte) (Stream, error) {
	var s Stream
	if err := json.Unmarshal(data, &s); err != nil {
		return Stream{}, fmt.Errorf("decision stream: %w", err)
	}
	return s, nil
}

// Target returns the prefix a ban decision refuses, or why it is not one
// Portcullis applies: only type ban, scope Ip or Range, no broader than an
// operator may ban by hand.
func (d Decision) Target() (netip.Prefix, error) {
	if !strings.EqualFold(d.Type, "ban") {
		return netip.Prefix{}, fmt.Errorf("decision %d: type %q is not applied (only ban)", d.ID, d.Type)
	}
	var p netip.Prefix
	switch strings.ToLower(d.Scope) {
	case "ip":
		a, err := netip.ParseAddr(strings.TrimSpace(d.Value))
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("decision %d: %q is not an IP address", d.ID, d.Value)
		}
		a = a.Unmap().WithZone("")
		p = netip.PrefixFrom(a, a.BitLen())
	case "range":
		r, err := netip.ParsePrefix(strings.TrimSpace(d.Value))
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("decision %d: %q is not a network", d.ID, d.Value)
		}
		p = r.Masked()
	default:
		return netip.Prefix{}, fmt.Errorf("decision %d: scope %q is not applied (only Ip and Range)", d.ID, d.Scope)
	}
	if err := bans.CheckBreadth(p); err != nil {
		return netip.Prefix{}, fmt.Errorf("decision %d: %w", d.ID, err)
	}
	return p, nil
}

// Pull fetches new and deleted decisions once (every active decision on
// the first successful pull) and applies them to the ban table.
func (b *Bouncer) Pull(ctx context.Context) error {
	b.pulls.Add(1)
	b.mu.Lock()
	startup := b.startup
	b.mu.Unlock()
	s, err := b.fetch(ctx, startup)
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.failures.Add(1)
		b.stats.LastError = err.Error()
		return err
	}
	if startup {
		b.forgetStale(s, now)
		b.startup = false
	}
	for _, d := range s.Deleted {
		b.lift(d)
	}
	for _, d := range s.New {
		b.apply(d, now)
	}
	// Decisions that ended without a deletion (their duration ran out):
	// the ban table ends them by itself; forget them here too.
	for p, ids := range b.live {
		for id, end := range ids {
			if !end.After(now) {
				delete(ids, id)
			}
		}
		if len(ids) == 0 {
			delete(b.live, p)
		}
	}
	b.stats.LastSuccess, b.stats.LastError = now, ""
	return nil
}

func (b *Bouncer) fetch(ctx context.Context, startup bool) (Stream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.o.URL+"/v1/decisions/stream?startup="+fmt.Sprint(startup), nil)
	if err != nil {
		return Stream{}, fmt.Errorf("decision stream: %w", err)
	}
	req.Header.Set("X-Api-Key", b.o.APIKey)
	req.Header.Set("User-Agent", userAgent)
	resp, err := b.client.Do(req)
	if err != nil {
		return Stream{}, fmt.Errorf("decision stream: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxStreamBytes+1))
	if err != nil {
		return Stream{}, fmt.Errorf("decision stream: reading the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return Stream{}, fmt.Errorf("decision stream: the LAPI refused the bouncer key (%s); check crowdsec.bouncer and cscli bouncers list", resp.Status)
	case resp.StatusCode != http.StatusOK:
		return Stream{}, fmt.Errorf("decision stream: LAPI answered %s", resp.Status)
	case len(data) > maxStreamBytes:
		return Stream{}, fmt.Errorf("decision stream: answer larger than %d bytes", maxStreamBytes)
	}
	return ParseStream(data)
}

// forgetStale lifts the CrowdSec bans of an earlier run (the ban table
// is persisted) whose decisions are no longer active: they were deleted
// or ended while Portcullis was not listening. Called with mu held.
func (b *Bouncer) forgetStale(s Stream, now time.Time) {
	keep := map[netip.Prefix]bool{}
	for _, d := range s.New {
		if p, err := d.Target(); err == nil {
			keep[p] = true
		}
	}
	for _, ban := range b.o.Store.List(now) {
		if ban.Source == bans.SourceCrowdSec && !keep[ban.Prefix] {
			if ok, err := b.o.Store.RemoveFrom(ban.Prefix, bans.SourceCrowdSec); ok || err != nil {
				b.stats.Lifted++
			}
		}
	}
}

// apply bans a new decision's target until the latest end of its live
// decisions. Called with mu held.
func (b *Bouncer) apply(d Decision, now time.Time) {
	p, err := d.Target()
	if err != nil {
		b.stats.Skipped++
		b.o.Log.Debug("CrowdSec decision not applied", "err", err)
		return
	}
	left, err := time.ParseDuration(d.Duration)
	if err != nil || left <= 0 {
		b.stats.Skipped++
		return
	}
	ids := b.live[p]
	if ids == nil {
		ids = map[int64]time.Time{}
		b.live[p] = ids
	}
	ids[d.ID] = now.Add(left)
	until := now
	for id, end := range ids {
		if !end.After(now) {
			delete(ids, id)
			continue
		}
		until = later(until, end)
	}
	reason := "CrowdSec decision " + fmt.Sprint(d.ID)
	if d.Scenario != "" {
		reason += ": " + d.Scenario
	}
	if d.Origin != "" {
		reason += " (" + d.Origin + ")"
	}
	err = b.o.Store.Add(bans.Ban{Prefix: p, Reason: truncate(reason, bans.MaxReasonLen), Source: bans.SourceCrowdSec, Created: now, Until: until})
	if err != nil && !errors.Is(err, bans.ErrNotSaved) {
		b.stats.Refused++
		delete(ids, d.ID)
		if len(ids) == 0 {
			delete(b.live, p)
		}
		b.o.Log.Warn("CrowdSec decision not applied", "prefix", p.String(), "err", err)
		return
	}
	b.stats.Added++
}

// lift forgets a deleted decision and lifts its ban when no other live
// decision holds it; a manual ban of the same prefix stays. Called with mu
// held.
func (b *Bouncer) lift(d Decision) {
	p, err := d.Target()
	if err != nil {
		return
	}
	if ids := b.live[p]; ids != nil {
		delete(ids, d.ID)
		if len(ids) > 0 {
			return // another decision still bans it
		}
		delete(b.live, p)
	}
	if ok, err := b.o.Store.RemoveFrom(p, bans.SourceCrowdSec); ok || err != nil {
		b.stats.Lifted++
		if err != nil {
			b.o.Log.Warn("CrowdSec ban lifted but not saved", "prefix", p.String(), "err", err)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// truncate shortens s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
