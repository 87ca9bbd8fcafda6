package admin

import (
	"errors"
	"html"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/query"
	"github.com/portcullis-waf/portcullis/audit/store"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func (e *testEnv) page(t *testing.T, s browserSession, path string, want int) string {
	t.Helper()
	resp := e.do(t, req{path: path, cookies: s.cookies})
	body := readBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	return body
}

func TestOverviewPage(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	page := env.page(t, s, "/", http.StatusOK)
	for _, want := range []string{
		`<svg id="chart"`, `<rect class="blocked"`, `<rect class="detected"`,
		`id="top-rules"`, `href="/events?rule=942100&amp;since=`, // top rules link to the events they count
		`id="top-clients"`, `id="top-countries"`, `id="top-paths"`, `id="top-hosts"`,
		`aria-current="true" class="active">24h</a>`,
		`<span class="num" id="total">302</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	bars := regexp.MustCompile(`<g class="bar">`).FindAllString(page, -1)
	if len(bars) < 40 || len(bars) > 48 {
		t.Errorf("24h chart has %d bars, want one per non-empty 30m bucket (about 48)", len(bars))
	}

	t.Run("range", func(t *testing.T) {
		page := env.page(t, s, "/?range=1h", http.StatusOK)
		if !strings.Contains(page, `<span class="num" id="total">`) || !strings.Contains(page, `class="active">1h</a>`) {
			t.Fatal("1h range not selected")
		}
		if strings.Contains(page, `<span class="num" id="total">302</span>`) {
			t.Fatal("1h range counts the whole day")
		}
	})
	t.Run("filtered", func(t *testing.T) {
		page := env.page(t, s, "/?range=24h&rule=941100", http.StatusOK)
		if !strings.Contains(page, "rule = 941100") {
			t.Fatal("active filter not shown")
		}
	})
	t.Run("empty", func(t *testing.T) {
		page := env.page(t, s, "/?host=nowhere.example", http.StatusOK)
		if !strings.Contains(page, "No blocked or detected requests in this range") {
			t.Fatal("empty chart has no note")
		}
	})
	t.Run("bad filter", func(t *testing.T) {
		env.page(t, s, "/?status=99999", http.StatusBadRequest)
	})
	t.Run("whole hours", func(t *testing.T) {
		// Off the hour, the day is widened to whole hours, which the
		// store answers from its rollups.
		env.clock.Add(17 * time.Minute)
		defer env.clock.Add(-17 * time.Minute)
		page := env.page(t, s, "/", http.StatusOK)
		if !strings.Contains(page, "2026-11-25 12:00 – 2026-11-26 12:17 UTC") || !strings.Contains(page, `<span class="num" id="total">302</span>`) {
			t.Fatal("24h off the hour does not start on the hour")
		}
		page = env.page(t, s, "/?range=1h", http.StatusOK)
		if !strings.Contains(page, "2026-11-26 11:17 – 2026-11-26 12:17 UTC") {
			t.Fatal("1h range is not exact")
		}
	})
}

func TestEventsPage(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	page := env.page(t, s, "/events?rule=920273&since=1h", http.StatusOK)
	if !strings.Contains(page, `href="/events/req-sqli-1"`) {
		t.Fatal("the matching event is not listed")
	}
	if n := strings.Count(page, `class="event-link"`); n != 1 {
		t.Fatalf("%d events listed, want 1", n)
	}
	// Links on values add that filter to the current ones.
	for _, want := range []string{
		`href="/events?ip=203.0.113.7&amp;rule=920273&amp;since=`,
		`href="/events?rule=920273&amp;rule=942100&amp;since=`,
		`value="920273"`, // the form shows the filter
		"rule = 920273",  // and so does its chip
	} {
		if !strings.Contains(page, want) {
			t.Errorf("events page lacks %q", want)
		}
	}
	t.Run("pagination", func(t *testing.T) {
		page := env.page(t, s, "/events?limit=100", http.StatusOK)
		m := regexp.MustCompile(`href="([^"]+)" id="next-page"`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no next page link")
		}
		next := html.UnescapeString(m[1])
		u, _ := url.Parse(next)
		if u.Query().Get("after") == "" || u.Query().Get("limit") != "100" {
			t.Fatalf("next page link %q", next)
		}
		page2 := env.page(t, s, next, http.StatusOK)
		if strings.Count(page2, `class="event-link"`) != 100 || !strings.Contains(page2, "« Newest") {
			t.Fatal("second page")
		}
	})
	t.Run("bad filter keeps the form", func(t *testing.T) {
		page := env.page(t, s, "/events?ip=not-an-ip", http.StatusBadRequest)
		if !strings.Contains(page, `invalid ip &#34;not-an-ip&#34;`) || !strings.Contains(page, `value="not-an-ip"`) {
			t.Fatal("error or form value missing")
		}
	})
	t.Run("not_ filters survive the form", func(t *testing.T) {
		page := env.page(t, s, "/events?not_rule=920350&not_country=US", http.StatusOK)
		for _, want := range []string{`name="not_rule" value="920350"`, `name="not_country" value="US"`} {
			if !strings.Contains(page, want) {
				t.Errorf("form lacks hidden %q", want)
			}
		}
	})
}

func TestEventPage(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	page := env.page(t, s, "/events/req-sqli-1", http.StatusOK)
	for _, want := range []string{
		`<strong id="inbound-sum">18</strong>`, `<strong id="inbound-recorded">13</strong>`,
		`id="inbound-rules"`, `id="bookkeeping-rules"`,
		`<td class="num points">5</td>`, `<td class="num points">3</td>`,
		`<span class="sev sev-critical">critical</span>`, `<span class="sev sev-warning">warning</span>`,
		`<code>ARGS:id</code>`, `<code>&#39; OR 1=1--</code>`,
		`id="suggestion"><code>waf:`, `id="copy-suggestion"`,
		`href="/bans?prefix=203.0.113.7"`,
		`id="findings"`, `<td class="num">92 (blocks)</td>`, `<td>base64 → url</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("event page lacks %q", want)
		}
	}
	// Bookkeeping rules are listed apart and score nothing.
	inbound := page[strings.Index(page, `id="inbound-rules"`):strings.Index(page, `id="bookkeeping-rules"`)]
	if strings.Contains(inbound, "949110") || strings.Contains(inbound, "980170") {
		t.Error("bookkeeping rules in the scoring table")
	}
	env.page(t, s, "/events/no-such-id", http.StatusNotFound)
}

// TestRecordValuesEscaped renders every page that shows the hostile record
// and checks that none of its markup reaches the page as markup.
func TestRecordValuesEscaped(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	for _, path := range []string{"/events/req-xss-1", "/events?ip=198.51.100.23", "/?range=1h&ip=198.51.100.23"} {
		page := env.page(t, s, path, http.StatusOK)
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<iframe", "<b>Attack</b>", "</pre><script>"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s contains unescaped %q", path, bad)
			}
		}
	}
	page := env.page(t, s, "/events/req-xss-1", http.StatusOK)
	for _, want := range []string{
		`&lt;img src=x onerror=alert(&#34;matched&#34;)&gt;`,
		`&lt;script&gt;alert(&#34;ua&#34;)&lt;/script&gt;`,
		`&lt;script&gt;alert(&#34;finding&#34;)&lt;/script&gt;`,
		`No suggestion: replay &lt;unavailable&gt;`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("event page lacks the escaped %q", want)
		}
	}
}

func TestBansPage(t *testing.T) {
	env := newEnv(t)
	s := env.login(t)
	add := func(v url.Values) *http.Response {
		v.Set("csrf", s.csrf)
		return env.do(t, req{method: "POST", path: "/bans", cookies: s.cookies, form: v})
	}
	resp := add(url.Values{"prefix": {"203.0.113.0/24"}, "duration": {"6h"}, "reason": {"<b>scanner</b>"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/bans?done=added" {
		t.Fatalf("add: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := env.page(t, s, "/bans?done=added", http.StatusOK)
	for _, want := range []string{"Ban added.", "<code>203.0.113.0/24</code>", "&lt;b&gt;scanner&lt;/b&gt;", "6 hours"[:1]} {
		if !strings.Contains(page, want) {
			t.Errorf("bans page lacks %q", want)
		}
	}
	// A message comes only from the fixed set.
	if page := env.page(t, s, "/bans?done=<script>", http.StatusOK); strings.Contains(page, "&lt;script") {
		t.Error("free text from the URL shown")
	}
	resp = add(url.Values{"prefix": {"0.0.0.0/0"}, "duration": {"1h"}})
	if body := readBody(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "broader than /8") || !strings.Contains(body, `value="0.0.0.0/0"`) {
		t.Fatalf("too broad: %d", resp.StatusCode)
	}
	resp = env.do(t, req{method: "POST", path: "/bans/lift", cookies: s.cookies, form: url.Values{"csrf": {s.csrf}, "prefix": {"203.0.113.0/24"}}})
	if resp.Header.Get("Location") != "/bans?done=lifted" {
		t.Fatalf("lift: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, banned := env.bans.Banned(mustAddr("203.0.113.9"), env.clock.Now()); banned {
		t.Fatal("still banned after lifting")
	}
}

func TestChart(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, 4}, {3, 4}, {5, 8}, {7, 8}, {9, 20}, {41, 80}, {123, 200}, {1234, 2000}, {999999, 2000000}} {
		if got := niceCeil(tc.n); got != tc.want {
			t.Errorf("niceCeil(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	for span, want := range map[time.Duration]time.Duration{
		time.Hour: time.Minute, 6 * time.Hour: 10 * time.Minute, 24 * time.Hour: 30 * time.Minute,
		7 * 24 * time.Hour: 3 * time.Hour, 30 * 24 * time.Hour: 12 * time.Hour, 400 * 24 * time.Hour: 24 * time.Hour,
	} {
		if got := bucketFor(span); got != want {
			t.Errorf("bucketFor(%s) = %s, want %s", span, got, want)
		}
	}
	since := testNow.Add(-time.Hour)
	c := buildChart([]store.Bucket{
		{Start: since, Blocked: 4},
		{Start: since.Add(30 * time.Minute), Blocked: 2, Detected: 2},
		{Start: since.Add(2 * time.Hour), Blocked: 100}, // outside: ignored
	}, since, testNow, time.Minute)
	if len(c.Bars) != 2 || c.Empty {
		t.Fatalf("bars %d", len(c.Bars))
	}
	// The full bar reaches the top of the plot (4 of a top of 4).
	if seg := c.Bars[0].Segs[0]; seg.Y != plotTop || seg.H != plotH {
		t.Fatalf("first bar %+v", seg)
	}
	if b := c.Bars[1]; len(b.Segs) != 2 || b.Segs[0].Class != "blocked" || b.Segs[1].Class != "detected" || b.Segs[1].Y+b.Segs[1].H != b.Segs[0].Y {
		t.Fatalf("stacked bar %+v", b)
	}
}

func TestLinksKeepFilters(t *testing.T) {
	f, err := query.Parse(url.Values{"rule": {"942100"}, "not_country": {"US"}}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	got := link("/events", withClient(withRule(f, 941100), "2001:db8::1"))
	want := "/events?ip=2001%3Adb8%3A%3A1&not_country=US&rule=942100&rule=941100"
	if got != want {
		t.Fatalf("link %q, want %q", got, want)
	}
	if len(f.RuleIDs) != 1 || f.ClientIPs != nil {
		t.Fatal("building a link changed the filter it started from")
	}
}

// TestTotalsCountAllowedRecords: with audit.log_all or sample_allowed the
// store holds allowed records; the overview's cards and /api/summary name
// them as part of the total (issue 13: the total included them, but no
// card did, so the parts did not add up).
func TestTotalsCountAllowedRecords(t *testing.T) {
	env := newEnv(t)
	var allowed []*audit.Entry
	for i := range 7 {
		e := *sqliRecord
		e.ID, e.Time = "req-allowed-"+string(rune('a'+i)), testNow.Add(-time.Duration(i+1)*time.Hour)
		e.Action, e.Stage, e.Status, e.Reason, e.Rules, e.InboundScore, e.Sampled = audit.ActionAllowed, "", 200, "", nil, 0, true
		allowed = append(allowed, &e)
	}
	insertAll(t, env.store, allowed)
	s := env.login(t)
	page := env.page(t, s, "/", http.StatusOK)
	for _, want := range []string{
		`<span class="num" id="total">309</span>`,
		`<span class="num" id="allowed">7</span>`,
		`href="/events?action=allowed&amp;since=`,
		`id="composition">309 records = `,
		` + 7 allowed.`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	var sum SummaryResponse
	getJSON(t, env, "/api/summary?range=24h", http.StatusOK, &sum)
	if sum.Total != 309 || sum.Allowed != 7 || sum.Blocked+sum.Detected+sum.Errors+sum.Allowed != sum.Total {
		t.Fatalf("totals %d = %d blocked + %d detected + %d errors + %d allowed", sum.Total, sum.Blocked, sum.Detected, sum.Errors, sum.Allowed)
	}
}

// TestEventPageExplanations (issue 13): a record another stage decided
// gets the reason there is no exclusion (it used to get no answer at all),
// and a suggestion for a request judged an attack is shown as a warning.
func TestEventPageExplanations(t *testing.T) {
	var asked []string
	env := newEnv(t, func(o *Options) {
		o.Explain = func(e *audit.Entry) (string, error) {
			asked = append(asked, e.ID)
			switch {
			case e.Stage == audit.StageBan:
				return "", errors.New("refused by the ban stage (banned until tomorrow), not by a rule: no rule exclusion changes that")
			case e.ID == "req-sqli-1":
				return NotAFix + " audit record req-sqli-1 looks like a real attack\n# - rule_ids: [\"942100\"]\n", nil
			}
			return "- rule_ids: [\"920350\"]\n", nil
		}
	})
	banned := *sqliRecord
	banned.ID, banned.Stage, banned.Reason, banned.Rules, banned.InboundScore = "req-ban-1", audit.StageBan, "banned until tomorrow", nil, 0
	allowed := *sqliRecord
	allowed.ID, allowed.Action, allowed.Stage, allowed.Rules = "req-allowed-1", audit.ActionAllowed, "", nil
	insertAll(t, env.store, []*audit.Entry{&banned, &allowed})
	s := env.login(t)
	for _, tc := range []struct {
		id          string
		want, avoid []string
	}{
		{"req-ban-1", []string{`id="suggestion-error">No suggestion: refused by the ban stage (banned until tomorrow)`}, []string{`id="suggestion"`}},
		{"req-sqli-1", []string{`id="not-a-fix"`, `id="suggestion"><code># NOT A FIX:`}, []string{"If this request was legitimate"}},
		{"req-allowed-1", nil, []string{`id="exclusion"`}},
	} {
		page := env.page(t, s, "/events/"+tc.id, http.StatusOK)
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: page lacks %q", tc.id, w)
			}
		}
		for _, a := range tc.avoid {
			if strings.Contains(page, a) {
				t.Errorf("%s: page has %q", tc.id, a)
			}
		}
	}
	if !slices.Equal(asked, []string{"req-ban-1", "req-sqli-1"}) {
		t.Errorf("explained %v: allowed records need no explanation", asked)
	}
}
