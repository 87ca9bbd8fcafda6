package fastop

import (
	"regexp/syntax"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// dfa answers one question about a pattern, exactly: does Go's regexp find
// a match anywhere in the input? It runs the very program Go's regexp runs
// (the same parse, simplification and compilation), over the same runes
// (invalid bytes read as U+FFFD one byte at a time), with the same
// empty-width rules, but as a lazily built deterministic automaton: one
// table lookup per input byte instead of Go's step over every live thread.
//
// It is only ever trusted to say "no match": when it finds one, the operator
// still asks Go's regexp (which also supplies the captures). Benign traffic
// almost never matches, so the regexp then rarely runs at all.
//
// States are sets of program counters built on demand and kept in a cache
// shared by all goroutines: transitions are read without locks and added
// under a mutex. A cache that grows past its budget is dropped and started
// again; the scan that hit the limit is answered by the regexp instead.
type dfa struct {
	prog  *syntax.Prog
	start uint32 // first instruction, re-entered at every position (unanchored search)

	// Rune classes: runes that every instruction treats alike and that
	// give the same empty-width context fall into one class.
	ascii    [utf8.RuneSelf]uint32
	hiStarts []rune   // starts of the non-ASCII intervals, ascending
	hiClass  []uint32 // class of each interval
	ctx      []uint8  // class -> context it gives (ctxNewline, ctxWord, ctxOther)
	rep      []rune   // class -> a rune of the class
	classes  uint32   // number of classes; column classes is end of text
	stride   uint32   // classes+1: entries per state in the table

	budget int // bytes one cache may hold
	cache  atomic.Pointer[dfaCache]
	// held is what this automaton's caches count in dfaTotal; a cleanup
	// gives it back when the automaton is garbage (its rule set closed).
	held *atomic.Int64
}

// Contexts for empty-width assertions: what the rune before a position is
// (ctxBegin: none), or what the rune after it is (ctxEnd: none).
const (
	ctxBegin uint8 = iota
	ctxNewline
	ctxWord
	ctxOther
	ctxEnd
)

// ctxRune is a rune with the given context, for syntax.EmptyOpContext.
var ctxRune = [...]rune{ctxBegin: -1, ctxNewline: '\n', ctxWord: 'a', ctxOther: ' ', ctxEnd: -1}

// Table entries: 0 is a transition not computed yet; entryMatched means a
// thread reached the match instruction (the answer is yes); otherwise the
// entry is the next state's row offset in the table (state*stride; state 0
// is never used, so offsets are never 0).
const entryMatched = 1 << 31

// dfaCache holds the states of one generation. The table is replaced by a
// larger copy as states are added; readers load it once per scan and, on a
// missing entry, take the lock and look again in the current one.
type dfaCache struct {
	table atomic.Pointer[[]uint32]

	mu     sync.Mutex
	states map[string]uint32 // state key -> row offset
	pcs    [][]uint32        // state number -> program counters
	ctxOf  []uint8           // state number -> context of the rune before
	bytes  int               // memory held, roughly
	dead   bool              // replaced by a new cache; add nothing more
	begin  uint32            // row offset of the state at the start of the input
	// scratch for computing transitions, guarded by mu
	seen  []uint32
	stamp uint32
	stack []uint32
	next  []uint32
	key   []byte
}

// Memory bounds, in bytes: of one pattern's state cache, and of all of
// them in the process together (a few hundred patterns, each of which an
// attacker could try to fill). A cache that would exceed either is
// dropped and started again.
const (
	dfaBudget      = 1 << 20
	dfaTotalBudget = 64 << 20
)

// dfaTotal is the memory held by all live state caches (checked, then
// added to, without a lock: concurrent growth can overshoot the budget by
// a few states).
var dfaTotal atomic.Int64

// maxDFAInst: programs larger than this are not worth a DFA here (closures
// would be slow to build); the regexp answers alone.
const maxDFAInst = 1 << 15

func newDFA(prog *syntax.Prog) *dfa {
	if len(prog.Inst) > maxDFAInst {
		return nil
	}
	d := &dfa{prog: prog, start: uint32(prog.Start), budget: dfaBudget, held: new(atomic.Int64)}
	d.buildClasses()
	d.stride = d.classes + 1
	d.cache.Store(d.newCache())
	runtime.AddCleanup(d, func(held *atomic.Int64) { dfaTotal.Add(-held.Load()) }, d.held)
	return d
}

// charge counts n more (or, negative, fewer) bytes held by d's caches.
func (d *dfa) charge(n int) {
	d.held.Add(int64(n))
	dfaTotal.Add(int64(n))
}

func (d *dfa) newCache() *dfaCache {
	c := &dfaCache{
		states: map[string]uint32{},
		pcs:    [][]uint32{nil}, // state 0: unused
		ctxOf:  []uint8{0},
		seen:   make([]uint32, len(d.prog.Inst)),
	}
	table := make([]uint32, 8*d.stride)
	c.table.Store(&table)
	c.bytes = 4 * (len(c.seen) + len(table))
	d.charge(c.bytes)
	c.begin, _ = d.state(c, nil, ctxBegin)
	return c
}

// buildClasses splits the rune space at every point where some instruction
// or context changes its answer, then gives intervals with the same
// answers the same class.
func (d *dfa) buildClasses() {
	cuts := map[rune]bool{0: true, '\n': true, '\n' + 1: true}
	cut := func(lo, hi rune) { cuts[lo] = true; cuts[hi+1] = true }
	cut('0', '9')
	cut('A', 'Z')
	cut('_', '_')
	cut('a', 'z')
	cut(utf8.RuneSelf, utf8.RuneSelf) // keeps ASCII apart from the rest
	var runeInsts []*syntax.Inst
	for i := range d.prog.Inst {
		in := &d.prog.Inst[i]
		switch in.Op {
		case syntax.InstRune:
			runeInsts = append(runeInsts, in)
			if len(in.Rune) == 1 {
				r := in.Rune[0]
				cut(r, r)
				if syntax.Flags(in.Arg)&syntax.FoldCase != 0 {
					for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
						cut(f, f)
					}
				}
				continue
			}
			for j := 0; j+1 < len(in.Rune); j += 2 {
				cut(in.Rune[j], in.Rune[j+1])
			}
		case syntax.InstRune1:
			runeInsts = append(runeInsts, in)
			cut(in.Rune[0], in.Rune[0])
		case syntax.InstRuneAny, syntax.InstRuneAnyNotNL:
			runeInsts = append(runeInsts, in)
		}
	}
	starts := make([]rune, 0, len(cuts))
	for r := range cuts {
		if r <= utf8.MaxRune {
			starts = append(starts, r)
		}
	}
	slices.Sort(starts)

	// Signature of an interval: which rune instructions accept its runes,
	// and its context.
	byKey := map[string]uint32{}
	sig := make([]byte, (len(runeInsts)+7)/8+1)
	for k, lo := range starts {
		r := lo // every rune of [lo, next start) behaves like lo
		clear(sig)
		for j, in := range runeInsts {
			if matchRune(in, r) {
				sig[j/8] |= 1 << (j % 8)
			}
		}
		c := runeCtx(r)
		sig[len(sig)-1] = c
		id, ok := byKey[string(sig)]
		if !ok {
			id = uint32(len(d.rep))
			byKey[string(sig)] = id
			d.rep = append(d.rep, r)
			d.ctx = append(d.ctx, c)
		}
		hi := rune(utf8.MaxRune)
		if k+1 < len(starts) {
			hi = starts[k+1] - 1
		}
		if lo < utf8.RuneSelf {
			for a := lo; a <= hi && a < utf8.RuneSelf; a++ {
				d.ascii[a] = id
			}
			continue
		}
		d.hiStarts = append(d.hiStarts, lo)
		d.hiClass = append(d.hiClass, id)
	}
	d.classes = uint32(len(d.rep))
}

func matchRune(in *syntax.Inst, r rune) bool {
	switch in.Op {
	case syntax.InstRune1:
		return r == in.Rune[0]
	case syntax.InstRuneAny:
		return true
	case syntax.InstRuneAnyNotNL:
		return r != '\n'
	}
	return in.MatchRune(r)
}

func runeCtx(r rune) uint8 {
	switch {
	case r == '\n':
		return ctxNewline
	case syntax.IsWordChar(r):
		return ctxWord
	}
	return ctxOther
}

// classOf is the class of a non-ASCII rune.
func (d *dfa) classOf(r rune) uint32 {
	i, _ := slices.BinarySearch(d.hiStarts, r+1) // first start > r
	return d.hiClass[i-1]
}

// mayMatch reports whether Go's regexp would find a match in input. ok is
// false when the state cache ran over its budget during this scan: then the
// answer is unknown.
func (d *dfa) mayMatch(input string) (match, ok bool) {
	c := d.cache.Load()
	table := *c.table.Load()
	ascii := &d.ascii
	s := c.begin
	for i := 0; i < len(input); {
		var cls uint32
		if b := input[i]; b < utf8.RuneSelf {
			cls = ascii[b]
			i++
		} else {
			r, w := utf8.DecodeRuneInString(input[i:])
			cls = d.classOf(r)
			i += w
		}
		e := atomic.LoadUint32(&table[s+cls])
		if int32(e) <= 0 { // not computed yet, or matched
			if e == 0 {
				if e = d.step(c, s, cls); e == 0 {
					return false, false
				}
				table = *c.table.Load()
			}
			if e == entryMatched {
				return true, true
			}
		}
		s = e
	}
	e := atomic.LoadUint32(&table[s+d.classes])
	if e == 0 {
		if e = d.step(c, s, d.classes); e == 0 {
			return false, false
		}
	}
	return e == entryMatched, true
}

// endState is the entry stored for "end of text reached, no match": any
// value other than 0 and entryMatched does; it is never followed.
const endState = 1

// step computes the transition of state s (a row offset) on class cls
// (d.classes: end of text), stores and returns it; 0 when the cache is full
// (it is then replaced by an empty one for later scans).
func (d *dfa) step(c *dfaCache, s, cls uint32) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return 0
	}
	table := *c.table.Load()
	if e := table[s+cls]; e != 0 { // another goroutine was faster
		return e
	}
	id := s / d.stride
	nextCtx := ctxEnd
	if cls < d.classes {
		nextCtx = d.ctx[cls]
	}
	flags := syntax.EmptyOpContext(ctxRune[c.ctxOf[id]], ctxRune[nextCtx])

	// Follow every thread, and a new one from the start, through the
	// instructions that read no rune.
	c.stamp++
	if c.stamp == 0 { // wrapped: forget old stamps
		clear(c.seen)
		c.stamp = 1
	}
	c.stack = append(c.stack[:0], c.pcs[id]...)
	c.stack = append(c.stack, d.start)
	c.next = c.next[:0]
	var r rune
	if cls < d.classes {
		r = d.rep[cls]
	}
	e := uint32(0)
	for len(c.stack) > 0 && e == 0 {
		pc := c.stack[len(c.stack)-1]
		c.stack = c.stack[:len(c.stack)-1]
		if c.seen[pc] == c.stamp {
			continue
		}
		c.seen[pc] = c.stamp
		in := &d.prog.Inst[pc]
		switch in.Op {
		case syntax.InstMatch:
			e = entryMatched
		case syntax.InstAlt, syntax.InstAltMatch:
			c.stack = append(c.stack, in.Arg, in.Out)
		case syntax.InstCapture, syntax.InstNop:
			c.stack = append(c.stack, in.Out)
		case syntax.InstEmptyWidth:
			if syntax.EmptyOp(in.Arg)&^flags == 0 {
				c.stack = append(c.stack, in.Out)
			}
		case syntax.InstFail:
		default: // reads a rune
			if cls < d.classes && matchRune(in, r) {
				c.next = append(c.next, in.Out)
			}
		}
	}
	if e == 0 && cls == d.classes {
		e = endState
	}
	if e == 0 {
		slices.Sort(c.next)
		c.next = slices.Compact(c.next)
		var ok bool
		if e, ok = d.state(c, c.next, nextCtx); !ok {
			// Full: scans that still hold this cache give up on it (dead),
			// later ones start from an empty one.
			c.dead = true
			d.charge(-c.bytes)
			d.cache.Store(d.newCache())
			return 0
		}
		table = *c.table.Load() // state may have grown it
	}
	atomic.StoreUint32(&table[s+cls], e)
	return e
}

// state returns the row offset of the state (pcs, ctx), creating it; false
// when the cache is full. Called with c.mu held (or before c is shared).
func (d *dfa) state(c *dfaCache, pcs []uint32, ctx uint8) (uint32, bool) {
	c.key = append(c.key[:0], ctx)
	for _, pc := range pcs {
		c.key = append(c.key, byte(pc), byte(pc>>8), byte(pc>>16))
	}
	if off, ok := c.states[string(c.key)]; ok {
		return off, true
	}
	// A state costs its row (and the table's spare room, on average as
	// much again), its program counters and its key.
	size := int(d.stride)*8 + 4*len(pcs) + 2*len(c.key) + 64
	// The first state, where every scan begins, is always admitted.
	if len(c.pcs) > 1 && (c.bytes+size > d.budget || dfaTotal.Load()+int64(size) > dfaTotalBudget) {
		return 0, false
	}
	c.bytes += size
	d.charge(size)
	id := uint32(len(c.pcs))
	off := id * d.stride
	c.pcs = append(c.pcs, slices.Clone(pcs))
	c.ctxOf = append(c.ctxOf, ctx)
	c.states[string(c.key)] = off
	table := *c.table.Load()
	if need := int(off + d.stride); need > len(table) {
		// Grow by copying: readers of the old table find missing entries
		// there and come back here for them.
		bigger := make([]uint32, max(2*len(table), need))
		for i := range table {
			bigger[i] = atomic.LoadUint32(&table[i])
		}
		c.table.Store(&bigger)
	}
	return off, true
}
