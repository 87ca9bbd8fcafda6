package xss

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/corazawaf/libinjection-go"
	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
)

// detectVariants runs d over every decoding of v, as the waf stage does,
// and returns the strongest finding.
func detectVariants(d detect.Detector, v string, w detect.Where) (detect.Finding, bool) {
	var best detect.Finding
	found := false
	for _, x := range decode.New(decode.Limits{}).Variants(v) {
		if f, ok := d.Detect(detect.Input{Value: x.Value, Where: w}); ok && f.Confidence > best.Confidence {
			best, found = f, true
		}
	}
	return best, found
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "# ") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return out
}

const threshold = 60

func TestTables(t *testing.T) {
	d := New()
	attacks := readLines(t, "testdata/attacks.txt")
	benign := readLines(t, "testdata/benign.txt")
	libTP, libFP := 0, 0
	for _, v := range attacks {
		f, ok := detectVariants(d, v, detect.WhereQuery)
		if !ok || f.Confidence < threshold {
			t.Errorf("missed attack: %q (finding %+v)", v, f)
		}
		if libinjection.IsXSS(v) {
			libTP++
		}
	}
	for _, v := range benign {
		if f, ok := detectVariants(d, v, detect.WhereQuery); ok && f.Confidence >= threshold {
			t.Errorf("false positive: %q: %+v", v, f)
		}
		if libinjection.IsXSS(v) {
			libFP++
			t.Logf("libinjection false positive: %q", v)
		}
	}
	t.Logf("tables: %d attacks, %d benign; libinjection alone: %d/%d attacks, %d/%d benign flagged",
		len(attacks), len(benign), libTP, len(attacks), libFP, len(benign))
}

func TestFindingShape(t *testing.T) {
	d := New()
	tests := []struct {
		v, detector, evidence string
	}{
		{"hello <img src=x onerror=alert(1)> there", "xss/html", "<img src=x onerror=alert(1)>"},
		{`" onmouseover=alert(1) x="`, "xss/html", `" onmouseover=alert(1) x="`},
		{"';alert(1);//", "xss/js", "alert(1)"},
		{"x=1;(alert)(1)", "xss/js", "(alert)(1)"},
		{"javascript:alert(1)", "xss/url", "javascript:alert(1)"},
	}
	for _, tt := range tests {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: detect.WhereQuery})
		if !ok {
			t.Fatalf("%q: no finding", tt.v)
		}
		if f.Class != detect.XSS || f.Detector != tt.detector {
			t.Errorf("%q: %+v, want detector %s", tt.v, f, tt.detector)
		}
		if got := detect.Evidence(tt.v, f, 200); got != tt.evidence {
			t.Errorf("%q: evidence %q, want %q (%+v)", tt.v, got, tt.evidence, f)
		}
	}
}

func TestPrefilter(t *testing.T) {
	for v, want := range map[string]bool{
		"hello": false, "The quick brown fox": false, "Tom & Jerry": false, "100%": false,
		"<b>": true, "alert(1)": true, "javascript:x": true, `" onclick=x`: true,
	} {
		if got := Prefilter(v); got != want {
			t.Errorf("Prefilter(%q) = %v, want %v", v, got, want)
		}
	}
}

func FuzzDetect(f *testing.F) {
	for _, v := range readLines(f, "testdata/attacks.txt") {
		f.Add(v)
	}
	for _, v := range readLines(f, "testdata/benign.txt") {
		f.Add(v)
	}
	f.Add(strings.Repeat("(", 300) + "alert(1)")
	f.Add(strings.Repeat("[", 300) + "'a'")
	f.Add(strings.Repeat("<a ", 300))
	d := New()
	f.Fuzz(func(t *testing.T, v string) {
		fd, ok, steps := d.run(detect.Input{Value: v, Where: detect.WhereQuery})
		// Linear work: every path looks at each byte a bounded number of
		// times (contexts, breakout wrappers, nested documents).
		if max := 32*len(v) + 256; steps > max {
			t.Fatalf("%d steps for %d bytes (bound %d)", steps, len(v), max)
		}
		if !ok {
			return
		}
		if fd.Confidence < 1 || fd.Confidence > 100 {
			t.Fatalf("confidence %d", fd.Confidence)
		}
		if fd.Start < 0 || fd.End < fd.Start || fd.End > len(v) {
			t.Fatalf("span [%d,%d) outside %d bytes", fd.Start, fd.End, len(v))
		}
	})
}

func BenchmarkDetect(b *testing.B) {
	d := New()
	for _, c := range []struct{ name, v string }{
		{"word", "hello"},
		{"sentence", "The quick brown fox jumps over the lazy dog"},
		{"useragent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
		{"richtext", `<p>See <a href="https://example.com/docs">the docs</a> and <img src="https://example.com/c.jpg" alt="cat"></p>`},
		{"attack_tag", "<img src=x onerror=alert(1)>"},
		{"attack_js", "';alert(document.cookie);//"},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := detect.Input{Value: c.v, Where: detect.WhereQuery}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				d.Detect(in)
			}
		})
	}
}
