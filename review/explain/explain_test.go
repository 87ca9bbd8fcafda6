package explain

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
	"github.com/portcullis-waf/portcullis/review/replay"
)

// siteConfig is a blog with the full CRS at paranoia 1, blocking. The
// suggestion's YAML is pasted under its waf.exclusions.
const siteConfig = `upstreams:
  - name: app
    targets: ["http://127.0.0.1:9"]
sites:
  - name: blog
    hosts: ["blog.test"]
    routes:
      - path: /
        upstream: app
    waf:
      profile: stock-crs
      exclusions:
`

// record is what the gateway keeps of a request (see audit.Entry).
func record(method, uri, contentType, body string) *audit.Entry {
	h := map[string][]string{
		"Host":       {"blog.test"},
		"User-Agent": {"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"},
		"Accept":     {"text/html,application/json"},
	}
	if body != "" {
		h["Content-Type"] = []string{contentType}
		h["Content-Length"] = []string{"0"} // rewritten by replay from the kept body
	}
	return &audit.Entry{ID: "rec-" + strings.ReplaceAll(uri, "/", "-"), ClientIP: "192.0.2.10", ClientPort: 40000,
		Host: "blog.test", Method: method, URI: uri, Protocol: "HTTP/1.1", Headers: h, RequestBody: body,
		Site: "blog", Action: audit.ActionBlocked, Stage: audit.StageWAF}
}

func inspect(t *testing.T, yamlText string, e *audit.Entry) replay.Result {
	t.Helper()
	cfg, err := config.Parse("candidate.yaml", []byte(yamlText))
	if err != nil {
		t.Fatalf("candidate config:\n%s\n%v", yamlText, err)
	}
	in, err := gateway.NewInspector(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := replay.Judge(context.Background(), in, e)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// indent puts the suggestion under sites[0].waf.exclusions.
func indent(snippet string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(snippet, "\n"), "\n") {
		b.WriteString("        " + line + "\n")
	}
	return b.String()
}

// Real CRS false positives at paranoia 1: prose that reads like SQL to the
// rules, and a JSON field with a shell-looking string.
func TestExplainFalsePositives(t *testing.T) {
	form := "application/x-www-form-urlencoded"
	tests := []struct {
		name string
		fp   *audit.Entry // the false positive
		// The same payload elsewhere, still blocked after the fix.
		otherArg, otherPath *audit.Entry
	}{
		{
			name:      "blog comment with SQL-looking prose",
			fp:        record("POST", "/posts/42/comments", form, "author=Ada&comment="+url.QueryEscape(proseSQL)),
			otherArg:  record("POST", "/posts/42/comments", form, "author="+url.QueryEscape(proseSQL)+"&comment=hi"),
			otherPath: record("POST", "/search", form, "author=Ada&comment="+url.QueryEscape(proseSQL)),
		},
		{
			// The site root: a path_prefix "/" would cover the whole site.
			name:      "search form on the home page",
			fp:        record("GET", "/?comment="+url.QueryEscape(proseSQL), "", ""),
			otherArg:  record("GET", "/?author="+url.QueryEscape(proseSQL)+"&comment=hi", "", ""),
			otherPath: record("GET", "/search?comment="+url.QueryEscape(proseSQL), "", ""),
		},
		{
			name:      "JSON body with a shell-looking string",
			fp:        record("POST", "/api/snippets", "application/json", `{"title":"tip","code":"`+shellJSON+`"}`),
			otherArg:  record("POST", "/api/snippets", "application/json", `{"title":"`+shellJSON+`","code":"x"}`),
			otherPath: record("POST", "/api/users", "application/json", `{"title":"tip","code":"`+shellJSON+`"}`),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inspect(t, siteConfig+"        []\n", tt.fp); got.After != replay.Blocked {
				t.Fatalf("fixture is not a false positive under the CRS: %s %+v", got.After, got.Now.Rules)
			}
			cfg, err := config.Parse("portcullis.yaml", []byte(siteConfig+"        []\n"))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Explain(context.Background(), cfg, tt.fp, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !s.Verified || !s.Fix() || len(s.Exclusions) == 0 || len(s.Attack) != 0 {
				t.Fatalf("not a verified fix: %+v", s)
			}
			if !strings.HasPrefix(s.YAML(), "# Verified: ") {
				t.Fatalf("suggestion does not start as a verified fix:\n%s", s.YAML())
			}
			for _, x := range s.Exclusions {
				scoped := x.PathPrefix == requestPath(tt.fp.URI) && x.ExactPath == ""
				if requestPath(tt.fp.URI) == "/" {
					scoped = x.PathPrefix == "" && x.ExactPath == "/"
				}
				if x.Target == "" || !scoped || len(x.Methods) != 1 {
					t.Errorf("exclusion not as narrow as it can be: %+v", x)
				}
			}
			fixed := siteConfig + indent(s.YAML())
			t.Logf("suggestion:\n%s", s.YAML())
			if got := inspect(t, fixed, tt.fp); got.After == replay.Blocked {
				t.Errorf("the suggestion, pasted, still blocks: %+v", got.Now.Rules)
			}
			if got := inspect(t, fixed, tt.otherArg); got.After != replay.Blocked {
				t.Errorf("the same payload in another argument passes: %s", got.After)
			}
			if got := inspect(t, fixed, tt.otherPath); got.After != replay.Blocked {
				t.Errorf("the same payload on another path passes: %s", got.After)
			}
			other := *tt.fp
			other.Method = http.MethodPut
			if got := inspect(t, fixed, &other); got.After != replay.Blocked {
				t.Errorf("the same payload with another method passes: %s", got.After)
			}
		})
	}
}

const (
	proseSQL  = "We had a union meeting; select members from each team where possible"
	shellJSON = "to see users run ; cat /etc/passwd | grep bash"
)

func TestExplainRefusesWhatNoExclusionFixes(t *testing.T) {
	cfg, err := config.Parse("portcullis.yaml", []byte(siteConfig+"        []\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Explain(context.Background(), cfg, record("GET", "/hello", "", ""), Options{})
	if !errors.Is(err, ErrNotBlocked) {
		t.Errorf("benign request: %v", err)
	}
	smuggled := record("GET", "/a/../etc", "", "")
	if _, err := Explain(context.Background(), cfg, smuggled, Options{}); err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Errorf("protocol block: %v", err)
	}
}

func TestTarget(t *testing.T) {
	for in, want := range map[string]string{
		"ARGS_POST:comment":            "ARGS:comment",
		"ARGS_GET:q":                   "ARGS:q",
		"ARGS:json.a.b":                "ARGS:json.a.b",
		"REQUEST_COOKIES:session":      "REQUEST_COOKIES:session",
		"REQUEST_HEADERS:User-Agent":   "REQUEST_HEADERS:User-Agent",
		"REQUEST_URI":                  "",
		"REQUEST_BODY":                 "",
		"ARGS:has space":               "",
		"TX:0":                         "",
		"ARGS_POST_NAMES:union select": "",
		"ARGS:/.*/":                    "",
		"REQUEST_COOKIES:/sess/":       "",
	} {
		if got := target(in); got != want {
			t.Errorf("target(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExplainRealAttacks (issue 13): for a request whose matched values are
// an attack, explain offers no fix. It says what the evidence is, and its
// exclusions are commented out, so pasting the answer changes nothing; they
// are still scoped as narrowly as the data allows (never site-wide).
func TestExplainRealAttacks(t *testing.T) {
	cfg, err := config.Parse("portcullis.yaml", []byte(siteConfig+"        []\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		rec      *audit.Entry
		class    string
		variable string
	}{
		{"<img onerror> on the home page", record("GET", "/?q="+url.QueryEscape(`<img src=x onerror=alert(1)>`), "", ""), ClassXSS, "ARGS:q"},
		{"SQL leaving its literal", record("GET", "/item?id="+url.QueryEscape("1' UNION SELECT password FROM users --"), "", ""), ClassSQLi, "ARGS:id"},
		{"a command after the argument", record("GET", "/ping?host="+url.QueryEscape("127.0.0.1; cat /etc/passwd"), "", ""), ClassShell, "ARGS:host"},
		{"markup in a JSON member", record("POST", "/api/profile", "application/json", `{"bio":"<svg onload=alert(document.cookie)>"}`), ClassXSS, "ARGS:json.bio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Explain(context.Background(), cfg, tc.rec, Options{})
			if err != nil {
				t.Fatal(err)
			}
			y := s.YAML()
			t.Logf("suggestion:\n%s", y)
			if s.Fix() || !slices.ContainsFunc(s.Attack, func(ev Evidence) bool { return ev.Class == tc.class && ev.Variable == tc.variable }) {
				t.Fatalf("attack not recognised: fix %v, evidence %+v", s.Fix(), s.Attack)
			}
			if !strings.HasPrefix(y, AttackWarning) || strings.Contains(y, "Verified") {
				t.Fatalf("the answer does not start with %q, or calls itself verified:\n%s", AttackWarning, y)
			}
			for _, line := range strings.Split(y, "\n") {
				if line != "" && !strings.HasPrefix(line, "#") {
					t.Fatalf("pasteable line %q in the answer for an attack", line)
				}
			}
			if got := inspect(t, siteConfig+indent(y)+"        []\n", tc.rec); got.After != replay.Blocked {
				t.Fatalf("pasting the answer lets the attack through: %s", got.After)
			}
			for _, x := range s.Exclusions {
				if x.PathPrefix == "/" || x.PathPrefix == "" && x.ExactPath == "" {
					t.Errorf("site-wide exclusion %+v", x)
				}
			}
		})
	}
}

// TestExplainNamesTheDecidingStage (issue 13): a request another stage
// decided is not blamed on the configuration ("does not block"): the error
// names the stage, its reason and what would change it.
func TestExplainNamesTheDecidingStage(t *testing.T) {
	cfg, err := config.Parse("portcullis.yaml", []byte(siteConfig+"        []\n"))
	if err != nil {
		t.Fatal(err)
	}
	decided := func(action, stage, reason string) *audit.Entry {
		e := record("GET", "/hello", "", "")
		e.Action, e.Stage, e.Reason = action, stage, reason
		return e
	}
	for _, tc := range []struct {
		rec   *audit.Entry
		stage string
		says  string
	}{
		{decided(audit.ActionBlocked, audit.StageBan, "banned (192.0.2.10/32) until 2026-11-27T00:00:00Z: 5 strikes"), audit.StageBan, "lift it"},
		{decided(audit.ActionBlocked, audit.StageReputation, "on deny list tor (entry 192.0.2.0/24)"), audit.StageReputation, "deny list"},
		{decided(audit.ActionBlocked, audit.StageGeoIP, `country "XX" is not allowed`), audit.StageGeoIP, "GeoIP"},
		{decided(audit.ActionBlocked, audit.StageRateLimit, "rate limit api (10/s, burst 20) exceeded"), audit.StageRateLimit, "rate limit"},
		{decided(audit.ActionError, audit.StageProxy, "upstream app: connection refused"), audit.StageProxy, "upstream failed"},
		{decided(audit.ActionError, audit.StageWAF, "rule engine error: boom"), audit.StageWAF, "engine failure"},
		{record("GET", "/a/../etc", "", ""), audit.StageProtocol, "protocol check"},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			_, err := Explain(context.Background(), cfg, tc.rec, Options{})
			var se *StageError
			if !errors.As(err, &se) || se.Stage != tc.stage || errors.Is(err, ErrNotBlocked) {
				t.Fatalf("got %v, want a %s StageError", err, tc.stage)
			}
			msg := err.Error()
			if !strings.Contains(msg, "the "+tc.stage+" stage") || !strings.Contains(msg, tc.says) || strings.Contains(msg, "does not block") ||
				tc.rec.Reason != "" && !strings.Contains(msg, tc.rec.Reason) {
				t.Fatalf("message %q", msg)
			}
		})
	}
}

// TestExplainDetectMode (issue 13): a route in detect mode blocks nothing,
// which is where operators tune; explain judges the record as in block
// mode and says so, and the suggestion, pasted, lets the request pass once
// the route blocks.
func TestExplainDetectMode(t *testing.T) {
	detect := strings.Replace(siteConfig, "    waf:\n", "    waf:\n      mode: detect\n", 1)
	block := siteConfig
	cfg, err := config.Parse("portcullis.yaml", []byte(detect+"        []\n"))
	if err != nil {
		t.Fatal(err)
	}
	fp := record("POST", "/posts/42/comments", "application/x-www-form-urlencoded", "author=Ada&comment="+url.QueryEscape(proseSQL))
	fp.Action, fp.WAFMode, fp.Reason = audit.ActionDetected, config.ModeDetect, "anomaly score 10/0 reached the threshold (detect mode: not blocked)"
	if got := inspect(t, detect+"        []\n", fp); got.After != replay.Detected {
		t.Fatalf("fixture is not detected in detect mode: %s", got.After)
	}
	s, err := Explain(context.Background(), cfg, fp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	y := s.YAML()
	t.Logf("suggestion:\n%s", y)
	if !s.DetectMode || !s.Fix() || !strings.Contains(y, "detect mode") || !strings.Contains(y, "waf.mode: block") {
		t.Fatalf("detect mode not explained: %+v", s)
	}
	if got := inspect(t, block+"        []\n", fp); got.After != replay.Blocked {
		t.Fatalf("the request is not blocked in block mode: %s", got.After)
	}
	if got := inspect(t, block+indent(y), fp); got.After == replay.Blocked {
		t.Errorf("in block mode with the suggestion the request is still blocked: %+v", got.Now.Rules)
	}
	other := *fp
	other.URI = "/search"
	if got := inspect(t, block+indent(y), &other); got.After != replay.Blocked {
		t.Errorf("the same payload on another path passes in block mode: %s", got.After)
	}
}

// TestCandidates: the rules an exclusion may remove are those that scored
// or denied, as audit.RuleScore classifies them (issue 14: one table).
func TestCandidates(t *testing.T) {
	sqli := audit.MatchedRule{ID: 942100, Severity: "critical", Phase: 2}
	numeric := audit.MatchedRule{ID: 920350, Severity: "4", Phase: 1}
	leak := audit.MatchedRule{ID: 951220, Severity: "error", Phase: 4}
	eval := audit.MatchedRule{ID: 949110, Severity: "emergency", Phase: 2, Tags: []string{"anomaly-evaluation"}}
	taggedEval := audit.MatchedRule{ID: 100900, Severity: "critical", Phase: 2, Tags: []string{"anomaly-evaluation"}}
	customScoring := audit.MatchedRule{ID: 100001, Severity: "CRITICAL", Phase: 1}
	customDeny := audit.MatchedRule{ID: 100002, Phase: 2}
	customLog := audit.MatchedRule{ID: 100003, Phase: 2}
	unscored := audit.MatchedRule{ID: 942999, Phase: 2}
	all := []audit.MatchedRule{sqli, numeric, leak, eval, taggedEval, customScoring, customDeny, customLog, unscored}
	ids := func(rs []audit.MatchedRule) []int {
		var out []int
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		reason string
		want   []int
	}{
		{"request denied by rule 949110", []int{942100, 920350, 100001}},
		{"request denied by rule 100002", []int{942100, 920350, 100001, 100002}},
		{"request denied by rule 100900", []int{942100, 920350, 100001}},
		{"request denied by rule 942999", []int{942100, 920350, 100001, 942999}},
	} {
		got := ids(candidates(&audit.Entry{Reason: tc.reason, Rules: all}))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: candidates %v, want %v", tc.reason, got, tc.want)
		}
	}
}

// portcullisSite is siteConfig under the default profile.
var portcullisSite = strings.Replace(siteConfig, "      profile: stock-crs\n", "", 1)

// A detector finding gets a class exclusion for its variable, on this path
// and method, proven by replay; pasted, it lets exactly that request pass.
func TestExplainDetectorFinding(t *testing.T) {
	form := "application/x-www-form-urlencoded"
	fp := record("POST", "/posts/42/comments", form, "author=Ada&comment="+url.QueryEscape("{{7*7}}"))
	other := record("POST", "/posts/42/comments", form, "author="+url.QueryEscape("{{7*7}}")+"&comment=hi")
	cfg, err := config.Parse("portcullis.yaml", []byte(portcullisSite+"        []\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Explain(context.Background(), cfg, fp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Verified || len(s.Exclusions) != 1 || s.Exclusions[0].Class != "ssti" || s.Exclusions[0].Target != "ARGS:comment" {
		t.Fatalf("suggestion %+v", s)
	}
	y := s.YAML()
	if !strings.Contains(y, "classes: [ssti]") || !strings.Contains(y, `target: "ARGS:comment"`) {
		t.Fatalf("YAML:\n%s", y)
	}
	fixed := portcullisSite + indent(y)
	if got := inspect(t, fixed, fp); got.After == replay.Blocked {
		t.Errorf("still blocked with the suggestion:\n%s", fixed)
	}
	if got := inspect(t, fixed, other); got.After != replay.Blocked {
		t.Errorf("the same payload in another argument passes: %s", got.After)
	}
}
