package fastrx

// prefilter decides cheaply that an input cannot match a pattern: it scans
// the input once for the pattern's atoms and evaluates the pattern's
// necessary condition on the atoms found. "May match" sends the input on to
// the real regexp; "cannot match" skips it.
type prefilter struct {
	sc   *scanner
	root node
	// anyAtom: the condition is an OR of atoms (or a single atom), so the
	// first atom found settles it.
	anyAtom bool
}

// node is a cond with atoms numbered for the scanner.
type node struct {
	op   condOp
	atom uint16
	subs []node
}

// maxAtoms bounds the atoms of one pattern (the scanner numbers them with
// uint16); a pattern with more goes straight to the regexp.
const maxAtoms = 1 << 16

// newPrefilter returns the prefilter for c, or nil when c is condAll (no
// literal to look for: the regexp must always run).
func newPrefilter(c *cond) *prefilter {
	if c.op == condAll {
		return nil
	}
	ids := map[string]uint16{}
	var atoms []string
	var number func(c *cond) node
	number = func(c *cond) node {
		n := node{op: c.op}
		switch c.op {
		case condAtom:
			id, ok := ids[c.atom]
			if !ok {
				id = uint16(len(atoms))
				ids[c.atom] = id
				atoms = append(atoms, c.atom)
			}
			n.atom = id
		case condAnd, condOr:
			for _, s := range c.subs {
				n.subs = append(n.subs, number(s))
			}
		}
		return n
	}
	if countAtoms(c) > maxAtoms {
		return nil
	}
	p := &prefilter{root: number(c)}
	p.sc = newScanner(atoms)
	p.anyAtom = c.op == condAtom || c.op == condOr && allAtoms(c.subs)
	return p
}

func countAtoms(c *cond) int {
	if c.op == condAtom {
		return 1
	}
	n := 0
	for _, s := range c.subs {
		n += countAtoms(s)
	}
	return n
}

func allAtoms(cs []*cond) bool {
	for _, c := range cs {
		if c.op != condAtom {
			return false
		}
	}
	return true
}

// mayMatch reports whether input satisfies the condition.
func (p *prefilter) mayMatch(input string) bool {
	if p.anyAtom {
		return p.sc.scan(input, func(uint16) bool { return true })
	}
	var small [4]uint64
	seen := small[:]
	if words := (p.sc.atoms + 63) / 64; words > len(small) {
		seen = make([]uint64, words)
	}
	return p.sc.scan(input, func(a uint16) bool {
		w, bit := a/64, uint64(1)<<(a%64)
		if seen[w]&bit != 0 {
			return false
		}
		seen[w] |= bit
		return p.root.eval(seen)
	})
}

func (n *node) eval(seen []uint64) bool {
	switch n.op {
	case condAtom:
		return seen[n.atom/64]&(1<<(n.atom%64)) != 0
	case condAnd:
		for i := range n.subs {
			if !n.subs[i].eval(seen) {
				return false
			}
		}
		return true
	case condOr:
		for i := range n.subs {
			if n.subs[i].eval(seen) {
				return true
			}
		}
		return false
	}
	return true
}
