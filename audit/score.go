package audit

import "strings"

// CRS anomaly points per severity (crs-setup.conf defaults: critical 5,
// error 4, warning 3, notice 2).
var severityPoints = map[string]int{"critical": 5, "error": 4, "warning": 3, "notice": 2}

// RulePoints says what a matched rule contributed to the anomaly score:
// the points CRS adds for its severity, and whether it is a detection rule
// at all. Bookkeeping rules — the blocking evaluation (949xxx, 959xxx), the
// correlation and reporting rules (980xxx) and CRS setup (901xxx–905xxx) —
// report a score instead of adding to it, so they score nothing; operators
// tune detection rules, never those.
func RulePoints(r MatchedRule) (points int, detection bool) {
	switch r.ID / 1000 {
	case 901, 902, 903, 904, 905, 949, 959, 980:
		return 0, false
	}
	p, ok := severityPoints[strings.ToLower(r.Severity)]
	return p, ok
}
