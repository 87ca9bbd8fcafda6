package fastop

// The prefilter searches for literal atoms in a folded copy of the input
// (conceptually: the scanner folds byte by byte as it goes, it never copies).
// Folding must be coarse enough that whenever the regular expression matches,
// every atom it needs is still found:
//
//   - ASCII letters fold to lower case: (?i)select matches "SeLeCt".
//   - Go's regexp folds case with unicode.SimpleFold orbits. The only
//     non-ASCII runes whose orbit holds an ASCII letter are U+212A KELVIN
//     SIGN (k, K) and U+017F LATIN SMALL LETTER LONG S (s, S), so
//     (?i)script matches "ſcript". Both fold to their ASCII letter. Other
//     non-ASCII runes are left alone; a case-insensitive literal containing
//     one is expanded into its orbit instead (see literals.go).
//
// fold is a homomorphism on concatenations of valid UTF-8, and because an
// atom is valid UTF-8 its occurrence in any input (valid or not) is still an
// occurrence after folding: the two multi-byte sequences start with a lead
// byte, so they cannot straddle the edge of an atom.

const (
	kelvin0, kelvin1, kelvin2 = 0xE2, 0x84, 0xAA // U+212A KELVIN SIGN
	longS0, longS1            = 0xC5, 0xBF       // U+017F LATIN SMALL LETTER LONG S
)

// fold returns s folded as the scanner folds its input.
func fold(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == kelvin0 && i+2 < len(s) && s[i+1] == kelvin1 && s[i+2] == kelvin2:
			c = 'k'
			i += 2
		case c == longS0 && i+1 < len(s) && s[i+1] == longS1:
			c = 's'
			i++
		}
		b = append(b, c)
	}
	return string(b)
}
