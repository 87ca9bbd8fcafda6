package fastop

import (
	"slices"
)

// scanner finds which of a set of atoms occur in a folded input, in one
// pass: an Aho-Corasick automaton turned into a full DFA over byte classes.
//
// The transition table is indexed by state*classes+class; entries are the
// next state, with the top bit set when that state ends at least one atom,
// so the inner loop tests one bit to know whether there is anything to
// record. With fewer than 32,768 states (the CRS's atoms make about 8,000)
// entries are 16 bits: the scan is bound by the latency of these lookups,
// and a table half the size stays in cache twice as well.
type scanner struct {
	class   [256]uint8 // folded byte -> byte class (0: no atom uses it)
	classes uint32     // number of classes
	trans   []uint32   // state*classes+class -> next state | outFlag
	trans16 []uint16   // the same with 16-bit entries, when they fit
	out     [][]uint32 // state -> atoms ending there (own and through failure links)
	atoms   int
}

const (
	outFlag   = 1 << 31
	outFlag16 = 1 << 15
)

// newScanner builds the automaton for atoms, which must be folded, non-empty
// and distinct.
func newScanner(atoms []string) *scanner {
	s := buildScanner(atoms)
	s.compact()
	return s
}

// buildScanner builds the automaton with 32-bit entries.
func buildScanner(atoms []string) *scanner {
	s := &scanner{atoms: len(atoms)}
	// Byte classes: every byte used by an atom gets its own class; class 0
	// covers the rest.
	next := uint8(1)
	for _, a := range atoms {
		for i := 0; i < len(a); i++ {
			if s.class[a[i]] == 0 {
				s.class[a[i]] = next
				next++
			}
		}
	}
	// Upper case input bytes share the class of their lower case form, so
	// the scan folds ASCII for free.
	for c := 'A'; c <= 'Z'; c++ {
		s.class[c] = s.class[c+'a'-'A']
	}
	s.classes = uint32(next)

	// Trie.
	type node struct {
		child map[uint8]int32
		fail  int32
		out   []uint32
	}
	nodes := []node{{child: map[uint8]int32{}}}
	for id, a := range atoms {
		cur := int32(0)
		for i := 0; i < len(a); i++ {
			c := s.class[a[i]]
			nx, ok := nodes[cur].child[c]
			if !ok {
				nx = int32(len(nodes))
				nodes = append(nodes, node{child: map[uint8]int32{}})
				nodes[cur].child[c] = nx
			}
			cur = nx
		}
		nodes[cur].out = append(nodes[cur].out, uint32(id))
	}

	// Number the states breadth-first, so that the shallow ones, where a
	// scan of ordinary text spends nearly all its time, share cache lines.
	order := []int32{0}
	for i := 0; i < len(order); i++ {
		for c := uint32(0); c < s.classes; c++ {
			if child, ok := nodes[order[i]].child[uint8(c)]; ok {
				order = append(order, child)
			}
		}
	}
	renumber := make([]int32, len(nodes))
	for newID, old := range order {
		renumber[old] = int32(newID)
	}
	bfs := make([]node, len(nodes))
	for old, nd := range nodes {
		for c, child := range nd.child {
			nd.child[c] = renumber[child]
		}
		bfs[renumber[old]] = nd
	}
	nodes = bfs

	// Breadth-first: failure links, inherited outputs and the full
	// transition table (a missing edge follows the failure link, whose row
	// is already complete because it is shallower).
	n := uint32(len(nodes))
	s.trans = make([]uint32, n*s.classes)
	s.out = make([][]uint32, n)
	queue := []int32{0}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		nd := &nodes[cur]
		if cur != 0 {
			nd.out = append(nd.out, nodes[nd.fail].out...)
		}
		slices.Sort(nd.out)
		nd.out = slices.Compact(nd.out)
		s.out[cur] = nd.out
		for c := uint32(0); c < s.classes; c++ {
			var target int32
			if child, ok := nd.child[uint8(c)]; ok {
				target = child
				if cur != 0 {
					nodes[child].fail = int32(s.trans[uint32(nd.fail)*s.classes+c])
				}
				queue = append(queue, child)
			} else if cur != 0 {
				target = int32(s.trans[uint32(nd.fail)*s.classes+c])
			}
			s.trans[uint32(cur)*s.classes+c] = uint32(target)
		}
	}
	// Flag the entries that lead into states with outputs. Done last: the
	// failure computation above divides entries and must see them plain.
	for i, t := range s.trans {
		if len(s.out[t]) > 0 {
			s.trans[i] = t | outFlag
		}
	}
	return s
}

// compact switches to 16-bit entries when the states allow it.
func (s *scanner) compact() {
	if len(s.out) >= outFlag16 {
		return
	}
	s.trans16 = make([]uint16, len(s.trans))
	for i, t := range s.trans {
		s.trans16[i] = uint16(t&^outFlag) | uint16(t>>16&outFlag16)
	}
	s.trans = nil
}

// tableBytes is the size of the transition table.
func (s *scanner) tableBytes() int { return 4*len(s.trans) + 2*len(s.trans16) }

// scanAll folds the input on the fly and returns the set of atoms that
// occur in it, as a bitset.
func (s *scanner) scanAll(input string) []uint64 {
	found := make([]uint64, (s.atoms+63)/64)
	if s.trans16 != nil {
		scan(s, s.trans16, outFlag16, input, found)
	} else {
		scan(s, s.trans, outFlag, input, found)
	}
	return found
}

func scan[T uint16 | uint32](s *scanner, trans []T, flag T, input string, found []uint64) {
	class, classes, out := &s.class, T(s.classes), s.out
	state := T(0)
	for i := 0; i < len(input); i++ {
		c := input[i]
		if c >= longS0 {
			// The two non-ASCII spellings of ASCII letters under Unicode
			// case folding (see fold.go).
			if c == kelvin0 && i+2 < len(input) && input[i+1] == kelvin1 && input[i+2] == kelvin2 {
				c = 'k'
				i += 2
			} else if c == longS0 && i+1 < len(input) && input[i+1] == longS1 {
				c = 's'
				i++
			}
		}
		state = trans[int(state)*int(classes)+int(class[c])]
		if state&flag != 0 {
			state &^= flag
			for _, a := range out[state] {
				found[a/64] |= 1 << (a % 64)
			}
		}
	}
}
