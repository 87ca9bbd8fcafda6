package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
)

func getJSON(t *testing.T, env *testEnv, path string, want int, v any) {
	t.Helper()
	resp := env.do(t, req{path: path, header: bearer()})
	body := readBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

func TestAPIEvents(t *testing.T) {
	env := newEnv(t)
	for _, tc := range []struct {
		name  string
		query string
		check func(t *testing.T, r EventsResponse)
	}{
		{"filter by rule", "rule=920273&since=1h", func(t *testing.T, r EventsResponse) {
			if len(r.Events) != 1 || r.Events[0].ID != sqliRecord.ID {
				t.Fatalf("got %d events, want only %s", len(r.Events), sqliRecord.ID)
			}
		}},
		{"filter by client and action", "ip=198.51.100.23&action=blocked&since=30m", func(t *testing.T, r EventsResponse) {
			if len(r.Events) != 1 || r.Events[0].ID != xssRecord.ID {
				t.Fatalf("got %v", ids(r))
			}
		}},
		{"exclusion", "since=1h&not_rule=942190&not_rule=941100&rule=942100,941100", func(t *testing.T, r EventsResponse) {
			for _, e := range r.Events {
				if e.ID == sqliRecord.ID || e.ID == xssRecord.ID {
					t.Fatalf("excluded record %s returned", e.ID)
				}
			}
		}},
		{"nothing", "host=nowhere.example", func(t *testing.T, r EventsResponse) {
			if r.Events == nil || len(r.Events) != 0 || r.Next != "" {
				t.Fatalf("want an empty list, got %+v", r)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r EventsResponse
			getJSON(t, env, "/api/events?"+tc.query, http.StatusOK, &r)
			tc.check(t, r)
		})
	}

	t.Run("pagination", func(t *testing.T) {
		seen := map[string]bool{}
		after := ""
		var last time.Time
		for pages := 0; ; pages++ {
			var r EventsResponse
			getJSON(t, env, "/api/events?limit=40&after="+url.QueryEscape(after), http.StatusOK, &r)
			for _, e := range r.Events {
				if seen[e.ID] {
					t.Fatalf("record %s on two pages", e.ID)
				}
				if !last.IsZero() && e.Time.After(last) {
					t.Fatalf("record %s is newer than the one before it", e.ID)
				}
				seen[e.ID], last = true, e.Time
			}
			if r.Next == "" {
				break
			}
			after = r.Next
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
		}
		if len(seen) != 302 {
			t.Fatalf("paged through %d records, want 302", len(seen))
		}
	})

	t.Run("bad filter", func(t *testing.T) {
		var r map[string]string
		getJSON(t, env, "/api/events?rule=abc", http.StatusBadRequest, &r)
		if !strings.Contains(r["error"], `invalid rule "abc"`) {
			t.Fatalf("error %q", r["error"])
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		var r map[string]string
		getJSON(t, env, "/api/events?after=nonsense", http.StatusBadRequest, &r)
	})
}

func ids(r EventsResponse) []string {
	var out []string
	for _, e := range r.Events {
		out = append(out, e.ID)
	}
	return out
}

func TestAPIEvent(t *testing.T) {
	env := newEnv(t)
	var r EventResponse
	getJSON(t, env, "/api/events/"+sqliRecord.ID, http.StatusOK, &r)
	if r.Event == nil || r.Event.ID != sqliRecord.ID || r.Event.URI != sqliRecord.URI {
		t.Fatalf("event %+v", r.Event)
	}
	// 942100, 942190, 920273: critical 5 each; 920350: warning 3.
	if r.Score.InboundSum != 18 || r.Score.RecordedInbound != 13 || len(r.Score.Inbound) != 4 || len(r.Score.Bookkeeping) != 2 {
		t.Fatalf("score %+v", r.Score)
	}
	if !strings.Contains(r.Exclusion, "rule: 942100") {
		t.Fatalf("exclusion %q", r.Exclusion)
	}
	var alias EventResponse
	getJSON(t, env, "/api/event/"+sqliRecord.ID, http.StatusOK, &alias)
	if alias.Event.ID != sqliRecord.ID {
		t.Fatal("/api/event/{id} differs from /api/events/{id}")
	}
	var xss EventResponse
	getJSON(t, env, "/api/events/"+xssRecord.ID, http.StatusOK, &xss)
	if xss.Exclusion != "" || xss.ExclusionError != "replay <unavailable>" {
		t.Fatalf("exclusion %q, error %q", xss.Exclusion, xss.ExclusionError)
	}
	var missing map[string]string
	getJSON(t, env, "/api/events/no-such-id", http.StatusNotFound, &missing)
}

func TestAPISummary(t *testing.T) {
	env := newEnv(t)
	var all SummaryResponse
	getJSON(t, env, "/api/summary?range=24h", http.StatusOK, &all)
	if all.Total != 302 || all.Blocked+all.Detected+all.Errors != all.Total {
		t.Fatalf("totals %d = %d blocked + %d detected + %d errors", all.Total, all.Blocked, all.Detected, all.Errors)
	}
	if len(all.Series) == 0 || all.BucketSecs != int64((30*time.Minute)/time.Second) {
		t.Fatalf("series of %d points, bucket %ds", len(all.Series), all.BucketSecs)
	}
	sum := 0
	for _, p := range all.Series {
		sum += p.Blocked + p.Detected + p.Errors
	}
	if sum != all.Total {
		t.Fatalf("series adds up to %d, total is %d", sum, all.Total)
	}
	if len(all.TopRules) == 0 || len(all.TopClients) == 0 || len(all.TopCountries) == 0 {
		t.Fatalf("empty top lists: %+v", all)
	}

	var one SummaryResponse
	getJSON(t, env, "/api/summary?rule=942190&since=20m&top=3", http.StatusOK, &one)
	if one.Total != 1 || one.Blocked != 1 || len(one.TopClients) != 1 || one.TopClients[0].Value != "203.0.113.7" {
		t.Fatalf("filtered summary %+v", one)
	}
	var bad map[string]string
	getJSON(t, env, "/api/summary?top=0", http.StatusBadRequest, &bad)
	getJSON(t, env, "/api/summary?bucket=1ms", http.StatusBadRequest, &bad)
}

func TestAPIBans(t *testing.T) {
	env := newEnv(t)
	post := func(body string) (*http.Response, string) {
		resp := env.do(t, req{method: "POST", path: "/api/bans", body: body,
			header: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + testToken}})
		return resp, readBody(t, resp)
	}
	for _, tc := range []struct {
		body string
		want int
		err  string
	}{
		{`{"prefix":"203.0.113.7","duration":"7d","reason":"sqlmap"}`, http.StatusCreated, ""},
		{`{"prefix":"2001:db8:1::/48"}`, http.StatusCreated, ""},
		{`{"prefix":"203.0.113.77/33"}`, http.StatusBadRequest, "not an address or CIDR prefix"},
		{`{"prefix":"10.0.0.0/4"}`, http.StatusBadRequest, "broader than /8"},
		{`{"prefix":"192.0.2.1","duration":"400d"}`, http.StatusBadRequest, "at most 365d"},
		{`{"prefix":"192.0.2.1","duration":"-1h"}`, http.StatusBadRequest, "more than 0"},
		{`{"prefix":"192.0.2.1","reason":"` + strings.Repeat("x", bans.MaxReasonLen+1) + `"}`, http.StatusBadRequest, "reason is longer"},
		{`{"prefix":"192.0.2.1","extra":1}`, http.StatusBadRequest, "body must be JSON"},
		{`not json`, http.StatusBadRequest, "body must be JSON"},
	} {
		resp, body := post(tc.body)
		if resp.StatusCode != tc.want || !strings.Contains(body, tc.err) {
			t.Errorf("POST %.60s: status %d, want %d with %q: %s", tc.body, resp.StatusCode, tc.want, tc.err, body)
		}
	}
	resp := env.do(t, req{method: "POST", path: "/api/bans", body: `{"prefix":"192.0.2.1"}`,
		header: map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + testToken}})
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: status %d, want 415", resp.StatusCode)
	}

	var list map[string][]bans.Ban
	getJSON(t, env, "/api/bans", http.StatusOK, &list)
	if len(list["bans"]) != 2 || list["bans"][0].Prefix.String() != "203.0.113.7/32" || list["bans"][0].Reason != "sqlmap" ||
		list["bans"][0].Source != bans.SourceManual || !list["bans"][0].Until.Equal(testNow.Add(7*24*time.Hour)) {
		t.Fatalf("bans %+v", list)
	}
	if got := list["bans"][1].Reason; got != "banned by ci from the admin dashboard" {
		t.Fatalf("default reason %q", got)
	}
	if _, banned := env.bans.Banned(mustAddr("203.0.113.7"), testNow); !banned {
		t.Fatal("the API ban is not in the gateway's table")
	}

	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/bans/203.0.113.7", http.StatusNoContent},
		{"/api/bans/203.0.113.7", http.StatusNotFound},
		{"/api/bans/2001:db8:1::/48", http.StatusNoContent},
		{"/api/bans/not-an-ip", http.StatusBadRequest},
	} {
		resp := env.do(t, req{method: "DELETE", path: tc.path, header: bearer()})
		if resp.StatusCode != tc.want {
			t.Errorf("DELETE %s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	if n := len(env.bans.List(testNow)); n != 0 {
		t.Fatalf("%d bans left", n)
	}
}

func TestBansDisabled(t *testing.T) {
	env := newEnv(t, func(o *Options) { o.Bans = nil })
	s := env.login(t)
	for _, path := range []string{"/bans", "/api/bans"} {
		if resp := env.do(t, req{path: path, cookies: s.cookies}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
	}
	if page := readBody(t, env.do(t, req{path: "/", cookies: s.cookies})); strings.Contains(page, `href="/bans"`) {
		t.Error("navigation links to the bans page")
	}
}

// TestEventByIDPrefix: the event page and API take a unique prefix of a
// record id (issue 13); an ambiguous one lists the candidates.
func TestEventByIDPrefix(t *testing.T) {
	env := newEnv(t)
	var extra []*audit.Entry
	for _, id := range []string{"5eed0a11aaaaaaaaaaaaaaaaaaaaaaaa", "5eed0a22bbbbbbbbbbbbbbbbbbbbbbbb"} {
		e := *sqliRecord
		e.ID = id
		extra = append(extra, &e)
	}
	insertAll(t, env.store, extra)
	s := env.login(t)

	var one EventResponse
	getJSON(t, env, "/api/events/5eed0a2", http.StatusOK, &one)
	if one.Event == nil || one.Event.ID != "5eed0a22bbbbbbbbbbbbbbbbbbbbbbbb" || one.Score.InboundSum != 18 {
		t.Fatalf("by prefix: %+v", one.Event)
	}
	var amb AmbiguousResponse
	getJSON(t, env, "/api/events/5eed0a", http.StatusConflict, &amb)
	if len(amb.Candidates) != 2 || amb.Candidates[0] != "5eed0a11aaaaaaaaaaaaaaaaaaaaaaaa" || amb.More || !strings.Contains(amb.Error, "2 audit records") {
		t.Fatalf("ambiguous prefix: %+v", amb)
	}
	var missing map[string]string
	getJSON(t, env, "/api/events/5eed", http.StatusNotFound, &missing)
	if !strings.Contains(missing["error"], "at least 6 characters") {
		t.Fatalf("short prefix: %v", missing)
	}

	// The page shows a record found by prefix under its full id.
	resp := env.do(t, req{path: "/events/5eed0a1", cookies: s.cookies})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/events/5eed0a11aaaaaaaaaaaaaaaaaaaaaaaa" {
		t.Fatalf("page by prefix: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := env.page(t, s, "/events/5eed0a", http.StatusConflict)
	for _, want := range []string{`id="candidates"`, `href="/events/5eed0a11aaaaaaaaaaaaaaaaaaaaaaaa"`, `href="/events/5eed0a22bbbbbbbbbbbbbbbbbbbbbbbb"`} {
		if !strings.Contains(page, want) {
			t.Errorf("ambiguous page lacks %q", want)
		}
	}
	env.page(t, s, "/events/"+sqliRecord.ID, http.StatusOK) // a full id is not redirected
}
