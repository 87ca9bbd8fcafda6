package fastop

import "testing"

// TestMatchesBytes pins down Coraza v3.8.1's choice of engine, quirks
// included (see matchesBytes). The differential test runs these patterns
// through Coraza itself (extraPatterns).
func TestMatchesBytes(t *testing.T) {
	for _, c := range []struct {
		expr string
		want bool
	}{
		{`abc`, false},
		{`\xff`, true},
		{`a\xffb`, true},
		{`\x41`, false},
		{`\x{ff}`, true},
		{`\x{c3}\x{a9}`, false}, // é in two escapes is valid UTF-8
		{`\xc3\xa9`, false},
		{`\\xff`, true},  // the first backslash escapes the second, but Coraza still decodes \xff
		{`\xf`, false},   // too short to decode: kept as written
		{`\xzz1`, false}, // not hex
		{`ab\`, false},
		{"\xff", true}, // a raw invalid byte in the pattern
		{`\x{1f600}`, false},
	} {
		if got := matchesBytes(c.expr); got != c.want {
			t.Errorf("matchesBytes(%q) = %v, want %v", c.expr, got, c.want)
		}
	}
}
