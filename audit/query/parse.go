package query

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
)

// Keys are the URL query keys Parse reads, in the order Values writes them
// and the CLI documents them. Every key but since and until also has a not_
// form (not_rule, not_ip, ...) that excludes instead of selects.
var Keys = []string{"since", "until", "ip", "host", "path", "rule", "tag", "action", "stage", "status", "country"}

// Limits on attacker-sized input (a dashboard URL is typed by anyone who can
// reach the login page): Parse refuses more values per key, or longer values.
const (
	MaxValuesPerKey = 256
	MaxValueLength  = 1024
)

// Error is one rejected filter value. Parse returns every one it finds,
// joined with errors.Join; errors.As finds the first.
type Error struct {
	Key, Value string
	Reason     string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Key, e.Value, e.Reason)
}

// Actions and Stages are the values the action and stage keys accept.
var (
	Actions = []string{audit.ActionBlocked, audit.ActionDetected, audit.ActionError, audit.ActionAllowed}
	Stages  = audit.Stages[:]
)

// Parse reads a Filter from URL query values (the dashboard's URL, or
// FlagValues for the CLI). Keys it does not know are ignored, so a page URL
// can carry its own parameters (a cursor, a page size) beside the filter.
//
//	since, until  a duration back from now (90s, 15m, 1h, 7d, 2w, 1d12h), an
//	              RFC 3339 time, or a date (2026-11-26, midnight UTC);
//	              since is inclusive, until exclusive; one value each
//	ip            an address or a CIDR prefix (10.0.0.0/8, 2001:db8::/32)
//	host          a host name, matched case-insensitively without port
//	path          a prefix of the request path (starts with /)
//	rule          a rule id (942100)
//	tag           a rule tag (attack-sqli), exact
//	action        blocked | detected | error | allowed
//	stage         protocol | ban | reputation | geoip | ratelimit | waf | proxy | gateway
//	status        a response status code (403)
//	country       an ISO 3166 alpha-2 code (DE), case-insensitive
//
// Each of ip ... country may repeat (ip=a&ip=b) and, except path and tag
// (which may contain commas), take comma-separated values (rule=1,2); values
// of one key are alternatives. The not_ form of a key (not_rule=920350)
// excludes records that match any of its values. Empty values are ignored,
// as an empty form field should be. Times are returned in UTC; lists keep
// their first-seen order without duplicates.
func Parse(v url.Values, now time.Time) (Filter, error) {
	var f Filter
	p := parser{v: v}
	f.Since = p.time("since", now)
	f.Until = p.time("until", now)
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		p.errs = append(p.errs, &Error{Key: "until", Value: first(v["until"]), Reason: "must be after since (" + f.Since.Format(time.RFC3339Nano) + ")"})
	}
	for _, neg := range []bool{false, true} {
		sel := f.selectors(neg)
		*sel.ips = p.prefixes(key("ip", neg))
		*sel.hosts = p.strings(key("host", neg), true, parseHost)
		*sel.paths = p.strings(key("path", neg), false, parsePath)
		*sel.rules = p.ints(key("rule", neg), parseRule)
		*sel.tags = p.strings(key("tag", neg), false, parseTag)
		*sel.actions = p.strings(key("action", neg), true, oneOf(Actions))
		*sel.stages = p.strings(key("stage", neg), true, oneOf(Stages))
		*sel.statuses = p.ints(key("status", neg), parseStatus)
		*sel.countries = p.strings(key("country", neg), true, parseCountry)
	}
	if len(p.errs) > 0 {
		return Filter{}, errors.Join(p.errs...)
	}
	return f, nil
}

func key(k string, neg bool) string {
	if neg {
		return "not_" + k
	}
	return k
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// selectors points at the positive or the negative half of a Filter, so
// parsing, encoding and matching are written once for both.
type selectors struct {
	ips                                 *[]netip.Prefix
	hosts, paths, tags, actions, stages *[]string
	countries                           *[]string
	rules, statuses                     *[]int
}

func (f *Filter) selectors(neg bool) selectors {
	if neg {
		return selectors{&f.NotClientIPs, &f.NotHosts, &f.NotPathPrefixes, &f.NotTags, &f.NotActions, &f.NotStages, &f.NotCountries, &f.NotRuleIDs, &f.NotStatuses}
	}
	return selectors{&f.ClientIPs, &f.Hosts, &f.PathPrefixes, &f.Tags, &f.Actions, &f.Stages, &f.Countries, &f.RuleIDs, &f.Statuses}
}

type parser struct {
	v    url.Values
	errs []error
}

func (p *parser) fail(k, v, reason string) {
	p.errs = append(p.errs, &Error{Key: k, Value: v, Reason: reason})
}

// items returns the non-empty, trimmed values of k, split at commas when
// split is set, or nil after recording an error when there are too many.
func (p *parser) items(k string, split bool) []string {
	var out []string
	for _, raw := range p.v[k] {
		parts := []string{raw}
		if split {
			parts = strings.Split(raw, ",")
		}
		for _, s := range parts {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if len(s) > MaxValueLength {
				p.fail(k, s[:32]+"...", fmt.Sprintf("longer than %d bytes", MaxValueLength))
				continue
			}
			out = append(out, s)
		}
	}
	if len(out) > MaxValuesPerKey {
		p.fail(k, out[0]+",...", fmt.Sprintf("more than %d values", MaxValuesPerKey))
		return nil
	}
	return out
}

func (p *parser) strings(k string, split bool, norm func(string) (string, string)) []string {
	var out []string
	for _, s := range p.items(k, split) {
		n, bad := norm(s)
		if bad != "" {
			p.fail(k, s, bad)
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (p *parser) ints(k string, parse func(string) (int, string)) []int {
	var out []int
	for _, s := range p.items(k, true) {
		n, bad := parse(s)
		if bad != "" {
			p.fail(k, s, bad)
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (p *parser) prefixes(k string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.items(k, true) {
		pfx, err := ParsePrefix(s)
		if err != nil {
			p.fail(k, s, err.Error())
			continue
		}
		if !slices.Contains(out, pfx) {
			out = append(out, pfx)
		}
	}
	return out
}

func (p *parser) time(k string, now time.Time) time.Time {
	vs := p.items(k, false)
	switch len(vs) {
	case 0:
		return time.Time{}
	case 1:
	default:
		p.fail(k, strings.Join(vs, ","), "give one value")
		return time.Time{}
	}
	t, err := ParseTime(vs[0], now)
	if err != nil {
		p.fail(k, vs[0], err.Error())
		return time.Time{}
	}
	return t
}

// ParsePrefix reads an address (a /32 or /128) or a CIDR prefix, masked to
// its network. IPv4-mapped IPv6 addresses become IPv4, as client addresses
// are recorded; zones are refused.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
		}
		if pfx.Addr().Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseTime reads a since/until value: a duration back from now (15m, 1h,
// 7d, 2w, 1d12h), an RFC 3339 time, or a date (midnight UTC). The result is
// in UTC.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if d, ok := parseDuration(s); ok {
		return now.Add(-d).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, errors.New("want a duration like 15m, 1h or 7d, an RFC 3339 time or a date (2006-01-02)")
}

var durationUnits = map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}

// maxDuration keeps now.Add(-d) far from overflow: about 100 years.
const maxDuration = 100 * 365 * 24 * time.Hour

// parseDuration reads one or more <digits><unit> groups (units s m h d w).
func parseDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return 0, false
		}
		n, _ := strconv.Atoi(s[:i])
		unit, ok := durationUnits[s[i]]
		if !ok {
			return 0, false
		}
		if time.Duration(n) > (math.MaxInt64-total)/unit {
			return 0, false
		}
		total += time.Duration(n) * unit
		if total > maxDuration {
			return 0, false
		}
		s = s[i+1:]
	}
	return total, total > 0
}

// NormalizeHost is the form hosts are compared in: lower case, without port,
// brackets or a trailing dot. Stores index hosts in this form.
func NormalizeHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if strings.HasPrefix(h, "[") {
		if end := strings.IndexByte(h, ']'); end > 0 {
			return h[1:end]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i] // host:port; a bare IPv6 address has more than one colon
	}
	return strings.TrimRight(h, ".")
}

// RequestPath is the path part of a recorded request target: the URI
// without query or fragment, and without scheme and authority for an
// absolute-form target. Stores index paths in this form.
func RequestPath(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if !strings.HasPrefix(uri, "/") {
		if _, rest, ok := strings.Cut(uri, "://"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				return rest[i:]
			}
			return "/"
		}
	}
	return uri
}

func parseHost(s string) (string, string) {
	h := NormalizeHost(s)
	if h == "" || strings.ContainsAny(h, " /?#@\\[],") || NormalizeHost(h) != h {
		return "", "not a host name"
	}
	return h, ""
}

func parsePath(s string) (string, string) {
	if !strings.HasPrefix(s, "/") {
		return "", "a path starts with /"
	}
	return s, ""
}

func parseTag(s string) (string, string) {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return "", "tags have no spaces or control characters"
		}
	}
	return s, ""
}

func oneOf(allowed []string) func(string) (string, string) {
	return func(s string) (string, string) {
		s = strings.ToLower(s)
		if !slices.Contains(allowed, s) {
			return "", "want one of " + strings.Join(allowed, ", ")
		}
		return s, ""
	}
}

func parseCountry(s string) (string, string) {
	if len(s) != 2 || !isLetter(s[0]) || !isLetter(s[1]) {
		return "", "want a two-letter ISO 3166 country code"
	}
	return strings.ToUpper(s), ""
}

func isLetter(b byte) bool { return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' }

func parseRule(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > math.MaxInt32 || s[0] == '+' {
		return 0, "want a rule id (a positive integer)"
	}
	return n, ""
}

func parseStatus(s string) (int, string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 || len(s) != 3 {
		return 0, "want a status code from 100 to 599"
	}
	return n, ""
}
