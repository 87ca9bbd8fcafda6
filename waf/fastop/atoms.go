package fastop

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// atomTable numbers the atoms of every pattern compiled in the process and
// scans values for all of them at once. Coraza evaluates many @rx rules on
// the same value (one form field, after the same transformations): on the
// bench/ form post, 1,828 evaluations per request see only 84 distinct
// values (282 distinct strings: equal values come out of different
// transformation chains). One scan per distinct value, remembered for the
// rules that follow, replaces a scan per rule.
//
// It is process-wide because Coraza's operator registry is, and gives an
// operator no handle on the WAF it belongs to; it only grows, by the atoms
// of patterns not seen before (custom rules added by a reload), and the
// automaton is rebuilt on the first evaluation that needs the new atoms.
type atomTable struct {
	mu    sync.Mutex
	ids   map[string]uint32
	atoms []string
	auto  atomic.Pointer[automaton] // covers atoms[:auto.n]

	// Recent scans, by transaction and value. An entry is used only for an
	// equal value of the same transaction (by its ID): the answer would be
	// right for any transaction, but sharing scans between requests would
	// make benchmarks that repeat one request look better than traffic.
	// Entries keep their values alive, hence the size limits.
	small [256]atomic.Pointer[scanResult] // values up to maxSmall bytes
	large [8]atomic.Pointer[scanResult]   // values up to maxLarge bytes
	seed  maphash.Seed
}

const (
	maxSmall = 32 << 10
	maxLarge = 1 << 20
)

type automaton struct {
	sc *scanner
	n  uint32 // atoms covered
}

type scanResult struct {
	auto  *automaton
	tx    string // transaction ID
	value string
	found []uint64 // bit i: atom i occurs in the (folded) value
}

var atoms = &atomTable{ids: map[string]uint32{}, seed: maphash.MakeSeed()}

// id returns the number of atom a (folded, non-empty), adding it.
func (t *atomTable) id(a string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[a]; ok {
		return id
	}
	id := uint32(len(t.atoms))
	t.ids[a] = id
	t.atoms = append(t.atoms, a)
	return id
}

// automatonFor returns an automaton that covers atom max, building one if
// the current one is older than that atom.
func (t *atomTable) automatonFor(max uint32) *automaton {
	if a := t.auto.Load(); a != nil && max < a.n {
		return a
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.auto.Load(); a != nil && max < a.n {
		return a
	}
	a := &automaton{sc: newScanner(t.atoms), n: uint32(len(t.atoms))}
	t.auto.Store(a)
	return a
}

// found returns which atoms of a occur in value, which transaction tx is
// evaluating.
func (t *atomTable) found(a *automaton, tx, value string) []uint64 {
	if len(value) > maxLarge {
		return a.sc.scanAll(value)
	}
	h := maphash.String(t.seed, value) ^ maphash.String(t.seed, tx)
	slot := &t.small[h%uint64(len(t.small))]
	if len(value) > maxSmall {
		slot = &t.large[h%uint64(len(t.large))]
	}
	if r := slot.Load(); r != nil && r.auto == a && r.tx == tx && r.value == value {
		return r.found
	}
	f := a.sc.scanAll(value)
	slot.Store(&scanResult{auto: a, tx: tx, value: value, found: f})
	return f
}
