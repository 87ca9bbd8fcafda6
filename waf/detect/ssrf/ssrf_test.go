package ssrf

import (
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/detect"
	tt "github.com/portcullis-waf/portcullis/waf/detect/internal/tabletest"
)

const (
	q    = detect.WhereQuery
	form = detect.WhereForm
	js   = detect.WhereJSON
	hdr  = detect.WhereHeader
	body = detect.WhereBody
	path = detect.WherePath
)

var cases = []tt.Case{
	// Loopback in every numeric form the WHATWG host parser accepts.
	{Value: "http://127.0.0.1/admin", Where: q, Name: "ARGS:url", Want: tt.Attack},
	{Value: "http://127.0.0.1:6379/", Where: q, Want: tt.Attack},
	{Value: "http://localhost/server-status", Where: q, Want: tt.Attack},
	{Value: "https://LOCALHOST:8443/actuator/env", Where: js, Want: tt.Attack},
	{Value: "http://2130706433/", Where: q, Want: tt.Attack},
	{Value: "http://0x7f000001/", Where: q, Want: tt.Attack},
	{Value: "http://0177.0.0.1/", Where: q, Want: tt.Attack},
	{Value: "http://0x7f.1/", Where: q, Want: tt.Attack},
	{Value: "http://127.1/", Where: q, Want: tt.Attack},
	{Value: "http://127.0.1:8080/", Where: q, Want: tt.Attack},
	{Value: "http://017700000001/", Where: q, Want: tt.Attack},
	{Value: "http://0x7F.0x00.0x00.0x01/", Where: q, Want: tt.Attack},
	{Value: "http://127.000.000.001/", Where: q, Want: tt.Attack},
	{Value: "http://127.0.0.1./", Where: q, Want: tt.Attack},
	{Value: "http://0/", Where: q, Want: tt.Attack},
	{Value: "http://0.0.0.0:8000/", Where: q, Want: tt.Attack},
	{Value: "http://[::1]/", Where: q, Want: tt.Attack},
	{Value: "http://[::]:22/", Where: q, Want: tt.Attack},
	{Value: "http://[::ffff:127.0.0.1]/", Where: q, Want: tt.Attack},
	{Value: "http://[::ffff:7f00:1]/", Where: q, Want: tt.Attack},
	{Value: "http://[0:0:0:0:0:ffff:7f00:1]/", Where: q, Want: tt.Attack},
	{Value: "http://[0000:0000:0000:0000:0000:0000:0000:0001]/", Where: q, Want: tt.Attack},
	{Value: "http://[::127.0.0.1]/", Where: q, Want: tt.Attack},
	{Value: "http://[64:ff9b::7f00:1]/", Where: q, Want: tt.Attack},
	{Value: "http://[2002:7f00:1::]/", Where: q, Want: tt.Attack},
	{Value: "http://[fe80::1%25eth0]/", Where: q, Want: tt.Attack},
	{Value: "http://①②⑦.⓪.⓪.①/", Where: q, Want: tt.Attack},
	{Value: "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", Where: q, Want: tt.Attack},
	{Value: "http://１２７．０．０．１/", Where: q, Want: tt.Attack},
	{Value: "http://127。0。0。1/", Where: q, Want: tt.Attack},
	{Value: "http://foo.localhost/", Where: q, Want: tt.Attack},
	{Value: "http://localtest.me/", Where: q, Want: tt.Attack},
	{Value: "http:\\\\127.0.0.1\\admin", Where: q, Want: tt.Attack},
	{Value: "http:/127.0.0.1/", Where: q, Want: tt.Attack},
	{Value: "//127.0.0.1/admin", Where: q, Want: tt.Attack},

	// Cloud metadata.
	{Value: "http://169.254.169.254/latest/meta-data/iam/security-credentials/", Where: q, Want: tt.Attack},
	{Value: "http://169.254.169.254/computeMetadata/v1/", Where: q, Name: "ARGS:redirect_uri", Want: tt.Attack},
	{Value: "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token", Where: q, Want: tt.Attack},
	{Value: "http://metadata/computeMetadata/v1/", Where: q, Want: tt.Attack},
	{Value: "http://[fd00:ec2::254]/latest/meta-data/", Where: q, Want: tt.Attack},
	{Value: "http://100.100.100.200/latest/meta-data/", Where: q, Want: tt.Attack},
	{Value: "http://169.254.170.2/v2/credentials", Where: q, Want: tt.Attack},
	{Value: "http://2852039166/latest/meta-data/", Where: q, Want: tt.Attack},
	{Value: "http://0xa9fea9fe/", Where: q, Want: tt.Attack},
	{Value: "http://0251.0376.0251.0376/", Where: q, Want: tt.Attack},
	{Value: "http://[::ffff:a9fe:a9fe]/latest/meta-data/", Where: q, Want: tt.Attack},
	{Value: "http://169.254.169.254.nip.io/", Where: q, Want: tt.Attack},
	{Value: "169.254.169.254/latest/meta-data/", Where: q, Want: tt.Attack},
	{Value: "http://instance-data/latest/meta-data/", Where: q, Want: tt.Attack},

	// Private and link-local.
	{Value: "http://10.0.0.5:8500/v1/kv/", Where: js, Want: tt.Attack},
	{Value: "http://192.168.1.1/cgi-bin/luci", Where: q, Want: tt.Attack},
	{Value: "https://172.16.4.20/api", Where: q, Want: tt.Attack},
	{Value: "http://[fd12:3456::1]/", Where: q, Want: tt.Attack},
	{Value: "http://kubernetes.default.svc/api/v1/secrets", Where: q, Want: tt.Attack},
	{Value: "http://redis.prod.svc.cluster.local:6379/", Where: q, Want: tt.Attack},

	// Userinfo, fragment and backslash tricks.
	{Value: "http://evil.com@127.0.0.1/", Where: q, Want: tt.Attack},
	{Value: "http://user:pass@localhost:8080/", Where: q, Want: tt.Attack},
	{Value: "http://127.0.0.1#@evil.com/", Where: q, Want: tt.Attack},
	{Value: "http://evil.com#@127.0.0.1/", Where: q, Want: tt.Attack},
	{Value: "http://evil.com\\@169.254.169.254/", Where: q, Want: tt.Attack},
	{Value: "http://127.0.0.1:80@evil.com/", Where: q, Want: tt.Attack},
	{Value: "http://a@b@127.0.0.1/", Where: q, Want: tt.Attack},

	// DNS names that resolve to internal addresses.
	{Value: "http://127.0.0.1.nip.io/", Where: q, Want: tt.Attack},
	{Value: "http://10-0-0-1.sslip.io:8080/", Where: q, Want: tt.Attack},
	{Value: "http://7f000001.c0a80001.rbndr.us/", Where: q, Want: tt.Attack},
	{Value: "http://app.127.0.0.1.nip.io/", Where: q, Want: tt.Benign}, // embedded address not leading: not judged

	// Schemes for internal services.
	{Value: "gopher://127.0.0.1:6379/_%2A1%0D%0A%248%0D%0Aflushall%0D%0A", Where: q, Want: tt.Attack},
	{Value: "gopher://localhost:25/_HELO", Where: q, Want: tt.Attack},
	{Value: "gopher://attacker.example:70/_x", Where: q, Want: tt.Attack}, // a payload: the smuggling tool, whatever the host
	{Value: "dict://127.0.0.1:11211/stats", Where: q, Want: tt.Attack},
	{Value: "dict://example.net:2628/d:x", Where: q, Want: tt.Weak},
	{Value: "file:///etc/passwd", Where: q, Want: tt.Attack},
	{Value: "ldap://127.0.0.1:389/dc=corp", Where: q, Want: tt.Attack},
	{Value: "ftp://10.1.1.1/pub", Where: q, Want: tt.Attack},
	{Value: "tftp://192.168.0.10/boot", Where: q, Want: tt.Attack},
	{Value: "jar:http://127.0.0.1:8080/x.jar!/", Where: q, Want: tt.Attack},

	// Embedded in bodies and other structure.
	{Value: `{"webhook":"http://169.254.169.254/latest/user-data"}`, Where: body, Want: tt.Attack},
	{Value: `<image href="http://127.0.0.1:2375/containers/json"/>`, Where: body, Want: tt.Attack},
	{Value: "url=http://0x7f000001/&x=1", Where: q, Want: tt.Attack},
	{Value: "http://127.0.0.1/", Where: hdr, Name: "REQUEST_HEADERS:X-Original-URL", Want: tt.Attack},

	{Value: "http://127.0.0.1:8080/admin", Where: form, Name: "ARGS:redirect_uri", Want: tt.Attack},
	{Value: "http://localhost:2375/containers/json", Where: q, Name: "ARGS:next", Want: tt.Attack},
	{Value: "https://shop.example/search?q=dict://127.0.0.1:11211/stats", Where: hdr, Name: "REQUEST_HEADERS:Referer", Want: tt.Attack},
	{Value: "NetDoc:///etc/passwd", Where: q, Name: "ARGS:fetch", Want: tt.Attack},

	{Value: "http://localhost:6379/", Where: form, Name: "ARGS:redirect_uri", Want: tt.Attack},
	{Value: "http://attacker.example@127.0.0.1/", Where: q, Name: "ARGS:redirect_uri", Want: tt.Attack},

	// Near-misses: public URLs, redirects, developers, versions, prose.
	{Value: "https://example.com/callback", Where: q, Name: "ARGS:redirect_uri", Want: tt.None},
	{Value: "https://www.example.org/path?q=1#frag", Where: q, Want: tt.None},
	{Value: "http://8.8.8.8/", Where: q, Want: tt.None},
	{Value: "http://93.184.216.34/index.html", Where: q, Want: tt.None},
	{Value: "http://192.0.2.10/", Where: q, Want: tt.None},
	{Value: "https://user@example.com/", Where: q, Want: tt.None},
	{Value: "https://example.com/a@b", Where: q, Want: tt.None},
	{Value: "https://docs.example.com/#/config@v2", Where: q, Want: tt.None},
	{Value: "http://127.0.0.1:51234/oauth/callback", Where: q, Name: "ARGS:redirect_uri", Want: tt.Benign},
	{Value: "http://localhost:8080/cb", Where: q, Name: "ARGS:redirect_uri", Want: tt.Benign},
	{Value: "http://localhost:3000", Where: hdr, Name: "REQUEST_HEADERS:Origin", Want: tt.Benign},
	{Value: "http://localhost:3000/dashboard", Where: hdr, Name: "REQUEST_HEADERS:Referer", Want: tt.Benign},
	{Value: "localhost:8080", Where: hdr, Name: "REQUEST_HEADERS:Host", Want: tt.Benign},
	{Value: "localhost", Where: form, Name: "ARGS:dbhost", Want: tt.Weak},
	{Value: "127.0.0.1", Where: form, Name: "ARGS:db_host", Want: tt.Weak},
	{Value: "1.2.3.4", Where: q, Name: "ARGS:version", Want: tt.None},
	{Value: "10.0.0.1", Where: q, Name: "ARGS:version", Want: tt.Benign},
	{Value: "2130706433", Where: q, Name: "ARGS:id", Want: tt.Benign},
	{Value: "0", Where: q, Name: "ARGS:page", Want: tt.Benign},
	{Value: "127", Where: q, Name: "ARGS:count", Want: tt.Benign},
	{Value: "Start the dev server and open http://localhost:3000 in your browser.", Where: form, Want: tt.Benign},
	{Value: "My router is at http://192.168.1.1 and it keeps rebooting", Where: form, Want: tt.Benign},
	{Value: "mailto:support@example.com", Where: q, Want: tt.None},
	{Value: "urn:isbn:0451450523", Where: q, Want: tt.None},
	{Value: "https://xn--nxasmq6b.example/", Where: q, Want: tt.None},
	{Value: "https://münchen.example/", Where: q, Want: tt.None},
	{Value: "https://deadbeef.cdn.example.com/a.js", Where: q, Want: tt.None},
	{Value: "https://1-2-3-4.sslip.io/", Where: q, Want: tt.None},
	{Value: "https://4.3.2.1.in-addr.arpa/", Where: q, Want: tt.None},
	{Value: "ldap://ldap.example.com/dc=example,dc=com", Where: q, Want: tt.None},
	{Value: "ftp://ftp.example.org/pub/file.tgz", Where: q, Want: tt.None},
	{Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", Where: hdr, Name: "REQUEST_HEADERS:User-Agent", Want: tt.None},
	{Value: "12:30:45", Where: q, Want: tt.None},
	{Value: "/api/v1/items", Where: path, Want: tt.None},
	{Value: "My test does this:\n\tresp, err := http.Get(\"http://127.0.0.1:8080/health\")\nand it fails", Where: form, Want: tt.Benign},
	{Value: "We read it with\n  open(\"file:///etc/passwd\")\nin the old version", Where: form, Want: tt.Benign},
	{Value: "<ul><li>gopher://ip_server/type</strong></li></ul>", Where: js, Want: tt.Weak},
	{Value: "fetch('https://localhost:8443',\n  { method: 'POST' })\n.then(r => r.json())", Where: js, Want: tt.Benign},
	{Value: "file://", Where: q, Want: tt.None},
	{Value: `if strings.HasPrefix(u, "file://") {`, Where: form, Want: tt.None},
	{Value: "printer.local", Where: form, Name: "ARGS:printer", Want: tt.Benign},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

func TestParseIPv4(t *testing.T) {
	tests := []struct {
		in        string
		ip        uint32
		canonical bool
		ok        bool
	}{
		{"127.0.0.1", 0x7f000001, true, true},
		{"127.1", 0x7f000001, false, true},
		{"0x7f.1", 0x7f000001, false, true},
		{"0177.0.0.1", 0x7f000001, false, true},
		{"2130706433", 0x7f000001, false, true},
		{"0x7f000001", 0x7f000001, false, true},
		{"256.0.0.1", 0, false, false},
		{"1.2.3.4.5", 0, false, false},
		{"4294967296", 0, false, false},
		{"08.0.0.1", 0, false, false},
		{"example", 0, false, false},
		{"1..1", 0, false, false},
	}
	for _, tc := range tests {
		ip, canonical, ok := parseIPv4([]byte(tc.in))
		if ok != tc.ok || (ok && (ip != tc.ip || canonical != tc.canonical)) {
			t.Errorf("parseIPv4(%q) = %#x, %v, %v; want %#x, %v, %v", tc.in, ip, canonical, ok, tc.ip, tc.canonical, tc.ok)
		}
	}
}

const maxStepsPerByte = 12

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	for _, unit := range []string{"http://", "http://a@", "x://", "http://127.0.0.1/ ", "http://a#@", "//", "[", ":/"} {
		v := strings.Repeat(unit, 20000)
		_, _, n := steps(detect.Input{Value: v, Where: q})
		if bound := tt.StepBound(len(v), maxStepsPerByte, 512); n > bound {
			t.Errorf("%q x 20000: %d steps > %d", unit, n, bound)
		}
	}
}

func FuzzDetect(f *testing.F) {
	tt.Seeds(f, cases)
	d := New()
	f.Fuzz(func(t *testing.T, v string, where uint8) {
		in := detect.Input{Value: v, Where: detect.Where(where % 11), Name: "ARGS:url"}
		fd, ok, n := steps(in)
		if err := tt.Invariants(d, in, fd, ok); err != nil {
			t.Fatal(err)
		}
		if bound := tt.StepBound(len(v), maxStepsPerByte, 512); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: "https://example.com/callback?state=abc", Where: q, Name: "ARGS:redirect_uri"},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form, Name: "ARGS:message"},
	{Value: "42", Where: q, Name: "ARGS:page"},
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr, Name: "REQUEST_HEADERS:User-Agent"},
	{Value: "https://www.example.org/a/b/c.html", Where: hdr, Name: "REQUEST_HEADERS:Referer"},
	{Value: "1.2.3.4", Where: q, Name: "ARGS:v"},
}

var attackInputs = []detect.Input{
	{Value: "http://169.254.169.254/latest/meta-data/", Where: q, Name: "ARGS:url"},
	{Value: "http://0x7f.1:6379/", Where: q, Name: "ARGS:url"},
	{Value: "http://[::ffff:127.0.0.1]/", Where: q, Name: "ARGS:url"},
	{Value: "gopher://127.0.0.1:6379/_x", Where: q, Name: "ARGS:url"},
	{Value: "http://evil.com#@127.0.0.1/", Where: q, Name: "ARGS:url"},
	{Value: "http://127.0.0.1.nip.io/", Where: q, Name: "ARGS:url"},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}

// TestInternalAddressForms (issue 15): every numeric spelling of an
// internal IPv4 address, IPv4-mapped and -compatible IPv6, and the
// non-HTTP schemes that reach internal services, in the placements that
// fetch URLs; public hosts and prose are not.
func TestInternalAddressForms(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "http://[::ffff:127.0.0.1]/admin", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://[::ffff:7f00:1]/", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "http://[0:0:0:0:0:ffff:127.0.0.1]/", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "http://[::FFFF:169.254.169.254]/latest/meta-data/", Where: detect.WhereXML, Want: tt.Attack},
		{Value: "http://2130706433/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://017700000001/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://0x7f000001/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://0x7f.0x0.0x0.0x1/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://0177.0.0.01/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://127.1/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://127.0.1/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://0/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://10.1/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http://0xa9fea9fe/latest/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "HtTP://[::ffff:127.0.0.1]:8080/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "ldap://127.0.0.1:389/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "ldap://127.0.0.1/dc=example", Where: detect.WhereXML, Want: tt.Attack},
		{Value: "gopher://127.0.0.1:6379/_INFO", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "gopher://evil.example/_%2A1%0D%0A%248%0D%0Aflushall", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "dict://localhost:11211/stats", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "file:///etc/passwd", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "tftp://10.0.0.5/config", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http:127.0.0.1", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "HTTPS:[::1]:8443/admin", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "http://192.0.0.192/latest/user-data/", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "http:example.com", Where: detect.WhereQuery, Want: tt.None},

		{Value: "http://93.184.216.34/", Where: detect.WhereQuery, Want: tt.None},
		{Value: "https://example.com/page?x=1", Where: detect.WhereQuery, Want: tt.None},
		{Value: "gopher://gopher.floodgap.com/1/world", Where: detect.WhereForm, Want: tt.Weak},
		{Value: "Version 2130706433 was released", Where: detect.WhereForm, Want: tt.None},
	} {
		in := c.Input()
		f, ok := d.Detect(in)
		if err := tt.Invariants(d, in, f, ok); err != nil {
			t.Error(err)
		}
		if pass, why := tt.Check(c.Want, f, ok); !pass {
			t.Errorf("%q (%s): want %s: %s", c.Value, c.Where, c.Want, why)
		}
	}
}
