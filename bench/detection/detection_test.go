package main

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testTexts is a small text pool, so the generators run without the
// Debian packages the real corpus reads.
func testTexts() *Texts {
	return &Texts{
		Prose: map[string][]string{
			"en": {"The union of two sets is a set. Select the files you want to copy, then press Enter.", "Use the --force option only when you know what it does; it overwrites files."},
			"de": {"Dieses Programm kopiert Dateien. Es überschreibt keine vorhandenen Dateien, außer mit --force."},
			"ja": {"このプログラムはファイルをコピーします。"},
		},
		Code: map[string][]string{
			"sql":   {"SELECT name FROM users WHERE id = 1;"},
			"shell": {"find . -name '*.c' | xargs grep -l main"},
			"js":    {"const x = await fetch('/api');"},
			"html":  {"<div class=\"note\">Hello</div>"},
			"c":     {"#include <stdio.h>\nint main(void) { return 0; }"},
		},
		Titles:   []string{"cp - copy files and directories", "JavaScript: modules"},
		Markdown: []string{"## Usage\n\nRun `npm test`.\n\n```js\nconsole.log(1)\n```\n"},
		Words:    map[string][]string{"en": {"copy", "files", "union", "select"}, "de": {"Dateien", "kopiert"}},
		Names:    []string{"Sean", "Ann"},
	}
}

func TestGeneratorsAreDeterministic(t *testing.T) {
	for _, c := range classes {
		a, b := genAttacks(c, 40, 7), genAttacks(c, 40, 7)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs with the same seed differ", c)
		}
		if d := genAttacks(c, 40, 8); reflect.DeepEqual(a, d) {
			t.Errorf("%s: the seed changes nothing", c)
		}
	}
	tx := testTexts()
	a, b := genBenign(tx, 0.01, 3), genBenign(tx, 0.01, 3)
	if !reflect.DeepEqual(a, b) {
		t.Error("benign: two runs with the same seed differ")
	}
}

func TestAttackLabelsAreWellFormed(t *testing.T) {
	known := map[string]bool{}
	for _, p := range placements {
		known[p] = true
	}
	for _, c := range classes {
		items := genAttacks(c, 200, 11)
		if len(items) < 150 {
			t.Errorf("%s: only %d attacks generated of 200", c, len(items))
		}
		seen := map[string]bool{}
		for _, it := range items {
			if it.Class != c || it.Set != setAttack || it.Source != "gen" {
				t.Errorf("%s: bad labels %+v", c, it)
			}
			if !known[it.Placement] || !slices.Contains(classPlacements[c], it.Placement) && !(c == "nosql" && it.Placement == "json") {
				t.Errorf("%s: placement %q not allowed for the class", c, it.Placement)
			}
			if it.Encoding == "" || it.Payload == "" {
				t.Errorf("%s: empty encoding or payload: %+v", c, it)
			}
			enc := strings.Split(it.Encoding, "+")
			transport := enc[len(enc)-1]
			if transport != "none" && !slices.Contains(placementEncodings[it.Placement], transport) && !strings.Contains(it.Encoding, "base64") {
				// the last part is the application decoding or an obfuscation
				if !slices.Contains([]string{"case", "comment", "whitespace", "quote_split", "nesting", "html_entity", "js_escape", "hex_escape", "glob",
					"base64_inline", "equaltolike", "null_byte", "url_in_value", "overlong_utf8", "unicode_crlf", "ip_obfuscation"}, transport) {
					t.Errorf("%s: encoding %q unknown for placement %s", c, it.Encoding, it.Placement)
				}
			}
			if it.Evasion != (it.Encoding != "none" || (it.Placement != "query" && it.Placement != "form")) {
				t.Errorf("%s: evasion flag wrong for %s/%s", c, it.Placement, it.Encoding)
			}
			r, err := it.Request()
			if err != nil {
				t.Errorf("%s: %v", c, err)
				continue
			}
			if r.Method != it.Method {
				t.Errorf("%s: method %s parsed as %s", c, it.Method, r.Method)
			}
			seen[it.Placement] = true
		}
		if len(seen) < 4 {
			t.Errorf("%s: only placements %v", c, seen)
		}
	}
}

func TestBenignLabelsAreWellFormed(t *testing.T) {
	items := genBenign(testTexts(), 0.02, 5)
	kinds := map[string]int{}
	for _, it := range items {
		kinds[it.Kind]++
		if it.Set != setBenign || it.Class != "" || it.Source == "" {
			t.Errorf("bad labels: %+v", it)
		}
		r, err := it.Request()
		if err != nil {
			t.Errorf("%s: %v", it.Kind, err)
			continue
		}
		if it.Chunked && r.ContentLength != -1 {
			t.Errorf("%s: chunked item has a Content-Length", it.Kind)
		}
		if r.Host == "" {
			t.Errorf("%s: no Host", it.Kind)
		}
	}
	for _, k := range benignKinds {
		if kinds[k.kind] == 0 {
			t.Errorf("kind %s generated nothing", k.kind)
		}
	}
}

func TestSplitIsStableAndBalanced(t *testing.T) {
	items := genAttacks("sqli", 1000, 3)
	held := 0
	for _, it := range items {
		h := it.Heldout()
		if h != it.Heldout() {
			t.Fatal("Heldout is not deterministic")
		}
		relabelled := it
		relabelled.Class, relabelled.ID = "xss", "other"
		if relabelled.Heldout() != h {
			t.Fatal("labels move an item between parts")
		}
		if h {
			held++
		}
	}
	if held < 420 || held > 580 {
		t.Errorf("held-out part is %d of 1000", held)
	}
	part := selectPart(items, "heldout", 100)
	if len(part) < 90 || len(part) > 110 {
		t.Errorf("sample of 100 has %d items", len(part))
	}
	for _, it := range part {
		if !it.Heldout() {
			t.Fatal("tuning item in the held-out sample")
		}
	}
}

func TestEncodings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A\u2262\u0391.", "A+ImIDkQ-."}, // RFC 2152's example, with the optional "-"
		{"Hi Mom -\u263a-", "Hi Mom -+Jjo--"},
		{"1+1", "1+-1"},
		{"<b>", "+ADw-b+AD4-"},
	} {
		if got := utf7(tc.in); got != tc.want {
			t.Errorf("utf7(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := pctU("a'b"); got != "a%u0027b" {
		t.Errorf("pctU = %q", got)
	}
	if got := pctAll("a b"); got != "%61%20%62" {
		t.Errorf("pctAll = %q", got)
	}
}

func TestRoffText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`\fBls\fR \-la`, "ls -la"},
		{`don\(aqt \(lqquote\(rq`, "don't “quote”"},
		{`a\e b\&.`, `a\ b.`},
	} {
		if got := roffText(tc.in); got != tc.want {
			t.Errorf("roffText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestExternalSources reads the Debian packages' data when they are
// installed (they are in CI: .ci/run installs them).
func TestExternalSources(t *testing.T) {
	if _, err := os.Stat(wfuzzDir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("wfuzz word lists missing: %v", err)
		}
		t.Skip("wfuzz is not installed (apt-get install wfuzz)")
	}
	w, err := wfuzzAttacks(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) < 300 {
		t.Errorf("only %d wfuzz attacks", len(w))
	}
	for _, it := range w {
		if strings.TrimSpace(it.Payload) == "'" || strings.EqualFold(strings.TrimSpace(it.Payload), "select") {
			t.Errorf("a bare probe was kept as an attack: %q", it.Payload)
		}
	}
	if _, err := os.Stat(sqlmapXMLDir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("sqlmap payloads missing: %v", err)
		}
		t.Skip("sqlmap is not installed")
	}
	s, err := sqlmapAttacks(200, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range s {
		if strings.Contains(it.Payload, "[") && strings.Contains(it.Payload, "RANDNUM") {
			t.Errorf("unexpanded template: %q", it.Payload)
		}
	}
	c, err := crsAttacks()
	if err != nil {
		t.Fatal(err)
	}
	if len(c) < 500 {
		t.Errorf("only %d CRS attacks", len(c))
	}
}

// readCaptured must give back what Item.Raw wrote: header order, body,
// chunked framing.
func TestReadCapturedRoundTrip(t *testing.T) {
	items := genBenign(testTexts(), 0.002, 9)
	items = append(items, genAttacks("xxe", 20, 1)...)
	for _, it := range items {
		raw, err := it.Raw()
		if err != nil {
			t.Fatal(err)
		}
		c, err := readCaptured(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("%s: %v", it.Kind, err)
		}
		body, _ := it.BodyBytes()
		if c.method != it.Method || c.target != it.Target || !bytes.Equal(c.body, body) || c.chunked != it.Chunked {
			t.Errorf("%s %s: read back %s %s chunked=%v, %d body bytes", it.Method, it.Target, c.method, c.target, c.chunked, len(c.body))
		}
		for i, h := range it.Headers {
			if i >= len(c.headers) || c.headers[i] != h {
				t.Errorf("%s: header %d is %v, sent %v", it.Target, i, c.headers[min(i, len(c.headers)-1)], h)
				break
			}
		}
	}
	for _, bad := range []string{"GET /\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"} {
		if _, err := readCaptured(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzReadCaptured(f *testing.F) {
	for _, it := range genAttacks("crlf", 5, 2) {
		raw, _ := it.Raw()
		f.Add(raw)
	}
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := readCaptured(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && len(c.body) > len(b) {
			t.Fatalf("body of %d bytes from %d input bytes", len(c.body), len(b))
		}
	})
}
