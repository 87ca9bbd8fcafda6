package fastop

import "unicode/utf8"

// maxAtomLen is the longest atom searched for.
const maxAtomLen = 6

// prefilter decides cheaply that an input cannot match a pattern: which of
// the pattern's atoms occur in the input comes from one scan shared by all
// patterns (atomTable); the pattern's necessary condition is then evaluated
// on them. "May match" sends the input on; "cannot match" skips the
// automaton and the regexp.
type prefilter struct {
	root node
	max  uint32 // largest atom number in root
}

// node is a cond with atoms numbered by the atom table.
type node struct {
	op   condOp
	atom uint32
	subs []node
}

// newPrefilter returns the prefilter for c, or nil when c, pruned, is
// condAll: no literal worth looking for.
func newPrefilter(c *cond) *prefilter {
	if c = prune(c); c.op == condAll {
		return nil
	}
	p := &prefilter{}
	var number func(c *cond) node
	number = func(c *cond) node {
		n := node{op: c.op}
		switch c.op {
		case condAtom:
			n.atom = atoms.id(c.atom)
			p.max = max(p.max, n.atom)
		case condAnd, condOr:
			for _, s := range c.subs {
				n.subs = append(n.subs, number(s))
			}
		}
		return n
	}
	p.root = number(c)
	return p
}

// prune drops from c the atoms that ordinary text is full of (a single
// letter, digit or white space), replacing them by condAll: a condition that such
// an atom satisfies rejects almost nothing, and the atom would make every
// scan report a hit at nearly every byte. Dropping an atom only weakens
// the condition, so it stays a necessary one. Punctuation is rare in text:
// a single '<' or '$' is kept.
func prune(c *cond) *cond {
	switch c.op {
	case condAtom:
		if len(c.atom) == 1 {
			if b := c.atom[0]; b == ' ' || b >= '\t' && b <= '\r' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' {
				return all
			}
		}
		if len(c.atom) > maxAtomLen {
			// Where a long atom occurs, so does its start: a shorter atom
			// keeps nearly all the selectivity and makes the automaton
			// smaller. Cut at a rune boundary (see fold.go).
			n := maxAtomLen
			for n > 0 && !utf8.RuneStart(c.atom[n]) {
				n--
			}
			return &cond{op: condAtom, atom: c.atom[:n]}
		}
		return c
	case condAnd, condOr:
		subs := make([]*cond, len(c.subs))
		for i, s := range c.subs {
			subs[i] = prune(s)
		}
		if c.op == condAnd {
			return and(subs)
		}
		return or(subs)
	}
	return c
}

// mayMatch reports whether input, evaluated by transaction tx (its ID),
// satisfies the condition.
func (p *prefilter) mayMatch(tx, input string) bool {
	a := atoms.automatonFor(p.max)
	return p.root.eval(atoms.found(a, tx, input))
}

func (n *node) eval(found []uint64) bool {
	switch n.op {
	case condAtom:
		return found[n.atom/64]&(1<<(n.atom%64)) != 0
	case condAnd:
		for i := range n.subs {
			if !n.subs[i].eval(found) {
				return false
			}
		}
		return true
	case condOr:
		for i := range n.subs {
			if n.subs[i].eval(found) {
				return true
			}
		}
		return false
	}
	return true
}
