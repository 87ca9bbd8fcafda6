package query

import (
	"errors"
	"flag"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestParse(t *testing.T) {
	cases := []struct {
		name  string
		query string
		want  Filter
	}{
		{"empty", "", Filter{}},
		{"unknown keys ignored", "after=abc&limit=5", Filter{}},
		{"empty values ignored", "rule=&host=&since=", Filter{}},
		{"since duration", "since=15m", Filter{Since: now.Add(-15 * time.Minute)}},
		{"since days", "since=7d", Filter{Since: now.Add(-7 * 24 * time.Hour)}},
		{"since compound", "since=1d12h", Filter{Since: now.Add(-36 * time.Hour)}},
		{"since weeks", "since=2w", Filter{Since: now.Add(-14 * 24 * time.Hour)}},
		{"since and until RFC 3339", "since=2026-11-25T10:00:00%2B02:00&until=2026-11-26T00:00:00.5Z",
			Filter{Since: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 26, 0, 0, 0, 5e8, time.UTC)}},
		{"date", "since=2026-11-20", Filter{Since: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)}},
		{"ip address and CIDR", "ip=10.1.2.3&ip=192.168.7.9/16,2001:db8::1/32",
			Filter{ClientIPs: []netip.Prefix{pfx("10.1.2.3/32"), pfx("192.168.0.0/16"), pfx("2001:db8::/32")}}},
		{"mapped address unmapped", "ip=::ffff:10.0.0.1", Filter{ClientIPs: []netip.Prefix{pfx("10.0.0.1/32")}}},
		{"mapped prefix unmapped", "ip=::ffff:10.0.0.0/104", Filter{ClientIPs: []netip.Prefix{pfx("10.0.0.0/8")}}},
		{"not ip", "not_ip=::1", Filter{NotClientIPs: []netip.Prefix{pfx("::1/128")}}},
		{"hosts normalised", "host=Shop.Example:8443,API.example.&host=[::1]:80", Filter{Hosts: []string{"shop.example", "api.example", "::1"}}},
		{"paths keep commas", "path=/a,b&path=/login", Filter{PathPrefixes: []string{"/a,b", "/login"}}},
		{"rules repeat and comma", "rule=942100,941100&rule=942100&not_rule=920350", Filter{RuleIDs: []int{942100, 941100}, NotRuleIDs: []int{920350}}},
		{"tags", "tag=attack-sqli&not_tag=paranoia-level/2", Filter{Tags: []string{"attack-sqli"}, NotTags: []string{"paranoia-level/2"}}},
		{"actions and stages lower-cased", "action=Blocked,detected&not_stage=WAF", Filter{Actions: []string{"blocked", "detected"}, NotStages: []string{"waf"}}},
		{"status", "status=403, 429&not_status=200", Filter{Statuses: []int{403, 429}, NotStatuses: []int{200}}},
		{"countries upper-cased", "country=de,Us&not_country=cn", Filter{Countries: []string{"DE", "US"}, NotCountries: []string{"CN"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(v, now)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.query, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q)\n got %#v\nwant %#v", tc.query, got, tc.want)
			}
			back, err := Parse(got.Values(), now.Add(time.Hour))
			if err != nil {
				t.Fatalf("Parse(Values()): %v", err)
			}
			if !reflect.DeepEqual(back, got) {
				t.Fatalf("round trip through %q\n got %#v\nwant %#v", got.Values().Encode(), back, got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		query string
		want  string // the whole error text
	}{
		{"since=yesterday", `invalid since "yesterday": want a duration like 15m, 1h or 7d, an RFC 3339 time or a date (2006-01-02)`},
		{"since=-5m", `invalid since "-5m": want a duration like 15m, 1h or 7d, an RFC 3339 time or a date (2006-01-02)`},
		{"since=0m", `invalid since "0m": want a duration like 15m, 1h or 7d, an RFC 3339 time or a date (2006-01-02)`},
		{"since=1h&since=2h", `invalid since "1h,2h": give one value`},
		{"since=1h&until=2h", `invalid until "2h": must be after since (2026-11-26T11:00:00Z)`},
		{"ip=10.0.0.300", `invalid ip "10.0.0.300": not an IP address or CIDR prefix`},
		{"not_ip=fe80::1%25eth0", `invalid not_ip "fe80::1%eth0": not an IP address or CIDR prefix`},
		{"ip=10.0.0.0/33", `invalid ip "10.0.0.0/33": not an IP address or CIDR prefix`},
		{"host=a/b", `invalid host "a/b": not a host name`},
		{"path=login", `invalid path "login": a path starts with /`},
		{"rule=abc", `invalid rule "abc": want a rule id (a positive integer)`},
		{"not_rule=-1", `invalid not_rule "-1": want a rule id (a positive integer)`},
		{"tag=a%20b", `invalid tag "a b": tags have no spaces or control characters`},
		{"action=denied", `invalid action "denied": want one of blocked, detected, error, allowed`},
		{"stage=firewall", `invalid stage "firewall": want one of protocol, ban, reputation, geoip, ratelimit, challenge, waf, proxy, gateway`},
		{"status=99", `invalid status "99": want a status code from 100 to 599`},
		{"country=DEU", `invalid country "DEU": want a two-letter ISO 3166 country code`},
		{"rule=x&country=1", "invalid rule \"x\": want a rule id (a positive integer)\ninvalid country \"1\": want a two-letter ISO 3166 country code"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(v, now)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tc.query, f)
			}
			if err.Error() != tc.want {
				t.Fatalf("Parse(%q) error\n got %s\nwant %s", tc.query, err, tc.want)
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.Key == "" {
				t.Fatalf("error %v is not a *query.Error", err)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	v := url.Values{"rule": {strings.Repeat("1,", MaxValuesPerKey+1)}}
	if _, err := Parse(v, now); err == nil || !strings.Contains(err.Error(), "more than 256 values") {
		t.Fatalf("too many values: %v", err)
	}
	v = url.Values{"path": {"/" + strings.Repeat("a", MaxValueLength)}}
	if _, err := Parse(v, now); err == nil || !strings.Contains(err.Error(), "longer than 1024 bytes") {
		t.Fatalf("long value: %v", err)
	}
}

func entry() *audit.Entry {
	return &audit.Entry{
		ID: "r1", Time: now.Add(-time.Minute), ClientIP: "203.0.113.7", Country: "de",
		Host: "Shop.Example:443", Method: "GET", URI: "/search/items?q=1", Status: 403,
		Action: audit.ActionBlocked, Stage: audit.StageWAF,
		Rules: []audit.MatchedRule{
			{ID: 942100, Tags: []string{"attack-sqli", "paranoia-level/1"}},
			{ID: 949110, Tags: []string{"anomaly-evaluation"}},
		},
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		query string
		want  bool
	}{
		{"", true},
		{"since=2m", true},
		{"since=30s", false},
		{"until=30s", true},
		{"until=1m", false}, // until is exclusive
		{"ip=203.0.113.7", true},
		{"ip=203.0.113.0/24", true},
		{"ip=203.0.112.0/24", false},
		{"ip=::ffff:203.0.113.7", true},
		{"not_ip=203.0.0.0/8", false},
		{"not_ip=10.0.0.0/8", true},
		{"host=shop.example", true},
		{"host=SHOP.EXAMPLE,other", true},
		{"host=other", false},
		{"not_host=shop.example", false},
		{"path=/search", true},
		{"path=/search/items", true},
		{"path=/search/items?q", false},
		{"path=/login,/search", false}, // paths do not split at commas
		{"path=/login&path=/search", true},
		{"not_path=/search", false},
		{"rule=942100", true},
		{"rule=941100,949110", true},
		{"rule=941100", false},
		{"not_rule=949110", false},
		{"not_rule=920350", true},
		{"tag=attack-sqli", true},
		{"tag=attack-xss", false},
		{"not_tag=anomaly-evaluation", false},
		{"action=blocked", true},
		{"action=detected", false},
		{"not_action=blocked", false},
		{"stage=waf", true},
		{"stage=ban", false},
		{"status=403,429", true},
		{"status=200", false},
		{"not_status=403", false},
		{"country=DE", true},
		{"country=US", false},
		{"not_country=de", false},
		{"rule=942100&country=DE&status=403", true},
		{"rule=942100&country=US", false},
		{"action=blocked&not_rule=942100", false},
	}
	e := entry()
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.query)
			f, err := Parse(v, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Match(e); got != tc.want {
				t.Fatalf("Match(%q) = %v, want %v", tc.query, got, tc.want)
			}
		})
	}
}

func TestMatchBadClientIP(t *testing.T) {
	e := entry()
	e.ClientIP = ""
	f := Filter{ClientIPs: []netip.Prefix{pfx("0.0.0.0/0")}}
	if f.Match(e) {
		t.Fatal("an entry without address matched an ip filter")
	}
	f = Filter{NotClientIPs: []netip.Prefix{pfx("0.0.0.0/0")}}
	if !f.Match(e) {
		t.Fatal("an entry without address was excluded by not_ip")
	}
}

func TestNormalizeHostAndPath(t *testing.T) {
	hosts := map[string]string{
		"Example.COM":       "example.com",
		"example.com:8080":  "example.com",
		"example.com.":      "example.com",
		"[2001:db8::1]:443": "2001:db8::1",
		"[::1]":             "::1",
		"2001:db8::1":       "2001:db8::1",
	}
	for in, want := range hosts {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
	paths := map[string]string{
		"/a/b?x=1":                  "/a/b",
		"/a#frag":                   "/a",
		"http://example.com/x?y":    "/x",
		"https://example.com":       "/",
		"*":                         "*",
		"":                          "",
		"/only":                     "/only",
		"/weird?http://example.com": "/weird",
	}
	for in, want := range paths {
		if got := RequestPath(in); got != want {
			t.Errorf("RequestPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBindFlags(t *testing.T) {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	values := BindFlags(fs)
	err := fs.Parse([]string{"--since", "1h", "--rule", "942100,941100", "--rule", "920350", "--not-country", "cn", "--not-path", "/health", "--ip", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(values(), now)
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{
		Since:           now.Add(-time.Hour),
		ClientIPs:       []netip.Prefix{pfx("10.0.0.0/8")},
		RuleIDs:         []int{942100, 941100, 920350},
		NotCountries:    []string{"CN"},
		NotPathPrefixes: []string{"/health"},
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("got %#v\nwant %#v", f, want)
	}
	if fs.Lookup("not-since") != nil {
		t.Fatal("--not-since should not exist")
	}
}

func TestOnlyTime(t *testing.T) {
	cases := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Since: now, Actions: []string{"blocked"}, NotActions: []string{"allowed"}}, true},
		{Filter{Since: now, Hosts: []string{"x"}}, false},
		{Filter{NotRuleIDs: []int{1}}, false},
	}
	for i, tc := range cases {
		if got := tc.f.OnlyTime(); got != tc.want {
			t.Errorf("%d: OnlyTime = %v, want %v", i, got, tc.want)
		}
	}
}
