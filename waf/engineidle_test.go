package waf

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// manyArgs is n name=value pairs joined by &.
func manyArgs(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("a%d=1", i)
	}
	return strings.Join(parts, "&")
}

// TestEngineIdle: the default profile skips the rule engine exactly for
// the requests none of its engine rules can act on, and only while the
// rule set holds nothing else.
func TestEngineIdle(t *testing.T) {
	small := config.DefaultWAF()
	small.BodyNoFilesLimit = 100
	custom := config.DefaultWAF()
	custom.RulesBefore = []config.RuleText{{Origin: "test", Text: `SecRule REQUEST_HEADERS:X-Deny "@streq 1" "id:10101,phase:1,deny,status:403,log"`}}
	response := config.DefaultWAF()
	response.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecRule RESPONSE_STATUS "@streq 599" "id:10102,phase:3,pass,log"`}}
	// Directives without a rule change what the engine rules do
	// (SecArgumentsLimit, SecRequestBodyLimit…): the stage cannot tell.
	directive := config.DefaultWAF()
	directive.RulesBefore = []config.RuleText{{Origin: "test", Text: "SecArgumentsLimit 10"}}
	form := "application/x-www-form-urlencoded"
	for _, tt := range []struct {
		name     string
		settings config.WAFSettings
		r        func() *http.Request
		want     bool
	}{
		{"plain GET", config.DefaultWAF(), func() *http.Request { return req("GET", "/p?a=1&b=2", "", "") }, true},
		{"small form POST", config.DefaultWAF(), func() *http.Request { return req("POST", "/c", form, "name=Ada&msg=hello") }, true},
		{"JSON POST", config.DefaultWAF(), func() *http.Request { return req("POST", "/c", "application/json", `{"a":1}`) }, true},
		{"999 query arguments", config.DefaultWAF(), func() *http.Request { return req("GET", "/p?"+manyArgs(999), "", "") }, true},
		{"1000 query arguments", config.DefaultWAF(), func() *http.Request { return req("GET", "/p?"+manyArgs(1000), "", "") }, false},
		{"1000 form arguments", config.DefaultWAF(), func() *http.Request { return req("POST", "/c", form, manyArgs(1000)) }, false},
		{"1000 ampersands in a text body", config.DefaultWAF(), func() *http.Request { return req("POST", "/c", "text/plain", manyArgs(1000)) }, true},
		{"multipart", config.DefaultWAF(), func() *http.Request {
			return req("POST", "/u", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n")
		}, false},
		{"Multipart in upper case", config.DefaultWAF(), func() *http.Request {
			return req("POST", "/u", " MULTIPART/form-data; boundary=x", "--x\r\n\r\n--x--\r\n")
		}, false},
		{"two content types", config.DefaultWAF(), func() *http.Request {
			return req("POST", "/c", "text/plain", "hello", "Content-Type", "multipart/form-data; boundary=x")
		}, false},
		{"body at no_files_limit", small, func() *http.Request { return req("POST", "/c", "text/plain", strings.Repeat("x", 100)) }, true},
		{"body over no_files_limit", small, func() *http.Request { return req("POST", "/c", "text/plain", strings.Repeat("x", 101)) }, false},
		{"expects 100-continue", config.DefaultWAF(), func() *http.Request {
			return req("POST", "/c", "text/plain", "hello", "Expect", "100-continue")
		}, false},
		{"trailer fields declared", config.DefaultWAF(), func() *http.Request {
			r := req("POST", "/c", "text/plain", "hello")
			r.Trailer = http.Header{"X-Checksum": nil}
			return r
		}, false},
		{"URI the engine cannot parse", config.DefaultWAF(), func() *http.Request {
			r := req("GET", "/p", "", "")
			r.RequestURI = "/p%zz?a=1"
			return r
		}, false},
		{"a custom rule", custom, func() *http.Request { return req("GET", "/p?a=1", "", "") }, false},
		{"a custom response rule", response, func() *http.Request { return req("GET", "/p?a=1", "", "") }, false},
		{"a custom directive", directive, func() *http.Request { return req("GET", "/p?"+manyArgs(50), "", "") }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := nativeStage(t, tt.settings)
			r := tt.r()
			if got := s.engineIdle(r, s.readAhead(r)); got != tt.want {
				t.Errorf("engineIdle = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEngineIdleSameOutcome: requests the default stage judges without
// the engine, and requests at the edges where it must not, get the same
// answer, forwarded body and record as through a stage whose rule set
// holds one more (inert) rule, which always runs the engine.
func TestEngineIdleSameOutcome(t *testing.T) {
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name, method, target, ctype, body string
	}{
		{"benign GET", "GET", "/products?category=shoes&page=2", "", ""},
		{"SQL injection", "GET", "/?id=1%27%20OR%20%271%27%3D%271", "", ""},
		{"benign form", "POST", "/contact", form, "name=Ada+Lovelace&msg=the+analytical+engine"},
		{"form with XSS", "POST", "/contact", form, "msg=%3Cscript%3Ealert(1)%3C%2Fscript%3E"},
		{"1001 query arguments", "GET", "/p?" + manyArgs(1001), "", ""},
		{"1001 form arguments", "POST", "/c", form, manyArgs(1001)},
		{"text body over no_files_limit", "POST", "/c", "text/plain", strings.Repeat("word ", 300)},
		{"octet-stream over no_files_limit", "POST", "/c", "application/octet-stream", strings.Repeat("word ", 300)},
		{"multipart", "POST", "/u", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhello\r\n--x--\r\n"},
	}
	for _, mode := range []string{config.ModeBlock, config.ModeDetect} {
		base := config.DefaultWAF()
		base.Mode = mode
		base.BodyNoFilesLimit = 1000
		engine := base
		engine.RulesAfter = []config.RuleText{{Origin: "test", Text: `SecAction "id:10990,phase:1,pass,nolog"`}}
		idle, idleFw := nativeStage(t, base)
		full, fullFw := nativeStage(t, engine)
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				run := func(s *Stage, fw *forwardLog) (int, outcome) {
					*fw = forwardLog{}
					r := req(c.method, c.target, c.ctype, c.body)
					e := &audit.Entry{ID: "t", ClientIP: "192.0.2.1", Sampled: true}
					r = r.WithContext(audit.WithEntry(r.Context(), e))
					w := httptest.NewRecorder()
					s.ServeHTTP(w, r)
					return w.Code, outcomeOf(e, fw)
				}
				wantCode, want := run(full, fullFw)
				gotCode, got := run(idle, idleFw)
				if gotCode != wantCode || !got.equal(want) {
					t.Errorf("without the engine: %d %+v\nwith it:            %d %+v", gotCode, got, wantCode, want)
				}
			})
		}
	}
}

// outcome is what a request leaves behind that the engine could change.
type outcome struct {
	forwarded   int
	body        string
	action      string
	stage       string
	reason      string
	rules       []int
	findings    []string
	requestBody string
}

func outcomeOf(e *audit.Entry, fw *forwardLog) outcome {
	o := outcome{forwarded: fw.n, body: string(fw.body), action: e.Action, stage: e.Stage, reason: e.Reason, requestBody: e.RequestBody}
	for _, r := range e.Rules {
		o.rules = append(o.rules, r.ID)
	}
	for _, f := range e.Findings {
		o.findings = append(o.findings, f.Detector+" "+f.Variable)
	}
	return o
}

func (o outcome) equal(p outcome) bool {
	return o.forwarded == p.forwarded && o.body == p.body && o.action == p.action && o.stage == p.stage &&
		o.reason == p.reason && slices.Equal(o.rules, p.rules) && slices.Equal(o.findings, p.findings) && o.requestBody == p.requestBody
}

// TestCustomResponseRuleUnderDefaultProfile: response inspection is skipped
// only when no rule runs on responses; a custom response rule still
// inspects and refuses.
func TestCustomResponseRuleUnderDefaultProfile(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rules []config.RuleText
		want  int
	}{
		{"no response rule", nil, http.StatusOK},
		{"a phase 4 rule", []config.RuleText{{Origin: "test", Text: `SecRule RESPONSE_BODY "@contains internal-secret" "id:10991,phase:4,deny,status:403,log"`}}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := config.DefaultWAF()
			s.ResponseInspect = true
			s.RulesAfter = tt.rules
			e, err := Compile(s)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.Close() })
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = io.WriteString(w, "<p>internal-secret</p>")
			})
			stage := NewStage(e, s, next, Recording{Redactor: audit.NewRedactor(nil, nil)})
			r := req("GET", "/page", "", "")
			entry := &audit.Entry{ID: "t", ClientIP: "192.0.2.1"}
			r = r.WithContext(audit.WithEntry(r.Context(), entry))
			w := httptest.NewRecorder()
			stage.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d (rules %v)", w.Code, tt.want, entry.Rules)
			}
		})
	}
}
