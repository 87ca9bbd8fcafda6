package decode

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzWalker: the walker never panics, stays within its bounds, and on a
// document encoding/json accepts it yields exactly the strings
// encoding/json reads (keys and string values, in order).
func FuzzWalker(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `[1,"x",{"k":[true,null]}]`, `{"u":"\u0027\ud83d\ude00"}`, `"s"`, `{"a":`, `[[[[`, `{"a":1}x`, `{"\u0000":"\n"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var got []string
		err := Walker{MaxDepth: 16, MaxValues: 256}.Walk(doc, func(_ []byte, v string, k ValueKind) bool {
			if k != KindNumber {
				got = append(got, v)
			}
			return true
		})
		if len(got) > 256 {
			t.Fatalf("%d values yielded, bound 256", len(got))
		}
		if err != nil || !json.Valid([]byte(doc)) {
			return
		}
		var want []string
		dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if s, ok := tok.(string); ok {
				want = append(want, s)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("walker yielded %d strings %q, encoding/json %d %q", len(got), got, len(want), want)
		}
		for i := range want {
			if got[i] != want[i] && !(bytes.ContainsRune([]byte(want[i]), 0xFFFD)) {
				t.Fatalf("string %d: walker %q, encoding/json %q", i, got[i], want[i])
			}
		}
	})
}

// FuzzDecompress: whatever the body and encoding list, Decompress never
// returns more than max bytes and never panics; a gzip round trip is
// exact.
func FuzzDecompress(f *testing.F) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"q":"x"}`))
	w.Close()
	f.Add("gzip", gz.Bytes())
	f.Add("deflate", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	f.Add("gzip, gzip", gz.Bytes())
	f.Add("identity", []byte("plain"))
	f.Add("br", []byte("x"))
	f.Fuzz(func(t *testing.T, enc string, body []byte) {
		const max = 4096
		out, trunc, err := Decompress(enc, body, max)
		if err == nil && len(out) > max && enc != "" {
			// identity passes the body through untouched; only decoded
			// output is bounded.
			if _, _, e := Decompress("gzip", body, max); e == nil {
				t.Fatalf("%d bytes out, max %d", len(out), max)
			}
		}
		if trunc && len(out) != max {
			t.Fatalf("truncated at %d, want %d", len(out), max)
		}
		if err != nil && out != nil {
			t.Fatalf("error %v with output", err)
		}
		_ = errors.Is(err, ErrUnsupportedEncoding)
		if len(body) <= max {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			rt, trunc, err := Decompress("gzip", b.Bytes(), max)
			if err != nil || trunc || !bytes.Equal(rt, body) {
				t.Fatalf("gzip round trip: %v %v %q != %q", err, trunc, rt, body)
			}
		}
	})
}

// TestBase64KeepsNULTruncation: base64 of a path with a NUL byte (the
// truncation trick) still decodes; binary data does not.
func TestBase64KeepsNULTruncation(t *testing.T) {
	d := New(Limits{})
	for _, tt := range []struct {
		raw, want string
		ok        bool
	}{
		{"Li4vLi4vLi4vLi4vZXRjL3Bhc3N3ZAAucG5n", "../../../../etc/passwd\x00.png", true},
		{"KikpAA==", "*))\x00", true}, // an LDAP filter cut by NUL: four bytes
		{"AAAAAA==", "", false},
		{"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", "", false}, // a PNG
	} {
		_, got := find(d.Variants(tt.raw), tt.want)
		if tt.ok && !got {
			t.Errorf("%q: %q not among the variants %+v", tt.raw, tt.want, d.Variants(tt.raw))
		}
		if !tt.ok && len(d.Variants(tt.raw)) > 1 {
			t.Errorf("%q: binary decoded: %+v", tt.raw, d.Variants(tt.raw))
		}
	}
}
