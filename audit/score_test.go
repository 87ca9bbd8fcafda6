package audit

import "testing"

// TestRuleScore pins the one table of rule roles and points (issue 14: the
// CLI, the dashboard and the store used three that disagreed).
func TestRuleScore(t *testing.T) {
	tests := []struct {
		name   string
		r      MatchedRule
		role   ScoreRole
		points int
	}{
		{"critical request rule", MatchedRule{ID: 942100, Severity: "critical", Phase: 2}, RoleInbound, 5},
		{"warning in phase 1", MatchedRule{ID: 920350, Severity: "warning", Phase: 1}, RoleInbound, 3},
		{"upper case", MatchedRule{ID: 913100, Severity: "CRITICAL", Phase: 1}, RoleInbound, 5},
		{"padded mixed case", MatchedRule{ID: 920300, Severity: " Warning ", Phase: 2}, RoleInbound, 3},
		{"numeric critical", MatchedRule{ID: 942100, Severity: "2", Phase: 2}, RoleInbound, 5},
		{"numeric error", MatchedRule{ID: 920100, Severity: "3", Phase: 1}, RoleInbound, 4},
		{"numeric warning", MatchedRule{ID: 920300, Severity: "4", Phase: 1}, RoleInbound, 3},
		{"numeric notice", MatchedRule{ID: 920320, Severity: "5", Phase: 1}, RoleInbound, 2},
		{"response rule by phase", MatchedRule{ID: 951220, Severity: "error", Phase: 4}, RoleOutbound, 4},
		{"phase 3", MatchedRule{ID: 950130, Severity: "error", Phase: 3}, RoleOutbound, 4},
		{"response rule without phase", MatchedRule{ID: 954100, Severity: "error"}, RoleOutbound, 4},
		{"request rule without phase", MatchedRule{ID: 930130, Severity: "critical"}, RoleInbound, 5},
		{"inbound evaluation", MatchedRule{ID: 949110, Severity: "emergency", Phase: 2}, RoleBookkeeping, 0},
		{"outbound evaluation", MatchedRule{ID: 959100, Severity: "critical", Phase: 4}, RoleBookkeeping, 0},
		{"reporting", MatchedRule{ID: 980170, Phase: 5}, RoleBookkeeping, 0},
		{"correlation", MatchedRule{ID: 980130, Severity: "critical"}, RoleBookkeeping, 0},
		{"setup 900", MatchedRule{ID: 900990, Severity: "critical"}, RoleBookkeeping, 0},
		{"setup 901", MatchedRule{ID: 901001, Phase: 1}, RoleBookkeeping, 0},
		{"common exceptions", MatchedRule{ID: 905100, Severity: "warning", Phase: 1}, RoleBookkeeping, 0},
		{"tagged evaluation in the CRS range", MatchedRule{ID: 999999, Severity: "critical", Tags: []string{"anomaly-evaluation"}}, RoleBookkeeping, 0},
		{"tagged reporting custom rule", MatchedRule{ID: 100001, Severity: "critical", Tags: []string{"reporting"}}, RoleBookkeeping, 0},
		{"custom rule without severity", MatchedRule{ID: 10001, Phase: 2}, RoleOther, 0},
		{"custom notice", MatchedRule{ID: 10002, Severity: "notice", Phase: 2}, RoleOther, 0},
		{"custom critical", MatchedRule{ID: 100001, Severity: "critical", Phase: 1}, RoleOther, 0},
		{"custom critical response rule", MatchedRule{ID: 100002, Severity: "CRITICAL", Phase: 4}, RoleOther, 0},
		{"engine rule", MatchedRule{ID: 200002, Severity: "critical", Phase: 2}, RoleOther, 0},
		{"generated rule", MatchedRule{ID: 95000003, Severity: "critical", Phase: 1}, RoleOther, 0},
		{"CRS rule without severity", MatchedRule{ID: 942999, Phase: 2}, RoleOther, 0},
		{"CRS info", MatchedRule{ID: 920000, Severity: "info", Phase: 1}, RoleOther, 0},
		{"CRS numeric alert", MatchedRule{ID: 920001, Severity: "1", Phase: 1}, RoleOther, 0},
		{"unknown number", MatchedRule{ID: 920002, Severity: "9", Phase: 1}, RoleOther, 0},
		{"just below the CRS", MatchedRule{ID: 899999, Severity: "critical", Phase: 2}, RoleOther, 0},
		{"just above the CRS", MatchedRule{ID: 1000000, Severity: "critical", Phase: 2}, RoleOther, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, points := RuleScore(tt.r)
			if role != tt.role || points != tt.points {
				t.Errorf("RuleScore(%d %q phase %d) = %s %d; want %s %d", tt.r.ID, tt.r.Severity, tt.r.Phase, role, points, tt.role, tt.points)
			}
			if IsBookkeeping(tt.r) != (tt.role == RoleBookkeeping) {
				t.Errorf("IsBookkeeping(%d) = %v", tt.r.ID, IsBookkeeping(tt.r))
			}
		})
	}
}

func TestSeverityName(t *testing.T) {
	for in, want := range map[string]string{
		"0": "emergency", "1": "alert", "2": "critical", "3": "error", "4": "warning", "5": "notice", "6": "info", "7": "debug",
		"8": "8", "CRITICAL": "critical", " Notice\t": "notice", "": "", "22": "22", "-1": "-1",
	} {
		if got := SeverityName(in); got != want {
			t.Errorf("SeverityName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := PointsLegend(); got != "critical 5, error 4, warning 3, notice 2" {
		t.Errorf("PointsLegend() = %q", got)
	}
	for in, want := range map[string]int{"critical": 5, "ERROR": 4, "4": 3, "notice": 2, "info": 0, "emergency": 0, "": 0} {
		if got := SeverityPoints(in); got != want {
			t.Errorf("SeverityPoints(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestIsBookkeepingID(t *testing.T) {
	for id, want := range map[int]bool{
		900000: true, 901001: true, 905100: true, 949110: true, 959100: true, 980170: true,
		902000: false, 911100: false, 942100: false, 950100: false, 999999: false,
		949: false, 1949110: false, 100001: false,
	} {
		if got := IsBookkeepingID(id); got != want {
			t.Errorf("IsBookkeepingID(%d) = %v, want %v", id, got, want)
		}
	}
}
