// Package fastrx serves Coraza's @rx operator faster, with the same answers.
//
// Place in the request path: inside the rule-engine stage (package waf), at
// the bottom of it. For every rule that uses @rx, Coraza calls the operator
// once per (transformed) variable value; that is where a form POST spends
// most of its time, because Go's regexp runs the whole automaton over the
// whole value even when nothing matches, which for benign traffic is almost
// always.
//
// What it does: each pattern is compiled exactly as Coraza compiles it (Go's
// regexp with Coraza's flags, or Coraza's byte engine for patterns that match
// invalid UTF-8). In addition, from the pattern's syntax tree it derives a
// necessary condition: an AND/OR tree of literal strings ("atoms") that any
// matching input must contain, honouring case folding. One pass of an
// Aho-Corasick automaton over the value finds which atoms occur; only when
// the condition holds does the regexp run, with the same calls, so matches
// and captures (TX.0-TX.8) are Coraza's own. A pattern with no usable
// literal always runs the regexp.
//
// Coraza offers one extension point for this, a process-wide operator
// registry (experimental/plugins). Register replaces "rx" there: every WAF
// compiled after the call, in this process, uses this operator.
package fastrx

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"rsc.io/binaryregexp"
)

// Name says which @rx engine Register installs, for version output.
const Name = "fastrx (literal prefilter + Go regexp)"

var (
	once       sync.Once
	registered atomic.Bool
)

// Register makes Coraza use this package's @rx for every WAF compiled from
// now on. It is safe to call more than once and from several goroutines, but
// not while a WAF is being compiled on another goroutine (Coraza's registry
// is a plain map).
func Register() {
	once.Do(func() {
		plugins.RegisterOperator("rx", New)
		registered.Store(true)
	})
}

// Registered reports whether Register has run: from then on, Coraza's own
// @rx can no longer be compiled in this process (benchmarks that compare
// the two need to know).
func Registered() bool { return registered.Load() }

// operator is @rx for patterns Go's regexp compiles.
type operator struct {
	*compiled
}

// compiled is what the memoizer shares between rules (and WAFs) with the
// same pattern.
type compiled struct {
	re *regexp.Regexp
	// prefix: every match starts with it (Go's regexp.LiteralPrefix; only
	// patterns that do not fold case have one). strings.Contains checks it
	// at memchr speed, as Go's regexp itself does before anything else.
	prefix string
	pf     *prefilter // nil: no usable literal, or none that is rare enough
	dfa    *dfa       // nil: program too large
}

// memoKey prefixes our entries in Coraza's memoizer, whose cache is shared
// with Coraza's own operators: equal keys would hand us their values.
const memoKey = "portcullis/fastrx:"

// New is the operator factory (plugintypes.OperatorFactory).
func New(options plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	expr := flags + options.Arguments
	if matchesBytes(expr) {
		return newBytes(options)
	}
	v, err := memoize(options.Memoizer, memoKey+expr, func() (any, error) {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		c := &compiled{re: re}
		c.prefix, _ = re.LiteralPrefix()
		// The pattern has just compiled with the same parser, so this
		// cannot fail; if it ever did, the regexp alone would answer.
		if parsed, err := syntax.Parse(expr, syntax.Perl); err == nil {
			simple := parsed.Simplify()
			c.pf = newPrefilter(analyze(simple).asCond())
			if prog, err := syntax.Compile(simple); err == nil {
				c.dfa = newDFA(prog)
			}
		}
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return &operator{v.(*compiled)}, nil
}

// Evaluate answers as Coraza's @rx does: a match sets the captures of
// groups 0-8 when the rule captures (a group that took no part is set to
// the empty string), and nothing is captured without a match.
func (o *operator) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if o.prefix != "" && !strings.Contains(value, o.prefix) {
		return false
	}
	if o.pf != nil && !o.pf.mayMatch(tx.ID(), value) {
		return false
	}
	if o.dfa != nil {
		if match, ok := o.dfa.mayMatch(value); ok && !match {
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
	v, err := memoize(options.Memoizer, memoKey+"bytes:"+options.Arguments, func() (any, error) {
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

func memoize(m plugintypes.Memoizer, key string, fn func() (any, error)) (any, error) {
	if m == nil {
		return fn()
	}
	return m.Do(key, fn)
}

var (
	_ plugintypes.Operator        = (*operator)(nil)
	_ plugintypes.Operator        = (*bytesOperator)(nil)
	_ plugintypes.OperatorFactory = New
)
