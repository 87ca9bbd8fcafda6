package traversal

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
	path = detect.WherePath
	hdr  = detect.WhereHeader
	ck   = detect.WhereCookie
	fn   = detect.WhereFileName
	body = detect.WhereBody
)

var cases = []tt.Case{
	// Climbs, plain and in the forms naive filters miss.
	{Value: "../../../../etc/passwd", Where: q, Want: tt.Attack},
	{Value: "../../../etc/shadow", Where: form, Want: tt.Attack},
	{Value: "..\\..\\..\\windows\\win.ini", Where: q, Want: tt.Attack},
	{Value: "..\\..\\..\\..\\boot.ini", Where: q, Want: tt.Attack},
	{Value: "....//....//....//etc/hosts", Where: q, Want: tt.Attack},
	{Value: "..././..././..././etc/group", Where: q, Want: tt.Attack},
	{Value: "..;/..;/..;/WEB-INF/web.xml", Where: q, Want: tt.Attack},
	{Value: "/app/static/..;/..;/WEB-INF/classes/application.properties", Where: path, Want: tt.Attack},
	{Value: "..\\/..\\/..\\/etc/passwd", Where: q, Want: tt.Attack},
	{Value: "../../../../../../../../../../proc/self/environ", Where: q, Want: tt.Attack},
	{Value: "../../../../proc/self/cmdline", Where: js, Want: tt.Attack},
	{Value: "../../../../proc/1/maps", Where: js, Want: tt.Attack},
	{Value: "images/../../../../../var/log/apache2/access.log", Where: q, Want: tt.Attack},
	{Value: "../../../../../var/run/secrets/kubernetes.io/serviceaccount/token", Where: q, Want: tt.Attack},
	{Value: "../../../../root/.ssh/id_rsa", Where: q, Want: tt.Attack},
	{Value: "../../../home/deploy/.aws/credentials", Where: q, Want: tt.Attack},
	{Value: "../../.git/config", Where: q, Want: tt.Attack},
	{Value: "../../../.env", Where: q, Want: tt.Attack},
	{Value: "../../config/database.yml", Where: q, Want: tt.Attack},
	{Value: "../../../../../../tmp/sess_abc", Where: q, Want: tt.Attack},
	{Value: "..;jsessionid=1/..;jsessionid=1/..;jsessionid=1/etc/passwd", Where: q, Want: tt.Attack},
	{Value: "..      /..   /..  /etc/passwd", Where: q, Want: tt.Attack},
	{Value: "../../../etc/passwd\x00.png", Where: q, Want: tt.Attack},
	{Value: ".. /.. /.. /windows/system.ini", Where: q, Want: tt.Attack},
	{Value: "..\xc0\xaf..\xc0\xaf..\xc0\xafetc\xc0\xafpasswd", Where: q, Want: tt.Attack},
	{Value: "\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/etc/passwd", Where: q, Want: tt.Attack},
	{Value: "\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8f\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8fetc\xef\xbc\x8fpasswd", Where: q, Want: tt.Attack}, // fullwidth
	{Value: "\xe2\x80\xa5/\xe2\x80\xa5/\xe2\x80\xa5/etc/passwd", Where: q, Want: tt.Attack},                                             // two dot leader
	{Value: "..\xe2\x88\x95..\xe2\x88\x95..\xe2\x88\x95etc\xe2\x88\x95shadow", Where: q, Want: tt.Attack},                               // division slash
	{Value: "../../../../../../../../", Where: q, Want: tt.Attack},
	{Value: "..\\..\\..\\..\\..\\", Where: form, Want: tt.Attack},
	{Value: "foo/../../../../bar", Where: q, Want: tt.Attack},
	{Value: "/static/../../../../etc/passwd", Where: path, Want: tt.Attack},
	{Value: "/../../secret", Where: path, Want: tt.Attack},
	{Value: "../../../../etc/cron.d/evil", Where: fn, Want: tt.Attack},
	{Value: "..\\..\\webroot\\shell.aspx", Where: fn, Want: tt.Attack},
	{Value: "{\"file\":\"../../../../etc/passwd\"}", Where: body, Want: tt.Attack},
	{Value: "page=../../../../etc/passwd&x=1", Where: ck, Want: tt.Attack},
	{Value: "../../../../etc/passwd", Where: hdr, Want: tt.Attack},
	{Value: "..\\..\\..\\inetpub\\wwwroot\\web.config", Where: q, Want: tt.Attack},
	{Value: "..\\..\\..\\Windows\\win.ini::$DATA", Where: q, Want: tt.Attack},
	{Value: "../../../../etc/passwd.", Where: q, Want: tt.Attack},
	{Value: "....\\\\....\\\\....\\\\windows\\\\win.ini", Where: q, Want: tt.Attack},

	// Absolute paths to sensitive files.
	{Value: "/etc/passwd", Where: q, Want: tt.Attack},
	{Value: "/etc/shadow", Where: js, Want: tt.Attack},
	{Value: "/ETC/PASSWD", Where: q, Want: tt.Attack},
	{Value: "/etc//./passwd", Where: q, Want: tt.Attack},
	{Value: "/etc/nginx/nginx.conf", Where: q, Want: tt.Attack},
	{Value: "/etc/ssh/sshd_config", Where: q, Want: tt.Attack},
	{Value: "/proc/self/environ", Where: q, Want: tt.Attack},
	{Value: "/proc/self/fd/7", Where: q, Want: tt.Attack},
	{Value: "/proc/12/cmdline", Where: form, Want: tt.Attack},
	{Value: "/var/www/html/../../../etc/passwd", Where: q, Want: tt.Attack},
	{Value: "/root/.bash_history", Where: q, Want: tt.Attack},
	{Value: "/home/ubuntu/.ssh/authorized_keys", Where: q, Want: tt.Attack},
	{Value: "~/.ssh/id_ed25519", Where: q, Want: tt.Attack},
	{Value: "C:\\Windows\\win.ini", Where: q, Want: tt.Attack},
	{Value: "c:/windows/system32/drivers/etc/hosts", Where: q, Want: tt.Attack},
	{Value: "C:\\boot.ini", Where: q, Want: tt.Attack},
	{Value: "C:\\inetpub\\wwwroot\\web.config", Where: q, Want: tt.Attack},
	{Value: "/var/log/nginx/access.log", Where: q, Want: tt.Attack},
	{Value: "/etc/passwd\x00", Where: q, Want: tt.Attack},
	{Value: "/usr/local/etc/php.ini", Where: q, Want: tt.Attack},

	// Application secrets by relative name.
	{Value: "WEB-INF/web.xml", Where: q, Want: tt.Attack},
	{Value: "/WEB-INF/web.xml", Where: q, Want: tt.Attack},
	{Value: ".git/config", Where: q, Want: tt.Attack},
	{Value: ".env", Where: q, Want: tt.Attack},
	{Value: ".env.production", Where: q, Want: tt.Attack},
	{Value: "wp-config.php", Where: q, Want: tt.Attack},
	{Value: "wp-config.php.bak", Where: q, Want: tt.Attack},
	{Value: ".htpasswd", Where: q, Want: tt.Attack},
	{Value: "/.env", Where: path, Want: tt.Attack},
	{Value: "/.git/config", Where: path, Want: tt.Attack},
	{Value: "/app/.git/HEAD", Where: path, Want: tt.Attack},
	{Value: "/WEB-INF/web.xml", Where: path, Want: tt.Attack},
	{Value: "/backup/.aws/credentials", Where: path, Want: tt.Attack},

	// Stream wrappers and file URLs.
	{Value: "file:///etc/passwd", Where: q, Want: tt.Attack},
	{Value: "FILE:///C:/Windows/win.ini", Where: q, Want: tt.Attack},
	{Value: "file://localhost/etc/hosts", Where: q, Want: tt.Attack},
	{Value: "file:/etc/shadow", Where: q, Want: tt.Attack},
	{Value: "php://filter/convert.base64-encode/resource=index.php", Where: q, Want: tt.Attack},
	{Value: "php://filter/read=string.rot13/resource=/etc/passwd", Where: q, Want: tt.Attack},
	{Value: "PHP://input", Where: q, Want: tt.Attack},
	{Value: "phar://uploads/avatar.jpg/shell.php", Where: q, Want: tt.Attack},
	{Value: "zip://uploads/x.zip#payload.php", Where: q, Want: tt.Attack},
	{Value: "compress.zlib:///etc/passwd", Where: q, Want: tt.Attack},
	{Value: "expect://id", Where: q, Want: tt.Attack},
	{Value: "data://text/plain;base64,PD9waHAgcGhwaW5mbygpOz8+", Where: q, Want: tt.Attack},
	{Value: "glob:///var/www/*", Where: q, Want: tt.Attack},
	{Value: "jar:file:/tmp/x.jar!/Exploit.class", Where: q, Want: tt.Attack},
	{Value: "netdoc:///etc/passwd", Where: q, Want: tt.Attack},

	// NUL truncation of an appended or checked extension.
	{Value: "config.php\x00.jpg", Where: q, Want: tt.Attack},
	{Value: "templates/admin\x00", Where: q, Want: tt.Attack},

	{Value: "/srv/app/public/../../proc/self/environ", Where: js, Want: tt.Attack},
	{Value: "/srv/www/../../../etc/group", Where: path, Want: tt.Attack},
	{Value: "/files/php://filter/read=convert.base64-encode/resource=config", Where: path, Want: tt.Attack},
	{Value: "..\\..\\/etc/passwd;x.html", Where: q, Want: tt.Attack},
	{Value: "\x00../\x00../\x00../etc/passwd", Where: q, Want: tt.Attack},
	{Value: "./\\/./.\\/.//etc/shadow", Where: q, Want: tt.Attack},
	{Value: "../../shop/app/etc/env.php", Where: q, Want: tt.Attack},

	// Near-misses: ordinary relative paths, URLs, prose, dates.
	{Value: "/proc/timer_list", Where: js, Want: tt.Weak},
	{Value: "/var/spool", Where: js, Want: tt.Benign},
	{Value: "etc/passwd", Where: q, Want: tt.Benign},
	{Value: "./docs/./guide.md", Where: q, Want: tt.None},
	{Value: "\xa4l\xc3sf\\\xe1p/\xa4\xfe.\x89\x19I5\x00\x00\x00\xff", Where: body, Want: tt.Benign},
	{Value: "docs/guide.md", Where: q, Want: tt.None},
	{Value: "images/2024/05/cat.jpg", Where: q, Want: tt.None},
	{Value: "/products/shoes/running", Where: q, Want: tt.None},
	{Value: "/account/settings?tab=security", Where: q, Want: tt.None},
	{Value: "https://example.com/path/to/page", Where: q, Want: tt.None},
	{Value: "https://cdn.example.org/assets/app.min.js", Where: q, Want: tt.None},
	{Value: "12/05/2024", Where: form, Want: tt.None},
	{Value: "a.b.c", Where: q, Want: tt.None},
	{Value: "Wait... what?", Where: form, Want: tt.None},
	{Value: "Loading.../", Where: form, Want: tt.None},
	{Value: "1..10", Where: q, Want: tt.None},
	{Value: "..", Where: q, Want: tt.None},
	{Value: "...", Where: form, Want: tt.None},
	{Value: "version 2.0...3.1", Where: form, Want: tt.None},
	{Value: "docs/a/../b.md", Where: q, Want: tt.Benign},
	{Value: "../images/logo.png", Where: form, Want: tt.Weak},
	{Value: "See [the guide](../docs/setup.md) for details", Where: form, Want: tt.Benign},
	{Value: "import Button from '../../components/Button'", Where: form, Want: tt.Benign},
	{Value: "How do I edit /etc/hosts on my Mac?", Where: form, Want: tt.Benign},
	{Value: "Never expose /etc/passwd or /etc/shadow to a web user.", Where: form, Want: tt.Benign},
	{Value: "Add your keys to the .env file and never commit it", Where: form, Want: tt.Benign},
	{Value: "/blog/how-to-protect-your-.env-file", Where: path, Want: tt.None},
	{Value: "/docs/etc/passwd-format", Where: path, Want: tt.None},
	{Value: "/etc/passwd", Where: path, Want: tt.Benign},
	{Value: "/wiki/Passwd", Where: path, Want: tt.None},
	{Value: "/static/css/site.css", Where: path, Want: tt.None},
	{Value: "C:\\Users\\anna\\Documents\\report.docx", Where: fn, Want: tt.None},
	{Value: "C:\\fakepath\\holiday.jpg", Where: form, Want: tt.None},
	{Value: "report-final.v2.pdf", Where: fn, Want: tt.None},
	{Value: "sam", Where: q, Want: tt.None},
	{Value: "shadow", Where: q, Want: tt.None},
	{Value: "passwd", Where: q, Want: tt.None},
	{Value: "environ", Where: q, Want: tt.None},
	{Value: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAA", Where: form, Want: tt.None},
	{Value: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36", Where: hdr, Want: tt.None},
	{Value: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", Where: hdr, Want: tt.None},
	{Value: "/home/users/profile", Where: q, Want: tt.None},
	{Value: "/var/www", Where: q, Want: tt.None},
	{Value: "/dev/null", Where: q, Want: tt.None},
	{Value: "src/etc/config.go", Where: q, Want: tt.None},
	{Value: "the .git directory holds history; .github holds workflows", Where: form, Want: tt.Benign},
	{Value: "my.environment.settings", Where: q, Want: tt.None},
	{Value: "\\\\fileserver\\projects\\q3.xlsx", Where: form, Want: tt.Weak},
	{Value: "file name with NUL\x00inside", Where: form, Want: tt.Benign},
	{Value: "en-US,en;q=0.9", Where: hdr, Want: tt.None},
	{Value: "PHP: Hypertext Preprocessor", Where: form, Want: tt.None},
	{Value: "zip: 94107", Where: form, Want: tt.None},
	{Value: "mailto:ops@example.com", Where: q, Want: tt.None},
}

func TestDetect(t *testing.T) { tt.Run(t, New(), cases) }

func TestEvidenceSpan(t *testing.T) {
	v := "x=1&f=../../../etc/passwd"
	f, ok := New().Detect(detect.Input{Value: v, Where: detect.WhereQuery})
	if !ok {
		t.Fatal("no finding")
	}
	if got := v[f.Start:f.End]; got != "../../../etc/passwd" {
		t.Errorf("evidence %q", got)
	}
}

// maxStepsPerByte bounds the work per input byte (the fuzz test's
// linear-time check): one pre-filter pass, one trim pass, tokenizing,
// walking and the bounded name comparisons.
const maxStepsPerByte = 12

func steps(in detect.Input) (detect.Finding, bool, int) {
	var s scan
	f, ok := s.run(in)
	return f, ok, s.steps
}

func TestStepsLinear(t *testing.T) {
	for _, unit := range []string{"../", "a/", "/etc/passwd ", "..\\..;/", "\xef\xbc\x8e", ".", " ", ".. ", "..      ", "file:///etc/passwd "} {
		v := strings.Repeat(unit, 20000)
		in := detect.Input{Value: v, Where: detect.WhereQuery}
		_, _, n := steps(in)
		if bound := tt.StepBound(len(v), maxStepsPerByte, 256); n > bound {
			t.Errorf("%q x 20000: %d steps > %d", unit, n, bound)
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
		f2, ok2 := d.Detect(in)
		if f2 != fd || ok2 != ok {
			t.Fatal("not deterministic")
		}
	})
}

var benignInputs = []detect.Input{
	{Value: "docs/guide.md", Where: q},
	{Value: "https://example.com/path/to/page?x=1", Where: q},
	{Value: "Hello, I would like to change my delivery address to 12 Main St.", Where: form},
	{Value: "42", Where: q},
	{Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Where: hdr},
	{Value: "/products/shoes/running", Where: path},
}

var attackInputs = []detect.Input{
	{Value: "../../../../etc/passwd", Where: q},
	{Value: "....//....//....//etc/hosts", Where: q},
	{Value: "php://filter/convert.base64-encode/resource=index.php", Where: q},
	{Value: "C:\\Windows\\win.ini", Where: q},
	{Value: "/proc/self/environ", Where: q},
	{Value: "..;/..;/WEB-INF/web.xml", Where: path},
}

func BenchmarkDetect(b *testing.B) {
	b.Run("benign", func(b *testing.B) { tt.Bench(b, New(), benignInputs) })
	b.Run("attack", func(b *testing.B) { tt.Bench(b, New(), attackInputs) })
}

// TestPathFormsAndPlacements (issue 15): dot-dot segments written with
// an invalid UTF-8 lead byte before '.', '/' or '\' (what %c0%2e and
// %c0%5c decode to) and the Windows best-fit reverse solidus U+2216 climb
// like the plain forms; the same bytes in text do not. In a request path,
// a segment that is a drive-letter path and an absolute path after an
// empty segment are judged like values, not as routes; in an upload's
// file name an absolute sensitive path is where the file is written.
func TestPathFormsAndPlacements(t *testing.T) {
	d := New()
	for _, c := range []tt.Case{
		{Value: "\xc0.\xc0.\\\xc0.\xc0.\\\xc0.\xc0.\\/etc/passwd", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "..\xc0\\..\xc0\\..\xc0\\..\xc0\\/etc/passwd", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "\xc0.\xc0.\xc0\\\xc0.\xc0.\xc0\\\xc0.\xc0.\xc0\\etc/shadow", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "\xc1.\xc1./\xc1.\xc1./etc/passwd", Where: detect.WhereForm, Want: tt.Attack},
		{Value: "..\u2216..\u2216..\u2216..\u2216/etc/passwd", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "\uff0e\uff0e\u2216\uff0e\uff0e\u2216\uff0e\uff0e\u2216boot.ini", Where: detect.WhereQuery, Want: tt.Attack},
		{Value: "A \u2216 B is the set difference", Where: detect.WhereForm, Want: tt.None},
		{Value: "\xc0.", Where: detect.WhereQuery, Want: tt.None},
		// A path segment that is a Windows absolute path: no route.
		{Value: "C:\\windows\\system32\\drivers\\etc\\hosts", Where: detect.WherePath, Name: "REQUEST_PATH:1", Want: tt.Attack},
		{Value: "C:/Windows/win.ini", Where: detect.WherePath, Name: "REQUEST_PATH:2", Want: tt.Attack},
		{Value: "/etc/passwd", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.Benign},
		// An empty segment, then an absolute path: what a wildcard
		// route hands the application.
		{Value: "/files//etc/shadow", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.Attack},
		{Value: "/page//proc/self/environ", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.Attack},
		{Value: "/proxy//var/log/apache2/access.log", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.Attack},
		{Value: "/blog//2024/05/hello", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.None},
		{Value: "//etc/passwd", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.Benign},
		{Value: "/cdn//assets/app.js", Where: detect.WherePath, Name: "REQUEST_FILENAME", Want: tt.None},
		// An upload's file name that is an absolute sensitive path.
		{Value: "/etc/passwd", Where: detect.WhereFileName, Want: tt.Attack},
		{Value: "/etc/cron.d/job", Where: detect.WhereFileName, Want: tt.Attack},
		{Value: "holiday photo.jpg", Where: detect.WhereFileName, Want: tt.None},
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
