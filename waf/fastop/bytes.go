package fastop

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// matchesBytes reports whether Coraza would compile expr with its byte
// (rsc.io/binaryregexp) engine instead of Go's regexp: when decoding the
// expression's \xHH and \x{HH} escapes leaves invalid UTF-8.
//
// This reproduces Coraza v3.8.1's decision exactly, including its quirks,
// because the two engines give different answers on the same pattern (\xff
// is one byte to the first and the rune ÿ to the second):
//   - a backslash not followed by 'x' is kept and the next byte is looked at
//     on its own, so in `\\xff` the second backslash still starts an escape;
//   - a backslash with fewer than three bytes after it ends the decoding,
//     the rest kept as it is;
//   - `\x{...}` is read up to the first '}' after it and only its first two
//     hex digits count;
//   - an escape that does not decode to a single byte is kept as written.
func matchesBytes(expr string) bool {
	var decoded []byte
	for i := 0; i < len(expr); i++ {
		if expr[i] != '\\' {
			decoded = append(decoded, expr[i])
			continue
		}
		if len(expr)-i < 4 {
			decoded = append(decoded, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			decoded = append(decoded, '\\')
			continue
		}
		esc, skip := expr[i:], 3
		if len(esc) >= 6 && esc[2] == '{' {
			if end := strings.IndexByte(esc, '}'); end >= 0 {
				esc, skip = `\x`+esc[3:end], end
			}
		}
		v, multibyte, _, err := strconv.UnquoteChar(esc, 0)
		if err != nil || multibyte {
			decoded = append(decoded, '\\')
			continue
		}
		decoded = append(decoded, byte(v))
		i += skip
	}
	return !utf8.Valid(decoded)
}
