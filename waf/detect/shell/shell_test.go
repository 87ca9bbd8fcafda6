package shell

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/portcullis-waf/portcullis/waf/decode"
	"github.com/portcullis-waf/portcullis/waf/detect"
)

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

const threshold = 60

func TestTables(t *testing.T) {
	d := New()
	attacks := readLines(t, "testdata/attacks.txt")
	benign := readLines(t, "testdata/benign.txt")
	for _, v := range attacks {
		f, ok := detectVariants(d, v, detect.WhereQuery)
		if !ok || f.Confidence < threshold {
			t.Errorf("missed attack: %q (finding %+v)", v, f)
		}
	}
	for _, v := range benign {
		if f, ok := detectVariants(d, v, detect.WhereQuery); ok && f.Confidence >= threshold {
			t.Errorf("false positive: %q: %+v", v, f)
		}
	}
	t.Logf("tables: %d attacks, %d benign", len(attacks), len(benign))
}

func TestFindingShape(t *testing.T) {
	d := New()
	tests := []struct {
		v, evidence, reason string
	}{
		{"127.0.0.1; cat /etc/passwd", "cat /etc/passwd", "unquoted argument: command after a separator runs cat on a sensitive path"},
		{"x$(sleep 5)", "sleep 5", "unquoted argument: command substitution runs sleep"},
		{"c'a't /et'c/pa'ss'wd", "c'a't /et'c/pa'ss'wd", "command line: obfuscated cat on a sensitive path"},
	}
	for _, tt := range tests {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: detect.WhereQuery})
		if !ok {
			t.Fatalf("%q: no finding", tt.v)
		}
		if f.Class != detect.Shell || f.Detector != "shell" || f.Reason != tt.reason {
			t.Errorf("%q: %+v, want reason %q", tt.v, f, tt.reason)
		}
		if got := detect.Evidence(tt.v, f, 200); got != tt.evidence {
			t.Errorf("%q: evidence %q, want %q", tt.v, got, tt.evidence)
		}
	}
}

func TestPrefilter(t *testing.T) {
	for v, want := range map[string]bool{
		"hello": false, "The quick brown fox": false, "zsh": false, "catalog of items": false,
		"; id": true, "$(id)": true, "Tom & Jerry": false, "zsh is the best!": false, "ls 300 lexus": false,
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0": false, "cat /etc/passwd": true, "/???/c?t": true, "c'a't x": true,
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
	f.Add(strings.Repeat("$(", 200))
	f.Add(strings.Repeat("{a,", 100))
	f.Add("cat <<EOF\nx\nEOF")
	d := New()
	f.Fuzz(func(t *testing.T, v string) {
		fd, ok, steps := d.run(detect.Input{Value: v, Where: detect.WhereQuery})
		// Linear work in the analyzer: four placements, each visiting
		// an AST node or word part a bounded number of times.
		if max := 4 * (16*len(v) + 64); steps > max {
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
		{"cmdword_prose", "zsh is the best!"},
		{"ampersand", "Tom & Jerry"},
		{"useragent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"},
		{"attack_sep", "127.0.0.1; cat /etc/passwd"},
		{"attack_obfuscated", "c'a't /et'c/pa'ss'wd"},
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

// TestDocumentShapes: markdown code fences and usage synopses in posts
// are documents, not command lines (issue 15's forum and search false
// positives); the same commands injected still count.
func TestDocumentShapes(t *testing.T) {
	d := New()
	for _, tt := range []struct {
		v      string
		attack bool
	}{
		{"Reproducer:\n\nkill [-s sigspec | -n signum | -sigspec] [pid | jobspec] ...\n\nDanke!", false},
		{"usage:\ntar [-c | -x] [-f archive] [file ...]", false},
		{"For anyone finding this later, the fix was to wait for the data before notifying, like this:\n\n```sh\n#!/bin/sh\nmkfifo /tmp/waldo\nsystemd-notify --ready --status=\"Waiting\"\n```\n\nMost calls are unspecified while an exception is pending, so do as little as possible and then return.", false},
		{"## Install\n\n```bash\nnpm install --save portcullis\n```", false},
		{"```bash\n# /etc/crontab: system-wide crontab\n```", false},
		{"x; cat /etc/pass[w]d", true},
		{"hello `cat /etc/passwd`", true},
		{"a ```; cat /etc/passwd", true},
	} {
		f, ok := d.Detect(detect.Input{Value: tt.v, Where: detect.WhereJSON})
		if got := ok && f.Confidence >= 70; got != tt.attack {
			t.Errorf("%q: %+v %v, want attack=%v", tt.v, f, ok, tt.attack)
		}
	}
}
