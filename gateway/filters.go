package gateway

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/every"
	"github.com/portcullis-waf/portcullis/ratelimit"
	"github.com/portcullis-waf/portcullis/reputation"
	"github.com/portcullis-waf/portcullis/respond"
)

// cheap holds the shared state of the cheap stages of one configuration:
// the named IP lists, the GeoIP databases and the ban table. They run before
// the rule engine, in this order: allow lists (which skip the rest), bans,
// deny lists, GeoIP rules, rate limits. A banned or listed client never
// costs a rule-engine evaluation.
type cheap struct {
	lists   map[string]*reputation.List
	geo     *reputation.GeoIP // nil without databases
	bans    *bans.Store       // nil when bans are off
	tracker *bans.Tracker
	strikes map[int]bool // response statuses that count as strikes
	banFile string
	drain   every.Loop // applies spooled ban commands
	log     *slog.Logger
}

// siteFilters are one site's filters, resolved against the shared lists.
type siteFilters struct {
	allow, deny   []*reputation.List
	allowSkipsWAF bool
	countryAllow  []string
	countryDeny   []string
	denyASNs      []uint
}

// routeLimit is one rate limit of a route with its limiter.
type routeLimit struct {
	cfg     config.RateLimitConfig
	rule    ratelimit.Rule
	limiter ratelimit.Limiter
	route   uint64 // for ip_route keys
}

// buildCheap opens lists, GeoIP databases and the ban table.
func buildCheap(cfg *config.Config, log *slog.Logger) (*cheap, error) {
	c := &cheap{lists: map[string]*reputation.List{}, log: log, strikes: map[int]bool{}}
	for i, lc := range cfg.Lists {
		l, err := reputation.NewList(reputation.Config{
			Name: lc.Name, Inline: lc.Inline, File: lc.File, URL: lc.URL,
			Refresh: lc.Refresh, MaxShrink: lc.MaxShrink, Log: log,
		})
		if err != nil {
			c.close()
			return nil, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("reputation.lists[%d]", i), Msg: err.Error()}
		}
		c.lists[lc.Name] = l
	}
	if cfg.GeoIP.CountryDB != "" || cfg.GeoIP.ASNDB != "" {
		g, err := reputation.OpenGeoIP(cfg.GeoIP.CountryDB, cfg.GeoIP.ASNDB, log)
		if err != nil {
			c.close()
			return nil, &config.FieldError{File: cfg.Source, Path: "reputation.geoip", Msg: err.Error()}
		}
		c.geo = g
	}
	if b := cfg.Bans; b.Enabled {
		store, err := bans.Open(b.StateFile, b.MaxEntries)
		if err != nil {
			c.close()
			return nil, &config.FieldError{File: cfg.Source, Path: "bans.state_file", Msg: err.Error()}
		}
		tracker, err := bans.NewTracker(store, b.Threshold, b.Window, b.Duration, b.MaxEntries)
		if err != nil {
			c.close()
			return nil, &config.FieldError{File: cfg.Source, Path: "bans", Msg: err.Error()}
		}
		c.bans, c.tracker, c.banFile = store, tracker, b.StateFile
		if _, err := store.Drain(b.StateFile, time.Now()); err != nil {
			log.Error("ban commands could not all be applied", "err", err)
		}
		for _, code := range b.StatusCodes {
			c.strikes[code] = true
		}
	}
	return c, nil
}

// start begins feed refreshes and file watching.
func (c *cheap) start() {
	for _, l := range c.lists {
		l.Start()
	}
	if c.geo != nil {
		c.geo.Start(time.Minute)
	}
	if c.bans != nil {
		// `portcullis bans add|remove` spools commands; apply them.
		c.drain.Start(2*time.Second, func(context.Context) {
			if n, err := c.bans.Drain(c.banFile, time.Now()); err != nil {
				c.log.Error("ban commands could not all be applied", "err", err)
			} else if n > 0 {
				c.log.Info("ban commands applied", "count", n)
			}
		})
	}
}

func (c *cheap) close() {
	c.drain.Stop()
	for _, l := range c.lists {
		l.Stop()
	}
	if c.geo != nil {
		c.geo.Stop()
	}
}

func (c *cheap) site(fc config.FiltersConfig) siteFilters {
	sf := siteFilters{allowSkipsWAF: fc.AllowSkipsWAF, countryAllow: fc.CountryAllow, countryDeny: fc.CountryDeny, denyASNs: fc.DenyASNs}
	for _, n := range fc.AllowLists {
		sf.allow = append(sf.allow, c.lists[n])
	}
	for _, n := range fc.DenyLists {
		sf.deny = append(sf.deny, c.lists[n])
	}
	return sf
}

var routeSeed = maphash.MakeSeed()

func newRouteLimits(site, path string, limits []config.RateLimitConfig) ([]*routeLimit, error) {
	var out []*routeLimit
	route := maphash.String(routeSeed, site+"\x00"+path)
	for _, rc := range limits {
		rule := ratelimit.Rule{Rate: rc.Rate, Burst: rc.Burst}
		if err := rule.Validate(); err != nil {
			return nil, fmt.Errorf("rate limit %s: %w", rc.Name, err)
		}
		out = append(out, &routeLimit{cfg: rc, rule: rule, limiter: ratelimit.NewMemory(rule, rc.MaxKeys), route: route})
	}
	return out, nil
}

// locate adds country and ASN to the record when databases are configured.
func (c *cheap) locate(e *audit.Entry, addr netip.Addr) {
	if c.geo == nil || !addr.IsValid() {
		return
	}
	loc := c.geo.Lookup(addr)
	e.Country, e.ASN, e.ASOrg = loc.Country, loc.ASN, loc.ASOrg
}

// filter runs the cheap stages for a request. It answers and returns false
// when the request is refused; skipWAF is true for an allow-listed client on
// a site that lets those skip the rule engine.
func (c *cheap) filter(w http.ResponseWriter, r *http.Request, e *audit.Entry, addr netip.Addr, sf *siteFilters, limits []*routeLimit) (ok, skipWAF bool) {
	if !addr.IsValid() {
		return true, false
	}
	for _, l := range sf.allow {
		if entry, hit := l.Lookup(addr); hit {
			e.AllowListed = l.Name() + ": " + entry.String()
			return true, sf.allowSkipsWAF
		}
	}
	now := time.Now()
	if c.bans != nil {
		if ban, hit := c.bans.Banned(addr, now); hit {
			c.refuse(w, r, e, audit.StageBan, fmt.Sprintf("banned (%s) until %s: %s", ban.Prefix, ban.Until.UTC().Format(time.RFC3339), ban.Reason))
			return false, false
		}
	}
	for _, l := range sf.deny {
		if entry, hit := l.Lookup(addr); hit {
			c.refuse(w, r, e, audit.StageReputation, fmt.Sprintf("on deny list %s (entry %s)", l.Name(), entry))
			return false, false
		}
	}
	if len(sf.countryAllow) > 0 && !slices.Contains(sf.countryAllow, e.Country) {
		c.refuse(w, r, e, audit.StageGeoIP, fmt.Sprintf("country %q is not allowed", e.Country))
		return false, false
	}
	if e.Country != "" && slices.Contains(sf.countryDeny, e.Country) {
		c.refuse(w, r, e, audit.StageGeoIP, fmt.Sprintf("country %s is denied", e.Country))
		return false, false
	}
	if e.ASN != 0 && slices.Contains(sf.denyASNs, e.ASN) {
		c.refuse(w, r, e, audit.StageGeoIP, fmt.Sprintf("AS%d (%s) is denied", e.ASN, e.ASOrg))
		return false, false
	}
	for _, rl := range limits {
		key, keyed := rl.key(r, addr)
		if !keyed {
			continue // key: header and the request has none: not limited by this rule
		}
		d := rl.limiter.Allow(key, now)
		if !d.Allowed {
			e.Block(audit.StageRateLimit, fmt.Sprintf("rate limit %s (%g/s, burst %d) exceeded", rl.cfg.Name, rl.cfg.Rate, rl.cfg.Burst))
			h := http.Header{}
			ratelimit.SetHeaders(h, d, rl.rule)
			respond.ErrorWithHeaders(w, r, http.StatusTooManyRequests, e.ID, h)
			return false, false
		}
	}
	return true, false
}

func (rl *routeLimit) key(r *http.Request, addr netip.Addr) (ratelimit.Key, bool) {
	switch rl.cfg.Key {
	case config.KeyHeader:
		v := r.Header.Get(rl.cfg.Header)
		return ratelimit.KeyFromString(v), v != ""
	case config.KeyIPRoute:
		return ratelimit.KeyFromAddr(addr, rl.cfg.IPv6Prefix).With(rl.route), true
	default:
		return ratelimit.KeyFromAddr(addr, rl.cfg.IPv6Prefix), true
	}
}

func (c *cheap) refuse(w http.ResponseWriter, r *http.Request, e *audit.Entry, stage, reason string) {
	e.Block(stage, reason)
	respond.Error(w, r, http.StatusForbidden, e.ID)
}

// strike reports misbehaviour after the response: a WAF block or a status
// the operator listed. Allow-listed clients never collect strikes.
func (c *cheap) strike(e *audit.Entry, addr netip.Addr) {
	if c.tracker == nil || !addr.IsValid() || e.AllowListed != "" {
		return
	}
	var reason string
	switch {
	case e.Action == audit.ActionBlocked && e.Stage == audit.StageWAF:
		reason = "waf block"
	case c.strikes[e.Status]:
		reason = "status " + strconv.Itoa(e.Status)
	default:
		return
	}
	if banned, err := c.tracker.Strike(addr, reason, time.Now()); err != nil {
		c.log.Error("ban could not be saved", "client", addr.String(), "err", err)
	} else if banned {
		c.log.Warn("client banned", "client", addr.String(), "reason", reason)
	}
}
