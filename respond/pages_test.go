package respond

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParsePagesRefusesWhatCouldLeak(t *testing.T) {
	tests := []struct {
		name, html, json string
		want             string // "" = accepted; else the error text (file:line: msg)
	}{
		{"every field", "<p>{{.Status}} {{.StatusText}} {{.RequestID}} {{.Time}} {{.Message}}</p>", `{"id": {{json .RequestID}}, "status": {{.Status}}}`, ""},
		{"conditionals on allowed fields", "{{if eq .Status 429}}slow down{{else}}no{{end}}", "", ""},
		{"unknown field", "<p>\n{{.Rule}}</p>", "", "b.html:2: unknown field .Rule: a block page may use only .Status, .StatusText, .RequestID, .Time, .Message"},
		{"nested field", "{{.Request.Header}}", "", "b.html:1: unknown field .Request.Header: a block page may use only .Status, .StatusText, .RequestID, .Time, .Message"},
		{"variable field", "{{$x := .}}\n\n{{$x.Secret}}", "", "b.html:3: field access $x.Secret is not allowed: a block page may use only .Status, .StatusText, .RequestID, .Time, .Message"},
		{"with", "{{with .RequestID}}{{.}}{{end}}", "", "b.html:1: {{with}} is not allowed in a block page"},
		{"parse error line", "<p>\n\n{{.Status</p>", "", "b.html:3: bad character"},
		{"unknown function", "{{env \"HOME\"}}", "", `b.html:1: function "env" not defined`},
		{"json not quoted", "", `{"id": "{{.RequestID}}"}`, "b.json: output for status 400 is not valid JSON (write fields as {{json .RequestID}}, which quotes and escapes them)"},
		{"json unknown field in second template", "", "{\n\"a\": {{json .Upstream}}}", "b.json:2: unknown field .Upstream: a block page may use only .Status, .StatusText, .RequestID, .Time, .Message"},
		{"execution error", `{{template "missing"}}`, "", `b.html:1: no such template "missing"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, errs := ParsePages("b.html", tt.html, "b.json", tt.json)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if tt.want == "" {
				if len(errs) > 0 || p == nil {
					t.Fatalf("refused: %v", got)
				}
				return
			}
			if p != nil || len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Fatalf("got %q, want one error containing %q", got, tt.want)
			}
		})
	}
}

func TestPagesFromContextAnswerEveryRefusal(t *testing.T) {
	p, errs := ParsePages("b.html", `<h1 class=custom>{{.Status}} {{.StatusText}}</h1><code>{{.RequestID}}</code>`, "b.json", `{"code": {{.Status}}, "ref": {{json .RequestID}}, "custom": true}`)
	if errs != nil {
		t.Fatal(errs)
	}
	for _, tt := range []struct {
		accept  string
		status  int
		headers http.Header
		want    string
		ct      string
	}{
		{"text/html", 403, nil, `<h1 class=custom>403 Forbidden</h1><code>r&lt;1&gt;</code>`, "text/html; charset=utf-8"},
		{"", 429, http.Header{"Retry-After": {"3"}}, `<h1 class=custom>429 Too Many Requests</h1>`, "text/html; charset=utf-8"},
		{"application/json", 503, nil, `{"code": 503, "ref": "r\u003c1\u003e", "custom": true}`, "application/json"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", tt.accept)
		r = r.WithContext(WithPages(r.Context(), p))
		w := httptest.NewRecorder()
		ErrorWithHeaders(w, r, tt.status, "r<1>", tt.headers)
		if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) || w.Header().Get("Content-Type") != tt.ct {
			t.Errorf("%d %q: got %d %q %q", tt.status, tt.accept, w.Code, w.Header().Get("Content-Type"), w.Body.String())
		}
		if tt.headers != nil && w.Header().Get("Retry-After") != "3" {
			t.Errorf("extra headers lost: %v", w.Header())
		}
		if w.Header().Get(RequestIDHeader) != "r<1>" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("headers: %v", w.Header())
		}
		if tt.ct == "application/json" && !json.Valid(w.Body.Bytes()) {
			t.Errorf("invalid JSON %q", w.Body.String())
		}
	}
	// A site with only an HTML template keeps the built-in JSON answer.
	only, _ := ParsePages("b.html", "custom {{.Status}}", "", "")
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	Error(w, r.WithContext(WithPages(r.Context(), only)), 403, "id1")
	if !strings.Contains(w.Body.String(), `"request_id":"id1"`) {
		t.Errorf("built-in JSON expected, got %q", w.Body.String())
	}
}
