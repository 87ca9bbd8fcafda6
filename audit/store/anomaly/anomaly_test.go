package anomaly

import (
	"reflect"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
)

func TestExplain(t *testing.T) {
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
		want  Breakdown
	}{
		{"none", nil, Breakdown{}},
		{"sql injection blocked", []audit.MatchedRule{sqli, proto, eval, report}, Breakdown{
			Inbound:     []Scored{{sqli, 5}, {proto, 3}},
			InboundSum:  8,
			Bookkeeping: []audit.MatchedRule{eval, report},
		}},
		{"severity case and outbound", []audit.MatchedRule{notice, leak}, Breakdown{
			Inbound: []Scored{{notice, 2}}, InboundSum: 2,
			Outbound: []Scored{{leak, 4}}, OutboundSum: 4,
		}},
		{"custom and unscored", []audit.MatchedRule{custom, noSeverity, taggedEval}, Breakdown{
			Other:       []audit.MatchedRule{custom, noSeverity},
			Bookkeeping: []audit.MatchedRule{taggedEval},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(&audit.Entry{Rules: tc.rules})
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
