package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"unicode/utf16"
)

// Transport and application encodings. Each takes the payload as the
// application must finally see it and returns what is put in the request
// (before the placement's own transport encoding, which placements apply).

// pctAll percent-encodes every byte: the application's usual decoding
// undoes it, so the value it sees is the payload itself.
func pctAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// pctSpecial percent-encodes what a form encoder would, but as %20 for
// spaces and lower-case hex, as some HTTP clients do.
func pctSpecial(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

// pctU encodes every non-alphanumeric character as IIS's %uXXXX.
func pctU(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, "%%u%04X", u)
		}
	}
	return b.String()
}

func b64(s string) string    { return base64.StdEncoding.EncodeToString([]byte(s)) }
func b64raw(s string) string { return base64.RawStdEncoding.EncodeToString([]byte(s)) }
func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
func b64urlPad(s string) string {
	return base64.URLEncoding.EncodeToString([]byte(s))
}

// htmlEntities encodes special characters (or, with all, every character)
// as decimal or hex character references, each decoded by an HTML parser
// in text and in attribute values alike:
//
//   - &#60; and &#x3c; everywhere;
//   - in HTML (not xml), also &#0000060 with leading zeros and no ';'.
//     WHATWG HTML's tokenizer (decimal character reference state) reads
//     digits while there are digits and, on anything else, reports
//     missing-semicolon-after-character-reference and still emits the
//     character, in text and in attributes (the attribute exception,
//     "followed by '=' or an alphanumeric", is for named references
//     only). So the form is used only where the next character is not
//     an ASCII digit, which would be read as part of the number.
//
// XML requires the ';' (a reference without it is not well-formed), so
// with xml only the first two forms are written.
func htmlEntities(s string, all, xml bool, r *rand.Rand) string {
	var b strings.Builder
	rs := []rune(s)
	for i, c := range rs {
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ' ') {
			b.WriteRune(c)
			continue
		}
		form := r.IntN(3)
		// the next character written is a literal one only when it is
		// left as it is (not all, alphanumeric or space)
		nextDigit := !all && i+1 < len(rs) && rs[i+1] >= '0' && rs[i+1] <= '9'
		if form == 2 && (xml || nextDigit) {
			form = 0
		}
		switch form {
		case 0:
			fmt.Fprintf(&b, "&#%d;", c)
		case 1:
			fmt.Fprintf(&b, "&#x%x;", c)
		default:
			fmt.Fprintf(&b, "&#%07d", c)
		}
	}
	return b.String()
}

// jsonUnicode escapes every non-alphanumeric character (or every
// character) as \uXXXX, inside a JSON string that a JSON parser decodes.
func jsonUnicode(s string, all bool) string {
	var b strings.Builder
	for _, c := range s {
		if !all && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b.WriteRune(c)
			continue
		}
		for _, u := range utf16.Encode([]rune{c}) {
			fmt.Fprintf(&b, "\\u%04x", u)
		}
	}
	return b.String()
}

// utf7 encodes s in UTF-7 (RFC 2152), escaping every character outside
// the directly encoded set, so <, >, ", ' and friends become +AD...-.
func utf7(s string) string {
	direct := func(c rune) bool {
		return c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" '(),-./:?\t\r\n", c))
	}
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if direct(rs[i]) {
			b.WriteRune(rs[i])
			i++
			continue
		}
		if rs[i] == '+' {
			b.WriteString("+-")
			i++
			continue
		}
		j := i
		for j < len(rs) && !direct(rs[j]) && rs[j] != '+' {
			j++
		}
		u := utf16.Encode(rs[i:j])
		raw := make([]byte, 0, 2*len(u))
		for _, x := range u {
			raw = append(raw, byte(x>>8), byte(x))
		}
		b.WriteString("+" + base64.RawStdEncoding.EncodeToString(raw) + "-")
		i = j
	}
	return b.String()
}

// jwt returns an unsigned-looking JWT (HS256 header, a random signature)
// whose claims carry the payload in claim.
func jwt(claim, payload string, r *rand.Rand) string {
	hdr := `{"alg":"HS256","typ":"JWT"}`
	claims, _ := json.Marshal(map[string]any{"sub": fmt.Sprint(1000 + r.IntN(9000)), claim: payload, "iat": 1700000000 + r.IntN(30000000)})
	sig := make([]byte, 32)
	for i := range sig {
		sig[i] = byte(r.IntN(256))
	}
	return b64url(hdr) + "." + b64url(string(claims)) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// gzipBytes compresses b.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// formEncode encodes name=value pairs as application/x-www-form-urlencoded.
func formEncode(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// jsonMarshal encodes v without HTML escaping.
func jsonMarshal(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(buf.String(), "\n")
}

// randomCase flips the case of letters at random.
func randomCase(s string, r *rand.Rand) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && r.IntN(2) == 0 {
			b[i] = c - 32
		} else if c >= 'A' && c <= 'Z' && r.IntN(2) == 0 {
			b[i] = c + 32
		}
	}
	return string(b)
}

// pick returns a random element.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }
