package fastop

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestConditions pins down what the analysis derives from typical shapes
// of pattern. The differential tests prove soundness on the CRS; these
// show precision and the corner cases of folding.
func TestConditions(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{`select`, `select`},
		{`(?i)select`, `select`},
		{`(?i)SeLeCt`, `select`},
		{`a|b`, `(a | b)`},
		{`foo.*bar`, `(foo & bar)`},
		{`[ab]c`, `(ac | bc)`},
		{`(abc)?d`, `d`}, // "abcd" contains "d"
		{`a+`, `a`},
		{`a{2,3}`, `aa`},
		{`x*`, `*`},
		{`.`, `*`},
		{`[^a]`, `*`},
		{`^$`, `*`},
		{`\bword\b`, `word`},
		{`(?i)k`, `k`},            // k, K and U+212A KELVIN SIGN fold to "k"
		{`(?i)ſ`, `s`},            // U+017F folds with s, S
		{`\x{212a}`, `k`},         // a case-sensitive Kelvin sign is searched as "k" too
		{`(?i)é`, `(É | é)`},      // non-ASCII orbits are spelled out
		{`\x{fffd}`, `*`},         // U+FFFD matches any invalid byte
		{`a\x{fffd}b`, `(a & b)`}, // ... so it splits the literal
		{`[a-z]+@`, `@`},          // large classes carry nothing
		{`(?:ab|cd)(?:ef|gh)`, `(abef | abgh | cdef | cdgh)`},
	} {
		got, err := condOf(flags + c.pattern)
		if err != nil {
			t.Errorf("%q: %v", c.pattern, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("%q: condition %s, want %s", c.pattern, got, c.want)
		}
	}
}

// TestFoldCoversASCIIOrbits checks the claim fold.go rests on: of all the
// runes that Go's case folding puts in one orbit with an ASCII letter, fold
// maps each to that letter in lower case; so the scan finds a (?i) atom in
// any spelling the regexp accepts.
func TestFoldCoversASCIIOrbits(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			lr, lf := r < utf8.RuneSelf && unicode.IsLetter(r), f < utf8.RuneSelf && unicode.IsLetter(f)
			if (lr || lf) && fold(string(r)) != fold(string(f)) {
				t.Errorf("%U and %U fold together in Go's regexp, but fold gives %q and %q", r, f, fold(string(r)), fold(string(f)))
			}
		}
	}
}

// TestPrune: atoms common in text are dropped, long ones cut at a rune
// boundary.
func TestPrune(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{`a.*<`, `<`},
		{`a.*b`, `*`},
		{`(?:union|select)\s+from`, `((union | select) & from)`}, // white space is common too
		{`(?:x|yz)q`, `(xq | yzq)`},
		{`selectivity`, `select`},   // cut to maxAtomLen bytes
		{`ééééé`, `ééé`},            // cut at a rune boundary: 6 bytes
		{`aéééé`, `aéé`},            // 5 bytes: no half rune
		{`(?:a|bc)d`, `(ad | bcd)`}, // exact strings first
	} {
		c0, err := condOf(flags + c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := prune(c0).String(); got != c.want {
			t.Errorf("%q: pruned %s, want %s (unpruned %s)", c.pattern, got, c.want, c0)
		}
	}
}
