package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/every"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
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
	lists    map[string]*reputation.List
	geo      *reputation.GeoIP // nil without databases
	bans     *bans.Store       // nil when bans are off
	shared   *bans.Shared      // the ban table's replication; nil without cluster.redis
	tracker  *bans.Tracker
	strikes  map[int]bool // response statuses that count as strikes
	banFile  string
	drain    every.Loop // applies spooled ban commands, sweeps expired bans
	trusted  func(netip.Addr) bool
	strikeMu sync.RWMutex // guards pending against close
	// pending strikes go to one worker: a ban is saved to disk, and that
	// must not happen on a request's goroutine.
	pending chan strikeReq
	workers sync.WaitGroup
	dropped atomic.Uint64
	log     *slog.Logger

	// What each resource was built from, so a reload can tell whether the
	// next configuration may take it over unchanged.
	listCfg map[string]config.ListConfig
	geoCfg  config.GeoIPConfig
	banCfg  config.BansConfig
	// inherited are resources taken over from the previous pipeline that
	// this one does not own yet (until the reload commits); released are
	// resources a successor took over. close leaves both alone.
	inherited, released map[any]bool
	observers           atomic.Pointer[Observers]
}

type strikeReq struct {
	addr   netip.Addr
	reason string
}

// siteFilters are one site's filters, resolved against the shared lists.
// Its rate limits share one budget across all routes of the site.
type siteFilters struct {
	limits        []*routeLimit
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
	shared  bool   // limiter is shared by the cluster: keys must mean the same in every process
}

// buildCheap opens lists, GeoIP databases and the ban table.
// from is the previous configuration's cheap state on a reload (nil at
// start): lists, GeoIP databases and the ban table built from the same
// settings are taken over, so feeds are not fetched again and bans and
// their strike counts carry on.
//
// With conn (cluster.redis), a new ban table is shared through it.
func buildCheap(cfg *config.Config, trusted func(netip.Addr) bool, log *slog.Logger, from *cheap, conn *redisconn.Conn) (*cheap, error) {
	c := &cheap{lists: map[string]*reputation.List{}, log: log, strikes: map[int]bool{}, trusted: trusted,
		listCfg: map[string]config.ListConfig{}, geoCfg: cfg.GeoIP, banCfg: cfg.Bans, inherited: map[any]bool{}}
	// Lists load side by side: each may wait for a feed (up to its fetch
	// timeout), and a start must not take the sum of those waits.
	lists := make([]*reputation.List, len(cfg.Lists))
	errs := make([]error, len(cfg.Lists))
	var wg sync.WaitGroup
	for i, lc := range cfg.Lists {
		c.listCfg[lc.Name] = lc
		if from != nil && from.lists[lc.Name] != nil && reflect.DeepEqual(from.listCfg[lc.Name], lc) {
			lists[i] = from.lists[lc.Name]
			c.inherited[lists[i]] = true
			continue
		}
		wg.Go(func() {
			var cache string
			if lc.URL != "" {
				cache = filepath.Join(cfg.TLS.StateDir, "feeds", url.PathEscape(lc.Name)+".netset")
			}
			lists[i], errs[i] = reputation.NewList(reputation.Config{
				Name: lc.Name, Inline: lc.Inline, File: lc.File, URL: lc.URL, CacheFile: cache,
				Refresh: lc.Refresh, MaxShrink: lc.MaxShrink, Log: log,
			})
		})
	}
	wg.Wait()
	for i, lc := range cfg.Lists {
		if lists[i] != nil {
			c.lists[lc.Name] = lists[i]
		}
	}
	for i, err := range errs {
		if err != nil {
			c.close()
			return nil, &config.FieldError{File: cfg.Source, Path: fmt.Sprintf("reputation.lists[%d]", i), Msg: err.Error()}
		}
	}
	if from != nil && from.geo != nil && from.geoCfg == cfg.GeoIP {
		c.geo = from.geo
		c.inherited[c.geo] = true
	} else if cfg.GeoIP.CountryDB != "" || cfg.GeoIP.ASNDB != "" {
		g, err := reputation.OpenGeoIP(cfg.GeoIP.CountryDB, cfg.GeoIP.ASNDB, log)
		if err != nil {
			c.close()
			return nil, &config.FieldError{File: cfg.Source, Path: "reputation.geoip", Msg: err.Error()}
		}
		c.geo = g
	}
	if b := cfg.Bans; b.Enabled {
		var store *bans.Store
		var tracker *bans.Tracker
		if from != nil && from.bans != nil && from.banFile == b.StateFile {
			// The same table (it holds the file's lock); the strike counts
			// carry on unless the strike settings changed.
			store = from.bans
			c.shared = from.shared
			c.inherited[store] = true
			if from.banCfg.Threshold == b.Threshold && from.banCfg.Window == b.Window && from.banCfg.Duration == b.Duration && from.banCfg.MaxEntries == b.MaxEntries {
				tracker = from.tracker
			}
		} else {
			var err error
			if store, err = bans.Open(b.StateFile, b.MaxEntries); err != nil {
				c.close()
				return nil, &config.FieldError{File: cfg.Source, Path: "bans.state_file", Msg: err.Error()}
			}
			if conn != nil {
				if c.shared, err = bans.NewShared(conn, store, bans.SharedOptions{StateFile: b.StateFile, Log: log.With("component", "bans")}); err != nil {
					store.Close()
					c.close()
					return nil, &config.FieldError{File: cfg.Source, Path: "bans.state_file", Msg: err.Error()}
				}
			}
		}
		if tracker == nil {
			var err error
			if tracker, err = bans.NewTracker(store, b.Threshold, b.Window, b.Duration, b.MaxEntries); err != nil {
				if !c.inherited[store] {
					if c.shared != nil {
						c.shared.Close()
					}
					store.Close()
				}
				c.close()
				return nil, &config.FieldError{File: cfg.Source, Path: "bans", Msg: err.Error()}
			}
		}
		c.bans, c.tracker, c.banFile = store, tracker, b.StateFile
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
	if c.shared != nil {
		c.shared.Start() // once per table: a reload that took it over finds it running
	}
	if c.bans != nil {
		// `portcullis bans add|remove` spools commands; apply them now (they
		// may have waited for a start) and every 2 s, and drop expired bans
		// from the state file.
		upkeep := func(context.Context) {
			if n, err := c.bans.Drain(c.banFile, time.Now()); err != nil {
				c.log.Error("ban commands could not all be applied", "err", err)
			} else if n > 0 {
				c.log.Info("ban commands applied", "count", n)
			}
			if _, err := c.bans.Sweep(time.Now()); err != nil {
				c.log.Error("expired bans could not be removed from the state file", "err", err)
			}
		}
		upkeep(context.Background())
		c.drain.Start(2*time.Second, upkeep)
		c.pending = make(chan strikeReq, 4096)
		c.workers.Add(1)
		go func(pending chan strikeReq) {
			defer c.workers.Done()
			for s := range pending {
				if banned, err := c.tracker.Strike(s.addr, s.reason, time.Now()); err != nil {
					c.log.Error("ban could not be saved", "client", s.addr.String(), "err", err)
				} else if banned {
					c.log.Warn("client banned", "client", s.addr.String(), "reason", s.reason)
					if o := c.observers.Load(); o != nil {
						if b, ok := c.bans.Banned(s.addr, time.Now()); ok {
							o.Metrics.ObserveBanAdded(bans.SourceAuto)
							o.Alerts.NewBan(b.Prefix.String(), b.Reason, b.Until)
						}
					}
				}
			}
		}(c.pending)
	}
}

func (c *cheap) close() {
	c.drain.Stop()
	c.strikeMu.Lock()
	if c.pending != nil {
		close(c.pending)
		c.pending = nil
	}
	c.strikeMu.Unlock()
	c.workers.Wait()
	for _, l := range c.lists {
		if c.owns(l) {
			l.Stop()
		}
	}
	if c.geo != nil && c.owns(c.geo) {
		c.geo.Stop()
	}
	if c.bans != nil && c.owns(c.bans) {
		// After the strike workers: their last bans are on disk (and in
		// Redis, or its outbox) first.
		if c.shared != nil {
			c.shared.Close()
		}
		_ = c.bans.Close()
	}
}

// owns reports whether close should stop or close resource r.
func (c *cheap) owns(r any) bool { return !c.inherited[r] && !c.released[r] }

// takeOver commits a reload: c becomes the owner of what it inherited from
// prev, and prev stops its ban upkeep at once, so the spool is drained by
// one pipeline only. prev keeps serving its in-flight requests.
func (c *cheap) takeOver(prev *cheap) {
	prev.drain.Stop()
	prev.released = c.inherited
	c.inherited = map[any]bool{}
}

func (c *cheap) site(fc config.FiltersConfig, limits []*routeLimit) siteFilters {
	sf := siteFilters{limits: limits, allowSkipsWAF: fc.AllowSkipsWAF, countryAllow: fc.CountryAllow, countryDeny: fc.CountryDeny, denyASNs: fc.DenyASNs}
	for _, n := range fc.AllowLists {
		sf.allow = append(sf.allow, c.lists[n])
	}
	for _, n := range fc.DenyLists {
		sf.deny = append(sf.deny, c.lists[n])
	}
	return sf
}

var routeSeed = maphash.MakeSeed()

// prev holds the limiters of the previous configuration by limitKey (nil at
// start): an unchanged limit keeps its counters across a reload, so a reload
// is no way to reset a client's budget. Every limiter used is recorded in
// next (when not nil) for the reload after this one.
//
// With conn (cluster.redis), limits are shared by the cluster: their
// counters live in Redis under an id derived from the limit's settings, so
// instances with the same limit share one budget.
func newRouteLimits(site, path string, limits []config.RateLimitConfig, prev, next map[string]ratelimit.Limiter, conn *redisconn.Conn) ([]*routeLimit, error) {
	var out []*routeLimit
	route := maphash.String(routeSeed, site+"\x00"+path)
	if conn != nil {
		route = ratelimit.RouteID(site, path)
	}
	for _, rc := range limits {
		rule := ratelimit.Rule{Rate: rc.Rate, Burst: rc.Burst}
		if err := rule.Validate(); err != nil {
			return nil, fmt.Errorf("rate limit %s: %w", rc.Name, err)
		}
		key := limitKey(site, path, rc)
		limiter := prev[key]
		if limiter == nil {
			if conn != nil {
				sum := sha256.Sum256([]byte(key))
				limiter = ratelimit.NewRedis(conn, rule, ratelimit.RedisOptions{ID: hex.EncodeToString(sum[:8]), MaxKeys: rc.MaxKeys})
			} else {
				limiter = ratelimit.NewMemory(rule, rc.MaxKeys)
			}
		}
		if next != nil {
			next[key] = limiter
		}
		out = append(out, &routeLimit{cfg: rc, rule: rule, limiter: limiter, route: route, shared: conn != nil})
	}
	return out, nil
}

// limitKey identifies a limit and every setting that shapes its counters.
func limitKey(site, path string, rc config.RateLimitConfig) string {
	return fmt.Sprintf("%s\x00%s\x00%#v", site, path, rc)
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
	// The site's shared budgets first, then the route's own; no slice is
	// built per request.
	for _, group := range [2][]*routeLimit{sf.limits, limits} {
		for _, rl := range group {
			d := rl.limiter.Allow(rl.key(r, addr), now)
			if !d.Allowed {
				e.Block(audit.StageRateLimit, fmt.Sprintf("rate limit %s (%g/s, burst %d) exceeded", rl.cfg.Name, rl.cfg.Rate, rl.cfg.Burst))
				h := http.Header{}
				ratelimit.SetHeaders(h, d, rl.rule)
				respond.ErrorWithHeaders(w, r, http.StatusTooManyRequests, e.ID, h)
				return false, false
			}
		}
	}
	return true, false
}

// key is the budget a request draws from. A header key falls back to the
// client address when the header is missing, empty or sent more than once:
// otherwise leaving it out, or rotating it, would escape the limit.
func (rl *routeLimit) key(r *http.Request, addr netip.Addr) ratelimit.Key {
	ipKey := ratelimit.KeyFromAddr(addr, rl.cfg.IPv6Prefix)
	switch rl.cfg.Key {
	case config.KeyHeader:
		if vs := r.Header.Values(rl.cfg.Header); len(vs) == 1 && vs[0] != "" {
			if rl.shared {
				return ratelimit.SharedKeyFromString(vs[0])
			}
			return ratelimit.KeyFromString(vs[0])
		}
		return rl.withRoute(ipKey)
	case config.KeyIPRoute:
		return rl.withRoute(ipKey)
	default:
		return ipKey
	}
}

func (rl *routeLimit) withRoute(k ratelimit.Key) ratelimit.Key {
	if rl.shared {
		return k.SharedWith(rl.route)
	}
	return k.With(rl.route)
}

func (c *cheap) refuse(w http.ResponseWriter, r *http.Request, e *audit.Entry, stage, reason string) {
	e.Block(stage, reason)
	respond.Error(w, r, http.StatusForbidden, e.ID)
}

// strike reports misbehaviour after the response: a WAF block, or a status
// the operator listed when it came from the upstream. Portcullis's own
// refusals (bans, lists, limits, unknown hosts) never count: a banned client
// would otherwise renew its own ban. Allow-listed clients and trusted
// proxies (a load balancer's own requests) never collect strikes.
// criticalScore is the CRS anomaly score of one critical finding.
const criticalScore = 5

func (c *cheap) strike(e *audit.Entry, addr netip.Addr) {
	if c.tracker == nil || !addr.IsValid() || e.AllowListed != "" || c.trusted(addr) {
		return
	}
	var reason string
	switch {
	case e.Action == audit.ActionBlocked && e.Stage == audit.StageWAF:
		reason = "waf block"
	case e.Action == audit.ActionBlocked && e.Stage == audit.StageProtocol && e.InboundScore >= criticalScore:
		// Refused as malformed first, but the rules found an attack in it
		// too: a strike like any WAF block. Malformed requests alone are
		// not strikes; some broken but honest clients send them.
		reason = "waf findings in a malformed request"
	case e.Action != audit.ActionBlocked && e.Upstream != "" && c.strikes[e.Status]:
		reason = "status " + strconv.Itoa(e.Status)
	default:
		return
	}
	c.strikeMu.RLock()
	defer c.strikeMu.RUnlock()
	if c.pending == nil {
		return
	}
	select {
	case c.pending <- strikeReq{addr: addr, reason: reason}:
	default:
		c.dropped.Add(1) // a flood of strikes: the worker catches up later
	}
}
