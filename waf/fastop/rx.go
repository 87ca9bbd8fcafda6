package fastop

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
)

// rxOperator is @rx for patterns Go's regexp compiles.
type rxOperator struct {
	*rxCompiled
}

// rxCompiled is what the memoizer shares between rules (and WAFs) with the
// same pattern.
type rxCompiled struct {
	re *regexp.Regexp
	// prefix: every match starts with it (Go's regexp.LiteralPrefix; only
	// patterns that do not fold case have one). strings.Contains checks it
	// at memchr speed, as Go's regexp itself does before anything else.
	prefix string
	pf     *prefilter // nil: no usable literal, or none that is rare enough

	// The DFA is built the first time a value gets past the prefilter: with
	// benign traffic most patterns never need one, and its program (a copy
	// of the one inside re, which Go does not share) is the larger part of
	// the memory this package adds.
	expr    string
	dfaOnce sync.Once
	dfa     *dfa // nil: not built yet, or the program is too large
}

// automaton returns the pattern's DFA, building it on first use; nil when
// the program is too large for one.
func (c *rxCompiled) automaton() *dfa {
	c.dfaOnce.Do(func() {
		// The pattern has compiled with the same parser, so this cannot
		// fail; if it ever did, the regexp alone would answer.
		parsed, err := syntax.Parse(c.expr, syntax.Perl)
		if err != nil {
			return
		}
		if prog, err := syntax.Compile(parsed.Simplify()); err == nil {
			c.dfa = newDFA(prog)
		}
	})
	return c.dfa
}

// NewRx is the @rx operator factory (plugintypes.OperatorFactory).
func NewRx(options plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	expr := flags + options.Arguments
	if matchesBytes(expr) {
		return newBytes(options)
	}
	v, err := memoize(options.Memoizer, memoKey+"rx:"+expr, func() (any, error) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		c := &rxCompiled{re: re, expr: expr}
		c.prefix, _ = re.LiteralPrefix()
		// The pattern has just compiled with the same parser, so this
		// cannot fail; if it ever did, the regexp alone would answer.
		if parsed, err := syntax.Parse(expr, syntax.Perl); err == nil {
			c.pf = newPrefilter(analyze(parsed.Simplify()).asCond())
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return &rxOperator{v.(*rxCompiled)}, nil
}

// Evaluate answers as Coraza's @rx does: a match sets the captures of
// groups 0-8 when the rule captures (a group that took no part is set to
// the empty string), and nothing is captured without a match.
func (o *rxOperator) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.prefix != "" && !strings.Contains(value, o.prefix) {
		return false
	}
	if o.pf != nil && !o.pf.mayMatch(tx.ID(), value) {
		return false
	}
	if d := o.automaton(); d != nil {
		if match, ok := d.mayMatch(value); ok && !match {
			return false
		}
	}
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	m := o.re.FindStringSubmatchIndex(value)
	if m == nil {
		return false
	}
	for i := 0; i < len(m)/2 && i < maxCaptures; i++ {
		if m[2*i] < 0 {
			tx.CaptureField(i, "")
		} else {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		}
	}
	return true
}

// maxCaptures: Coraza captures groups 0 to 8 (it stops at index 9).
const maxCaptures = 9

// bytesOperator is @rx for patterns that match invalid UTF-8, served as
// Coraza serves them: rsc.io/binaryregexp on the pattern without flags,
// no prefilter (such patterns are rare and their literals are bytes).
type bytesOperator struct {
	re *binaryregexp.Regexp
}

func newBytes(options plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	v, err := memoize(options.Memoizer, memoKey+"rxbytes:"+options.Arguments, func() (any, error) {
		return binaryregexp.Compile(options.Arguments)
	})
	if err != nil {
		return nil, err
	}
	return &bytesOperator{re: v.(*binaryregexp.Regexp)}, nil
}

func (o *bytesOperator) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	m := o.re.FindStringSubmatch(value)
	if len(m) == 0 {
		return false
	}
	for i := 0; i < len(m) && i < maxCaptures; i++ {
		tx.CaptureField(i, m[i])
	}
	return true
}

var (
	_ plugintypes.Operator        = (*rxOperator)(nil)
	_ plugintypes.Operator        = (*bytesOperator)(nil)
	_ plugintypes.OperatorFactory = NewRx
)
