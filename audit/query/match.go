package query

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
)

// Match reports whether e is selected by f, with the same meaning the stores
// give f in SQL: used on JSONL files and to check the stores in tests.
func (f Filter) Match(e *audit.Entry) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	ip, ipErr := netip.ParseAddr(e.ClientIP)
	ip = ip.Unmap()
	host := NormalizeHost(e.Host)
	path := RequestPath(e.URI)
	for _, neg := range []bool{false, true} {
		sel := f.selectors(neg)
		// hit reports whether the entry has a value in a non-empty list;
		// an empty list neither selects nor excludes.
		checks := []struct {
			set bool
			hit func() bool
		}{
			{len(*sel.ips) > 0, func() bool { return ipErr == nil && containsAddr(*sel.ips, ip) }},
			{len(*sel.hosts) > 0, func() bool { return slices.Contains(*sel.hosts, host) }},
			{len(*sel.paths) > 0, func() bool { return hasAnyPrefix(path, *sel.paths) }},
			{len(*sel.rules) > 0, func() bool { return anyRule(e, *sel.rules) }},
			{len(*sel.tags) > 0, func() bool { return anyTag(e, *sel.tags) }},
			{len(*sel.actions) > 0, func() bool { return slices.Contains(*sel.actions, e.Action) }},
			{len(*sel.stages) > 0, func() bool { return slices.Contains(*sel.stages, e.Stage) }},
			{len(*sel.statuses) > 0, func() bool { return slices.Contains(*sel.statuses, e.Status) }},
			{len(*sel.countries) > 0, func() bool { return slices.Contains(*sel.countries, strings.ToUpper(e.Country)) }},
		}
		for _, c := range checks {
			if c.set && c.hit() == neg {
				return false
			}
		}
	}
	return true
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func anyRule(e *audit.Entry, ids []int) bool {
	for i := range e.Rules {
		if slices.Contains(ids, e.Rules[i].ID) {
			return true
		}
	}
	return false
}

func anyTag(e *audit.Entry, tags []string) bool {
	for i := range e.Rules {
		for _, t := range e.Rules[i].Tags {
			if slices.Contains(tags, t) {
				return true
			}
		}
	}
	return false
}
