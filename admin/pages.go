package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
	"github.com/portcullis-waf/portcullis/review/score"
)

// storeTimeout bounds one store call made for a page or API request.
const storeTimeout = 15 * time.Second

// Pagination of the events list.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// timeRanges are the overview's range choices, shortest first.
var timeRanges = []struct {
	Key string
	D   time.Duration
}{
	{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour},
}

const defaultRange = "24h"

// topRows is the length of each top list on the overview.
const topRows = 10

// parseFilter reads the filters of a dashboard or API URL: the same
// language as the CLI's flags (audit/query), so a filtered view is a link.
func (s *Server) parseFilter(v url.Values, now time.Time) (query.Filter, error) {
	// Parse ignores keys it does not know, so the dashboard's own
	// parameters (range, after, limit) ride along in the same URL.
	f, err := query.Parse(v, now)
	if err != nil {
		return query.Filter{}, fmt.Errorf("bad filter: %w", err)
	}
	return f, nil
}

// link is path with f's filters and extra parameters, as a dashboard URL.
func link(path string, f query.Filter, extra ...string) string {
	v := f.Values()
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// Filter edits that turn a value shown on a page into a link that narrows
// the current view. Each copies the slice it grows, so the caller's filter
// is never changed under it.
func withRule(f query.Filter, id int) query.Filter {
	if !slices.Contains(f.RuleIDs, id) {
		f.RuleIDs = append(slices.Clip(f.RuleIDs), id)
	}
	return f
}

func withClient(f query.Filter, ip string) query.Filter {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return f
	}
	p := netip.PrefixFrom(a.WithZone(""), a.BitLen())
	if !slices.Contains(f.ClientIPs, p) {
		f.ClientIPs = append(slices.Clip(f.ClientIPs), p)
	}
	return f
}

func withPath(f query.Filter, path string) query.Filter {
	if !slices.Contains(f.PathPrefixes, path) {
		f.PathPrefixes = append(slices.Clip(f.PathPrefixes), path)
	}
	return f
}

func withCountry(f query.Filter, c string) query.Filter {
	if c != "" && !slices.Contains(f.Countries, c) {
		f.Countries = append(slices.Clip(f.Countries), c)
	}
	return f
}

func withHost(f query.Filter, h string) query.Filter {
	if h != "" && !slices.Contains(f.Hosts, h) {
		f.Hosts = append(slices.Clip(f.Hosts), h)
	}
	return f
}

// ---- overview ----

type overviewView struct {
	Ranges                           []navLink
	Total, Blocked, Detected, Errors int
	Allowed, Other                   int
	Chart                            chartView
	Tops                             []topList
	EventsURL, BlockedURL            string
	DetectedURL, ErrorsURL           string
	AllowedURL                       string
	Since, Until                     string
	Active                           []filterChip
}

type navLink struct {
	Label, URL string
	Active     bool
}

type topList struct {
	Title, ID string
	Rows      []topRow
}

type topRow struct {
	Label, Detail string
	Count         int
	URL           string
	Pct           float64 // of the list's largest count, for the bar
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	v := r.URL.Query()
	f, err := s.parseFilter(v, now)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	rangeKey := v.Get("range")
	span := time.Duration(0)
	for _, tr := range timeRanges {
		if tr.Key == rangeKey {
			span = tr.D
		}
	}
	if span == 0 {
		rangeKey, span = defaultRange, 24*time.Hour
	}
	open := f
	open.Since, open.Until = time.Time{}, time.Time{}
	sumF := f // what the store summarises; links keep until open
	if f.Since.IsZero() {
		f.Since = now.Add(-span)
		sumF.Since, sumF.Until = f.Since, now
		if span >= 6*time.Hour && f.Until.IsZero() {
			// Whole hours: the store answers them from its hourly and
			// daily rollups and reads no records at all (1,000,000
			// records a day otherwise cost a scan of the partial hours
			// at either end). "24h" then shows up to 25 hours, and the
			// hour still under way.
			f.Since = f.Since.Truncate(time.Hour)
			sumF.Since, sumF.Until = f.Since, ceilHour(now)
		}
	} else {
		rangeKey = "" // an explicit since wins over the range buttons
	}
	until := sumF.Until
	if until.IsZero() {
		until = now
	}
	bucket := bucketFor(until.Sub(f.Since))
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	// Bookkeeping rules (949110, 980170, ...) match on every blocked
	// request and would crowd the top rules out; ask for enough rows to
	// keep ten detection rules after dropping them.
	sum, err := s.opts.Store.Summary(ctx, sumF, store.SummaryOptions{Bucket: bucket, Top: topRows + 8})
	if err != nil {
		s.storeError(w, r, "summary", err)
		return
	}
	view := overviewView{
		Total: sum.Total, Blocked: sum.Blocked, Detected: sum.Detected, Errors: sum.Errors,
		Allowed: sum.Allowed, Other: sum.Other,
		Chart:       buildChart(sum.Series, f.Since, until, bucket),
		EventsURL:   link("/events", f),
		BlockedURL:  link("/events", withAction(f, audit.ActionBlocked)),
		DetectedURL: link("/events", withAction(f, audit.ActionDetected)),
		ErrorsURL:   link("/events", withAction(f, audit.ActionError)),
		AllowedURL:  link("/events", withAction(f, audit.ActionAllowed)),
		Since:       f.Since.UTC().Format("2006-01-02 15:04"),
		Until:       earliest(until, now).UTC().Format("2006-01-02 15:04"),
		Active:      chips("/", open, "range", v.Get("range")),
	}
	for _, tr := range timeRanges {
		view.Ranges = append(view.Ranges, navLink{Label: tr.Key, URL: link("/", open, "range", tr.Key), Active: tr.Key == rangeKey})
	}
	rows := func(cs []store.Count, narrow func(query.Filter, string) query.Filter) []topRow {
		out := make([]topRow, 0, len(cs))
		for _, c := range cs[:min(len(cs), topRows)] {
			out = append(out, topRow{Label: c.Value, Count: c.Count, URL: link("/events", narrow(f, c.Value))})
		}
		return withPct(out)
	}
	var rules []topRow
	for _, rc := range sum.TopRules {
		if audit.IsBookkeepingID(rc.ID) || len(rules) == topRows {
			continue
		}
		rules = append(rules, topRow{Label: strconv.Itoa(rc.ID), Detail: rc.Message, Count: rc.Count,
			URL: link("/events", withRule(f, rc.ID))})
	}
	view.Tops = []topList{
		{Title: "Top rules", ID: "top-rules", Rows: withPct(rules)},
		{Title: "Top client addresses", ID: "top-clients", Rows: rows(sum.TopClients, withClient)},
		{Title: "Top paths", ID: "top-paths", Rows: rows(sum.TopPaths, withPath)},
		{Title: "Top countries", ID: "top-countries", Rows: rows(sum.TopCountries, withCountry)},
		{Title: "Top hosts", ID: "top-hosts", Rows: rows(sum.TopHosts, withHost)},
	}
	s.render(w, r, http.StatusOK, "overview", "Overview", view)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func ceilHour(t time.Time) time.Time {
	if h := t.Truncate(time.Hour); !h.Equal(t) {
		return h.Add(time.Hour)
	}
	return t
}

func withAction(f query.Filter, a string) query.Filter {
	f.Actions = []string{a}
	return f
}

func withPct(rows []topRow) []topRow {
	top := 0
	for _, r := range rows {
		top = max(top, r.Count)
	}
	for i := range rows {
		if top > 0 {
			rows[i].Pct = round1(100 * float64(rows[i].Count) / float64(top))
		}
	}
	return rows
}

// ---- events ----

type eventsView struct {
	Form      []formField
	Hidden    [][2]string
	Active    []filterChip
	Rows      []eventRow
	NextURL   string
	FirstURL  string
	ClearURL  string
	Paged     bool
	PageSize  int
	Overview  string
	FilterErr string
}

// formField is one input of the events filter form. Values holds one
// entry per input to render (keys whose values may contain commas get one
// input per value); Options makes it a select.
type formField struct {
	Name, Label, Placeholder string
	Values                   []string
	Options                  []string
}

// filterForm is the events filter form prefilled from the URL. The not_
// keys are carried as hidden inputs, so submitting the form keeps them.
func filterForm(v url.Values) (fields []formField, hidden [][2]string) {
	type spec struct {
		key, label, placeholder string
		options                 []string
		multi                   bool // values may contain commas: one input each
	}
	specs := []spec{
		{key: "since", label: "Since", placeholder: "24h or 2026-11-26"},
		{key: "until", label: "Until", placeholder: "1h or RFC 3339"},
		{key: "action", label: "Action", options: query.Actions},
		{key: "stage", label: "Stage", options: query.Stages},
		{key: "rule", label: "Rule", placeholder: "942100,941100"},
		{key: "ip", label: "Client", placeholder: "203.0.113.7 or /24"},
		{key: "host", label: "Host", placeholder: "shop.example"},
		{key: "path", label: "Path prefix", placeholder: "/api/", multi: true},
		{key: "tag", label: "Tag", placeholder: "attack-sqli", multi: true},
		{key: "status", label: "Status", placeholder: "403"},
		{key: "country", label: "Country", placeholder: "DE"},
	}
	for _, sp := range specs {
		ff := formField{Name: sp.key, Label: sp.label, Placeholder: sp.placeholder, Options: sp.options}
		vals := v[sp.key]
		switch {
		case sp.multi && len(vals) > 0:
			ff.Values = vals
		case len(vals) > 0:
			ff.Values = []string{strings.Join(vals, ",")}
		default:
			ff.Values = []string{""}
		}
		if cur := ff.Values[0]; ff.Options != nil && cur != "" && !slices.Contains(ff.Options, cur) {
			// A combination (blocked,detected) is kept as an option of its own.
			ff.Options = append([]string{cur}, ff.Options...)
		}
		fields = append(fields, ff)
	}
	for _, k := range query.Keys {
		for _, val := range v["not_"+k] {
			hidden = append(hidden, [2]string{"not_" + k, val})
		}
	}
	if v.Has("limit") {
		hidden = append(hidden, [2]string{"limit", v.Get("limit")})
	}
	return fields, hidden
}

type filterChip struct {
	Label, RemoveURL string
}

type eventRow struct {
	ID, URL, Time       string
	Action, Stage       string
	Status              int
	ClientIP, ClientURL string
	Country, CountryURL string
	Method, Host, URI   string
	Rules               []ruleLink
	MoreRules           int
	Score               int
}

type ruleLink struct {
	ID         int
	URL, Title string
}

// maxRuleLinks is how many rule ids a list row shows; the event page shows all.
const maxRuleLinks = 6

func (s *Server) eventsPage(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	v := r.URL.Query()
	var view eventsView
	view.Form, view.Hidden = filterForm(v)
	f, err := s.parseFilter(v, now)
	if err != nil {
		view.FilterErr = err.Error()
		s.render(w, r, http.StatusBadRequest, "events", "Events", view)
		return
	}
	limit := pageSize(v.Get("limit"))
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	res, err := s.opts.Store.Search(ctx, f, store.Page{Limit: limit, After: v.Get("after")})
	if err != nil {
		s.storeError(w, r, "search", err)
		return
	}
	var extra []string
	if v.Has("limit") {
		extra = []string{"limit", strconv.Itoa(limit)}
	}
	view.Active = chips("/events", f)
	view.ClearURL = "/events"
	view.Overview = link("/", f)
	view.PageSize = limit
	view.Paged = v.Get("after") != ""
	view.FirstURL = link("/events", f, extra...)
	if res.Next != "" {
		view.NextURL = link("/events", f, append(extra, "after", res.Next)...)
	}
	for _, e := range res.Entries {
		row := eventRow{ID: e.ID, URL: "/events/" + url.PathEscape(e.ID), Time: e.Time.UTC().Format("2006-01-02 15:04:05"),
			Action: e.Action, Stage: e.Stage, Status: e.Status, ClientIP: e.ClientIP,
			ClientURL: link("/events", withClient(f, e.ClientIP)), Country: e.Country,
			Method: e.Method, Host: e.Host, URI: e.URI, Score: e.InboundScore + e.OutboundScore}
		if e.Country != "" {
			row.CountryURL = link("/events", withCountry(f, e.Country))
		}
		seen := map[int]bool{}
		for _, mr := range e.Rules {
			if seen[mr.ID] || audit.IsBookkeeping(mr) {
				continue
			}
			seen[mr.ID] = true
			if len(row.Rules) == maxRuleLinks {
				row.MoreRules++
				continue
			}
			row.Rules = append(row.Rules, ruleLink{ID: mr.ID, URL: link("/events", withRule(f, mr.ID)), Title: mr.Message})
		}
		view.Rows = append(view.Rows, row)
	}
	s.render(w, r, http.StatusOK, "events", "Events", view)
}

func pageSize(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return defaultPageSize
	}
	return min(n, maxPageSize)
}

// chips lists the active filters of f, each with a link that drops just
// that value; extra parameters are kept in every link.
func chips(path string, f query.Filter, extra ...string) []filterChip {
	v := f.Values()
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []filterChip
	for _, k := range keys {
		for i, val := range v[k] {
			rest := url.Values{}
			for k2, vs := range v {
				rest[k2] = vs
			}
			rest[k] = slices.Delete(slices.Clone(v[k]), i, i+1)
			for j := 0; j+1 < len(extra); j += 2 {
				if extra[j+1] != "" {
					rest.Set(extra[j], extra[j+1])
				}
			}
			u := path
			if enc := rest.Encode(); enc != "" {
				u += "?" + enc
			}
			out = append(out, filterChip{Label: k + " = " + val, RemoveURL: u})
		}
	}
	return out
}

// ---- event detail ----

type eventView struct {
	E             *audit.Entry
	Fields        []field
	Score         score.Breakdown
	Headers       []field
	Explain       bool
	Suggestion    string
	SuggestionErr string
	NotAFix       bool // the suggestion is for a request judged an attack
	RawJSON       string
	BanURL        string
}

type field struct {
	Label, Value, URL string
}

func (s *Server) eventPage(w http.ResponseWriter, r *http.Request) {
	e, ok := s.event(w, r)
	if !ok {
		return
	}
	if e.ID != r.PathValue("id") {
		// A unique prefix: show the record under its full id, the link
		// to keep and share.
		http.Redirect(w, r, "/events/"+url.PathEscape(e.ID), http.StatusSeeOther)
		return
	}
	raw, _ := json.MarshalIndent(e, "", "  ") // an Entry always marshals
	view := eventView{E: e, Score: score.Of(e), RawJSON: string(raw), Headers: headerFields(e.Headers)}
	if s.opts.Bans != nil && e.ClientIP != "" {
		view.BanURL = "/bans?" + url.Values{"prefix": {e.ClientIP}}.Encode()
	}
	view.Fields = eventFields(e)
	if s.explainable(e) {
		view.Explain = true
		if sug, err := s.opts.Explain(e); err != nil {
			view.SuggestionErr = err.Error()
		} else {
			view.Suggestion, view.NotAFix = sug, strings.HasPrefix(sug, NotAFix)
		}
	}
	s.render(w, r, http.StatusOK, "event", "Event "+e.ID, view)
}

func eventFields(e *audit.Entry) []field {
	var f query.Filter
	fs := []field{
		{Label: "Request id", Value: e.ID},
		{Label: "Time (UTC)", Value: e.Time.UTC().Format("2006-01-02 15:04:05.000000")},
		{Label: "Action", Value: e.Action, URL: link("/events", withAction(f, e.Action))},
		{Label: "Stage", Value: e.Stage},
		{Label: "Reason", Value: e.Reason},
		{Label: "Status", Value: strconv.Itoa(e.Status)},
		{Label: "Client", Value: e.ClientIP, URL: link("/events", withClient(f, e.ClientIP))},
	}
	if e.ClientPort != 0 {
		fs = append(fs, field{Label: "Client port", Value: strconv.Itoa(e.ClientPort)})
	}
	add := func(label, value string) {
		if value != "" {
			fs = append(fs, field{Label: label, Value: value})
		}
	}
	add("Peer", e.Peer)
	if e.Country != "" {
		fs = append(fs, field{Label: "Country", Value: e.Country, URL: link("/events", withCountry(f, e.Country))})
	}
	if e.ASN != 0 {
		add("AS", fmt.Sprintf("AS%d %s", e.ASN, e.ASOrg))
	}
	add("Allow-listed", e.AllowListed)
	fs = append(fs, field{Label: "Host", Value: e.Host, URL: link("/events", withHost(f, e.Host))})
	add("Method", e.Method)
	add("URI", e.URI)
	add("Protocol", e.Protocol)
	add("Site", e.Site)
	add("Route", e.Route)
	add("WAF mode", e.WAFMode)
	if e.FailOpen {
		add("Fail-open", "yes: an engine error was let through by policy")
	}
	add("Upstream", e.Upstream)
	if e.Sampled {
		add("Sampled", "yes")
	}
	fs = append(fs,
		field{Label: "Bytes sent", Value: strconv.FormatInt(e.BytesSent, 10)},
		field{Label: "Duration (µs)", Value: fmt.Sprintf("WAF %d, upstream %d, total %d", e.Durations.WAF, e.Durations.Upstream, e.Durations.Total)})
	return fs
}

func headerFields(h map[string][]string) []field {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []field
	for _, n := range names {
		for _, v := range h[n] {
			out = append(out, field{Label: n, Value: v})
		}
	}
	return out
}

// storeError reports a failed store call without its details, which may
// name files or SQL; the log has them.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("admin: audit store failed", "op", op, "error", err)
	if errors.Is(err, context.DeadlineExceeded) {
		s.fail(w, r, http.StatusGatewayTimeout, "the audit store took too long; narrow the time range or the filters")
		return
	}
	if strings.HasPrefix(err.Error(), "invalid page cursor") {
		s.fail(w, r, http.StatusBadRequest, "invalid page cursor")
		return
	}
	s.fail(w, r, http.StatusInternalServerError, "the audit store failed; see the server log")
}
