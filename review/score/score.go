// Package score explains a record's anomaly score rule by rule: which
// matched rules added how many points to the inbound and outbound scores,
// which were CRS bookkeeping (the evaluation rule that blocked, the
// reporting rule), and which were other rules (custom and engine rules)
// that the CRS scoring does not account for. The CLI's `audit show` and the
// dashboard's event page and /api/events/{id} all print this one
// breakdown, so they explain a record the same way.
//
// Place in the request path: none. It reads finished audit records, above
// audit/ and beside the other review tools (review/explain, review/replay),
// but unlike them it depends on audit/ only: the dashboard uses it without
// importing the pipeline.
//
// The classification of one rule (its role and points) is audit.RuleScore,
// the single table, kept in audit/ because the store's summaries need the
// bookkeeping test too and audit/ must not import review/. This package
// turns it into the per-record split. In short:
//
//   - CRS detection rules (ids 900000-999999 with a severity of critical,
//     error, warning or notice, by name or ModSecurity number) add 5, 4, 3
//     or 2 points to the inbound score (phases 1-2) or the outbound score
//     (phases 3-4);
//   - bookkeeping rules add nothing: CRS setup (900-901xxx), common
//     exceptions (905xxx), blocking evaluation (949xxx, 959xxx), reporting
//     (980xxx), and any rule tagged anomaly-evaluation or reporting;
//   - every other rule is listed under Other with no points: custom rules
//     (the record does not keep the setvar actions through which a custom
//     rule could score, and a severity alone adds nothing), engine rules,
//     and CRS rules without a scoring severity. A custom rule that did add
//     points shows as a difference between the sum and the recorded score,
//     which Difference explains.
//
// New sections (the detectors' findings, once records carry them) belong
// here as fields of Breakdown, so that both front ends show them alike.
package score

import "github.com/portcullis-waf/portcullis/audit"

// Rule is one matched rule and what it added.
type Rule struct {
	audit.MatchedRule
	// SeverityName is the severity in lower-case words, whatever form the
	// record has ("2" and "CRITICAL" are "critical").
	SeverityName string `json:"severity_name,omitempty"`
	// Points are what the rule added to its score: 0 for bookkeeping and
	// other rules.
	Points int `json:"points"`
}

// Breakdown sorts a record's matched rules by what they did to the score.
// Every list keeps the record's match order and is never nil, so that the
// JSON has [] rather than null.
type Breakdown struct {
	// Inbound and Outbound are the CRS detection rules that added points.
	Inbound     []Rule `json:"inbound"`
	InboundSum  int    `json:"inbound_sum"`
	Outbound    []Rule `json:"outbound"`
	OutboundSum int    `json:"outbound_sum"`
	// Bookkeeping are rules that set up, evaluate or report the score
	// (949110, 959100, 980170, ...) rather than detect anything.
	Bookkeeping []Rule `json:"bookkeeping"`
	// Other are rules outside CRS scoring: custom rules, engine rules and
	// CRS rules without a scoring severity. They may block on their own.
	Other []Rule `json:"other"`
	// RecordedInbound and RecordedOutbound are the scores the engine
	// counted (Entry.InboundScore, OutboundScore). They differ from the
	// sums for the reasons Difference gives.
	RecordedInbound  int `json:"recorded_inbound"`
	RecordedOutbound int `json:"recorded_outbound"`
}

// Of breaks down the matched rules of e.
func Of(e *audit.Entry) Breakdown {
	b := Breakdown{
		Inbound: []Rule{}, Outbound: []Rule{}, Bookkeeping: []Rule{}, Other: []Rule{},
		RecordedInbound: e.InboundScore, RecordedOutbound: e.OutboundScore,
	}
	for _, r := range e.Rules {
		role, points := audit.RuleScore(r)
		sr := Rule{MatchedRule: r, SeverityName: audit.SeverityName(r.Severity), Points: points}
		switch role {
		case audit.RoleInbound:
			b.Inbound = append(b.Inbound, sr)
			b.InboundSum += points
		case audit.RoleOutbound:
			b.Outbound = append(b.Outbound, sr)
			b.OutboundSum += points
		case audit.RoleBookkeeping:
			b.Bookkeeping = append(b.Bookkeeping, sr)
		default:
			b.Other = append(b.Other, sr)
		}
	}
	return b
}

// Legend names the points per severity, for headings: "CRS points:
// critical 5, error 4, warning 3, notice 2".
func Legend() string { return "CRS points: " + audit.PointsLegend() }

// Difference says why a sum can differ from the recorded score; the front
// ends print it next to the recorded score when they differ.
func (b Breakdown) Difference() string {
	msg := "the sum differs from the recorded score when the rule set changes the CRS points per severity, or when rules scored without being logged"
	if len(b.Other) > 0 {
		msg += ", or when a rule listed under other rules added points through its own actions"
	}
	return msg
}
