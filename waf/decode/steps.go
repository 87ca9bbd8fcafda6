package decode

import (
	"html"
	"strings"
	"unicode/utf8"
)

// Each decoder returns (decoded, true) only when it changed something; a
// decoder whose trigger bytes appear without a valid encoding reports
// false without allocating.

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isHex(c byte) bool { _, ok := unhex(c); return ok }

// urlDecode decodes %XX escapes and '+' as space, once. Invalid escapes are
// kept as they are (as PHP's urldecode and most servers do), so an
// attacker cannot hide the rest of a value behind one bad '%'.
func urlDecode(s string) (string, bool) {
	n := 0
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			n++
			i += 2
		}
	}
	if n == 0 {
		return "", false
	}
	b := make([]byte, 0, len(s)-2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			h, _ := unhex(s[i+1])
			l, _ := unhex(s[i+2])
			b = append(b, h<<4|l)
			i += 2
		case c == '+':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

// urlUDecode decodes IIS-style %uXXXX escapes (UTF-16 code units; a
// surrogate pair becomes one rune).
func urlUDecode(s string) (string, bool) {
	isU := func(i int) bool {
		return i+5 < len(s) && s[i] == '%' && (s[i+1] == 'u' || s[i+1] == 'U') &&
			isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5])
	}
	found := false
	for i := 0; i < len(s); i++ {
		if isU(i) {
			found = true
			break
		}
	}
	if !found {
		return "", false
	}
	u := func(i int) rune {
		var r rune
		for k := 2; k < 6; k++ {
			h, _ := unhex(s[i+k])
			r = r<<4 | rune(h)
		}
		return r
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isU(i) {
			b.WriteByte(s[i])
			continue
		}
		r := u(i)
		i += 5
		if 0xD800 <= r && r < 0xDC00 && isU(i+1) {
			if lo := u(i + 1); 0xDC00 <= lo && lo < 0xE000 {
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
		}
		b.WriteRune(r)
	}
	return b.String(), true
}

// htmlDecode decodes HTML character references as a browser does in text
// and attribute values (named, decimal, hex, with or without ';').
func htmlDecode(s string) (string, bool) {
	ok := false
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '&' {
			c := s[i+1]
			if c == '#' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') {
				ok = true
				break
			}
		}
	}
	if !ok {
		return "", false
	}
	out := html.UnescapeString(s)
	if out == s {
		return "", false
	}
	return out, true
}

// jsEscapeBytes are the bytes after a backslash that make a JS or JSON
// escape worth decoding.
const jsEscapeBytes = `ux01234567'"\\/nrtbfv` + "`"

// jsDecode decodes JavaScript and JSON string escapes: \uXXXX, \u{X…},
// \xNN, octal \NNN, the single-letter escapes and an escaped quote or
// backslash.
func jsDecode(s string) (string, bool) {
	ok := false
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\\' && strings.IndexByte(jsEscapeBytes, s[i+1]) >= 0 {
			ok = true
			break
		}
	}
	if !ok {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := s[i]; e {
		case 'u', 'U':
			if i+1 < len(s) && s[i+1] == '{' {
				// \u{X…}: up to 6 hex digits then '}'.
				j, r := i+2, rune(0)
				for ; j < len(s) && j < i+9 && isHex(s[j]); j++ {
					h, _ := unhex(s[j])
					r = r<<4 | rune(h)
				}
				if j < len(s) && s[j] == '}' && j > i+2 && r <= utf8.MaxRune {
					b.WriteRune(r)
					i = j
					continue
				}
			} else if i+4 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) {
				r := hex4(s[i+1:])
				i += 4
				if 0xD800 <= r && r < 0xDC00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' &&
					isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]) && isHex(s[i+6]) {
					if lo := hex4(s[i+3:]); 0xDC00 <= lo && lo < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
						i += 6
					}
				}
				b.WriteRune(r)
				continue
			}
			b.WriteByte(e)
		case 'x', 'X':
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				h, _ := unhex(s[i+1])
				l, _ := unhex(s[i+2])
				b.WriteByte(h<<4 | l)
				i += 2
				continue
			}
			b.WriteByte(e)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, j := 0, i
			for ; j < len(s) && j < i+3 && '0' <= s[j] && s[j] <= '7' && v*8+int(s[j]-'0') <= 0377; j++ {
				v = v*8 + int(s[j]-'0')
			}
			b.WriteByte(byte(v))
			i = j - 1
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		default:
			b.WriteByte(e)
		}
	}
	out := b.String()
	return out, out != s
}

func hex4(s string) rune {
	var r rune
	for k := 0; k < 4; k++ {
		h, _ := unhex(s[k])
		r = r<<4 | rune(h)
	}
	return r
}

// b64val maps both base64 alphabets (standard and URL) to their values;
// 0xff marks other bytes.
var b64val = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(std); i++ {
		t[std[i]] = byte(i)
	}
	t['-'], t['_'] = 62, 63
	return t
}()

// utf7Decode decodes UTF-7 shifted sequences (+ADw-). A sequence counts
// only when it is closed by '-' and its padding bits are zero, as an
// encoder writes it: "C++", "1+1" and "Hello+World" are not UTF-7.
func utf7Decode(s string) (string, bool) {
	// Validate first, without allocating.
	found := false
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			continue
		}
		j := i + 1
		for j < len(s) && b64val[s[j]] != 0xff && s[j] != '-' && s[j] != '_' {
			j++
		}
		if j-i-1 >= 3 && j < len(s) && s[j] == '-' && utf7Run(s[i+1:j], nil) {
			found = true
			break
		}
	}
	if !found {
		return "", false
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b = append(b, s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '-' {
			b = append(b, '+')
			i++
			continue
		}
		j := i + 1
		for j < len(s) && b64val[s[j]] != 0xff && s[j] != '-' && s[j] != '_' {
			j++
		}
		if j-i-1 >= 3 && j < len(s) && s[j] == '-' && utf7Run(s[i+1:j], nil) {
			b = appendUTF7Run(b, s[i+1:j])
			i = j
			continue
		}
		b = append(b, s[i])
	}
	if !printable(b) {
		return "", false
	}
	return string(b), true
}

// utf7Run reports whether run is a well-formed shifted sequence.
func utf7Run(run string, _ []byte) bool {
	bits, n := uint32(0), 0
	for k := 0; k < len(run); k++ {
		bits = bits<<6 | uint32(b64val[run[k]])
		n += 6
		if n >= 16 {
			n -= 16
			bits &= 1<<n - 1
		}
	}
	return n < 6 && bits == 0
}

func appendUTF7Run(b []byte, run string) []byte {
	bits, n := uint32(0), 0
	var hi rune
	for k := 0; k < len(run); k++ {
		bits = bits<<6 | uint32(b64val[run[k]])
		n += 6
		if n >= 16 {
			n -= 16
			r := rune(bits >> n)
			bits &= 1<<n - 1
			switch {
			case 0xD800 <= r && r < 0xDC00:
				hi = r
				continue
			case 0xDC00 <= r && r < 0xE000 && hi != 0:
				r = 0x10000 + (hi-0xD800)<<10 + (r - 0xDC00)
			}
			hi = 0
			b = utf8.AppendRune(b, r)
		}
	}
	return b
}

// printable reports whether b is valid UTF-8 text without control
// characters other than the whitespace ones (tab, newline, vertical tab,
// form feed, carriage return: payloads use them as separators) and at
// most two NUL bytes in four bytes or more (the truncation trick:
// "../../etc/passwd\x00.png", the LDAP filter cut "*))\x00"; binary
// data has many).
func printable(b []byte) bool {
	nul := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == 0 && nul < 2 && len(b) >= 4 {
				nul++
				i++
				continue
			}
			if (c < 0x20 && (c < '\t' || c > '\r')) || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		i += size
	}
	return true
}

// base64Plausible reports whether s (already trimmed of padding) looks
// like an encoding rather than a word: long enough, only alphabet bytes of
// one alphabet, a length an encoder can produce, and both letter cases
// (base64 of text almost always has them; hex ids and words do not).
func base64Plausible(s string, min int) bool {
	if len(s) < min-2 || len(s)%4 == 1 {
		return false
	}
	var upper, lower, std, url bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		case '0' <= c && c <= '9':
		case c == '+' || c == '/':
			std = true
		case c == '-' || c == '_':
			url = true
		default:
			return false
		}
	}
	return upper && lower && !(std && url)
}

// base64Candidate is base64Decode's checks without the allocation.
func base64Candidate(s string, min int) bool {
	t, ok := base64Trim(s, min)
	if !ok {
		return false
	}
	var chunk [192]byte
	head := t
	if len(head) > 256 {
		head = head[:256]
	}
	m := b64decodeInto(chunk[:], head)
	return printable(trimPartialRune(chunk[:m], len(head) < len(t)))
}

// base64Trim trims space and padding and checks plausibility.
func base64Trim(s string, min int) (string, bool) {
	t := strings.TrimSpace(s)
	if len(t) < min {
		return "", false
	}
	pad := 0
	for len(t) > 0 && t[len(t)-1] == '=' && pad < 2 {
		t = t[:len(t)-1]
		pad++
	}
	if !base64Plausible(t, min) {
		return "", false
	}
	if pad > 0 && (len(t)+pad)%4 != 0 {
		return "", false
	}
	return t, true
}

// base64Decode decodes s as base64 or base64url, padded or not, only when
// s is plausibly an encoding and the result is text. The text check runs
// before anything is allocated.
func base64Decode(s string, min int) (string, bool) {
	t, ok := base64Trim(s, min)
	if !ok {
		return "", false
	}
	n := len(t) / 4 * 3
	switch len(t) % 4 {
	case 2:
		n++
	case 3:
		n += 2
	}
	// Check the first chunk on the stack: binary data fails here, before
	// anything is allocated.
	var chunk [192]byte
	head := t
	if len(head) > 256 {
		head = head[:256]
	}
	m := b64decodeInto(chunk[:], head)
	if !printable(trimPartialRune(chunk[:m], len(head) < len(t))) {
		return "", false
	}
	out := make([]byte, n)
	b64decodeInto(out, t)
	if !printable(out) || len(out) < 4 {
		return "", false
	}
	return string(out), true
}

// trimPartialRune drops an incomplete rune at the end of b when more
// bytes follow.
func trimPartialRune(b []byte, more bool) []byte {
	if !more {
		return b
	}
	for k := 1; k <= utf8.UTFMax && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < utf8.RuneSelf {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-k:]) {
				b = b[:len(b)-k]
			}
			break
		}
	}
	return b
}

// b64decodeInto decodes s (alphabet bytes only, no padding) into dst and
// returns the number of bytes written.
func b64decodeInto(dst []byte, s string) int {
	n := 0
	var acc uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		acc = acc<<6 | uint32(b64val[s[i]])
		bits += 6
		if bits >= 8 {
			bits -= 8
			if n < len(dst) {
				dst[n] = byte(acc >> bits)
			}
			n++
			acc &= 1<<bits - 1
		}
	}
	return n
}

// jwtSegments finds a JSON Web Token (header.payload[.signature], header
// starting with base64url of `{"`) in s and yields its decoded header and
// payload.
func jwtSegments(s string, yield func(string) bool) {
	i := strings.Index(s, "eyJ")
	if i < 0 {
		return
	}
	if i > 0 && b64val[s[i-1]] != 0xff {
		return
	}
	rest := s[i:]
	for k := 0; k < 2; k++ {
		j := 0
		for j < len(rest) && b64val[rest[j]] != 0xff && rest[j] != '+' && rest[j] != '/' {
			j++
		}
		seg := rest[:j]
		if k == 0 && (j == len(rest) || rest[j] != '.') {
			return // not a token: no second segment
		}
		if len(seg) >= 4 {
			if out, ok := b64decodeText(seg); ok && !yield(out) {
				return
			}
		}
		if j >= len(rest) {
			return
		}
		rest = rest[j+1:]
	}
}

// b64decodeText decodes an unpadded base64url segment when it is text.
func b64decodeText(seg string) (string, bool) {
	if len(seg)%4 == 1 {
		return "", false
	}
	n := len(seg) / 4 * 3
	switch len(seg) % 4 {
	case 2:
		n++
	case 3:
		n += 2
	}
	out := make([]byte, n)
	b64decodeInto(out, seg)
	if !printable(out) {
		return "", false
	}
	return string(out), true
}
