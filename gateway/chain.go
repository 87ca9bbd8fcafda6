package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/cache"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/clientip"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/connlimit"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/proxy"
	"github.com/portcullis-waf/portcullis/ratelimit"
	"github.com/portcullis-waf/portcullis/reputation"
	"github.com/portcullis-waf/portcullis/waf"
)

// purpose is what a configuration's stages are built for. One builder
// serves all three, so `check` and the review tools judge a configuration
// by the same code as live traffic.
type purpose int

const (
	// serving builds every stage; Pipeline.Start starts their work.
	serving purpose = iota
	// inspecting builds what judges a request by its content alone (for
	// replay and explain): routing, the rule engine and the protocol
	// guard, without the cheap filters (their verdicts depend on traffic
	// and time) and with no upstream.
	inspecting
	// checking builds every stage that can fail on a valid-looking
	// configuration (`portcullis check`): rule sets compiled, rate limits
	// validated, inline and file lists parsed, GeoIP databases opened.
	// No feed is fetched, the ban table is not touched, no upstream pool
	// is made and nothing is started.
	checking
)

// stages is what the stages of one configuration share, and the builder of
// every route's chain (see chain).
type stages struct {
	purpose   purpose
	cfg       *config.Config
	engines   *waf.Cache
	recording waf.Recording
	clients   *clientip.Resolver
	gate      *waf.Gate           // serving: one set per process; nil otherwise
	inflight  *connlimit.InFlight // serving: one table per process; nil otherwise
	sources   *reputation.Sources // nil when inspecting
	bans      *bans.Guard         // nil when off, and unless serving
	limits    *ratelimit.Limits   // nil when inspecting
	// challenger answers routes with challenge: true (nil when
	// inspecting); challengeKey is its key, kept across reloads.
	challenger   *challenge.Challenger
	challengeKey []byte
	observe      func(result string) // counts challenge results; may be nil
	pools        map[string]*proxy.Pool
	router       *router
	problems     config.Errors
}

// buildOptions are what a serving pipeline brings to the builder.
type buildOptions struct {
	log      *slog.Logger
	from     *Pipeline       // the pipeline replaced on a reload; nil at start
	conn     *redisconn.Conn // cluster.redis; nil without
	redactor *audit.Redactor
	// observeChallenge counts challenge results (metrics); may be nil.
	observeChallenge func(result string)
	// observeAnswer counts filter hits answered with the challenge, by
	// stage and result (metrics); may be nil.
	observeAnswer func(stage, result string)
}

// buildStages builds the shared parts of cfg's stages and every route's
// chain. It collects every problem (in st.problems) rather than stopping at
// the first; the caller must close what was built when there are any.
func buildStages(cfg *config.Config, engines *waf.Cache, why purpose, opts buildOptions) *stages {
	st := &stages{purpose: why, cfg: cfg, engines: engines, router: newRouter(), pools: map[string]*proxy.Pool{}}
	st.recording = waf.Recording{Redactor: opts.redactor}
	if why == serving {
		st.recording.BodyLimit = cfg.Audit.BodyLimit
	}
	var err error
	if st.clients, err = clientip.New(cfg.ClientIP.Trusted, cfg.ClientIP.Header); err != nil {
		st.problem("client_ip", err)
	}
	if why != inspecting {
		var fromSources *reputation.Sources
		var fromLimits *ratelimit.Limits
		if opts.from != nil {
			fromSources, fromLimits = opts.from.sources, opts.from.limits
		}
		if st.sources, err = reputation.NewSources(cfg, reputation.SourcesOptions{Log: opts.log, From: fromSources, Check: why == checking}); err != nil {
			st.problems = append(st.problems, config.ErrorList(err)...)
		}
		st.limits = ratelimit.NewLimits(opts.conn, fromLimits)
		st.buildChallenge(opts.from)
		st.observe = opts.observeChallenge
		// Rate limits, deny lists and GeoIP rules with action: challenge
		// answer with the same challenger (and so the same passes) as
		// challenged routes.
		if st.challenger != nil {
			st.limits.ChallengeWith(st.challenger, opts.observeAnswer)
			st.sources.ChallengeWith(st.challenger, opts.observeAnswer)
		}
	}
	if why == serving {
		if from := opts.from; from != nil {
			// server.* cannot change on reload: the slots stay one set,
			// shared by the old pipeline's last requests and the new
			// one's first.
			st.gate, st.inflight = from.gate, from.inflight
		} else {
			st.gate = waf.NewGate(cfg.Server.Inspections, cfg.Server.InspectionWait)
			st.inflight = connlimit.NewInFlight(cfg.Server.ClientRequests, 0)
		}
		if st.clients != nil {
			var fromBans *bans.Guard
			if opts.from != nil {
				fromBans = opts.from.bans
			}
			if st.bans, err = bans.NewGuard(cfg.Bans, bans.GuardOptions{Source: cfg.Source, Conn: opts.conn, From: fromBans, Trusted: st.clients.Trusted, Log: opts.log}); err != nil {
				st.problems = append(st.problems, config.ErrorList(err)...)
			}
		}
		for _, u := range cfg.Upstreams {
			var prev *proxy.Pool
			if opts.from != nil {
				prev = opts.from.pools[u.Name]
			}
			st.pools[u.Name] = proxy.NewPool(u, prev, opts.log)
		}
	}
	// The routes are built even after a problem, so that every problem is
	// found; a chain built without a failed list is never served.
	for i, sc := range cfg.Sites {
		s := &site{name: sc.Name}
		var siteLimits []*ratelimit.Limit
		if st.limits != nil {
			var problems []*ratelimit.LimitError
			siteLimits, problems = st.limits.Build(sc.Name, "", sc.RateLimits)
			st.limitProblems(fmt.Sprintf("sites[%d].filters.rate_limits", i), problems)
		}
		for j, rc := range sc.Routes {
			// Every problem of a route is reported under its field path,
			// formatted here only.
			at := fmt.Sprintf("sites[%d].routes[%d]", i, j)
			h, cached := st.chain(sc, rc, siteLimits, at)
			s.routes = append(s.routes, &route{site: sc.Name, path: rc.Path, handler: h, tls: sc.TLS, cache: cached, pages: sc.Pages})
		}
		st.router.add(sc, s)
	}
	return st
}

// chain composes one route's stages; this is the request's path, read from
// the bottom up (each stage wraps the ones after it):
//
//	allow lists → bans → deny lists → GeoIP → rate limits → requests in flight
//	  → challenge → rule engine → protocol guard → response cache → proxy
//
// Deny lists, GeoIP rules and rate limits with action: challenge answer a
// hit with the challenge page rather than a block, and let a client with a
// pass through (see challenge.Answer); the pass and answer cookies are
// removed before the rule engine, by the challenge stage or, on a route
// without one, by a stage of their own.
//
// An allow-listed client skips the cheap filters and goes on at the rule
// engine, or past it when the site sets allow_skips_waf. A stage that has
// nothing to do for the route (no list, no limit) is not in its chain.
// at is the route's field path, for problems.
func (st *stages) chain(sc *config.SiteConfig, rc *config.RouteConfig, siteLimits []*ratelimit.Limit, at string) (http.Handler, *cache.Cache) {
	var h http.Handler = passed // no upstream unless serving
	if st.purpose == serving {
		fwd := proxy.NewRoute(st.pools[rc.Upstream], rc.Proxy)
		h = fwd
	}
	var cached *cache.Cache
	if rc.Cache != nil && st.purpose != inspecting {
		// After the rule engine and the guard: every request is inspected
		// before a stored response is served.
		cached = cache.New(*rc.Cache, h)
		h = cached
	}
	h = protocolGuard(h)
	uninspected := h
	h = st.inspection(rc, h, at)
	if st.purpose == inspecting {
		return h, nil
	}
	inspected := h
	if rc.Challenge && st.challenger != nil {
		// After the cheap filters (a banned or limited client gets no page
		// to solve), before the rule engine.
		h = challenge.NewStage(st.challenger, st.observe, h)
	} else if st.challenger != nil && filtersChallenge(sc, rc) {
		h = challenge.StripStage(h)
	}
	if st.inflight != nil {
		h = connlimit.NewStage(st.inflight, h)
	}
	limits, problems := st.limits.Build(sc.Name, rc.Path, rc.RateLimits)
	st.limitProblems(at+".rate_limits", problems)
	h = ratelimit.NewStage(siteLimits, limits, h)
	h = st.sources.NewGeoIP(sc.Filters, h)
	h = st.sources.NewDeny(sc.Filters, h)
	h = st.bans.NewStage(h)
	listed := inspected
	if sc.Filters.AllowSkipsWAF {
		listed = uninspected
	}
	h = st.sources.NewAllow(sc.Filters, h, listed)
	return h, cached
}

// filtersChallenge reports whether a filter of the route answers with the
// challenge (action: challenge).
func filtersChallenge(sc *config.SiteConfig, rc *config.RouteConfig) bool {
	if sc.Filters.DenyListsAction == config.ActionChallenge || sc.Filters.GeoIPAction == config.ActionChallenge {
		return true
	}
	for _, l := range append(sc.RateLimits[:len(sc.RateLimits):len(sc.RateLimits)], rc.RateLimits...) {
		if l.Action == config.ActionChallenge {
			return true
		}
	}
	return false
}

// inspection is the rule-engine stage of a route. On a gRPC route a gRPC
// call is judged on its headers only: its body streams to the upstream.
func (st *stages) inspection(rc *config.RouteConfig, next http.Handler, at string) http.Handler {
	engine, err := st.engines.Get(rc.WAF)
	if err != nil {
		st.engineProblem(at+".waf", err)
		return next
	}
	s := waf.NewStage(engine, rc.WAF, next, st.recording)
	if st.gate != nil {
		s = s.WithGate(st.gate)
	}
	if rc.Proxy.GRPC {
		return s.HeadersOnly(proxy.IsGRPC)
	}
	return s
}

// engineProblem reports a rule set that does not compile. When the rule at
// fault is inline in the configuration, its own field is the path (not the
// route's waf field in front of it); routes that share it report it once.
func (st *stages) engineProblem(path string, err error) {
	var ce *waf.CompileError
	if errors.As(err, &ce) && strings.HasSuffix(ce.Origin, ".inline") {
		path, err = ce.Origin, ce.Err
	}
	st.problem(path, err)
}

// limitProblems reports rate limits that cannot be built, each at its own
// field (list is the list's path); a limit named by its path is not named
// twice.
func (st *stages) limitProblems(list string, problems []*ratelimit.LimitError) {
	for _, p := range problems {
		path := fmt.Sprintf("%s[%d]", list, p.Index)
		var err error = p
		if p.Name == path {
			err = p.Err
		}
		st.problem(path, err)
	}
}

// problem records a problem in field path of the configuration, once.
func (st *stages) problem(path string, err error) {
	for _, p := range st.problems {
		if p.Path == path && p.Msg == err.Error() {
			return
		}
	}
	st.problems = append(st.problems, &config.FieldError{File: st.cfg.Source, Path: path, Msg: err.Error()})
}

// err returns the problems found, or nil.
func (st *stages) err() error {
	if len(st.problems) == 0 {
		return nil
	}
	return st.problems
}

// close stops and releases what the builder made (not the engines: the
// cache owns them).
func (st *stages) close() {
	st.sources.Close()
	st.bans.Close()
	for _, pool := range st.pools {
		pool.Close()
	}
}
