// Package anomaly explains a record's CRS anomaly score: which matched
// rules added how many points, and which matched rules were only CRS
// bookkeeping (the evaluation rule that blocked, the reporting rule). The
// CLI's `audit show` and the dashboard's record page both print it.
//
// Place in the request path: none. It reads finished audit records.
//
// CRS detection rules add their severity's points to the inbound (request
// phases 1-2) or outbound (response phases 3-4) anomaly score: critical 5,
// error 4, warning 3, notice 2 (tx.critical_anomaly_score and friends, the
// CRS defaults). Rule 949110 then blocks when the inbound score reaches the
// threshold, 959100 likewise for outbound, and 980170 reports the scores.
package anomaly

import (
	"slices"
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
)

// Points are the CRS default anomaly points per rule severity.
var Points = map[string]int{"critical": 5, "error": 4, "warning": 3, "notice": 2}

// Scored is a matched rule and the points it added.
type Scored struct {
	Rule   audit.MatchedRule
	Points int
}

// Breakdown sorts a record's matched rules by what they did.
type Breakdown struct {
	// Inbound and Outbound are the CRS detection rules that added points,
	// in match order.
	Inbound, Outbound []Scored
	// InboundSum and OutboundSum add up their points; the record's own
	// scores (Entry.InboundScore, OutboundScore) are what the engine
	// counted, and differ when scores were customised.
	InboundSum, OutboundSum int
	// Bookkeeping are CRS rules that evaluate or report the score
	// (949110, 959100, 980170, ...) rather than detect anything.
	Bookkeeping []audit.MatchedRule
	// Other are rules outside the CRS range (ids 900000-999999) or without
	// a scoring severity: custom rules, which may block on their own.
	Other []audit.MatchedRule
}

// Explain breaks down the matched rules of e.
func Explain(e *audit.Entry) Breakdown {
	var b Breakdown
	for _, r := range e.Rules {
		switch {
		case IsBookkeeping(r):
			b.Bookkeeping = append(b.Bookkeeping, r)
		case !isCRS(r.ID) || Points[strings.ToLower(r.Severity)] == 0:
			b.Other = append(b.Other, r)
		default:
			s := Scored{Rule: r, Points: Points[strings.ToLower(r.Severity)]}
			if r.Phase >= 3 {
				b.Outbound = append(b.Outbound, s)
				b.OutboundSum += s.Points
			} else {
				b.Inbound = append(b.Inbound, s)
				b.InboundSum += s.Points
			}
		}
	}
	return b
}

func isCRS(id int) bool { return id >= 900000 && id < 1000000 }

// IsBookkeepingID reports whether id is in a CRS bookkeeping rule file, for
// callers that know only the id (summaries). Custom rules tagged
// anomaly-evaluation need IsBookkeeping.
func IsBookkeepingID(id int) bool {
	return isCRS(id) && slices.Contains(bookkeepingRanges, id/1000)
}

// bookkeepingRanges are CRS rule files that configure, evaluate or report
// rather than detect: 900-901 setup, 905 common exceptions, 949 inbound
// blocking evaluation, 959 outbound blocking evaluation, 980 correlation
// and reporting.
var bookkeepingRanges = []int{900, 901, 905, 949, 959, 980}

// IsBookkeeping reports whether r is a CRS rule that evaluates or reports
// the anomaly score rather than detecting an attack.
func IsBookkeeping(r audit.MatchedRule) bool {
	if IsBookkeepingID(r.ID) {
		return true
	}
	for _, t := range r.Tags {
		if t == "anomaly-evaluation" || t == "reporting" {
			return true
		}
	}
	return false
}
