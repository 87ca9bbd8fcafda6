package detect_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/corazawaf/libinjection-go"
	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
	"github.com/portcullis-waf/portcullis/waf/detect/shell"
	"github.com/portcullis-waf/portcullis/waf/detect/sqli"
	"github.com/portcullis-waf/portcullis/waf/detect/xss"
)

// values a request carries: mostly words, ids, headers and prose.
var benignValues = []string{
	"hello", "42", "en-US,en;q=0.9", "gzip, deflate, br", "keep-alive",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
	"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "550e8400-e29b-41d4-a716-446655440000",
	"john.o'neil@example.com", "It's O'Brien's dog, isn't it?", "The quick brown fox jumps over the lazy dog.",
	"zsh is the best!", "Tom & Jerry", "union was a great select", "JavaScript: The Good Parts",
	`<p>See <a href="https://example.com/docs">the docs</a></p>`, "session=abc123; theme=dark",
}

var attackValues = []string{
	"' UNION SELECT username, password FROM users--", "1 AND SLEEP(5)", "<img src=x onerror=alert(1)>",
	"';alert(document.cookie);//", "127.0.0.1; cat /etc/passwd", "c'a't /et'c/pa'ss'wd",
	"%27%20OR%201%3D1--", base64.StdEncoding.EncodeToString([]byte("<svg/onload=alert(1)>")),
}

// run is what the waf stage does per value: decode, then every detector
// on every variant.
func run(dec *decode.Decoder, dets []detect.Detector, buf []decode.Variant, v string) ([]decode.Variant, int) {
	n := 0
	buf = dec.Append(buf[:0], v)
	for _, x := range buf {
		for _, d := range dets {
			if _, ok := d.Detect(detect.Input{Value: x.Value, Where: detect.WhereQuery}); ok {
				n++
			}
		}
	}
	return buf, n
}

// TestPipelineSeparates is the smoke test of the whole path: the attacks
// above are found through their encodings, the benign values are not.
func TestPipelineSeparates(t *testing.T) {
	dec := decode.New(decode.Limits{})
	dets := []detect.Detector{sqli.New(), xss.New(), shell.New()}
	var buf []decode.Variant
	for _, v := range attackValues {
		found := false
		buf = dec.Append(buf[:0], v)
		for _, x := range buf {
			for _, d := range dets {
				if f, ok := d.Detect(detect.Input{Value: x.Value, Where: detect.WhereQuery}); ok && f.Confidence >= 60 {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("attack %q not found", v)
		}
	}
	for _, v := range benignValues {
		buf = dec.Append(buf[:0], v)
		for _, x := range buf {
			for _, d := range dets {
				if f, ok := d.Detect(detect.Input{Value: x.Value, Where: detect.WhereQuery}); ok && f.Confidence >= 60 {
					t.Errorf("benign %q: %+v", v, f)
				}
			}
		}
	}
}

// BenchmarkPipeline measures decode + the three detectors per value,
// beside the baseline of libinjection's SQLi and XSS checks (what the
// CRS's @detectSQLi/@detectXSS cost) on the same values in the same run:
// compare ns/op of the pairs.
func BenchmarkPipeline(b *testing.B) {
	dec := decode.New(decode.Limits{})
	dets := []detect.Detector{sqli.New(), xss.New(), shell.New()}
	for _, set := range []struct {
		name string
		vals []string
	}{{"benign", benignValues}, {"attack", attackValues}} {
		b.Run(set.name+"/detectors", func(b *testing.B) {
			buf := make([]decode.Variant, 0, 16)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf, _ = run(dec, dets, buf, set.vals[i%len(set.vals)])
			}
		})
		b.Run(set.name+"/libinjection-baseline", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				v := set.vals[i%len(set.vals)]
				libinjection.IsSQLi(v)
				libinjection.IsXSS(v)
			}
		})
	}
}

// TestCommonValuesDoNotAllocate: words, prose, user agents and names are
// most of what a request carries; judging them must not allocate (the
// pre-filters and the SQL lexer work on the stack).
func TestCommonValuesDoNotAllocate(t *testing.T) {
	dets := []detect.Detector{sqli.New(), xss.New(), shell.New()}
	for _, v := range []string{
		"hello", "42", "The quick brown fox jumps over the lazy dog.", "zsh is the best!", "Tom & Jerry",
		"It's O'Brien's dog, isn't it?", "union was a great select", "en-US,en;q=0.9",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
	} {
		for _, d := range dets {
			in := detect.Input{Value: v, Where: detect.WhereQuery}
			if n := testing.AllocsPerRun(50, func() { d.Detect(in) }); n != 0 {
				t.Errorf("%s on %q: %v allocations per call", d.Class(), v, n)
			}
		}
	}
}

// TestIssue15Examples holds the examples issue 15 names: the misses to
// fix and the false positives to avoid, through the decoder as the stage
// will run them.
func TestIssue15Examples(t *testing.T) {
	dec := decode.New(decode.Limits{})
	dets := []detect.Detector{sqli.New(), xss.New(), shell.New()}
	best := func(v string, w detect.Where) (detect.Finding, string) {
		var b detect.Finding
		chain := ""
		for _, x := range dec.Variants(v) {
			for _, d := range dets {
				if f, ok := d.Detect(detect.Input{Value: x.Value, Where: w}); ok && f.Confidence > b.Confidence {
					b, chain = f, x.Chain.String()
				}
			}
		}
		return b, chain
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		v     string
		where detect.Where
		class detect.Class
		chain string
	}{
		{"confirm.call(null,1)", detect.WhereQuery, detect.XSS, ""},
		{"(alert)(1)", detect.WhereQuery, detect.XSS, ""},
		{"alert?.(document.cookie)", detect.WhereQuery, detect.XSS, ""},
		{"cat /et'c/pa'ss'wd", detect.WhereQuery, detect.Shell, ""},
		{"' OR 1=1--", detect.WhereHeader, detect.SQLi, ""},
		{"1 AND SLEEP(5)", detect.WhereHeader, detect.SQLi, ""},
		{b64("' UNION SELECT password FROM users--"), detect.WhereCookie, detect.SQLi, "base64"},
		{b64("<img src=x onerror=alert(1)>"), detect.WhereQuery, detect.XSS, "base64"},
		{b64("; cat /etc/passwd"), detect.WhereQuery, detect.Shell, "base64"},
	} {
		f, chain := best(tt.v, tt.where)
		if f.Confidence < 60 || f.Class != tt.class || chain != tt.chain {
			t.Errorf("%q: %+v via %q, want %s at 60+ via %q", tt.v, f, chain, tt.class, tt.chain)
		}
	}
	for _, v := range []string{
		`{"user":{"name":"Ann","tags":["a","b"]},"ids":[1,2,3],"active":true}`, // 942550
		"zsh is the best!", "ls 300 lexus", // 932xxx
		"union was a great select", "george.orwell@example.com", "orlando.or@example.org", // 942190/942100
		"JavaScript: The Good Parts", // 941210
	} {
		if f, _ := best(v, detect.WhereQuery); f.Confidence >= 60 {
			t.Errorf("benign %q: %+v", v, f)
		}
	}
}

// TestPaddedAttacks: padding an attack past a detector's length bound
// does not hide it (the tail window is judged too).
func TestPaddedAttacks(t *testing.T) {
	pad := strings.Repeat("lorem ipsum ", 2000) // 24 KB, past every MaxLen
	for _, tt := range []struct {
		d detect.Detector
		v string
	}{
		{sqli.New(), pad + "x' UNION SELECT password FROM users--"},
		{xss.New(), pad + "<img src=x onerror=alert(1)>"},
		{shell.New(), pad + "; cat /etc/passwd"},
	} {
		f, ok := tt.d.Detect(detect.Input{Value: tt.v, Where: detect.WhereQuery})
		if !ok || f.Confidence < 60 || f.Start < len(pad)-2 || f.End > len(tt.v) {
			t.Errorf("%s: padded attack: %+v %v", tt.d.Class(), f, ok)
		}
	}
}
