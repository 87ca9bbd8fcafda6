package query

import (
	"flag"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Values encodes f as URL query values, the inverse of Parse: for every f
// that Parse returned, Parse(f.Values(), anyTime) equals f. Times are
// absolute (RFC 3339, UTC), so a saved link shows the same records later;
// a single address is written without its /32 or /128.
func (f Filter) Values() url.Values {
	v := url.Values{}
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		v.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	for _, neg := range []bool{false, true} {
		sel := f.selectors(neg)
		for _, p := range *sel.ips {
			v.Add(key("ip", neg), prefixString(p))
		}
		addAll(v, key("host", neg), *sel.hosts)
		addAll(v, key("path", neg), *sel.paths)
		for _, n := range *sel.rules {
			v.Add(key("rule", neg), strconv.Itoa(n))
		}
		addAll(v, key("tag", neg), *sel.tags)
		addAll(v, key("action", neg), *sel.actions)
		addAll(v, key("stage", neg), *sel.stages)
		for _, n := range *sel.statuses {
			v.Add(key("status", neg), strconv.Itoa(n))
		}
		addAll(v, key("country", neg), *sel.countries)
	}
	return v
}

func addAll(v url.Values, k string, vs []string) {
	for _, s := range vs {
		v.Add(k, s)
	}
}

func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// IsZero reports whether f selects every record.
func (f Filter) IsZero() bool { return len(f.Values()) == 0 }

// OnlyTime reports whether f constrains nothing but time and action: the
// filters that pre-aggregated summaries can answer.
func (f Filter) OnlyTime() bool {
	g := f
	g.Since, g.Until, g.Actions, g.NotActions = time.Time{}, time.Time{}, nil, nil
	return g.IsZero()
}

// String is the filter in URL query form, for messages.
func (f Filter) String() string { return f.Values().Encode() }

// BindFlags registers the filter flags on fs: --since, --until, and for every
// other key a repeatable flag and its negation (--rule, --not-rule, ...),
// each accepting comma-separated values like the URL form. The returned
// function gives the collected values for Parse.
func BindFlags(fs *flag.FlagSet) func() url.Values {
	v := url.Values{}
	for _, k := range Keys {
		names := []string{k}
		if k != "since" && k != "until" {
			names = append(names, "not-"+k)
		}
		for _, name := range names {
			qk := strings.ReplaceAll(name, "-", "_")
			fs.Func(name, flagUsage(name), func(s string) error {
				v.Add(qk, s)
				return nil
			})
		}
	}
	return func() url.Values { return v }
}

func flagUsage(name string) string {
	neg := strings.HasPrefix(name, "not-")
	k := strings.TrimPrefix(name, "not-")
	what := map[string]string{
		"since":   "records at or after `TIME`: a duration back from now (15m, 1h, 7d) or RFC 3339",
		"until":   "records before `TIME`: a duration back from now or RFC 3339",
		"ip":      "client `ADDRESS` or CIDR",
		"host":    "`HOST` name",
		"path":    "request path `PREFIX`",
		"rule":    "matched rule `ID`",
		"tag":     "matched rule `TAG`",
		"action":  "`ACTION`: blocked, detected, error, allowed",
		"stage":   "deciding `STAGE`: protocol, ban, reputation, geoip, ratelimit, waf, proxy, gateway",
		"status":  "response `STATUS` code",
		"country": "client `COUNTRY` (ISO 3166 alpha-2)",
	}[k]
	if neg {
		return "exclude " + what + " (repeatable, comma-separated)"
	}
	if k == "since" || k == "until" {
		return what
	}
	return "only " + what + " (repeatable, comma-separated)"
}
