package sqli

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

// threshold is the confidence a default verdict would block at.
const threshold = 60

// TestTables: every attack is found at or above the threshold, no benign
// value is. It also logs libinjection's result on the same tables (the
// baseline this detector must beat).
func TestTables(t *testing.T) {
	d := New()
	attacks := readLines(t, "testdata/attacks.txt")
	benign := readLines(t, "testdata/benign.txt")
	libTP, libFP := 0, 0
	for _, v := range attacks {
		for _, w := range []detect.Where{detect.WhereQuery, detect.WhereHeader} {
			f, ok := detectVariants(d, v, w)
			if !ok || f.Confidence < threshold {
				t.Errorf("missed attack (%s): %q (finding %+v)", w, v, f)
			}
		}
		if ok, _ := libinjection.IsSQLi(v); ok {
			libTP++
		}
	}
	for _, v := range benign {
		if f, ok := detectVariants(d, v, detect.WhereQuery); ok && f.Confidence >= threshold {
			t.Errorf("false positive: %q: %+v", v, f)
		}
		if ok, fp := libinjection.IsSQLi(v); ok {
			libFP++
			t.Logf("libinjection false positive: %q (%s)", v, fp)
		}
	}
	t.Logf("tables: %d attacks, %d benign; libinjection alone: %d/%d attacks, %d/%d benign flagged",
		len(attacks), len(benign), libTP, len(attacks), libFP, len(benign))
}

func TestFindingShape(t *testing.T) {
	d := New()
	tests := []struct {
		v      string
		reason string
		start  int
	}{
		{"admin' OR 1=1--", "single-quoted string context: tautology", 5},
		{"1 UNION SELECT 1,2", "number context: UNION SELECT", 0},
		{`x" OR "a"="a`, "double-quoted string context: tautology", 1},
	}
	for _, tt := range tests {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: detect.WhereQuery, Name: "ARGS:q"})
		if !ok {
			t.Fatalf("%q: no finding", tt.v)
		}
		if f.Class != detect.SQLi || f.Detector != "sqli" || f.Reason != tt.reason || f.Start != tt.start || f.End != len(tt.v) {
			t.Errorf("%q: %+v, want reason %q span [%d,%d)", tt.v, f, tt.reason, tt.start, len(tt.v))
		}
	}
}

func TestPrefilter(t *testing.T) {
	for v, want := range map[string]bool{
		"hello": false, "Tom or Jerry": false, "union was a great select": false,
		"it's": true, "1=1": true, "a(b)": true,
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
	f.Add(strings.Repeat("(", 200) + "1")
	f.Add(strings.Repeat("'", 500))
	d := New()
	f.Fuzz(func(t *testing.T, v string) {
		fd, ok, steps := d.run(detect.Input{Value: v, Where: detect.WhereQuery})
		// Linear work: ten passes at most (five contexts, two lexing
		// modes), each inspecting a token a bounded number of times.
		if max := 10 * (8*len(v) + 32); steps > max {
			t.Fatalf("%d token inspections for %d bytes (bound %d)", steps, len(v), max)
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
		{"apostrophe", "It's O'Brien's dog, isn't it?"},
		{"useragent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
		{"attack_union", "' UNION SELECT username, password FROM users--"},
		{"attack_blind", "1 AND SLEEP(5)"},
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

func BenchmarkLibinjection(b *testing.B) {
	for _, c := range []struct{ name, v string }{
		{"word", "hello"},
		{"sentence", "The quick brown fox jumps over the lazy dog"},
		{"attack_union", "' UNION SELECT username, password FROM users--"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				libinjection.IsSQLi(c.v)
			}
		})
	}
}
