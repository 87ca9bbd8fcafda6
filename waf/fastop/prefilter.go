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

// node is a cond with atoms numbered by the atom table, each AND or OR
// holding its atoms as bit masks over the words of the found set: an OR of
// ninety scheme names is then a handful of word tests.
type node struct {
	op    condOp // condAnd or condOr
	words []uint32
	masks []uint64
	subs  []node
}

// addAtom adds atom id to n's masks.
func (n *node) addAtom(id uint32) {
	w, bit := id/64, uint64(1)<<(id%64)
	for i := range n.words {
		if n.words[i] == w {
			n.masks[i] |= bit
			return
		}
	}
	n.words = append(n.words, w)
	n.masks = append(n.masks, bit)
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
		subs := c.subs
		if c.op == condAtom { // a lone atom: an OR of one
			n.op, subs = condOr, []*cond{c}
		}
		for _, s := range subs {
			if s.op == condAtom {
				id := atoms.id(s.atom)
				p.max = max(p.max, id)
				n.addAtom(id)
				continue
			}
			n.subs = append(n.subs, number(s))
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
	if n.op == condAnd {
		for i, w := range n.words {
			if found[w]&n.masks[i] != n.masks[i] {
				return false
			}
		}
		for i := range n.subs {
			if !n.subs[i].eval(found) {
				return false
			}
		}
		return true
	}
	for i, w := range n.words {
		if found[w]&n.masks[i] != 0 {
			return true
		}
	}
	for i := range n.subs {
		if n.subs[i].eval(found) {
			return true
		}
	}
	return false
}
