// Package gateway assembles the request path. It is the one place where the
// stages are wired together, in the order of ARCHITECTURE.md:
//
//	[connlimit admission, tlsmgr handshake, wire] → request id + audit entry + client address (clientip)
//	  → protocol checks (condemn) → site and route → HTTPS redirect / HSTS
//	  → the route's chain (chain.go):
//	      allow lists → bans → deny lists → GeoIP → rate limits → requests in flight
//	      → waf → protocol guard → cache → proxy
//	  ↘ audit record and strikes when the response ends
//
// Every stage lives in its own package with one shape: built from its
// validated configuration, wrapping next, owning its goroutines and its
// reload takeover (reputation/, bans/, ratelimit/, connlimit/, waf/, cache/,
// proxy/). gateway keeps the composition (one builder for serving, `check`
// and the review tools' Inspector), routing and the protocol checks.
//
// The site comes before the cheap filters because allow lists, deny lists,
// GeoIP rules and limits are per site; every filter is a map or table lookup,
// so a refused client still costs no rule evaluation.
//
// A Pipeline is built completely from an immutable *config.Config — every rule
// set compiled, every upstream pool created — before it serves anything, so a
// bad configuration never half-applies.
package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis-waf/portcullis/alerts"
	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/clientip"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/connlimit"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/metrics"
	"github.com/portcullis-waf/portcullis/proxy"
	"github.com/portcullis-waf/portcullis/ratelimit"
	"github.com/portcullis-waf/portcullis/reputation"
	"github.com/portcullis-waf/portcullis/respond"
	"github.com/portcullis-waf/portcullis/waf"
	"github.com/portcullis-waf/portcullis/wire"
)

// Pipeline is the request handler for one configuration.
type Pipeline struct {
	Config   *config.Config
	router   *router
	pools    map[string]*proxy.Pool
	engines  *waf.Cache
	redactor *audit.Redactor
	records  *audit.Writer
	logAll   bool
	sample   float64 // fraction of allowed requests recorded
	log      *slog.Logger
	https    string // port of the https listener for redirects, "" for 443
	clients  *clientip.Resolver
	sources  *reputation.Sources // lists and GeoIP databases
	bans     *bans.Guard         // nil when bans are off
	limits   *ratelimit.Limits   // handed to the next reload
	observe  *Observers          // never nil after Build
	active   atomic.Int64        // requests in ServeHTTP, for Retire
	gate     *waf.Gate           // inspection slots, one set per process
	inflight *connlimit.InFlight // requests in flight per client, one table per process
	redis    *redisconn.Conn     // cluster.redis, one per process; nil without

	challengeKey []byte // the challenge's key, kept across reloads when random

	// now is the clock read once per request: the record's time and the
	// rate limits' reading. Tests may replace it before serving.
	now func() time.Time
}

var _ http.Handler = (*Pipeline)(nil)

// Build compiles every stage for cfg. engines may hold rule sets compiled for
// a previous configuration (reload); pass nil to start afresh. records is
// where audit entries go.
func Build(cfg *config.Config, engines *waf.Cache, records *audit.Writer, log *slog.Logger) (*Pipeline, error) {
	return BuildShared(cfg, engines, records, log, nil)
}

// BuildShared is Build for an instance of a cluster: rate limits and bans
// are shared through conn (cluster.redis), which the caller owns and which
// outlives every pipeline built on it (reloads keep it). A nil conn is Build.
func BuildShared(cfg *config.Config, engines *waf.Cache, records *audit.Writer, log *slog.Logger, conn *redisconn.Conn) (*Pipeline, error) {
	if engines == nil {
		engines = waf.NewCache()
	}
	return build(cfg, engines, records, log, nil, conn)
}

// build assembles a pipeline; from is the pipeline it replaces on a reload.
// conn is the process's Redis connection (nil without cluster.redis). It
// returns every problem found (config.Errors), and then nothing runs.
func build(cfg *config.Config, engines *waf.Cache, records *audit.Writer, log *slog.Logger, from *Pipeline, conn *redisconn.Conn) (*Pipeline, error) {
	if log == nil {
		log = slog.Default()
	}
	redactor := audit.NewRedactor(cfg.Audit.RedactHeaders, cfg.Audit.RedactArgs)
	var p *Pipeline // set below, before any request can reach a stage
	st := buildStages(cfg, engines, serving, buildOptions{log: log, from: from, conn: conn, redactor: redactor,
		// Observe may replace the observers after Build: read them per request.
		observeChallenge: func(result string) { p.observe.Metrics.ObserveChallenge(result) },
		observeAnswer:    func(stage, result string) { p.observe.Metrics.ObserveChallengeAnswer(stage, result) }})
	if err := st.err(); err != nil {
		st.close()
		return nil, err
	}
	p = &Pipeline{
		Config:   cfg,
		router:   st.router,
		pools:    st.pools,
		engines:  engines,
		redactor: redactor,
		records:  records,
		observe:  &Observers{},
		logAll:   cfg.Audit.LogAll,
		sample:   cfg.Audit.SampleAllowed,
		log:      log,
		https:    httpsPort(cfg),
		redis:    conn,
		clients:  st.clients,
		sources:  st.sources,
		bans:     st.bans,
		limits:   st.limits,
		gate:     st.gate,
		inflight: st.inflight,

		challengeKey: st.challengeKey,
		now:          time.Now,
	}
	return p, nil
}

// Gate returns the inspection slots shared by every route (for metrics).
func (p *Pipeline) Gate() *waf.Gate { return p.gate }

// Engines returns the rule-set cache, for reuse by the next reload.
func (p *Pipeline) Engines() *waf.Cache { return p.engines }

// Observers watch every finished request: Prometheus metrics and alerts.
// Both live as long as the process and are handed from pipeline to pipeline
// on reload. A nil field observes nothing.
type Observers struct {
	Metrics *metrics.Metrics
	Alerts  *alerts.Alerter
}

// Observe sets the observers; call it before Start.
func (p *Pipeline) Observe(o Observers) {
	p.observe = &o
	p.bans.OnBan(func(b bans.Ban) {
		o.Metrics.ObserveBanAdded(bans.SourceAuto)
		o.Alerts.NewBan(b.Prefix.String(), b.Reason, b.Until)
	})
	if o.Metrics != nil {
		routes := map[string][]string{}
		for _, sc := range p.Config.Sites {
			for _, rc := range sc.Routes {
				routes[sc.Name] = append(routes[sc.Name], rc.Path)
			}
		}
		o.Metrics.SetRoutes(routes)
	}
}

// ListStat is one reputation list's health, for metrics and alerts.
type ListStat = reputation.ListStat

// ListStats returns the health of every list, by name.
func (p *Pipeline) ListStats() map[string]ListStat { return p.sources.ListStats() }

// Bans returns the ban table, or nil when bans are off. A reload keeps the
// same table, so the admin listener may hold it for the process's life.
func (p *Pipeline) Bans() *bans.Store { return p.bans.Store() }

// ActiveRequests is the number of requests this pipeline is serving.
func (p *Pipeline) ActiveRequests() int64 { return p.active.Load() }

// Start begins the background work of the stages (feed refreshes, list
// and GeoIP file watching, ban upkeep and strikes).
func (p *Pipeline) Start() {
	p.sources.Start()
	p.bans.Start()
}

// Close stops that work and releases upstream connections. Engines are
// owned by the cache.
func (p *Pipeline) Close() {
	p.sources.Close()
	p.bans.Close()
	for _, pool := range p.pools {
		pool.Close()
	}
}

// ServeHTTP runs one request through the stages.
func (p *Pipeline) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.active.Add(1)
	defer p.active.Add(-1)
	p.serve(w, r)
}

// serve runs one request; the caller has counted it in p.active.
func (p *Pipeline) serve(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	// The record and the response recorder live exactly as long as each
	// other (until the record is written): one allocation.
	served := &servedRequest{rec: recorder{ResponseWriter: w, head: r.Method == http.MethodHead, declared: -1}}
	entry, rec := &served.entry, &served.rec
	client := p.fillEntry(entry, r, start)
	w.Header().Set(respond.RequestIDHeader, entry.ID)
	r = r.WithContext(audit.WithEntry(r.Context(), entry))
	defer p.complete(rec, r, entry, client, start)
	if p.records.Refusing() {
		// audit.on_failure: refuse, and the audit cannot be written (a
		// full disk): nothing passes unrecorded. One atomic load.
		entry.Fail(audit.StageGateway, "audit records cannot be written (audit.on_failure: refuse)")
		respond.Error(rec, r, http.StatusServiceUnavailable, entry.ID)
		return
	}
	p.sources.Locate(entry)

	restoreEmptyHost(r)
	r = condemn(r, entry)
	rt := p.router.lookup(r)
	if rt == nil {
		entry.Block(audit.StageGateway, "no site or route for host "+strconv.Quote(r.Host))
		respond.Error(rec, r, http.StatusNotFound, entry.ID)
		return
	}
	entry.Site, entry.Route = rt.site, rt.path
	if rt.pages != nil {
		// Every refusal from here on, whichever stage writes it, uses the
		// site's own page.
		r = r.WithContext(respond.WithPages(r.Context(), rt.pages))
	}
	if st := rt.tls; st != nil {
		if r.TLS == nil && st.RedirectHTTP && respond.Condemned(r.Context()) == 0 {
			p.redirectToHTTPS(rec, r)
			return
		}
		if r.TLS != nil && st.HSTS != "" {
			rec.Header().Set("Strict-Transport-Security", st.HSTS)
		}
	}
	rt.handler.ServeHTTP(rec, r)
}

// redirectToHTTPS answers a plain-HTTP request for a site with TLS with a
// permanent redirect that keeps method and body (308).
func (p *Pipeline) redirectToHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if p.https != "" {
		host += ":" + p.https
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
}

// restoreEmptyHost puts back a Host header that was sent empty: net/http
// drops it, which makes "Host:" look like no Host at all, and the rules tell
// the two apart (CRS 920280 missing, 920290 empty). HTTP/1.1 requests cannot
// lack Host (net/http refuses them), so an empty r.Host there means empty;
// for HTTP/1.0 the raw head decides.
func restoreEmptyHost(r *http.Request) {
	if r.Host != "" || r.ProtoMajor != 1 || rejectedFrom(r.Context()) != nil {
		return // a refused request's head was parsed from the raw bytes already
	}
	present := r.ProtoMinor >= 1
	if !present {
		present, _ = wire.HasHeader(r.Context(), "Host")
	}
	if present {
		r.Header["Host"] = []string{""}
	}
}

// complete fills in the outcome and hands the entry to the audit writer. It
// also turns a panic in any stage into a 500 and an error record instead of a
// dropped connection with no trace.
func (p *Pipeline) complete(rec *recorder, r *http.Request, entry *audit.Entry, client netip.Addr, start time.Time) {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler { // deliberate abort (e.g. upstream stream broke): keep it
			entry.Fail(audit.StageProxy, "response aborted mid-stream")
			p.finish(rec, r, entry, client, start)
			panic(v)
		}
		p.log.Error("panic while serving request", "request_id", entry.ID, "panic", v)
		entry.Fail(audit.StageGateway, fmt.Sprintf("internal error: %v", v))
		if !rec.wroteHeader {
			respond.Error(rec, r, http.StatusInternalServerError, entry.ID)
		}
	}
	p.finish(rec, r, entry, client, start)
}

func (p *Pipeline) finish(rec *recorder, r *http.Request, entry *audit.Entry, client netip.Addr, start time.Time) {
	if entry.Status == 0 {
		entry.Status = rec.status
		if entry.Status == 0 {
			entry.Status = http.StatusOK
		}
	}
	entry.BytesSent = rec.bytes
	entry.Durations.Total = p.now().Sub(start).Microseconds()
	if entry.Action == "" {
		entry.Action = audit.ActionAllowed
	}
	if entry.Decided() {
		// The draw was made up front so the WAF stage keeps the body of a
		// request that may end up sampled; a decided record is kept for
		// its decision, and must not claim otherwise (issue 13).
		entry.Sampled = false
	}
	p.bans.Strike(entry)
	p.observe.Metrics.ObserveRequest(entry)
	if entry.Action == audit.ActionBlocked && entry.Stage != audit.StageGateway {
		// An unknown host (stage gateway) is a misdirected request, not an
		// attack; everything else blocked counts towards a spike.
		p.observe.Alerts.ObserveBlock(time.Now())
	}
	if p.Config.Log.Access {
		p.accessLog(r, entry)
	}
	if !entry.Decided() && !p.logAll && !entry.Sampled {
		return
	}
	entry.URI = p.redactor.URI(entry.URI)
	entry.Headers = p.redactor.Headers(r.Header)
	if r.Host != "" {
		entry.Headers["Host"] = []string{r.Host}
	}
	p.records.Submit(entry)
}

// accessLog writes the optional access-log line. The query string is left
// out: it may carry credentials, and the audit record has it redacted.
func (p *Pipeline) accessLog(r *http.Request, e *audit.Entry) {
	path, _, _ := strings.Cut(e.URI, "?")
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "access",
		slog.String("request_id", e.ID), slog.String("client", e.ClientIP), slog.String("method", e.Method),
		slog.String("host", e.Host), slog.String("path", path), slog.String("protocol", e.Protocol),
		slog.Int("status", e.Status), slog.Int64("bytes", e.BytesSent), slog.Int64("duration_us", e.Durations.Total),
		slog.String("action", e.Action), slog.String("stage", e.Stage), slog.String("site", e.Site))
}

// servedRequest is what the gateway allocates per request.
type servedRequest struct {
	entry audit.Entry
	rec   recorder
}

// newEntry starts the request's record with the client address decided by
// clientip: the TCP peer, or what a trusted proxy in front says.
func (p *Pipeline) newEntry(r *http.Request, start time.Time) (*audit.Entry, netip.Addr) {
	e := &audit.Entry{}
	return e, p.fillEntry(e, r, start)
}

// fillEntry is newEntry into a zero entry e.
func (p *Pipeline) fillEntry(e *audit.Entry, r *http.Request, start time.Time) netip.Addr {
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	*e = audit.Entry{
		ID: newRequestID(), Time: start.UTC(),
		Host: r.Host, Method: r.Method, URI: uri, Protocol: r.Proto,
		// Drawn up front so the WAF stage knows to keep the body; finish
		// clears it again when a stage decided on the request.
		Sampled: p.sample > 0 && mathrand.Float64() < p.sample,
	}
	client := p.clients.Resolve(r.RemoteAddr, r.Header)
	if !client.Addr.IsValid() { // not an IP peer (a Unix socket): keep what there is
		e.ClientIP, e.ClientPort = splitAddr(r.RemoteAddr)
		return client.Addr
	}
	e.Addr = client.Addr
	e.ClientIP, e.ClientPort = client.Addr.String(), client.Port
	if client.ViaProxy {
		e.Peer = client.Peer.String()
	}
	return client.Addr
}

func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// newRequestID returns 16 random bytes in hex: unguessable, so a block page's
// id cannot be used to probe other clients' records.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
