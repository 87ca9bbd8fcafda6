// Package query is the one filter language over audit records, shared by the
// CLI (`portcullis audit search --rule 942100 --not-host x`), the dashboard
// (the same filters as URL query parameters, so a filtered view can be saved
// as a link) and the stores (SQLite translates a Filter into SQL; the JSONL
// reader applies Match).
//
// Place in the request path: none. It works on records the audit stage wrote.
package query

import (
	"net/netip"
	"time"
)

// Filter selects audit records. Every non-empty field narrows the result
// (AND between fields); several values in one field are alternatives (OR);
// Not* fields exclude records that match any of their values. The zero Filter
// matches everything.
type Filter struct {
	Since, Until time.Time // Since inclusive, Until exclusive; zero = open

	ClientIPs, NotClientIPs       []netip.Prefix // a single address is a /32 or /128
	Hosts, NotHosts               []string       // exact, case-insensitive
	PathPrefixes, NotPathPrefixes []string       // prefix of the request path (URI without query)
	RuleIDs, NotRuleIDs           []int          // any matched rule
	Tags, NotTags                 []string       // any tag of any matched rule
	Actions, NotActions           []string       // audit.Action* values
	Stages, NotStages             []string       // audit.Stage* values
	Statuses, NotStatuses         []int          // exact status codes
	Countries, NotCountries       []string       // ISO 3166 alpha-2, upper case
}
