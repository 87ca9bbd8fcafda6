// Package metrics exposes Portcullis's Prometheus metrics on the admin
// listener at /metrics.
//
// Place in the request path: after it. The gateway hands every finished
// request's audit entry to ObserveRequest, next to audit/; this package only
// counts what the stages already decided and never decides anything itself.
// Everything else (feed health, audit queue, certificates, bans) is read at
// scrape time through callbacks (SetSources), so nothing here holds on to a
// pipeline that a reload has replaced.
//
// # Cardinality
//
// Label values are bounded by construction: sites and routes come from the
// configuration (SetRoutes; anything else is counted as "_other", a request
// that matched no site as "_none"), status codes are grouped into classes,
// rule ids come from the loaded rule set and are capped at MaxRuleIDs
// distinct values. Client addresses, paths, hosts of requests and reasons
// never become label values: an attacker must not be able to grow the
// series count.
//
// # Series
//
// Per request (ObserveRequest):
//
//	portcullis_requests_total{site,route,code_class}          code_class 1xx..5xx, other
//	portcullis_decisions_total{stage,action}                  stage "_none" for allowed requests
//	portcullis_waf_rule_matches_total{rule_id,paranoia_level,action}
//	                                                          blocked/detected records, each rule once
//	portcullis_waf_duration_seconds{site}                     histogram, requests the WAF evaluated
//	portcullis_upstream_duration_seconds{site}                histogram, requests sent upstream
//	portcullis_upstream_errors_total{site}                    stage proxy, action error
//	portcullis_ratelimit_refusals_total{site}                 stage ratelimit, action blocked
//	portcullis_ban_refusals_total{site}                       stage ban, action blocked
//
// Pushed by their owners: portcullis_config_reloads_total{result},
// portcullis_config_reload_duration_seconds,
// portcullis_config_last_reload_successful,
// portcullis_config_last_reload_success_timestamp_seconds,
// portcullis_audit_store_write_duration_seconds,
// portcullis_audit_store_records_total, portcullis_bans_added_total{source},
// portcullis_challenges_total{result},
// portcullis_challenge_answers_total{stage,result}.
//
// Read at scrape time (SetSources): portcullis_list_entries{list},
// portcullis_list_last_success_timestamp_seconds{list},
// portcullis_list_refresh_failures_total{list}, portcullis_audit_queue_depth,
// portcullis_audit_records_written_total,
// portcullis_audit_records_dropped_total{reason}, portcullis_audit_degraded,
// portcullis_audit_sink_records_written_total{sink},
// portcullis_audit_sink_records_lost_total{sink},
// portcullis_audit_sink_errors_total{sink}, portcullis_audit_sink_failing{sink},
// portcullis_audit_records_aggregated_total,
// portcullis_audit_summary_records_total,
// portcullis_audit_aggregation_overflow_total, portcullis_audit_aggregation_keys,
// portcullis_certificate_expiry_timestamp_seconds{host}, portcullis_bans_active,
// portcullis_alerts_sent_total, portcullis_alerts_failed_total,
// portcullis_alerts_dropped_total, portcullis_inspection_slots,
// portcullis_inspections_in_progress, portcullis_inspections_waiting,
// portcullis_client_connections_open,
// portcullis_client_connections_refused_total{reason},
// portcullis_accept_paused, portcullis_accept_pauses_total,
// portcullis_descriptors_in_use, portcullis_descriptors_limit,
// portcullis_descriptors_reserve.
//
// Always: portcullis_build_info{version,coraza,crs} 1, the Go runtime and
// process collectors, and promhttp's own handler counters. With
// cluster.redis, the connection's own series (portcullis_redis_*, see
// internal/redisconn) are registered on the same registry.
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "portcullis"

// Label values for what the configuration does not name.
const (
	// LabelOther stands for a value outside the known or capped set.
	LabelOther = "_other"
	// LabelNone stands for an empty value: a request that matched no site or
	// route, an allowed request that no stage decided on.
	LabelNone = "_none"
)

// Bounds on label values. They are far above what a configuration or the CRS
// produce; they exist so that a bug or a hostile input cannot turn into
// unbounded memory in this process and in Prometheus.
const (
	// MaxRuleIDs caps distinct rule_id values; further ids count as "other".
	// CRS 4 has well under 1,000 rules.
	MaxRuleIDs = 5000
	// MaxRoutes caps distinct (site, route) pairs when SetRoutes was never
	// called; further pairs count as ("_other", "_other").
	MaxRoutes = 1000
	// MaxSourceItems caps the lists and certificate hosts reported from
	// Sources per scrape.
	MaxSourceItems = 1000
)

// BuildInfo names the versions compiled into the binary, as
// `portcullis version` prints them. Empty fields are reported as "unknown".
type BuildInfo struct {
	Version string // Portcullis itself
	Coraza  string // github.com/corazawaf/coraza/v3
	CRS     string // github.com/corazawaf/coraza-coreruleset/v4 (follows the CRS release)
}

// Metrics owns a private registry (never prometheus.DefaultRegisterer, so
// tests and embedded uses get exactly these series) and the cached series
// of the request path. All methods are safe for concurrent use.
type Metrics struct {
	reg        *prometheus.Registry
	now        func() time.Time // for the reload timestamp; replaced in tests
	maxRoutes  int              // MaxRoutes; lowered in tests
	maxRuleIDs int              // MaxRuleIDs; lowered in tests

	requests       *prometheus.CounterVec
	decisions      *prometheus.CounterVec
	ruleMatches    *prometheus.CounterVec
	wafDuration    *prometheus.HistogramVec
	upstreamDur    *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	banned         *prometheus.CounterVec

	reloads        *prometheus.CounterVec
	reloadDuration prometheus.Histogram
	lastReloadOK   prometheus.Gauge
	lastReloadTime prometheus.Gauge
	storeWrite     prometheus.Histogram
	storeRecords   prometheus.Counter
	bansAdded      *prometheus.CounterVec
	challenges     *prometheus.CounterVec
	// challengeAnswers counts filter hits answered with the challenge.
	challengeAnswers *prometheus.CounterVec

	// Request-path caches, see requests.go.
	routes     atomic.Pointer[routeTable]
	decided    [len(stageNames)][len(actionNames)]atomic.Pointer[prometheus.Counter]
	mu         sync.Mutex // guards byLabel, sites and the routes writers
	byLabel    map[routeKey]*routeSeries
	sites      map[string]*siteSeries
	rules      atomic.Pointer[map[ruleKey]prometheus.Counter] // raw key → series, copy-on-write
	rulesMu    sync.Mutex                                     // guards ruleSeries, ruleIDs and writers of rules
	ruleSeries map[ruleKey]prometheus.Counter                 // label key → series
	ruleIDs    map[int]struct{}                               // ids with a label of their own
	sources    atomic.Pointer[Sources]
	reloadMu   sync.Mutex // orders the two reload gauges
}

// Buckets. WAF evaluation of the CRS takes tens of microseconds for a
// plain GET and milliseconds for large bodies; upstream calls take
// milliseconds to the proxy timeout; audit store batches take from a
// fraction of a millisecond (SQLite, WAL) to seconds (a slow PostgreSQL).
var (
	wafBuckets      = []float64{.000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
	upstreamBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	reloadBuckets   = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	storeBuckets    = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}
)

// New returns Metrics with every series registered on a new registry.
func New(build BuildInfo) *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		now:        time.Now,
		maxRoutes:  MaxRoutes,
		maxRuleIDs: MaxRuleIDs,
		byLabel:    map[routeKey]*routeSeries{},
		sites:      map[string]*siteSeries{},
		ruleSeries: map[ruleKey]prometheus.Counter{},
		ruleIDs:    map[int]struct{}{},
	}
	m.routes.Store(&routeTable{byRaw: map[routeKey]*routeSeries{}})
	m.rules.Store(&map[ruleKey]prometheus.Counter{})

	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	histogramVec := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
		m.reg.MustRegister(g)
		return g
	}

	m.requests = counterVec("requests_total", "Finished requests by configured site, route and status class.", "site", "route", "code_class")
	m.decisions = counterVec("decisions_total", "Finished requests by the stage that decided and its action (stage _none: allowed without a decision).", "stage", "action")
	m.ruleMatches = counterVec("waf_rule_matches_total", "Rules matched in blocked or detected requests, each rule once per request.", "rule_id", "paranoia_level", "action")
	m.wafDuration = histogramVec("waf_duration_seconds", "Time the rule engine spent on a request's headers and body.", wafBuckets, "site")
	m.upstreamDur = histogramVec("upstream_duration_seconds", "Time in the proxy stage: from forwarding a request to the end of the response relayed to the client, streamed bodies included.", upstreamBuckets, "site")
	m.upstreamErrors = counterVec("upstream_errors_total", "Requests that failed in the proxy stage (upstream unreachable, timed out or broken).", "site")
	m.rateLimited = counterVec("ratelimit_refusals_total", "Requests refused by a rate limit.", "site")
	m.banned = counterVec("ban_refusals_total", "Requests refused because the client is banned.", "site")

	m.reloads = counterVec("config_reloads_total", "Configuration reloads by result.", "result")
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.reloadDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "config_reload_duration_seconds", Help: "Time to build a new pipeline on reload, successful or not.", Buckets: reloadBuckets})
	m.reg.MustRegister(m.reloadDuration)
	m.lastReloadOK = gauge("config_last_reload_successful", "1 if the last configuration reload succeeded (or none was tried since start), 0 if it failed and the previous configuration is still serving.")
	m.lastReloadTime = gauge("config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration load, at start or on reload.")
	// The process only starts with a valid configuration: that was the
	// last successful load until a reload says otherwise.
	m.lastReloadOK.Set(1)
	m.lastReloadTime.Set(unixSeconds(m.now()))

	m.storeWrite = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "audit_store_write_duration_seconds", Help: "Time to write one batch of audit records to the audit store.", Buckets: storeBuckets})
	m.reg.MustRegister(m.storeWrite)
	m.storeRecords = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "audit_store_records_total", Help: "Audit records written to the audit store."})
	m.reg.MustRegister(m.storeRecords)
	m.bansAdded = counterVec("bans_added_total", "Bans added, by source (auto: strikes, manual: an operator).", "source")
	m.bansAdded.WithLabelValues("auto")
	m.bansAdded.WithLabelValues("manual")
	m.challenges = counterVec("challenges_total", "Requests on challenged routes, by result: passed (valid pass cookie), solved (answer accepted, pass set), served (challenge page), rejected (wrong, expired or forged answer).", "result")
	for _, r := range []string{"passed", "solved", "served", "rejected"} {
		m.challenges.WithLabelValues(r)
	}
	m.challengeAnswers = counterVec("challenge_answers_total", "Filter hits answered with the challenge instead of a block (action: challenge), by the filter's stage (ratelimit, reputation, geoip) and result: passed (a valid pass let the client past the filter), solved, served, rejected, ceiling (a client with a pass over a rate limit's ceiling).", "stage", "result")
	for _, st := range challengeAnswerStages {
		for _, r := range challengeAnswerResults {
			m.challengeAnswers.WithLabelValues(st, r)
		}
	}

	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Versions compiled into this binary; always 1.",
		ConstLabels: prometheus.Labels{"version": orUnknown(build.Version), "coraza": orUnknown(build.Coraza), "crs": orUnknown(build.CRS)},
	})
	info.Set(1)
	m.reg.MustRegister(info)

	m.reg.MustRegister(&sourceCollector{m: m})
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text or protobuf format, as
// negotiated. A failing collector leaves its series out of the scrape
// instead of failing it whole (ContinueOnError): a broken feed must not hide
// request counts.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // counts its own errors
		// Scrapes are cheap but not free; a runaway scraper must not pile
		// them up on the admin listener.
		MaxRequestsInFlight: 4,
	})
	return promhttp.InstrumentMetricHandler(m.reg, h)
}

// Registry returns the registry, for tests and for registering collectors
// of packages that own their own metrics.
//
// The Observe methods do nothing on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveReload records the outcome of one configuration reload and the time
// it took to build (or fail to build) the new pipeline.
func (m *Metrics) ObserveReload(ok bool, d time.Duration) {
	if m == nil {
		return
	}
	m.reloadDuration.Observe(d.Seconds())
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadTime.Set(unixSeconds(m.now()))
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}

// ObserveStoreWrite records one batch written to the audit store: how long
// it took and how many records it held.
func (m *Metrics) ObserveStoreWrite(d time.Duration, records int) {
	if m == nil {
		return
	}
	m.storeWrite.Observe(d.Seconds())
	if records > 0 {
		m.storeRecords.Add(float64(records))
	}
}

// ObserveBanAdded counts one new ban; source is "auto" or "manual"
// (bans.SourceAuto, bans.SourceManual), anything else counts as "_other".
func (m *Metrics) ObserveBanAdded(source string) {
	if m == nil {
		return
	}
	if source != "auto" && source != "manual" {
		source = LabelOther
	}
	m.bansAdded.WithLabelValues(source).Inc()
}

// ObserveChallenge counts one request on a challenged route by its result
// (challenge.ResultPassed, ResultSolved, ResultServed, ResultRejected).
func (m *Metrics) ObserveChallenge(result string) {
	if m == nil {
		return
	}
	switch result {
	case "passed", "solved", "served", "rejected":
	default:
		result = LabelOther
	}
	m.challenges.WithLabelValues(result).Inc()
}

var (
	challengeAnswerStages  = []string{"ratelimit", "reputation", "geoip"}
	challengeAnswerResults = []string{"passed", "solved", "served", "rejected", "ceiling"}
)

// ObserveChallengeAnswer counts one filter hit answered with the challenge
// by the filter's stage and the result (challenge.Answer); other values
// count as "_other".
func (m *Metrics) ObserveChallengeAnswer(stage, result string) {
	if m == nil {
		return
	}
	if !slices.Contains(challengeAnswerStages, stage) {
		stage = LabelOther
	}
	if !slices.Contains(challengeAnswerResults, result) {
		result = LabelOther
	}
	m.challengeAnswers.WithLabelValues(stage, result).Inc()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// unixSeconds keeps sub-second precision, as Prometheus timestamps do.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
