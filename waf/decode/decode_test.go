package decode

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// find returns the chain of the variant equal to want, or ok false.
func find(vs []Variant, want string) (string, bool) {
	for _, v := range vs {
		if v.Value == want {
			return v.Chain.String(), true
		}
	}
	return "", false
}

func TestVariantsDecode(t *testing.T) {
	d := New(Limits{})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	b64u := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		raw, want, chain string
	}{
		{"%27%20OR%201%3D1--", "' OR 1=1--", "url"},
		{"%2527%2520OR%25201%253D1", "' OR 1=1", "url → url"},
		{"1%27+OR+1%3D1", "1' OR 1=1", "url"},
		{"%u003cscript%u003e", "<script>", "url_u"},
		{"24'union+all+select+1,2,3", "24'union all select 1,2,3", "url"},
		{"%uD83D%uDE00", "\U0001F600", "url_u"},
		{b64("' UNION SELECT password FROM users--"), "' UNION SELECT password FROM users--", "base64"},
		{strings.TrimRight(b64("<script>alert(1)</script>"), "="), "<script>alert(1)</script>", "base64"},
		{b64u("<svg/onload=alert(1)>?>"), "<svg/onload=alert(1)>?>", "base64"},
		{b64("%3Cscript%3Ealert(1)%3C%2Fscript%3E"), "<script>alert(1)</script>", "base64 → url"},
		{"&lt;script&gt;", "<script>", "html"},
		{"&#x6a;&#x61;&#x76;&#x61;script:alert(1)", "javascript:alert(1)", "html"},
		{"&#106&#97&#118&#97script&colon;", "javascript:", "html"},
		{"&#0000106avascript", "javascript", "html"},
		{`\u003cimg src=x onerror=alert(1)\u003e`, "<img src=x onerror=alert(1)>", "js_escape"},
		{`\x3cscript\x3e`, "<script>", "js_escape"},
		{`\74script\76`, "<script>", "js_escape"},
		{`\u{61}lert(1)`, "alert(1)", "js_escape"},
		{`\' OR 1=1 --`, "' OR 1=1 --", "js_escape"},
		{"+ADw-script+AD4-alert(1)+ADw-/script+AD4-", "<script>alert(1)</script>", "utf7"},
		{`{"q":"' OR '1'='1"}`, "' OR '1'='1", "json"},
		{`[1,{"a":{"$where":"sleep(1)"}}]`, "$where", "json"},
		{`{"q":"%27%20OR%201%3D1"}`, "' OR 1=1", "json → url"},
		{"eyJhbGciOiJub25lIn0." + b64u(`{"sub":"' OR 1=1--"}`) + ".", `{"sub":"' OR 1=1--"}`, "jwt"},
		{"Bearer eyJhbGciOiJub25lIn0." + b64u(`{"sub":"' OR 1=1--"}`) + ".sig", "' OR 1=1--", "jwt → json"},
	}
	for _, tt := range tests {
		vs := d.Variants(tt.raw)
		if vs[0].Value != tt.raw || vs[0].Chain.Len() != 0 {
			t.Errorf("%q: first variant %q/%q, want the raw value", tt.raw, vs[0].Value, vs[0].Chain)
		}
		chain, ok := find(vs, tt.want)
		if !ok {
			t.Errorf("%q: no variant %q; got %+v", tt.raw, tt.want, vs)
			continue
		}
		if chain != tt.chain {
			t.Errorf("%q: chain %q, want %q", tt.raw, chain, tt.chain)
		}
	}
}

// TestPlainValuesDoNotDecode: words, ids, prose and numbers are their own
// only variant — decoding ordinary text would cost time and invent
// findings.
func TestPlainValuesDoNotDecode(t *testing.T) {
	d := New(Limits{})
	for _, raw := range []string{
		"hello", "internationalization", "Administrator", "HelloWorldFooBar",
		"5f2b3c4d5e6f7a8b9c0d1e2f", "550e8400-e29b-41d4-a716-446655440000",
		"C++", "1+1=2 is true", "Hello World+", "100%", "50% off", "Tom & Jerry",
		"AT&T", "C:\\Users\\me", "The quick brown fox jumps over the lazy dog",
		"john.doe@example.com", "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>", "2026-12-05T19:48:24Z", "QWERTYuiopASDFGH", // last: letters only, decodes to binary
	} {
		vs := d.Variants(raw)
		if len(vs) != 1 {
			t.Errorf("%q: %d variants %+v, want only the raw value", raw, len(vs), vs)
		}
	}
}

func TestPlainValueAllocatesNothing(t *testing.T) {
	d := New(Limits{})
	dst := make([]Variant, 0, 16)
	for _, raw := range []string{"hello", "The quick brown fox", "internationalization", "QWERTYuiopASDFGHjklZXCVB", "100%", "Tom & Jerry"} {
		allocs := testing.AllocsPerRun(100, func() { dst = d.Append(dst[:0], raw) })
		if allocs != 0 {
			t.Errorf("%q: %v allocations per call, want 0", raw, allocs)
		}
	}
}

func TestLimits(t *testing.T) {
	d := New(Limits{})
	// Deep nesting: URL-encoding applied many times stops at MaxDepth.
	v := "<script>"
	for i := 0; i < 10; i++ {
		v = strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(v, "%", "%25"), "<", "%3C"), ">", "%3E")
	}
	for _, x := range d.Variants(v) {
		if x.Chain.Len() > MaxDepth {
			t.Fatalf("chain %q deeper than %d", x.Chain, MaxDepth)
		}
	}
	// Many JSON strings: variants capped, bytes bounded.
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 1000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"value number ` + strings.Repeat("x", i%7) + `"`)
	}
	b.WriteString("]")
	vs := d.Variants(b.String())
	if len(vs) > d.Limits().MaxVariants {
		t.Fatalf("%d variants, cap %d", len(vs), d.Limits().MaxVariants)
	}
	total := 0
	for _, x := range vs[1:] {
		total += len(x.Value)
	}
	if max := 4*b.Len() + 256; total > max {
		t.Fatalf("decoded %d bytes, budget %d", total, max)
	}
	// Duplicates: "%41" and "&#65;" both decode; each distinct value once.
	vs = d.Variants("%2541")
	seen := map[string]bool{}
	for _, x := range vs {
		if seen[x.Value] {
			t.Fatalf("duplicate variant %q in %+v", x.Value, vs)
		}
		seen[x.Value] = true
	}
}

func TestWalker(t *testing.T) {
	doc := `{"user":{"name":"O'Brien","tags":["a","b\u0027c"],"age":42,"ok":true,"n":null},"x\"y":-1.5e3}`
	type item struct {
		path, val string
		kind      ValueKind
	}
	var got []item
	err := Walker{}.Walk(doc, func(p []byte, v string, k ValueKind) bool {
		got = append(got, item{string(p), v, k})
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []item{
		{"user", "user", KindKey},
		{"user.name", "name", KindKey}, {"user.name", "O'Brien", KindString},
		{"user.tags", "tags", KindKey}, {"user.tags.0", "a", KindString}, {"user.tags.1", "b'c", KindString},
		{"user.age", "age", KindKey}, {"user.age", "42", KindNumber},
		{"user.ok", "ok", KindKey}, {"user.n", "n", KindKey},
		{`x"y`, `x"y`, KindKey}, {`x"y`, "-1.5e3", KindNumber},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d items %v, want %v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("item %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, tt := range []struct {
		doc  string
		w    Walker
		want error
	}{
		{`{"a":`, Walker{}, ErrMalformed},
		{`{"a":1}x`, Walker{}, ErrMalformed},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), Walker{MaxDepth: 10}, ErrTooDeep},
		{`[1,2,3,4,5]`, Walker{MaxValues: 3}, ErrTooMany},
	} {
		if err := tt.w.Walk(tt.doc, func([]byte, string, ValueKind) bool { return true }); !errors.Is(err, tt.want) {
			t.Errorf("%q: err %v, want %v", tt.doc, err, tt.want)
		}
	}
}

func TestDecompress(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"q":"' OR 1=1--"}`))
	w.Close()
	out, trunc, err := Decompress("gzip", gz.Bytes(), 1<<20)
	if err != nil || trunc || string(out) != `{"q":"' OR 1=1--"}` {
		t.Fatalf("gzip: %q %v %v", out, trunc, err)
	}
	var zl bytes.Buffer
	zw := zlib.NewWriter(&zl)
	zw.Write([]byte("a=1"))
	zw.Close()
	if out, _, err := Decompress("deflate", zl.Bytes(), 100); err != nil || string(out) != "a=1" {
		t.Fatalf("deflate: %q %v", out, err)
	}
	// A bomb: 64 MiB of zeros compress to ~64 KiB; the limit holds.
	var bomb bytes.Buffer
	bw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		bw.Write(zeros)
	}
	bw.Close()
	out, trunc, err = Decompress("gzip", bomb.Bytes(), 1<<16)
	if err != nil || !trunc || len(out) != 1<<16 {
		t.Fatalf("bomb: len %d truncated %v err %v", len(out), trunc, err)
	}
	if _, _, err := Decompress("br", []byte("x"), 10); !errors.Is(err, ErrUnsupportedEncoding) {
		t.Fatalf("br: %v", err)
	}
	if _, _, err := Decompress("gzip", []byte("not gzip"), 10); err == nil {
		t.Fatal("corrupt gzip accepted")
	}
}

func FuzzVariants(f *testing.F) {
	for _, s := range []string{"%27", "%u0027", "JyBPUiAxPTEtLQ==", "&#x27;", `\u0027`, "+ACc-", `{"a":"b"}`, "eyJhIjoxfQ.eyJiIjoyfQ.x", "%%%", `\u{110000}`, "&#99999999;"} {
		f.Add(s)
	}
	d := New(Limits{})
	f.Fuzz(func(t *testing.T, raw string) {
		vs := d.Variants(raw)
		if len(vs) == 0 || vs[0].Value != raw {
			t.Fatal("raw value not first")
		}
		if len(vs) > d.Limits().MaxVariants {
			t.Fatalf("%d variants", len(vs))
		}
		total := 0
		for _, v := range vs[1:] {
			total += len(v.Value)
			if v.Chain.Len() == 0 || v.Chain.Len() > MaxDepth {
				t.Fatalf("bad chain %q", v.Chain)
			}
		}
		if total > 4*len(raw)+256 {
			t.Fatalf("%d bytes from %d", total, len(raw))
		}
		_ = Walker{MaxDepth: 8, MaxValues: 64}.Walk(raw, func([]byte, string, ValueKind) bool { return true })
	})
}

func BenchmarkAppend(b *testing.B) {
	d := New(Limits{})
	for _, c := range []struct{ name, v string }{
		{"word", "hello"},
		{"sentence", "The quick brown fox jumps over the lazy dog, twice."},
		{"url", "%27%20UNION%20SELECT%20password%20FROM%20users--"},
		{"base64", base64.StdEncoding.EncodeToString([]byte("<script>alert(document.cookie)</script>"))},
		{"json", `{"user":{"name":"O'Brien","q":"' OR 1=1--"}}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			dst := make([]Variant, 0, 16)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				dst = d.Append(dst[:0], c.v)
			}
		})
	}
}

// TestHTMLNumericEntityForms (issue 15): decimal and hex character
// references with leading zeros, with or without ';', decode as a
// browser's tokenizer decodes them (digits are read while there are
// digits, so a reference ends at the first non-digit), also under URL
// encoding.
func TestHTMLNumericEntityForms(t *testing.T) {
	d := New(Limits{})
	tests := []struct {
		raw, want, chain string
	}{
		{"&#0000060script&#0000062alert(1)&#0000060/script&#0000062", "<script>alert(1)</script>", "html"},
		{"&#x00003C;script&#x00003E;", "<script>", "html"},
		{"&#x00003Cscript&#x00003E", "<script>", "html"},
		{"&#00000000000060;svg onload=alert(1)&#62;", "<svg onload=alert(1)>", "html"},
		{"javascript&#0000058alert(1)", "javascript:alert(1)", "html"},
		{"http&#x3a;&#0000047&#47;127&#46;0&#46;0&#46;1&#0000047", "http://127.0.0.1/", "html"},
		{"%26%230000060script%26%230000062", "<script>", "url → html"},
		{"a&#0000013&#0000010Bcc: x@example.net", "a\r\nBcc: x@example.net", "html"},
		{"&#39&#32OR&#32&#0000049&#61&#0000049", "' OR 1=1", "html"},
	}
	for _, tc := range tests {
		chain, ok := find(d.Variants(tc.raw), tc.want)
		if !ok {
			t.Errorf("%q: no variant %q; got %+v", tc.raw, tc.want, d.Variants(tc.raw))
			continue
		}
		if chain != tc.chain {
			t.Errorf("%q: chain %q, want %q", tc.raw, chain, tc.chain)
		}
	}
}
