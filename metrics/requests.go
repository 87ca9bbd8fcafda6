package metrics

import (
	"maps"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/prometheus/client_golang/prometheus"
)

// ObserveRequest counts one finished request. The gateway calls it once for
// every request, allowed or not, after the entry is complete (status,
// action, stage, durations), whether or not the record is written to the
// audit log.
//
// It is on the hot path: the series of a (site, route) pair are resolved
// once and kept in a copy-on-write map read without locks, the stage and
// action series in a fixed array, so the common case is a map lookup, a few
// atomic adds and histogram observations, and no allocation. A nil
// *Metrics does nothing, so the gateway needs no check when metrics are off.
func (m *Metrics) ObserveRequest(e *audit.Entry) {
	if m == nil {
		return
	}
	rs := m.route(e.Site, e.Route)
	rs.requests[codeClass(e.Status)].Inc()
	m.decision(e.Stage, e.Action).Inc()

	site := rs.site
	if e.Durations.WAF > 0 {
		site.waf.Observe(float64(e.Durations.WAF) / 1e6)
	}
	if e.Upstream != "" || e.Durations.Upstream > 0 {
		site.upstream.Observe(float64(e.Durations.Upstream) / 1e6)
	}
	switch {
	case e.Stage == audit.StageProxy && e.Action == audit.ActionError:
		site.upstreamErrors.Inc()
	case e.Stage == audit.StageRateLimit && e.Action == audit.ActionBlocked:
		site.rateLimited.Inc()
	case e.Stage == audit.StageBan && e.Action == audit.ActionBlocked:
		site.banned.Inc()
	}
	if len(e.Rules) > 0 && (e.Action == audit.ActionBlocked || e.Action == audit.ActionDetected) {
		m.observeRules(e.Rules, e.Action == audit.ActionBlocked)
	}
}

// Status classes, indexes into routeSeries.requests.
var classNames = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

func codeClass(status int) int {
	if status >= 100 && status <= 599 {
		return status/100 - 1
	}
	return len(classNames) - 1
}

// routeKey is a (site, route) pair, raw from an entry or as label values.
type routeKey struct{ site, route string }

// routeSeries are the series of one (site, route) label pair.
type routeSeries struct {
	requests [len(classNames)]prometheus.Counter
	site     *siteSeries
}

// siteSeries are the series labelled by site only.
type siteSeries struct {
	waf, upstream  prometheus.Observer
	upstreamErrors prometheus.Counter
	rateLimited    prometheus.Counter
	banned         prometheus.Counter
}

// routeTable maps raw (site, route) values of entries to their series. It is
// never modified once published: a miss builds a copy with one more key.
// Raw values are the configured names in practice, so the table stays as
// small as the configuration; maxRawCache bounds it anyway.
type routeTable struct {
	known map[string]map[string]struct{} // site → routes; nil: not set
	byRaw map[routeKey]*routeSeries
}

const maxRawCache = 4096

// SetRoutes declares the configured sites and their route paths. Requests
// naming any other site or route are counted as "_other". Call it with the
// configuration of every pipeline put in service (at start and after each
// successful reload). Series of sites that a reload removed stay exported
// with their last values: counters must not go backwards while the process
// lives.
func (m *Metrics) SetRoutes(sites map[string][]string) {
	known := make(map[string]map[string]struct{}, len(sites))
	for site, routes := range sites {
		set := make(map[string]struct{}, len(routes))
		for _, r := range routes {
			set[r] = struct{}{}
		}
		known[site] = set
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes.Store(&routeTable{known: known, byRaw: map[routeKey]*routeSeries{}})
}

func (m *Metrics) route(site, route string) *routeSeries {
	if rs, ok := m.routes.Load().byRaw[routeKey{site, route}]; ok {
		return rs
	}
	return m.addRoute(site, route)
}

func (m *Metrics) addRoute(site, route string) *routeSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	raw := routeKey{site, route}
	t := m.routes.Load()
	if rs, ok := t.byRaw[raw]; ok {
		return rs
	}
	rs := m.seriesLocked(m.labelsLocked(t, raw))
	if len(t.byRaw) < maxRawCache {
		byRaw := maps.Clone(t.byRaw)
		byRaw[raw] = rs
		m.routes.Store(&routeTable{known: t.known, byRaw: byRaw})
	}
	return rs
}

// labelsLocked turns raw values into bounded label values.
func (m *Metrics) labelsLocked(t *routeTable, raw routeKey) routeKey {
	if raw.site == "" {
		return routeKey{LabelNone, LabelNone}
	}
	if raw.route == "" {
		raw.route = LabelNone
	}
	// Invalid UTF-8 would make the client library panic; config names
	// never are, so this is only a guard.
	if !utf8.ValidString(raw.site) {
		return routeKey{LabelOther, LabelOther}
	}
	if !utf8.ValidString(raw.route) {
		raw.route = LabelOther
	}
	if t.known != nil {
		routes, ok := t.known[raw.site]
		if !ok {
			return routeKey{LabelOther, LabelOther}
		}
		if _, ok := routes[raw.route]; !ok && raw.route != LabelNone {
			raw.route = LabelOther
		}
		return raw
	}
	if _, ok := m.byLabel[raw]; !ok && len(m.byLabel) >= m.maxRoutes {
		return routeKey{LabelOther, LabelOther}
	}
	return raw
}

// seriesLocked returns the series of a label pair, creating them (at zero,
// so rate() sees every class from the start) on first use.
func (m *Metrics) seriesLocked(l routeKey) *routeSeries {
	if rs, ok := m.byLabel[l]; ok {
		return rs
	}
	site, ok := m.sites[l.site]
	if !ok {
		site = &siteSeries{
			waf:            m.wafDuration.WithLabelValues(l.site),
			upstream:       m.upstreamDur.WithLabelValues(l.site),
			upstreamErrors: m.upstreamErrors.WithLabelValues(l.site),
			rateLimited:    m.rateLimited.WithLabelValues(l.site),
			banned:         m.banned.WithLabelValues(l.site),
		}
		m.sites[l.site] = site
	}
	rs := &routeSeries{site: site}
	for i, class := range classNames {
		rs.requests[i] = m.requests.WithLabelValues(l.site, l.route, class)
	}
	m.byLabel[l] = rs
	return rs
}

// Stage and action label values, in audit's vocabulary.
var (
	stageNames = [...]string{
		audit.StageProtocol, audit.StageBan, audit.StageReputation, audit.StageGeoIP,
		audit.StageRateLimit, audit.StageWAF, audit.StageProxy, audit.StageGateway, audit.StageChallenge,
		LabelNone, LabelOther,
	}
	actionNames = [...]string{audit.ActionBlocked, audit.ActionDetected, audit.ActionError, audit.ActionAllowed, LabelOther}
)

func stageIndex(s string) int {
	if s == "" {
		return len(stageNames) - 2
	}
	for i, n := range stageNames[:len(stageNames)-2] {
		if s == n {
			return i
		}
	}
	return len(stageNames) - 1
}

func actionIndex(a string) int {
	if a == "" { // the gateway sets allowed before handing entries over
		a = audit.ActionAllowed
	}
	for i, n := range actionNames[:len(actionNames)-1] {
		if a == n {
			return i
		}
	}
	return len(actionNames) - 1
}

// decision returns the series of a (stage, action) pair, creating it on
// first use so that combinations that never happen are not exported.
func (m *Metrics) decision(stage, action string) prometheus.Counter {
	slot := &m.decided[stageIndex(stage)][actionIndex(action)]
	if c := slot.Load(); c != nil {
		return *c
	}
	return m.addDecision(slot, stageIndex(stage), actionIndex(action))
}

func (m *Metrics) addDecision(slot *atomic.Pointer[prometheus.Counter], si, ai int) prometheus.Counter {
	// WithLabelValues returns the same child to racing callers, so
	// whichever store wins holds the one series.
	c := m.decisions.WithLabelValues(stageNames[si], actionNames[ai])
	slot.Store(&c)
	return c
}

// ruleKey identifies one waf_rule_matches_total series; id is -1 for
// "other" and pl -1 for a paranoia level outside 0..4.
type ruleKey struct {
	id      int
	pl      int8
	blocked bool
}

// observeRules counts each rule of a blocked or detected record once: a
// rule that matched several variables is listed once per match.
func (m *Metrics) observeRules(rules []audit.MatchedRule, blocked bool) {
	for i := range rules {
		if seenBefore(rules[:i], rules[i].ID) {
			continue
		}
		pl := int8(-1)
		if p := rules[i].ParanoiaLevel; p >= 0 && p <= 4 {
			pl = int8(p)
		}
		m.ruleCounter(ruleKey{id: rules[i].ID, pl: pl, blocked: blocked}).Inc()
	}
}

func seenBefore(rules []audit.MatchedRule, id int) bool {
	for i := range rules {
		if rules[i].ID == id {
			return true
		}
	}
	return false
}

// ruleCounter returns the series of k. Reads go through a copy-on-write
// map without locks: during an attack every request is a blocked one, and a
// shared read lock would make all cores contend on one cache line.
func (m *Metrics) ruleCounter(k ruleKey) prometheus.Counter {
	if c, ok := (*m.rules.Load())[k]; ok {
		return c
	}
	return m.addRule(k)
}

// maxRuleCache bounds the lock-free map; keys past it (only with far more
// rules than any rule set has) take the locked path every time.
const maxRuleCache = 8192

func (m *Metrics) addRule(k ruleKey) prometheus.Counter {
	m.rulesMu.Lock()
	defer m.rulesMu.Unlock()
	cached := *m.rules.Load()
	if c, ok := cached[k]; ok {
		return c
	}
	label := k
	if _, ok := m.ruleIDs[k.id]; !ok {
		if len(m.ruleIDs) >= m.maxRuleIDs {
			label.id = -1
		} else {
			m.ruleIDs[k.id] = struct{}{}
		}
	}
	c, ok := m.ruleSeries[label]
	if !ok {
		id, pl, action := "other", "other", audit.ActionDetected
		if label.id >= 0 {
			id = strconv.Itoa(label.id)
		}
		if label.pl >= 0 {
			pl = strconv.Itoa(int(label.pl))
		}
		if label.blocked {
			action = audit.ActionBlocked
		}
		c = m.ruleMatches.WithLabelValues(id, pl, action)
		m.ruleSeries[label] = c
	}
	if len(cached) < maxRuleCache {
		next := maps.Clone(cached)
		next[k] = c
		m.rules.Store(&next)
	}
	return c
}
