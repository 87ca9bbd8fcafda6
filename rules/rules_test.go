package rules

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/config"
)

func TestKeySharesOnlyEqualRuleSets(t *testing.T) {
	// equal rules from different places are one rule set
	fromSite, fromRoute := config.DefaultWAF(), config.DefaultWAF()
	fromSite.RulesBefore = []config.RuleText{{Origin: "sites[0].waf.rules_before[0].inline", Text: "# r"}}
	fromRoute.RulesBefore = []config.RuleText{{Origin: "sites[1].routes[0].waf.rules_before[0].inline", Text: "# r"}}
	if Key(fromSite) != Key(fromRoute) {
		t.Error("equal rules from different places compile twice")
	}
	base := config.DefaultWAF()
	same := config.DefaultWAF()
	detect := config.DefaultWAF()
	detect.Mode = config.ModeDetect
	excluded := config.DefaultWAF()
	excluded.Exclusions = []config.ExclusionConfig{{RuleIDs: []config.IDRange{{From: 942100, To: 942100}}}}
	vars := config.DefaultWAF()
	vars.CRSVariables = map[string]string{"allowed_methods": "GET POST"}
	if Key(base) != Key(same) {
		t.Error("equal settings, different keys")
	}
	for name, other := range map[string]config.WAFSettings{"mode": detect, "exclusion": excluded, "crs variables": vars} {
		if Key(base) == Key(other) {
			t.Errorf("%s change did not change the key", name)
		}
	}
}

func TestExclusionDirectives(t *testing.T) {
	tests := []struct {
		name string
		ex   config.ExclusionConfig
		want []string
	}{
		{"remove rule", config.ExclusionConfig{RuleIDs: []config.IDRange{{From: 942100, To: 942100}}},
			[]string{"SecRuleRemoveById 942100"}},
		{"remove target from a range, one directive each", config.ExclusionConfig{RuleIDs: []config.IDRange{{From: 942100, To: 942199}, {From: 941100, To: 941100}}, Target: "ARGS:comment"},
			[]string{`SecRuleUpdateTargetById 942100-942199 "!ARGS:comment"`, `SecRuleUpdateTargetById 941100 "!ARGS:comment"`}},
		{"tag", config.ExclusionConfig{Tags: []string{"attack-sqli"}},
			[]string{`SecRuleRemoveByTag attack-sqli`}},
		{"path prefix is segment-aware", config.ExclusionConfig{RuleIDs: []config.IDRange{{From: 1, To: 1}}, PathPrefix: "/upload"},
			[]string{`SecRule REQUEST_FILENAME "@rx ^/upload(?:/|$)" "id:95000000,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=1"`}},
		{"exact path", config.ExclusionConfig{RuleIDs: []config.IDRange{{From: 941100, To: 941100}}, Target: "ARGS:q", ExactPath: "/"},
			[]string{`SecRule REQUEST_FILENAME "@streq /" "id:95000000,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=941100;ARGS:q"`}},
		{"scoped by path and method", config.ExclusionConfig{RuleIDs: []config.IDRange{{From: 942100, To: 942100}}, Target: "ARGS:q", PathPrefix: "/search", Methods: []string{"POST", "PUT"}},
			[]string{`SecRule REQUEST_FILENAME "@rx ^/search(?:/|$)" "id:95000000,phase:1,pass,nolog,t:none,chain"`,
				`SecRule REQUEST_METHOD "@rx ^(?:POST|PUT)$" "t:none,ctl:ruleRemoveTargetById=942100;ARGS:q"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := config.DefaultWAF()
			s.Exclusions = []config.ExclusionConfig{tt.ex}
			text := Text(Build(s))
			for _, w := range tt.want {
				if !strings.Contains(text, w+"\n") {
					t.Errorf("rule set lacks %q", w)
				}
			}
		})
	}
}

func TestOrderOfPieces(t *testing.T) {
	s := config.DefaultWAF()
	s.RulesBefore = []config.RuleText{{Origin: "before", Text: "# b"}}
	s.RulesAfter = []config.RuleText{{Origin: "after", Text: "# a"}}
	s.Exclusions = []config.ExclusionConfig{
		{RuleIDs: []config.IDRange{{From: 1, To: 1}}, PathPrefix: "/x"},
		{RuleIDs: []config.IDRange{{From: 2, To: 2}}},
	}
	var order []string
	for _, p := range Build(s) {
		order = append(order, p.Origin)
	}
	want := "engine settings,before,exclusions,OWASP CRS,exclusions,after,request_body.no_files_limit"
	if got := strings.Join(order, ","); got != want {
		t.Errorf("order %s, want %s", got, want)
	}
}
