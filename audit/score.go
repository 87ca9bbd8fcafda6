package audit

import (
	"slices"
	"strconv"
	"strings"
)

// The one definition of what a matched rule did to the CRS anomaly score.
// It lives here, in the record's package, because the layers that read
// records all need it and audit/ sits below them: the store (top rules
// leave bookkeeping out), the CLI's listings and `audit show`, the
// dashboard, and the review tools (review/score builds the per-rule
// breakdown from it, review/explain picks the rules to exclude with it).
//
// CRS detection rules add their severity's points to the inbound score
// (request phases 1-2) or the outbound score (response phases 3-4):
// critical 5, error 4, warning 3, notice 2 (tx.critical_anomaly_score and
// friends, the CRS defaults). Rule 949110 then blocks when the inbound score
// reaches the threshold, 959100 likewise for outbound, and 980170 reports
// the scores: those, and the setup rules, are bookkeeping.
//
// Custom rules (ids outside the CRS's 900000-999999) are always "other":
// a rule adds to the score only through its own setvar actions, which the
// record does not keep, and a severity alone adds nothing. The breakdown
// therefore never guesses; when a custom rule did add points, the recorded
// score differs from the sum and both front ends say so (see ScoreRole).

// ScoreRole is what a matched rule did to the anomaly score.
type ScoreRole int

const (
	// RoleOther is a rule outside CRS scoring: a custom rule, an engine
	// rule (200000-200009, which deny on their own), or a CRS rule without
	// a scoring severity.
	RoleOther ScoreRole = iota
	// RoleInbound is a CRS detection rule of the request phases: its points
	// add to the inbound score.
	RoleInbound
	// RoleOutbound is a CRS detection rule of the response phases: its
	// points add to the outbound score.
	RoleOutbound
	// RoleBookkeeping is a CRS rule that sets up, evaluates or reports the
	// score rather than detecting anything (901xxx, 949110, 980170...).
	RoleBookkeeping
)

func (r ScoreRole) String() string {
	switch r {
	case RoleInbound:
		return "inbound"
	case RoleOutbound:
		return "outbound"
	case RoleBookkeeping:
		return "bookkeeping"
	}
	return "other"
}

// severityPoints are the CRS default anomaly points per rule severity
// (crs-setup.conf's tx.critical_anomaly_score and friends): the one points
// table. Every other severity (emergency, alert, info, debug) scores
// nothing.
var severityPoints = []struct {
	name   string
	points int
}{{"critical", 5}, {"error", 4}, {"warning", 3}, {"notice", 2}}

// PointsLegend names the points per severity ("critical 5, error 4, ..."),
// for the front ends' headings.
func PointsLegend() string {
	parts := make([]string, len(severityPoints))
	for i, s := range severityPoints {
		parts[i] = s.name + " " + strconv.Itoa(s.points)
	}
	return strings.Join(parts, ", ")
}

// severityNames maps ModSecurity's numeric severities to their names, for
// records that carry the number (imported logs, older engines).
var severityNames = []string{"emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}

// SeverityName returns a rule severity in lower-case words, whatever form
// the record has ("CRITICAL", "2" and "critical" are all "critical").
// Unknown text is returned lower-cased and trimmed.
func SeverityName(sev string) string {
	sev = strings.ToLower(strings.TrimSpace(sev))
	if len(sev) == 1 && sev[0] >= '0' && int(sev[0]-'0') < len(severityNames) {
		return severityNames[sev[0]-'0']
	}
	return sev
}

// SeverityPoints returns the CRS default points of a severity, in any of
// the forms SeverityName accepts; 0 for severities that do not score.
func SeverityPoints(sev string) int {
	name := SeverityName(sev)
	for _, s := range severityPoints {
		if s.name == name {
			return s.points
		}
	}
	return 0
}

// IsCRS reports whether id is in the range the CRS reserves for itself.
func IsCRS(id int) bool { return id >= 900000 && id < 1000000 }

// bookkeepingFiles are the CRS rule files (id / 1000) that configure,
// evaluate or report rather than detect: 900-901 setup, 905 common
// exceptions, 949 inbound blocking evaluation, 959 outbound blocking
// evaluation, 980 correlation and reporting.
var bookkeepingFiles = []int{900, 901, 905, 949, 959, 980}

// BookkeepingFiles returns the CRS rule files (id / 1000) IsBookkeepingID
// names, for stores that leave those rules out of a ranking in SQL.
func BookkeepingFiles() []int { return slices.Clone(bookkeepingFiles) }

// IsBookkeepingID reports whether id is in a CRS bookkeeping rule file, for
// callers that know only the id (summaries). Rules tagged
// anomaly-evaluation or reporting need IsBookkeeping.
func IsBookkeepingID(id int) bool {
	return IsCRS(id) && slices.Contains(bookkeepingFiles, id/1000)
}

// IsBookkeeping reports whether r evaluates or reports the anomaly score
// rather than detecting an attack: a CRS bookkeeping rule, or any rule
// tagged as CRS tags its evaluation and reporting rules.
func IsBookkeeping(r MatchedRule) bool {
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

// RuleScore returns what r did to the anomaly score, and the points it
// added (0 unless the role is RoleInbound or RoleOutbound).
//
// The direction is the rule's phase: 1-2 inbound, 3 and later outbound. A
// record without the phase (0) falls back on the CRS file: 950-959 are the
// response rules.
func RuleScore(r MatchedRule) (ScoreRole, int) {
	if IsBookkeeping(r) {
		return RoleBookkeeping, 0
	}
	points := SeverityPoints(r.Severity)
	if !IsCRS(r.ID) || points == 0 {
		return RoleOther, 0
	}
	if r.Phase >= 3 || (r.Phase <= 0 && r.ID/10000 == 95) {
		return RoleOutbound, points
	}
	return RoleInbound, points
}
