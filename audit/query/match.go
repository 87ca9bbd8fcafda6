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
	for _, neg := range [2]bool{false, true} {
		sel := f.selectors(neg)
		// A non-empty list must hit (or, negated, miss); an empty one
		// neither selects nor excludes.
		if len(*sel.ips) > 0 {
			ip, err := netip.ParseAddr(e.ClientIP)
			if (err == nil && containsAddr(*sel.ips, ip.Unmap())) == neg {
				return false
			}
		}
		if len(*sel.hosts) > 0 && slices.Contains(*sel.hosts, NormalizeHost(e.Host)) == neg {
			return false
		}
		if len(*sel.paths) > 0 && hasAnyPrefix(RequestPath(e.URI), *sel.paths) == neg {
			return false
		}
		if len(*sel.rules) > 0 && anyRule(e, *sel.rules) == neg {
			return false
		}
		if len(*sel.tags) > 0 && anyTag(e, *sel.tags) == neg {
			return false
		}
		if len(*sel.actions) > 0 && slices.Contains(*sel.actions, e.Action) == neg {
			return false
		}
		if len(*sel.stages) > 0 && slices.Contains(*sel.stages, e.Stage) == neg {
			return false
		}
		if len(*sel.statuses) > 0 && slices.Contains(*sel.statuses, e.Status) == neg {
			return false
		}
		if len(*sel.countries) > 0 && slices.Contains(*sel.countries, strings.ToUpper(e.Country)) == neg {
			return false
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
