package crlf

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
	ck   = detect.WhereCookie
	path = detect.WherePath
	body = detect.WhereBody
)

var cases = []tt.Case{
	// Response splitting and header injection in single-line places.
	{Value: "en\r\nSet-Cookie: session=attacker", Where: q, Want: tt.Attack},
	{Value: "/home\r\nLocation: https://evil.example/", Where: q, Want: tt.Attack},
	{Value: "x\nSet-Cookie:a=b", Where: q, Want: tt.Attack},
	{Value: "x\rContent-Type: text/html", Where: q, Want: tt.Attack},
	{Value: "\r\nX-XSS-Protection: 0", Where: q, Want: tt.Attack},
	{Value: "foo\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>", Where: q, Want: tt.Attack},
	{Value: "x\r\n\r\n<html><body>defaced</body></html>", Where: q, Want: tt.Attack},
	{Value: "/redirect\r\nRefresh: 0; url=https://evil.example", Where: path, Want: tt.Attack},
	{Value: "abc\r\nAccess-Control-Allow-Origin: *", Where: ck, Want: tt.Attack},
	{Value: "value\r\nX-Custom-Injected: yes", Where: hdr, Want: tt.Attack},
	{Value: "en\r\nTransfer-Encoding: chunked", Where: q, Want: tt.Attack},
	{Value: "x\r\nGET /admin HTTP/1.1\r\nHost: internal", Where: q, Want: tt.Attack},
	{Value: "x\r\nHTTP/1.1 302 Found", Where: q, Want: tt.Attack},
	{Value: "enčĊSet-Cookie: a=b", Where: q, Want: tt.Attack}, // U+010D U+010A
	{Value: "en嘍嘊Set-Cookie: a=b", Where: q, Want: tt.Attack}, // U+560D U+560A
	{Value: "enĊLocation: //evil.example", Where: path, Want: tt.Attack},
	{Value: "x\r\nFLUSHALL\r\n", Where: q, Want: tt.Attack},
	{Value: "x\r\n*1\r\n$8\r\nflushall\r\n", Where: q, Want: tt.Attack},
	{Value: "file.txt\r\nContent-Disposition: attachment; filename=evil.exe", Where: detect.WhereFileName, Want: tt.Attack},

	// Mail header and SMTP injection in form fields and JSON.
	{Value: "victim@example.com\r\nBcc: spam1@example.net, spam2@example.net", Where: form, Want: tt.Attack},
	{Value: "Hello\nBcc: list@example.net", Where: form, Want: tt.Attack},
	{Value: "Great product\r\nCc: a@example.net\r\nBcc: b@example.net", Where: form, Want: tt.Attack},
	{Value: "me@example.com\r\nContent-Type: text/html\r\n\r\n<h1>Buy now</h1>", Where: form, Want: tt.Attack},
	{Value: "x\r\nSubject: you won\r\nReply-To: scam@example.net", Where: js, Want: tt.Attack},
	{Value: "\r\nBcc: x@example.net", Where: form, Want: tt.Attack},
	{Value: "a@b.c\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nspam\r\n.\r\nQUIT", Where: form, Want: tt.Attack},
	{Value: "x\r\n.\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA", Where: form, Want: tt.Attack},
	{Value: "me@example.com\nTo: other@example.net", Where: js, Want: tt.Attack},
	{Value: "/next\r\nSet-Cookie: admin=1", Where: js, Want: tt.Attack},
	{Value: "subj\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x", Where: body, Want: tt.Attack},

	{Value: "/products/42\r\n\r\n<html><body>fake page</body></html>", Where: js, Want: tt.Attack},
	{Value: "Hi there嘍嘊Bcc: list@evil.example", Where: form, Want: tt.Attack},
	{Value: "news嘍嘊Set-Cookie: sid=attacker", Where: js, Want: tt.Attack},
	{Value: "/docs\nnext", Where: path, Want: tt.Attack},
	{Value: "param\r\n", Where: detect.WhereArgName, Want: tt.Attack},
	{Value: "a\nb", Where: ck, Want: tt.Weak},
	{Value: "GET http://internal.example/ HTTP/1.1", Where: q, Want: tt.Attack},

	// Near-misses: textareas, pasted mail, notes.
	{Value: "Hello,\n\nI would like to return my order.\n\nThanks,\nAnna", Where: form, Want: tt.None},
	{Value: "Line one\r\nLine two\r\nLine three", Where: form, Want: tt.None},
	{Value: "Thanks for the help\nNote: I use Windows 11", Where: form, Want: tt.None},
	{Value: "Hi team,\n\nFrom: Bob <bob@example.com>\nSent: Monday\nTo: Alice\nSubject: Q3\n\nSee attached.", Where: form, Want: tt.Benign},
	{Value: "From: Bob <bob@example.com>\nTo: Alice <alice@example.com>\nSubject: Q3 numbers\n\nHi Alice, see attached.", Where: form, Want: tt.Benign},
	{Value: "Hello,\nSubject: refund for order 1234\nI ordered a jacket last week and it never arrived.", Where: form, Want: tt.Benign},
	{Value: "Name: John\nEmail: john@example.com\nPhone: 555-0100", Where: form, Want: tt.None},
	{Value: "Steps:\n1. open the app\n2. click save\nResult: crash", Where: form, Want: tt.None},
	{Value: "P.S.: call me tomorrow", Where: form, Want: tt.None},
	{Value: "Here is my request:\nGET /api/items HTTP/1.1\nHost: api.example.com\nAccept: application/json", Where: form, Want: tt.Weak},
	{Value: "Address line 1\nAttn: Billing\nSuite 400", Where: form, Want: tt.None},
	{Value: "Děkuji, přijdu zítra. Čau!", Where: form, Want: tt.None},
	{Value: "Ċirkewwa ferry times", Where: q, Want: tt.None},
	{Value: "plain value", Where: q, Want: tt.None},
	{Value: "multi\nline", Where: q, Want: tt.Benign},
	{Value: "{\"a\":1}\n{\"b\":2}", Where: body, Want: tt.None},
	{Value: "DATA\nsome numbers\n1 2 3", Where: form, Want: tt.None},
	{Value: "key: value\nother: thing", Where: body, Want: tt.None},
	{Value: "Hi\r\n\r\n<p>See the attached file.</p>", Where: form, Want: tt.None},
	{Value: "HTTP/1.1 is older than HTTP/2", Where: q, Want: tt.None},
	{Value: "Na shledanou, Čeněk. Děkuji za číslo.", Where: form, Want: tt.None},
	{Value: "\n\x1b\xaf\x18\xe9\xa3\x1c\xe6n", Where: ck, Want: tt.None},
	{Value: "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", Where: body, Want: tt.None},
	{Value: "Here is what the server returns:\nHTTP/1.1 500 Internal Server Error\nContent-Type: text/html", Where: form, Want: tt.Weak},
	{Value: "Roses are red,\nViolets are blue,\nTo: my love,\nFrom: me", Where: form, Want: tt.Benign},
	{Value: "Anna Smith\nFlat 2, 10 High Street\nLondon\nSW1A 1AA", Where: js, Want: tt.None},
	{Value: "Q: does it ship abroad?\nA: yes", Where: form, Want: tt.None},
	{Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", Where: hdr, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

const maxStepsPerByte = 8

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	for _, unit := range []string{"\r\n", "a\nBcc: x\n", "\n\n", "čĊ", "x\r\nRCPT TO:<a>", "Set-Cookie: a\r\n", "a\u560d\u560a\u560d\u560aQUIT", "\u560d\u560aX-A: 1"} {
		for _, w := range []detect.Where{q, form} {
			v := strings.Repeat(unit, 20000)
			_, _, n := steps(detect.Input{Value: v, Where: w})
			if bound := tt.StepBound(len(v), maxStepsPerByte, 64); n > bound {
				t.Errorf("%q x 20000 (%s): %d steps > %d", unit, w, n, bound)
			}
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
		if bound := tt.StepBound(len(v), maxStepsPerByte, 64); n > bound {
			t.Fatalf("%d steps for %d bytes > %d", n, len(v), bound)
		}
	})
}

var benignInputs = []detect.Input{
	{Value: "Hello,\n\nI would like to return my order.\n\nThanks,\nAnna", Where: form},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: "42", Where: q},
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr},
	{Value: "Thanks for the help\nNote: I use Windows 11", Where: form},
	{Value: "en-US,en;q=0.9", Where: hdr},
}

var attackInputs = []detect.Input{
	{Value: "en\r\nSet-Cookie: session=attacker", Where: q},
	{Value: "victim@example.com\r\nBcc: spam1@example.net", Where: form},
	{Value: "x\r\n\r\n<html>defaced</html>", Where: q},
	{Value: "a@b.c\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nspam\r\n.\r\n", Where: form},
	{Value: "enčĊSet-Cookie: a=b", Where: q},
	{Value: "x\r\nGET /admin HTTP/1.1", Where: q},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}

// TestOneWordInjections (issue 15): a one-word field value followed by an
// extension header, or by a blank line and SMTP commands, is injection
// even in a textarea-like placement; short notes are not.
func TestOneWordInjections(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "en\r\nX-Injected: 1", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "en\r\nX-Forwarded-For: 127.0.0.1", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "foo\r\n\r\nQUIT\r\n", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "Thanks\r\nP-S: see you", Where: detect.WhereForm, Want: tt.Benign},
		{Value: "Hello\r\nRe: your order", Where: detect.WhereForm, Want: tt.Benign},
		{Value: "Hi,\r\n\r\nQUIT smoking now, says the doctor", Where: detect.WhereJSON, Want: tt.Benign},
		{Value: "Dear team,\r\nX-Ray results attached", Where: detect.WhereForm, Want: tt.Benign},
	} {
		f, ok := d.Detect(c.Input())
		if pass, why := tt.Check(c.Want, f, ok); !pass {
			t.Errorf("%q: want %s: %s", c.Value, c.Want, why)
		}
	}
}

// TestInjectionInTextFields (issue 15): mail and HTTP header injection in
// form fields, JSON and XML values, with CR LF and with the Unicode
// characters that truncate to CR or LF; paragraphs and CJK text are not.
func TestInjectionInTextFields(t *testing.T) {
	d := New()
	const u = "\u560d\u560a" // truncate to CR LF
	for _, c := range []tt.Case{
		{Value: "anna@example.com\r\nBcc: all@example.net", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "Hello\nCc: x@example.net\nBcc: y@example.net", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "a@b.example>\r\nRCPT TO:<x@evil.example>\r\nDATA", Where: detect.WhereXML, Want: tt.Attack},
		{Value: "news\r\nSet-Cookie: sessionid=attacker; Path=/", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "bob\r\n\r\nQUIT\r\n", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "/next\r\n\r\n<script>alert(1)</script>", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "user@example.com" + u + "Bcc: victims@example.net", Where: detect.WhereJSON, Want: tt.Attack},
		{Value: "en" + u + "X-Injected: 1", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "foo" + u + u + "QUIT" + u, Where: detect.WhereBody, Want: tt.Attack},
		{Value: "en" + u + "X-Injected: 1", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "/account" + u + u + "<html><body>defaced</body></html>", Where: detect.WhereXML, Want: tt.Attack},
		{Value: "https://shop.example/next" + u + u + "<script>alert(1)</script>", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "x\r\nSet-Cookie: a=b", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "a@b.example\r\nAUTH PLAIN AGFkbWluAHNlY3JldA==\r\nMAIL FROM:<a@b.example>", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "x\nAUTH LOGIN\nDATA", Where: detect.WhereJSON, Want: tt.Attack},

		{Value: "Dear team,\r\nNote: the meeting moved.\r\nThanks, Anna", Where: detect.WhereForm, Want: tt.Benign},
		{Value: "我们" + u + "今天", Where: detect.WhereForm, Want: tt.None},
		// A PAM configuration pasted into a forum post: "auth" lines.
		{Value: "My config:\n\n#%PAM-1.0\nauth      sufficient pam_unix.so\n-auth     sufficient pam_systemd_home.so\nauth      required   pam_deny.so\n\naccount   required pam_unix.so", Where: detect.WhereJSON, Want: tt.Benign},
		{Value: "hello world" + u + "X-Files: great show", Where: detect.WhereForm, Want: tt.Benign},
		{Value: "foo" + u + u + "quite a day", Where: detect.WhereBody, Want: tt.None},
		{Value: "我们" + u + u + "<b>今天</b>", Where: detect.WhereForm, Want: tt.None},
		// A printable run of a protobuf body: tag '*', length 13 (CR).
		{Value: "*\rSSL-encrypted2:", Where: detect.WhereBody, Want: tt.Benign},
		{Value: "\"\nX-Request: 1", Where: detect.WhereBody, Want: tt.Benign},
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
