package rules

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/config"
)

func TestKeySharesOnlyEqualRuleSets(t *testing.T) {
	// equal rules from different places are one rule set
	fromSite, fromRoute := stockCRS(), stockCRS()
	fromSite.RulesBefore = []config.RuleText{{Origin: "sites[0].waf.rules_before[0].inline", Text: "# r"}}
	fromRoute.RulesBefore = []config.RuleText{{Origin: "sites[1].routes[0].waf.rules_before[0].inline", Text: "# r"}}
	if Key(fromSite) != Key(fromRoute) {
		t.Error("equal rules from different places compile twice")
	}
	base := stockCRS()
	same := stockCRS()
	detect := stockCRS()
	detect.Mode = config.ModeDetect
	excluded := stockCRS()
	excluded.Exclusions = []config.ExclusionConfig{{RuleIDs: []config.IDRange{{From: 942100, To: 942100}}}}
	vars := stockCRS()
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
			s := stockCRS()
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
	s := stockCRS()
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

// stockCRS is the stock-crs profile, which these tests of the CRS rule
// set were written against.
func stockCRS() config.WAFSettings {
	s := config.DefaultWAF()
	s.Profile, s.CRS = config.ProfileStockCRS, true
	return s
}

// TestPortcullisProfileRuleSet: the default profile loads no CRS, no body
// processors unless a custom rule reads what they fill, never refuses a
// body it cannot parse (the detectors judge it as text), and bounds the
// bodies the detectors parse by request_body.no_files_limit.
func TestPortcullisProfileRuleSet(t *testing.T) {
	s := config.DefaultWAF()
	text := Text(Build(s))
	for _, absent := range []string{"@owasp_crs", "id:200001", "id:200002", "id:200003"} {
		if strings.Contains(text, absent) {
			t.Errorf("default rule set contains %q", absent)
		}
	}
	for _, present := range []string{"id:200009", "id:200011", "id:200013"} {
		if !strings.Contains(text, present) {
			t.Errorf("default rule set lacks %q", present)
		}
	}
	s.RulesBefore = []config.RuleText{{Origin: "x", Text: `SecRule ARGS:q "@streq a" "id:1,phase:2,deny"`}}
	if text := Text(Build(s)); !strings.Contains(text, "id:200001") || strings.Contains(text, "id:200013") {
		t.Errorf("a rule reading ARGS needs the body processors:\n%s", text)
	}
	// A configuration written for the CRS still builds: exclusions of CRS
	// ids are left out when the CRS is not loaded.
	s.Exclusions = []config.ExclusionConfig{{RuleIDs: []config.IDRange{{From: 942100, To: 942100}}, Target: "ARGS:q"}}
	if text := Text(Build(s)); strings.Contains(text, "942100") {
		t.Errorf("CRS exclusion without the CRS:\n%s", text)
	}
	if Key(s) == Key(stockCRS()) {
		t.Error("profiles share a key")
	}
}
