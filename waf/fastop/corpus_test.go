package fastop

import (
	"encoding/base64"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/coreruleset/go-ftw/v2/test"
)

// corpus returns the inputs the differential tests feed to every pattern:
//   - every go-ftw test payload of the CRS regression suite: URI, header
//     values, body, raw request; as sent, URL-decoded, lower-cased, and
//     split into argument names and values, as CRS rules see them;
//   - benign traffic: the bench/ form post and its fields, browser headers;
//   - edge cases: empty, newlines, NUL, invalid and truncated UTF-8, the
//     non-ASCII case-fold partners of k and s, U+FFFD itself;
//   - seeded random strings over an alphabet of regex-relevant characters;
//   - a few long inputs (4-16 KB) with and without an attack at the end.
//
// Without full (the default go test run, kept near a minute together with
// the engine-level differential, which replays the same payloads as whole
// requests), payloads are only URL-decoded, not also kept raw, lower-cased
// and split into arguments; inputs stop at 8 KB instead of 20 KB; there are
// 500 random strings instead of 3,000. FASTOP_FULL=1 runs them all.
//
// Inputs are deduplicated; the order is deterministic.
func corpus(t testing.TB, full bool) []string {
	t.Helper()
	set := map[string]bool{}
	// Longer inputs (a few CRS tests send 64 KB) would cost Coraza's stock
	// @rx seconds each; the long inputs below stand for them.
	limit := 8 << 10
	if full {
		limit = 20000
	}
	add := func(s string) {
		if len(s) <= limit {
			set[s] = true
		}
	}
	addPayload := func(s string) {
		dec := lenientUnescape(s)
		add(dec)
		if !full {
			return
		}
		add(s)
		add(strings.ToLower(dec))
		for _, kv := range strings.FieldsFunc(dec, func(r rune) bool { return r == '&' || r == '?' || r == ';' }) {
			k, v, _ := strings.Cut(kv, "=")
			add(k)
			add(v)
		}
	}

	for _, p := range ftwPayloads(t) {
		addPayload(p)
	}

	form, err := os.ReadFile("../../bench/workloads/post-body.txt")
	if err != nil {
		t.Fatal(err)
	}
	addPayload(string(form))
	for _, h := range []string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"en-US,en;q=0.5", "gzip, deflate, br, zstd", "keep-alive", "shop.example",
		"application/x-www-form-urlencoded", "/products?category=shoes&page=2&sort=price",
		`{"user":{"name":"Ann","tags":["a","b"],"age":31}}`, "sessionid=abc123; theme=dark",
	} {
		addPayload(h)
	}

	edge := []string{
		"", "\n", "\r\n", "\x00", "a\x00b", "\xff", "\xc3", "\xc3(", "\xe2\x84", "\xe2\x84\xaa",
		"\u212a", "\u017f", "\ufffd", "\xef\xbf\xbd", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"select\xff from", "SELECT \u017fleep(5)", "\u212aill -9", "<\u017fcript>", "java\u017fcript:",
		"line1\nline2", "a\x0bb", "\t\v\f\r ", "é", "É", "ÉCOLE", "ǅ", "ß", "ẞ", "ﬀ",
		"/etc/passwd", "..%2f..%2f", "<script>alert(1)</script>", "' or 1=1--", "${jndi:ldap://x}",
	}
	for _, e := range edge {
		add(e)
	}

	// Random strings: mostly the characters regexes of the CRS care about.
	alphabet := []string{
		"a", "e", "s", "k", "S", "K", "x", "z", "0", "1", "9", " ", "\t", "\n", "\r", "\x0b",
		"'", "\"", "`", "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\", "|", "&", ";", ":",
		"=", ",", ".", "-", "_", "$", "%", "#", "@", "!", "?", "*", "+", "^", "~",
		"select", "union", "from", "script", "eval", "cat", "etc", "passwd", "or", "and",
		"é", "\u212a", "\u017f", "\ufffd", "\xff", "\xc3", "\x00", "日本",
	}
	rng := rand.New(rand.NewPCG(8, 8)) // issue 8: fixed seed, same corpus every run
	random := 500
	if full {
		random = 3000
	}
	for range random {
		var b strings.Builder
		for range rng.IntN(24) + 1 {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		add(b.String())
	}

	// Long inputs: Go's regexp and the DFA take different paths on them.
	long := strings.Repeat(string(form), 4)[:16<<10]
	for _, n := range []int{4 << 10, 16 << 10} {
		add(long[:n-64])
		add(long[:n-64] + "' union select password from users--")
		add(long[:n-64] + "<script>alert(document.cookie)</script>")
		add(strings.Repeat("a", n/2-1) + "\xff" + strings.Repeat("b", n/2-1))
	}

	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ftwPayloads returns the raw strings of every stage of every CRS
// regression test.
func ftwPayloads(t testing.TB) []string {
	t.Helper()
	var out []string
	eachFTWStage(t, func(ft *test.FTWTest, ti, i int) {
		in := ft.Tests[ti].Stages[i].Input
		if in.URI != nil {
			out = append(out, *in.URI)
		}
		//lint:ignore SA1019 the embedded CRS tests still use the deprecated headers map; both forms are read
		for _, v := range in.Headers {
			out = append(out, v)
		}
		for _, h := range in.OrderedHeaders {
			out = append(out, h.Name, h.Value)
		}
		if in.Data != nil {
			out = append(out, *in.Data)
		}
		if in.EncodedData != nil {
			if b, err := base64.StdEncoding.DecodeString(*in.EncodedData); err == nil {
				out = append(out, string(b))
			}
		}
		if in.EncodedRequest != "" {
			if b, err := base64.StdEncoding.DecodeString(in.EncodedRequest); err == nil {
				out = append(out, string(b))
			}
		}
	})
	return out
}

// eachFTWStage calls fn for every stage of every CRS regression test.
func eachFTWStage(t testing.TB, fn func(ft *test.FTWTest, ti, stage int)) {
	t.Helper()
	err := fs.WalkDir(crstests.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(crstests.FS, path)
		if err != nil {
			return err
		}
		ft, err := test.GetTestFromYaml(data, path)
		if err != nil {
			return err
		}
		for ti, tc := range ft.Tests {
			for i := range tc.Stages {
				fn(ft, ti, i)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// lenientUnescape decodes %XX and '+' and leaves malformed escapes as they
// are, like Coraza's urlDecodeUni does (roughly: %uXXXX is not decoded).
func lenientUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		if s[i] == '+' {
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
