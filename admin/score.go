package admin

import (
	"strings"

	"github.com/portcullis-waf/portcullis/audit"
)

// severityNames maps ModSecurity's numeric severities to their names, for
// records that carry the number.
var severityNames = map[string]string{
	"0": "emergency", "1": "alert", "2": "critical", "3": "error",
	"4": "warning", "5": "notice", "6": "info", "7": "debug",
}

// ruleKind sorts matched rules for the breakdown.
type ruleKind int

const (
	kindInbound     ruleKind = iota // request rules: add to the inbound score
	kindOutbound                    // response rules (CRS 950–958): add to the outbound score
	kindBookkeeping                 // CRS initialisation, blocking evaluation and reporting
)

// classify places a rule by its CRS id range. Bookkeeping rules (901–905
// setup, 949 inbound and 959 outbound blocking evaluation, 980
// correlation/reporting) match because of the score; they add nothing to it.
// The ranges are those of audit.RulePoints.
func classify(id int) ruleKind {
	switch id / 1000 {
	case 901, 902, 903, 904, 905, 949, 959, 980:
		return kindBookkeeping
	case 950, 951, 952, 953, 954, 955, 956, 957, 958:
		return kindOutbound
	}
	return kindInbound
}

// ScoredRule is one matched rule with the points its severity adds.
type ScoredRule struct {
	audit.MatchedRule
	// SeverityName is the severity in words, whatever form the record has.
	SeverityName string `json:"severity_name,omitempty"`
	Points       int    `json:"points"`
}

// Breakdown explains a record's anomaly scores rule by rule.
type Breakdown struct {
	Inbound     []ScoredRule        `json:"inbound"`
	InboundSum  int                 `json:"inbound_sum"`
	Outbound    []ScoredRule        `json:"outbound"`
	OutboundSum int                 `json:"outbound_sum"`
	Bookkeeping []audit.MatchedRule `json:"bookkeeping"`
	// Recorded scores are what the engine reported; they differ from the
	// sums when rules matched without being logged, or when the rule set
	// scores differently from the CRS defaults.
	RecordedInbound  int `json:"recorded_inbound"`
	RecordedOutbound int `json:"recorded_outbound"`
}

// breakdown splits e's matched rules into scoring and bookkeeping rules.
func breakdown(e *audit.Entry) Breakdown {
	b := Breakdown{RecordedInbound: e.InboundScore, RecordedOutbound: e.OutboundScore,
		Inbound: []ScoredRule{}, Outbound: []ScoredRule{}, Bookkeeping: []audit.MatchedRule{}}
	for _, r := range e.Rules {
		kind := classify(r.ID)
		if kind == kindBookkeeping {
			b.Bookkeeping = append(b.Bookkeeping, r)
			continue
		}
		sev := strings.ToLower(strings.TrimSpace(r.Severity))
		if n, ok := severityNames[sev]; ok {
			sev = n
		}
		named := r
		named.Severity = sev
		// audit.RulePoints is the one table of CRS points per severity
		// (critical 5, error 4, warning 3, notice 2).
		points, _ := audit.RulePoints(named)
		sr := ScoredRule{MatchedRule: r, SeverityName: sev, Points: points}
		if kind == kindOutbound {
			b.Outbound = append(b.Outbound, sr)
			b.OutboundSum += sr.Points
		} else {
			b.Inbound = append(b.Inbound, sr)
			b.InboundSum += sr.Points
		}
	}
	return b
}
