// Package fastop serves Coraza's @rx and @pm operators faster, with the same
// answers.
//
// Place in the request path: inside the rule-engine stage (package waf), at
// the bottom of it. For every rule, Coraza calls the rule's operator once
// per (transformed) variable value. That is where a form POST spends most of
// its time with the stock operators: Go's regexp runs its automaton over the
// whole value even when nothing matches, which for benign traffic is almost
// always, and @pm builds a byte copy of the value for its Aho-Corasick
// search every time.
//
// What it does, for each pattern (see rx.go, pm.go):
//
//   - It is compiled exactly as Coraza compiles it (Go's regexp with
//     Coraza's flags, Coraza's byte engine for @rx patterns that match
//     invalid UTF-8, the same Aho-Corasick library and options for @pm), and
//     that compiled form has the last word on every match and capture.
//   - From its syntax tree comes a necessary condition: an AND/OR tree of
//     literal strings ("atoms") that any matching input contains, honouring
//     case folding. The atoms of all patterns are searched in one pass per
//     distinct value of a transaction (atoms.go); a value that fails the
//     condition cannot match, and nothing else runs.
//   - An @rx value that passes goes through a lazily built DFA over Go's
//     own compiled program (dfa.go), which says exactly whether Go's regexp
//     would match; only if it would does the regexp run, for the captures.
//
// Coraza offers one extension point for this, a process-wide operator
// registry (experimental/plugins). Register replaces "rx", "pm",
// "pmFromFile" and "pmf" there: every WAF compiled after the call, in this
// process, uses them. The differential tests (diff_test.go,
// engine_diff_test.go) compare them with Coraza's own on every pattern of
// the CRS and on the CRS regression requests.
//
// Built with the tag portcullis_stock_operators, Register does nothing and
// Coraza's own operators serve: for comparisons (bench/run.sh's
// portcullis-stock row), or as a fallback.
package fastop

import (
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// DFAMemory is the memory, in bytes, held by the state caches of every
// pattern's automaton in the process (bounded by 64 MiB in all).
func DFAMemory() int64 { return dfaTotal.Load() }

// memoKey prefixes our entries in Coraza's memoizer, whose cache is shared
// with Coraza's own operators: equal keys would hand us their values.
const memoKey = "portcullis/fastop:"

func memoize(m plugintypes.Memoizer, key string, fn func() (any, error)) (any, error) {
	if m == nil {
		return fn()
	}
	return m.Do(key, fn)
}
