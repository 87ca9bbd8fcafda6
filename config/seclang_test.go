package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestSeclangErrors: every broken directive of a piece is found, at the
// line it starts on, and what follows a broken chain head is still read as
// its chain (#13: only the first error was reported, without a line).
func TestSeclangErrors(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string // "line: message fragment"
	}{
		{"valid", `SecRule ARGS "@streq a" "id:1,phase:2,deny"`, nil},
		{"one", `SecRule ARGS "@rx (" "id:1,phase:2,deny"`, []string{"1: error parsing regexp"}},
		{"three", "SecRule ARGS \"@rx (\" \"id:1,phase:2,deny\"\n\nSecRul x\nSecRule ARGS \"@streq a\" \"id:2,phase:2,deny\"\nSecAction \"id:3,phase:1,nope\"",
			[]string{`1: error parsing regexp`, `3: unknown directive "secrul"`, `5: invalid action "nope"`}},
		{"broken chain head", "SecRule ARGS \"@bad a\" \"id:1,phase:2,deny,chain\"\n  SecRule ARGS \"@streq b\" \"t:none\"\nSecRule ARGS \"@streq c\" \"id:2,phase:2,deny\"",
			[]string{"1: operator bad not found"}},
		{"broken chain child", "SecRule ARGS \"@streq a\" \"id:1,phase:2,deny,chain\"\n  SecRule ARGS \"@bad b\" \"t:none\"\nSecRule ARGS \"@streq c\" \"id:2,phase:2,deny\"",
			[]string{"2: operator bad not found"}},
		{"continued lines", "SecRule ARGS \"@streq a\" \\\n  \"id:1,phase:2,deny\"\nSecRule ARGS \\\n  \"@bad b\" \\\n  \"id:2,phase:2,deny\"",
			[]string{"3: operator bad not found"}},
		{"duplicate id", "SecRule ARGS \"@streq a\" \"id:1,phase:2,deny\"\nSecRule ARGS \"@streq b\" \"id:1,phase:2,deny\"",
			[]string{"2: duplicated rule id 1"}},
		{"update of a rule defined elsewhere", `SecRuleUpdateTargetById 942100 "!ARGS:x"`, nil},
		{"update of a rule defined nowhere", `SecRuleUpdateTargetById 4242 "!ARGS:x"`, []string{`1: SecRuleUpdateTargetById: rule "4242" not found`}},
		{"open backticks", "SecRule ARGS \"@streq a\" \"id:1,phase:2,deny\"\nSecDataset x `\na\n", []string{"2: a block opened with a backtick is never closed"}},
	}
	known := knownRuleIDs()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range seclangErrors(tc.text, known) {
				got = append(got, fmt.Sprintf("%d: %s", e.line, e.msg))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d errors %q, want %d %q", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				line, frag, _ := strings.Cut(tc.want[i], ": ")
				if !strings.HasPrefix(got[i], line+": ") || !strings.Contains(got[i], frag) {
					t.Errorf("error %d is %q, want line %s and %q", i, got[i], line, frag)
				}
			}
		})
	}
}

// TestRuleErrorsInConfig: a literal block names the line inside it, a rule
// file its own line; a custom rule taking a CRS id is refused unless the
// CRS rule was removed before it.
func TestRuleErrorsInConfig(t *testing.T) {
	base := "upstreams: [{name: app, targets: [\"http://127.0.0.1:3000\"]}]\nsites: [{hosts: [\"*\"], routes: [{path: /, upstream: app}]}]\n"
	cases := []struct {
		name, waf string
		want      []string
	}{
		{"literal block", "waf:\n  rules_after:\n    - inline: |\n        SecRule ARGS \"@streq a\" \"id:1,phase:2,deny\"\n        SecRule ARGS \"@x\" \"id:2,phase:2,deny\"\n",
			[]string{"p.yaml:7: waf.rules_after[0].inline: failed to compile the directive \"secrule\": operator x not found"}},
		{"CRS id", "waf:\n  profile: stock-crs\n  rules_before:\n    - inline: 'SecRule ARGS \"@streq a\" \"id:942100,phase:2,deny\"'\n",
			[]string{"p.yaml:6: waf.rules_before[0].inline: rule id 942100 is already used by the CRS"}},
		{"CRS id replaced", "waf:\n  profile: stock-crs\n  rules_after:\n    - inline: |\n        SecRuleRemoveById 942100\n        SecRule ARGS \"@streq a\" \"id:942100,phase:2,deny\"\n", nil},
		{"CRS id, CRS off", "waf:\n  crs: false\n  rules_before:\n    - inline: 'SecRule ARGS \"@streq a\" \"id:942100,phase:2,deny\"'\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(base+tc.waf))
			var got []string
			for _, e := range ErrorList(err) {
				got = append(got, e.Error())
			}
			if err != nil && got == nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("got %q, want %q", got[i], tc.want[i])
				}
			}
		})
	}
}

// FuzzSplitDirectives: directives are in order, within the text, and never
// overlap, whatever the text.
func FuzzSplitDirectives(f *testing.F) {
	for _, s := range []string{"SecRule a \\\n b\nSecAction x", "SecDataset d `\na\n`\nSecRule", "#c\n\n \\\n`\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		lines := strings.Count(text, "\n") + 1
		ds, open := splitDirectives(text)
		prev := 0
		for _, d := range ds {
			if d.start <= prev || d.end < d.start || d.end > lines {
				t.Fatalf("directive %+v after line %d of %d", d, prev, lines)
			}
			prev = d.end
		}
		if open != 0 && (open <= prev || open > lines) {
			t.Fatalf("open block at %d after %d", open, prev)
		}
	})
}

// TestRuleIDsAcrossPieces: a site's rule and a route's rule with one id
// would break the route's rule set; the later one is reported at its line.
func TestRuleIDsAcrossPieces(t *testing.T) {
	text := `upstreams: [{name: app, targets: ["http://127.0.0.1:3000"]}]
waf:
  rules_before:
    - inline: 'SecRule ARGS "@streq a" "id:1001,phase:2,deny"'
sites:
  - hosts: ["*"]
    routes:
      - path: /
        upstream: app
        waf:
          rules_after:
            - inline: |
                SecRule ARGS "@streq b" "id:1002,phase:2,deny"
                SecRule ARGS "@streq c" "id:1001,phase:2,deny"
      - path: /other
        upstream: app
`
	_, err := Parse("p.yaml", []byte(text))
	want := "p.yaml:14: sites[0].routes[0].waf.rules_after[0].inline: rule id 1001 is also defined in waf.rules_before[0].inline, which the same route loads"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
