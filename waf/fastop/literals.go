package fastop

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A cond is a necessary condition for a regular expression to match: a tree
// of AND and OR over atoms, literal strings that must occur (folded, see
// fold.go) in the input. condAll is the condition that always holds: the
// expression has no usable literal.
type cond struct {
	op   condOp
	atom string  // condAtom
	subs []*cond // condAnd, condOr
}

type condOp uint8

const (
	condAll condOp = iota
	condAtom
	condAnd
	condOr
)

var all = &cond{op: condAll}

// Limits on the analysis. An exact set (every string a subexpression can
// match) is only kept while small; past the limit it becomes an OR of its
// strings and the analysis goes on with conditions. Larger sets would make
// the prefilter more precise at the cost of more atoms to search for.
const (
	maxExact     = 64 // strings in an exact set
	maxClassRune = 8  // runes of a character class expanded into an exact set
)

// info is what the analysis knows about a subexpression: either the exact
// set of (folded) strings it can match, or a necessary condition.
type info struct {
	exact []string // when not nil: the complete set of strings matched
	cond  *cond    // when exact is nil
}

func exactInfo(set []string) info {
	slices.Sort(set)
	return info{exact: slices.Compact(set)}
}

// asCond turns an exact set into the condition "one of its strings occurs".
// An empty string always occurs, so a set holding one gives condAll. A string
// that contains another string of the set is dropped: whenever it occurs, the
// shorter one does too.
func (in info) asCond() *cond {
	if in.exact == nil {
		return in.cond
	}
	set := slices.Clone(in.exact)
	slices.SortStableFunc(set, func(a, b string) int { return len(a) - len(b) })
	var keep []string
	for _, s := range set {
		if s == "" {
			return all
		}
		redundant := false
		for _, k := range keep {
			if strings.Contains(s, k) {
				redundant = true
				break
			}
		}
		if !redundant {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 { // an empty exact set: the expression cannot match at all
		return all // still a sound answer; the regexp decides
	}
	if len(keep) == 1 {
		return &cond{op: condAtom, atom: keep[0]}
	}
	c := &cond{op: condOr}
	for _, s := range keep {
		c.subs = append(c.subs, &cond{op: condAtom, atom: s})
	}
	return c
}

// analyze derives the literal information of a parsed, simplified
// expression.
func analyze(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return exactInfo([]string{""})
	case syntax.OpLiteral:
		// A concatenation of one-rune pieces, so that a rune without a
		// spelling (U+FFFD) or a large case-folded product only splits the
		// literal.
		pieces := make([]info, len(re.Rune))
		for i, r := range re.Rune {
			if runes, ok := literalRunes(r, re.Flags&syntax.FoldCase != 0); ok {
				pieces[i] = exactInfo(runesToStrings(runes))
			} else {
				pieces[i] = info{cond: all}
			}
		}
		return concat(pieces)
	case syntax.OpCharClass:
		runes, ok := classRunes(re.Rune)
		if !ok {
			return info{cond: all}
		}
		return exactInfo(runesToStrings(runes))
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpPlus:
		// x+ matches only strings that start with a match of x.
		return info{cond: analyze(re.Sub[0]).asCond()}
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return info{cond: analyze(re.Sub[0]).asCond()}
		}
		return info{cond: all}
	case syntax.OpQuest:
		sub := analyze(re.Sub[0])
		if sub.exact != nil {
			return exactInfo(append(slices.Clone(sub.exact), ""))
		}
		return info{cond: all}
	case syntax.OpConcat:
		return analyzeConcat(re.Sub)
	case syntax.OpAlternate:
		return analyzeAlternate(re.Sub)
	default:
		// OpAnyChar, OpAnyCharNotNL, OpStar, OpNoMatch and anything newer:
		// no literal is required.
		return info{cond: all}
	}
}

func analyzeConcat(subs []*syntax.Regexp) info {
	infos := make([]info, len(subs))
	for i, sub := range subs {
		infos[i] = analyze(sub)
	}
	return concat(infos)
}

// concat combines the information of consecutive pieces: exact sets are
// multiplied out while they stay small; past that, or at a piece that is
// not exact, what has been gathered becomes one requirement of an AND.
func concat(infos []info) info {
	set := []string{""}
	var conds []*cond
	for _, in := range infos {
		if in.exact != nil && len(set)*len(in.exact) <= maxExact {
			set = cross(set, in.exact)
			continue
		}
		// The strings so far are one requirement, the rest another.
		conds = append(conds, exactInfo(set).asCond())
		if in.exact != nil {
			set = in.exact
			continue
		}
		conds = append(conds, in.cond)
		set = []string{""}
	}
	if conds == nil {
		return exactInfo(set)
	}
	conds = append(conds, exactInfo(set).asCond())
	return info{cond: and(conds)}
}

func analyzeAlternate(subs []*syntax.Regexp) info {
	var set []string
	exact := true
	var conds []*cond
	for _, sub := range subs {
		in := analyze(sub)
		if exact && in.exact != nil && len(set)+len(in.exact) <= maxExact {
			set = append(set, in.exact...)
			continue
		}
		if exact {
			exact = false
			if set != nil {
				conds = append(conds, exactInfo(set).asCond())
			}
		}
		conds = append(conds, in.asCond())
	}
	if exact {
		return exactInfo(set)
	}
	return info{cond: or(conds)}
}

func and(conds []*cond) *cond {
	c := &cond{op: condAnd}
	for _, s := range conds {
		switch s.op {
		case condAll:
		case condAnd:
			c.subs = append(c.subs, s.subs...)
		default:
			c.subs = append(c.subs, s)
		}
	}
	switch len(c.subs) {
	case 0:
		return all
	case 1:
		return c.subs[0]
	}
	return c
}

func or(conds []*cond) *cond {
	c := &cond{op: condOr}
	for _, s := range conds {
		switch s.op {
		case condAll:
			return all
		case condOr:
			c.subs = append(c.subs, s.subs...)
		default:
			c.subs = append(c.subs, s)
		}
	}
	switch len(c.subs) {
	case 0:
		return all
	case 1:
		return c.subs[0]
	}
	return c
}

// cross returns every string of a followed by a string of b.
func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

// literalRunes returns the runes a literal rune matches: itself, or with
// case folding its whole SimpleFold orbit, as Go's regexp does. A literal
// U+FFFD is refused: the regexp matches it against every invalid byte of
// the input, which has no fixed spelling to search for.
func literalRunes(r rune, foldCase bool) ([]rune, bool) {
	if r == utf8.RuneError {
		return nil, false
	}
	runes := []rune{r}
	if foldCase {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			runes = append(runes, f)
		}
	}
	return runes, true
}

// classRunes expands a small character class (pairs of inclusive ranges)
// into its runes. Large classes, and classes holding U+FFFD (which matches
// invalid bytes), are refused.
func classRunes(ranges []rune) ([]rune, bool) {
	var runes []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if lo <= utf8.RuneError && utf8.RuneError <= hi {
			return nil, false
		}
		if int(hi-lo)+1+len(runes) > maxClassRune {
			return nil, false
		}
		for r := lo; r <= hi; r++ {
			runes = append(runes, r)
		}
	}
	return runes, len(runes) > 0
}

// runesToStrings folds each rune into a one-rune string. Folding can merge
// runes of one orbit (k, K, U+212A all become "k").
func runesToStrings(runes []rune) []string {
	out := make([]string, 0, len(runes))
	for _, r := range runes {
		out = append(out, fold(string(r)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// condOf parses pattern the way Go's regexp.Compile does and returns its
// necessary condition.
func condOf(pattern string) (*cond, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	return analyze(re.Simplify()).asCond(), nil
}

// String renders a condition for tests and debugging.
func (c *cond) String() string {
	switch c.op {
	case condAll:
		return "*"
	case condAtom:
		return strings.ReplaceAll(c.atom, " ", "␠")
	}
	sep := " & "
	if c.op == condOr {
		sep = " | "
	}
	parts := make([]string, len(c.subs))
	for i, s := range c.subs {
		parts[i] = s.String()
	}
	return "(" + strings.Join(parts, sep) + ")"
}
