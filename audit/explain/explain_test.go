package explain

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/audit/replay"
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/gateway"
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
			if !s.Verified || len(s.Exclusions) == 0 {
				t.Fatalf("not verified: %+v", s)
			}
			for _, x := range s.Exclusions {
				if x.Target == "" || x.PathPrefix != requestPath(tt.fp.URI) || len(x.Methods) != 1 {
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
