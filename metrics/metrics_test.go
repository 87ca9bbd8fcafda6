package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics over a loopback listener, as Prometheus would, and
// parses the text exposition.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler()) // 127.0.0.1:0
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// sample returns the value of the series name{labels}, and whether it
// exists. Histograms report their sample count.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// portcullisSeries counts our own series (not the Go runtime's).
func portcullisSeries(fams map[string]*dto.MetricFamily) int {
	n := 0
	for name, fam := range fams {
		if strings.HasPrefix(name, namespace+"_") {
			n += len(fam.GetMetric())
		}
	}
	return n
}

func allowed(site, route string, status int) *audit.Entry {
	return &audit.Entry{
		ClientIP: "192.0.2.1", Host: "shop.test", Method: "GET", URI: "/",
		Site: site, Route: route, Status: status, Action: audit.ActionAllowed,
		Upstream:  "http://127.0.0.1:8080",
		Durations: audit.Durations{WAF: 120, Upstream: 3000, Total: 3300},
	}
}

func TestObserveRequest(t *testing.T) {
	crs := []audit.MatchedRule{
		{ID: 942100, ParanoiaLevel: 1}, {ID: 942100, ParanoiaLevel: 1}, // two variables, one rule
		{ID: 942432, ParanoiaLevel: 2}, {ID: 949110},
	}
	type want struct {
		name   string
		labels []string
		value  float64
	}
	tests := []struct {
		name    string
		entries []*audit.Entry
		want    []want
		absent  []want
	}{{
		name:    "allowed",
		entries: []*audit.Entry{allowed("shop", "/", 200), allowed("shop", "/", 204), allowed("shop", "/", 503)},
		want: []want{
			{"portcullis_requests_total", []string{"site", "shop", "route", "/", "code_class", "2xx"}, 2},
			{"portcullis_requests_total", []string{"site", "shop", "route", "/", "code_class", "5xx"}, 1},
			{"portcullis_requests_total", []string{"site", "shop", "route", "/", "code_class", "4xx"}, 0},
			{"portcullis_decisions_total", []string{"stage", "_none", "action", "allowed"}, 3},
			{"portcullis_waf_duration_seconds", []string{"site", "shop"}, 3},
			{"portcullis_upstream_duration_seconds", []string{"site", "shop"}, 3},
			{"portcullis_upstream_errors_total", []string{"site", "shop"}, 0},
		},
		absent: []want{{name: "portcullis_decisions_total", labels: []string{"stage", "waf", "action", "blocked"}}},
	}, {
		name: "waf block counts each rule once",
		entries: []*audit.Entry{{
			Site: "shop", Route: "/api/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
			Rules: crs, Durations: audit.Durations{WAF: 800},
		}},
		want: []want{
			{"portcullis_requests_total", []string{"site", "shop", "route", "/api/", "code_class", "4xx"}, 1},
			{"portcullis_decisions_total", []string{"stage", "waf", "action", "blocked"}, 1},
			{"portcullis_waf_rule_matches_total", []string{"rule_id", "942100", "paranoia_level", "1", "action", "blocked"}, 1},
			{"portcullis_waf_rule_matches_total", []string{"rule_id", "942432", "paranoia_level", "2", "action", "blocked"}, 1},
			{"portcullis_waf_rule_matches_total", []string{"rule_id", "949110", "paranoia_level", "0", "action", "blocked"}, 1},
			{"portcullis_waf_duration_seconds", []string{"site", "shop"}, 1},
			{"portcullis_upstream_duration_seconds", []string{"site", "shop"}, 0},
		},
	}, {
		name: "detect mode",
		entries: []*audit.Entry{{
			Site: "shop", Route: "/", Status: 200, Action: audit.ActionDetected, Stage: audit.StageWAF,
			Rules: []audit.MatchedRule{{ID: 920350, ParanoiaLevel: 1}}, Upstream: "http://u", Durations: audit.Durations{WAF: 50, Upstream: 900},
		}},
		want: []want{
			{"portcullis_decisions_total", []string{"stage", "waf", "action", "detected"}, 1},
			{"portcullis_waf_rule_matches_total", []string{"rule_id", "920350", "paranoia_level", "1", "action", "detected"}, 1},
			{"portcullis_upstream_duration_seconds", []string{"site", "shop"}, 1},
		},
	}, {
		name: "rules of allowed records are not counted",
		entries: []*audit.Entry{{
			Site: "shop", Route: "/", Status: 200, Action: audit.ActionAllowed,
			Rules: []audit.MatchedRule{{ID: 920350, ParanoiaLevel: 1}},
		}},
		absent: []want{{name: "portcullis_waf_rule_matches_total", labels: []string{"rule_id", "920350", "paranoia_level", "1", "action", "detected"}}},
	}, {
		name: "refusals and upstream errors",
		entries: []*audit.Entry{
			{Site: "shop", Route: "/", Status: 429, Action: audit.ActionBlocked, Stage: audit.StageRateLimit},
			{Site: "shop", Route: "/", Status: 429, Action: audit.ActionBlocked, Stage: audit.StageRateLimit},
			{Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageBan},
			{Site: "shop", Route: "/", Status: 502, Action: audit.ActionError, Stage: audit.StageProxy, Upstream: "http://u", Durations: audit.Durations{Upstream: 10}},
			{Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageReputation},
		},
		want: []want{
			{"portcullis_ratelimit_refusals_total", []string{"site", "shop"}, 2},
			{"portcullis_ban_refusals_total", []string{"site", "shop"}, 1},
			{"portcullis_upstream_errors_total", []string{"site", "shop"}, 1},
			{"portcullis_decisions_total", []string{"stage", "proxy", "action", "error"}, 1},
			{"portcullis_decisions_total", []string{"stage", "reputation", "action", "blocked"}, 1},
			{"portcullis_requests_total", []string{"site", "shop", "route", "/", "code_class", "4xx"}, 4},
		},
	}, {
		name: "no site, odd stage, action and status",
		entries: []*audit.Entry{
			{Status: 404, Action: audit.ActionBlocked, Stage: audit.StageGateway},
			{Site: "shop", Route: "/", Status: 0, Action: "weird", Stage: "elsewhere"},
			{Site: "shop", Route: "/", Status: 600, Action: ""},
		},
		want: []want{
			{"portcullis_requests_total", []string{"site", "_none", "route", "_none", "code_class", "4xx"}, 1},
			{"portcullis_requests_total", []string{"site", "shop", "route", "/", "code_class", "other"}, 2},
			{"portcullis_decisions_total", []string{"stage", "gateway", "action", "blocked"}, 1},
			{"portcullis_decisions_total", []string{"stage", "_other", "action", "_other"}, 1},
			{"portcullis_decisions_total", []string{"stage", "_none", "action", "allowed"}, 1},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(BuildInfo{})
			for _, e := range tc.entries {
				m.ObserveRequest(e)
			}
			fams := scrape(t, m)
			for _, w := range tc.want {
				got, ok := sample(fams, w.name, w.labels...)
				if !ok || got != w.value {
					t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
				}
			}
			for _, w := range tc.absent {
				if _, ok := sample(fams, w.name, w.labels...); ok {
					t.Errorf("%s%v present, want absent", w.name, w.labels)
				}
			}
		})
	}
}

func TestSetRoutesBoundsLabels(t *testing.T) {
	tests := []struct {
		site, route         string
		wantSite, wantRoute string
	}{
		{"shop", "/", "shop", "/"},
		{"shop", "/api/", "shop", "/api/"},
		{"shop", "/admin/", "shop", "_other"},
		{"blog", "/", "_other", "_other"},
		{"", "/", "_none", "_none"},
		{"shop", "", "shop", "_none"},
		{"\xff", "/", "_other", "_other"},
	}
	m := New(BuildInfo{})
	m.SetRoutes(map[string][]string{"shop": {"/", "/api/"}})
	for _, tc := range tests {
		m.ObserveRequest(allowed(tc.site, tc.route, 200))
	}
	fams := scrape(t, m)
	for _, tc := range tests {
		if _, ok := sample(fams, "portcullis_requests_total", "site", tc.wantSite, "route", tc.wantRoute, "code_class", "2xx"); !ok {
			t.Errorf("site %q route %q: no series {site=%q, route=%q}", tc.site, tc.route, tc.wantSite, tc.wantRoute)
		}
	}

	// A reload that adds the site: its requests get their own series from
	// then on; what was counted as _other stays there.
	m.SetRoutes(map[string][]string{"shop": {"/"}, "blog": {"/"}})
	m.ObserveRequest(allowed("blog", "/", 200))
	fams = scrape(t, m)
	if v, _ := sample(fams, "portcullis_requests_total", "site", "blog", "route", "/", "code_class", "2xx"); v != 1 {
		t.Errorf("blog after reload = %v, want 1", v)
	}
	if v, _ := sample(fams, "portcullis_requests_total", "site", "_other", "route", "_other", "code_class", "2xx"); v != 2 {
		t.Errorf("_other after reload = %v, want 2 (kept)", v)
	}
}

// TestSeriesBounded: request data (client addresses, paths, hosts, rule
// data) never becomes a label, so traffic does not grow the series count.
func TestSeriesBounded(t *testing.T) {
	m := New(BuildInfo{})
	m.SetRoutes(map[string][]string{"shop": {"/", "/api/"}})
	request := func(i int) *audit.Entry {
		e := allowed("shop", []string{"/", "/api/", "/nope/"}[i%3], []int{200, 404, 502}[i%3])
		e.ClientIP = fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		e.Host = fmt.Sprintf("h%d.shop.test", i)
		e.URI = fmt.Sprintf("/p/%d?q=%d", i, i)
		if i%5 == 0 {
			e.Action, e.Stage, e.Status = audit.ActionBlocked, audit.StageWAF, 403
			e.Rules = []audit.MatchedRule{{ID: 942100, ParanoiaLevel: 1, MatchedData: e.URI, Data: e.ClientIP}}
		}
		if i%7 == 0 {
			e.Site = fmt.Sprintf("unknown-%d", i)
		}
		return e
	}
	for i := range 100 {
		m.ObserveRequest(request(i))
	}
	before := portcullisSeries(scrape(t, m))
	for i := 100; i < 10_100; i++ {
		m.ObserveRequest(request(i))
	}
	fams := scrape(t, m)
	if after := portcullisSeries(fams); after != before {
		t.Errorf("series grew from %d to %d over 10,000 distinct requests", before, after)
	}
	if v, _ := sample(fams, "portcullis_waf_rule_matches_total", "rule_id", "942100", "paranoia_level", "1", "action", "blocked"); v == 0 {
		t.Error("blocked requests not counted")
	}
}

func TestSeriesBoundedWithoutSetRoutes(t *testing.T) {
	m := New(BuildInfo{})
	m.maxRoutes = 20 // MaxRoutes works the same, only slower under -race
	for i := range m.maxRoutes + 50 {
		m.ObserveRequest(allowed(fmt.Sprintf("site-%d", i), "/", 200))
	}
	fams := scrape(t, m)
	if n, want := len(fams["portcullis_requests_total"].GetMetric()), (m.maxRoutes+1)*len(classNames); n != want {
		t.Errorf("%d request series, want %d", n, want)
	}
	if v, _ := sample(fams, "portcullis_requests_total", "site", "_other", "route", "_other", "code_class", "2xx"); v != 50 {
		t.Errorf("_other = %v, want 50", v)
	}
}

func TestRuleIDCap(t *testing.T) {
	m := New(BuildInfo{})
	m.maxRuleIDs = 50 // MaxRuleIDs works the same, only slower under -race
	for id := 1; id <= m.maxRuleIDs+10; id++ {
		m.ObserveRequest(&audit.Entry{Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
			Rules: []audit.MatchedRule{{ID: id, ParanoiaLevel: id % 7}}})
	}
	// A capped id seen again still counts as other, with its known level.
	m.ObserveRequest(&audit.Entry{Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
		Rules: []audit.MatchedRule{{ID: m.maxRuleIDs + 1, ParanoiaLevel: 1}}})
	fams := scrape(t, m)
	ids := map[string]bool{}
	for _, s := range fams["portcullis_waf_rule_matches_total"].GetMetric() {
		for _, lp := range s.GetLabel() {
			if lp.GetName() == "rule_id" {
				ids[lp.GetValue()] = true
			}
		}
	}
	if len(ids) != m.maxRuleIDs+1 || !ids["other"] {
		t.Errorf("%d distinct rule_id values (other: %v), want %d", len(ids), ids["other"], m.maxRuleIDs+1)
	}
	var other float64
	for _, pl := range []string{"0", "1", "2", "3", "4", "other"} {
		v, _ := sample(fams, "portcullis_waf_rule_matches_total", "rule_id", "other", "paranoia_level", pl, "action", "blocked")
		other += v
	}
	if other != 11 {
		t.Errorf("other = %v, want 11", other)
	}
}

// pipeline stands for the gateway's current pipeline, swapped on reload.
type pipeline struct {
	lists []ListStat
	depth int
}

func TestSources(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var current atomic.Pointer[pipeline]
	current.Store(&pipeline{lists: []ListStat{
		{Name: "spamhaus", Entries: 1200, LastSuccess: now.Add(-time.Hour), Failures: 2},
		{Name: "spamhaus", Entries: 1}, // a duplicate name must not break the scrape
		{Name: "inline", Entries: 3},
	}, depth: 7})

	m := New(BuildInfo{Version: "v1.2.3", Coraza: "v3.8.1", CRS: "v4.25.0"})
	m.SetSources(Sources{
		Lists: func() []ListStat { return current.Load().lists },
		Audit: func() AuditStat {
			return AuditStat{QueueDepth: current.Load().depth, Written: 10, DroppedQueueFull: 3, DroppedSinkFailed: 5,
				Aggregated: 4000, Summaries: 2, Overflow: 7, Keys: 12, Degraded: true, Sinks: []AuditSinkStat{
					{Name: "file", Written: 9, Lost: 5, Errors: 1, Failing: true}, {Name: "store", Written: 14},
					{Name: "file", Written: 1}, // a duplicate name must not break the scrape
				}}
		},
		Certs:       func() map[string]time.Time { return map[string]time.Time{"shop.test": now.Add(72 * time.Hour)} },
		ActiveBans:  func() int { panic("bans store closed") },
		Alerts:      func() AlertStat { return AlertStat{Sent: 4, Failed: 1, Dropped: 2} },
		Inspections: func() InspectionStat { return InspectionStat{Slots: 4, Inside: 3, Waiting: 17} },
		Connections: func() ConnectionStat {
			return ConnectionStat{Open: 12, Refused: map[string]uint64{"per_client": 5}, Paused: true, Pauses: 2, DescriptorsInUse: 900, DescriptorLimit: 1024, DescriptorReserve: 256}
		},
	})
	fams := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portcullis_build_info", []string{"version", "v1.2.3", "coraza", "v3.8.1", "crs", "v4.25.0"}, 1},
		{"portcullis_list_entries", []string{"list", "spamhaus"}, 1200},
		{"portcullis_list_entries", []string{"list", "inline"}, 3},
		{"portcullis_list_refresh_failures_total", []string{"list", "spamhaus"}, 2},
		{"portcullis_list_last_success_timestamp_seconds", []string{"list", "spamhaus"}, float64(now.Add(-time.Hour).Unix())},
		{"portcullis_audit_queue_depth", nil, 7},
		{"portcullis_audit_records_written_total", nil, 10},
		{"portcullis_audit_records_dropped_total", []string{"reason", "queue_full"}, 3},
		{"portcullis_audit_records_dropped_total", []string{"reason", "writer_closed"}, 0},
		{"portcullis_audit_records_dropped_total", []string{"reason", "sink_failed"}, 5},
		{"portcullis_audit_degraded", nil, 1},
		{"portcullis_audit_records_aggregated_total", nil, 4000},
		{"portcullis_audit_summary_records_total", nil, 2},
		{"portcullis_audit_aggregation_overflow_total", nil, 7},
		{"portcullis_audit_aggregation_keys", nil, 12},
		{"portcullis_audit_sink_records_written_total", []string{"sink", "file"}, 9},
		{"portcullis_audit_sink_records_lost_total", []string{"sink", "file"}, 5},
		{"portcullis_audit_sink_errors_total", []string{"sink", "file"}, 1},
		{"portcullis_audit_sink_failing", []string{"sink", "file"}, 1},
		{"portcullis_audit_sink_records_written_total", []string{"sink", "store"}, 14},
		{"portcullis_audit_sink_failing", []string{"sink", "store"}, 0},
		{"portcullis_certificate_expiry_timestamp_seconds", []string{"host", "shop.test"}, float64(now.Add(72 * time.Hour).Unix())},
		{"portcullis_metrics_source_errors_total", []string{"source", "bans"}, 1},
		{"portcullis_alerts_sent_total", nil, 4},
		{"portcullis_alerts_failed_total", nil, 1},
		{"portcullis_alerts_dropped_total", nil, 2},
		{"portcullis_inspection_slots", nil, 4},
		{"portcullis_inspections_in_progress", nil, 3},
		{"portcullis_inspections_waiting", nil, 17},
		{"portcullis_client_connections_open", nil, 12},
		{"portcullis_client_connections_refused_total", []string{"reason", "per_client"}, 5},
		{"portcullis_client_connections_refused_total", []string{"reason", "rate"}, 0},
		{"portcullis_accept_paused", nil, 1},
		{"portcullis_accept_pauses_total", nil, 2},
		{"portcullis_descriptors_in_use", nil, 900},
		{"portcullis_descriptors_limit", nil, 1024},
		{"portcullis_descriptors_reserve", nil, 256},
	}
	for _, c := range checks {
		if got, ok := sample(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := sample(fams, "portcullis_list_last_success_timestamp_seconds", "list", "inline"); ok {
		t.Error("inline list has a last-success series")
	}
	if _, ok := sample(fams, "portcullis_bans_active"); ok {
		t.Error("a panicking source still reported")
	}

	// A reload swaps the pipeline: the next scrape reads the new one.
	current.Store(&pipeline{lists: []ListStat{{Name: "firehol", Entries: 9}}, depth: 0})
	fams = scrape(t, m)
	if _, ok := sample(fams, "portcullis_list_entries", "list", "spamhaus"); ok {
		t.Error("the replaced pipeline's list is still reported")
	}
	if v, _ := sample(fams, "portcullis_list_entries", "list", "firehol"); v != 9 {
		t.Errorf("firehol entries = %v, want 9", v)
	}
	if v, ok := sample(fams, "portcullis_audit_queue_depth"); !ok || v != 0 {
		t.Errorf("queue depth = %v, want 0", v)
	}
}

func TestPushed(t *testing.T) {
	m := New(BuildInfo{})
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return start }
	m.ObserveReload(true, 200*time.Millisecond)
	m.ObserveReload(false, 50*time.Millisecond)
	m.ObserveStoreWrite(2*time.Millisecond, 64)
	m.ObserveStoreWrite(3*time.Millisecond, 0)
	m.ObserveBanAdded("auto")
	m.ObserveBanAdded("nonsense")
	m.ObserveChallenge("served")
	m.ObserveChallenge("served")
	m.ObserveChallenge("solved")
	fams := scrape(t, m)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portcullis_config_reloads_total", []string{"result", "success"}, 1},
		{"portcullis_config_reloads_total", []string{"result", "failure"}, 1},
		{"portcullis_config_reload_duration_seconds", nil, 2},
		{"portcullis_config_last_reload_successful", nil, 0},
		{"portcullis_config_last_reload_success_timestamp_seconds", nil, float64(start.Unix())},
		{"portcullis_audit_store_write_duration_seconds", nil, 2},
		{"portcullis_audit_store_records_total", nil, 64},
		{"portcullis_bans_added_total", []string{"source", "auto"}, 1},
		{"portcullis_bans_added_total", []string{"source", "manual"}, 0},
		{"portcullis_bans_added_total", []string{"source", "_other"}, 1},
		{"portcullis_challenges_total", []string{"result", "served"}, 2},
		{"portcullis_challenges_total", []string{"result", "solved"}, 1},
		{"portcullis_challenges_total", []string{"result", "passed"}, 0},
		{"portcullis_build_info", []string{"version", "unknown", "coraza", "unknown", "crs", "unknown"}, 1},
	}
	for _, c := range checks {
		if got, ok := sample(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("Go runtime collector missing")
	}
}

// TestConcurrent runs requests, reloads and scrapes together, for -race.
func TestConcurrent(t *testing.T) {
	m := New(BuildInfo{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				e := allowed([]string{"shop", "blog"}[i%2], "/", 200)
				if i%10 == g {
					e.Action, e.Stage = audit.ActionBlocked, audit.StageWAF
					e.Rules = []audit.MatchedRule{{ID: 900000 + i%50, ParanoiaLevel: 1}}
				}
				m.ObserveRequest(e)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			m.SetRoutes(map[string][]string{"shop": {"/"}})
			m.ObserveReload(true, time.Millisecond)
		}
	})
	wg.Wait()
	fams := scrape(t, m)
	var total float64
	for _, s := range fams["portcullis_requests_total"].GetMetric() {
		total += s.GetCounter().GetValue()
	}
	if total != 8*2000 {
		t.Errorf("counted %v requests, want %d", total, 8*2000)
	}
}

// TestObserveRequestAllocs: the common cases do not allocate once their
// series exist. This counts allocations, not time, so it is deterministic.
func TestObserveRequestAllocs(t *testing.T) {
	m := New(BuildInfo{})
	m.SetRoutes(map[string][]string{"shop": {"/"}})
	entries := map[string]*audit.Entry{
		"allowed": allowed("shop", "/", 200),
		"blocked": {Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
			Rules: []audit.MatchedRule{{ID: 942100, ParanoiaLevel: 1}, {ID: 949110}}, Durations: audit.Durations{WAF: 300}},
		"rate limited": {Site: "shop", Route: "/", Status: 429, Action: audit.ActionBlocked, Stage: audit.StageRateLimit},
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := entries[n]
		m.ObserveRequest(e) // create the series
		if a := testing.AllocsPerRun(1000, func() { m.ObserveRequest(e) }); a != 0 {
			t.Errorf("%s: %v allocations per request, want 0", n, a)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New(BuildInfo{})
	m.SetRoutes(map[string][]string{"shop": {"/", "/api/"}, "blog": {"/"}})
	cases := []struct {
		name string
		e    *audit.Entry
	}{
		{"allowed", allowed("shop", "/api/", 200)},
		{"blocked", &audit.Entry{Site: "shop", Route: "/", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF,
			Rules:     []audit.MatchedRule{{ID: 942100, ParanoiaLevel: 1}, {ID: 942432, ParanoiaLevel: 2}, {ID: 949110}, {ID: 980170}},
			Durations: audit.Durations{WAF: 300}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.ObserveRequest(c.e)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.ObserveRequest(c.e)
				}
			})
		})
	}
}

func TestNilMetricsIsANoOp(t *testing.T) {
	var m *Metrics
	m.ObserveRequest(allowed("shop", "/", 200))
	m.ObserveReload(true, time.Second)
	m.ObserveStoreWrite(time.Millisecond, 1)
	m.ObserveBanAdded("auto")
}
