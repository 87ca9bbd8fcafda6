package score

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
)

// split writes a breakdown as "section: id=points ..." lines, the shape
// the tables compare.
func split(b Breakdown) string {
	var out []string
	for _, sec := range []struct {
		name  string
		rules []Rule
		sum   int
	}{{"inbound", b.Inbound, b.InboundSum}, {"outbound", b.Outbound, b.OutboundSum}, {"bookkeeping", b.Bookkeeping, -1}, {"other", b.Other, -1}} {
		line := sec.name + ":"
		for _, r := range sec.rules {
			line += fmt.Sprintf(" %d=%d", r.ID, r.Points)
		}
		if sec.sum >= 0 {
			line += fmt.Sprintf(" sum %d", sec.sum)
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func TestOf(t *testing.T) {
	sqli := audit.MatchedRule{ID: 942100, Severity: "critical", Phase: 2, Tags: []string{"attack-sqli"}}
	proto := audit.MatchedRule{ID: 920350, Severity: "warning", Phase: 1}
	notice := audit.MatchedRule{ID: 920320, Severity: "NOTICE", Phase: 1}
	leak := audit.MatchedRule{ID: 951220, Severity: "error", Phase: 4}
	eval := audit.MatchedRule{ID: 949110, Severity: "emergency", Phase: 2, Tags: []string{"anomaly-evaluation"}}
	report := audit.MatchedRule{ID: 980170, Phase: 5, Tags: []string{"reporting"}}
	taggedEval := audit.MatchedRule{ID: 999999, Severity: "critical", Tags: []string{"anomaly-evaluation"}}
	custom := audit.MatchedRule{ID: 100001, Severity: "critical", Phase: 1}
	noSeverity := audit.MatchedRule{ID: 942999, Phase: 2}
	cases := []struct {
		name  string
		rules []audit.MatchedRule
		want  string
	}{
		{"none", nil, "inbound: sum 0\noutbound: sum 0\nbookkeeping:\nother:"},
		{"sql injection blocked", []audit.MatchedRule{sqli, proto, eval, report},
			"inbound: 942100=5 920350=3 sum 8\noutbound: sum 0\nbookkeeping: 949110=0 980170=0\nother:"},
		{"severity case and outbound", []audit.MatchedRule{notice, leak},
			"inbound: 920320=2 sum 2\noutbound: 951220=4 sum 4\nbookkeeping:\nother:"},
		{"custom and unscored", []audit.MatchedRule{custom, noSeverity, taggedEval},
			"inbound: sum 0\noutbound: sum 0\nbookkeeping: 999999=0\nother: 100001=0 942999=0"},
		// The dashboard's former cases (admin/score.go), under the one
		// table: a custom info rule is other, not an inbound rule of 0.
		{"severities", []audit.MatchedRule{
			{ID: 942100, Severity: "CRITICAL"}, {ID: 920100, Severity: "error"},
			{ID: 920300, Severity: "Warning"}, {ID: 920320, Severity: "notice"}, {ID: 1000, Severity: "info"},
		}, "inbound: 942100=5 920100=4 920300=3 920320=2 sum 14\noutbound: sum 0\nbookkeeping:\nother: 1000=0"},
		{"numeric severities", []audit.MatchedRule{{ID: 942100, Severity: "2"}, {ID: 920320, Severity: "5"}},
			"inbound: 942100=5 920320=2 sum 7\noutbound: sum 0\nbookkeeping:\nother:"},
		{"bookkeeping", []audit.MatchedRule{{ID: 901001}, {ID: 949110, Severity: "emergency"}, {ID: 959100}, {ID: 980130}, {ID: 980170}},
			"inbound: sum 0\noutbound: sum 0\nbookkeeping: 901001=0 949110=0 959100=0 980130=0 980170=0\nother:"},
		{"outbound without phases", []audit.MatchedRule{{ID: 951120, Severity: "critical"}, {ID: 954100, Severity: "error"}, {ID: 959100}},
			"inbound: sum 0\noutbound: 951120=5 954100=4 sum 9\nbookkeeping: 959100=0\nother:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := split(Of(&audit.Entry{Rules: tc.rules}))
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestRuleFields: every section keeps the whole matched rule, its
// severity in words and the recorded scores.
func TestRuleFields(t *testing.T) {
	r := audit.MatchedRule{ID: 942100, Message: "SQL Injection", Severity: "2", Phase: 2, MatchedVariable: "ARGS:q", MatchedData: "1' or 1=1", Tags: []string{"attack-sqli"}, ParanoiaLevel: 1}
	b := Of(&audit.Entry{Rules: []audit.MatchedRule{r}, InboundScore: 13, OutboundScore: 4})
	want := Rule{MatchedRule: r, SeverityName: "critical", Points: 5}
	if len(b.Inbound) != 1 || !reflect.DeepEqual(b.Inbound[0], want) {
		t.Fatalf("inbound %+v", b.Inbound)
	}
	if b.RecordedInbound != 13 || b.RecordedOutbound != 4 {
		t.Fatalf("recorded %d/%d", b.RecordedInbound, b.RecordedOutbound)
	}
}

// TestJSON pins the breakdown's JSON, the "score" of /api/events/{id}:
// empty sections are [], never null.
func TestJSON(t *testing.T) {
	e := &audit.Entry{InboundScore: 5, Rules: []audit.MatchedRule{
		{ID: 942100, Severity: "CRITICAL", Phase: 2},
		{ID: 949110, Phase: 2},
	}}
	raw, err := json.Marshal(Of(e))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"inbound":[{"id":942100,"severity":"CRITICAL","phase":2,"severity_name":"critical","points":5}],"inbound_sum":5,` +
		`"outbound":[],"outbound_sum":0,"bookkeeping":[{"id":949110,"phase":2,"points":0}],"other":[],"recorded_inbound":5,"recorded_outbound":0}`
	if string(raw) != want {
		t.Fatalf("got  %s\nwant %s", raw, want)
	}
}

func TestDifference(t *testing.T) {
	plain := Of(&audit.Entry{Rules: []audit.MatchedRule{{ID: 942100, Severity: "critical", Phase: 2}}})
	if d := plain.Difference(); strings.Contains(d, "other rules") || !strings.Contains(d, "points per severity") {
		t.Errorf("without other rules: %q", d)
	}
	withCustom := Of(&audit.Entry{Rules: []audit.MatchedRule{{ID: 100001, Severity: "critical", Phase: 2}}})
	if d := withCustom.Difference(); !strings.Contains(d, "other rules") {
		t.Errorf("with a custom rule: %q", d)
	}
}
