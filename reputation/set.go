// Package reputation answers "is this client address on an allow or deny
// list, and where is it from".
//
// Place in the request path: the gateway runs it right after clientip/ has
// settled the real client address and before ratelimit/ and waf/, so a
// listed address is refused (or let through) before it costs a rate-limit
// round trip or a rule-engine evaluation. It only answers questions; the
// gateway decides what an answer means (403, skip filters) and writes the
// audit record.
//
// Three pieces:
//   - Set: an immutable set of IPv4 and IPv6 prefixes with a lookup that
//     allocates nothing and stays well under a microsecond at a million
//     entries.
//   - List: a named Set built from inline entries, a local file and/or an
//     HTTP(S) feed (FireHOL .netset, Spamhaus DROP/EDROP; see ParseList),
//     refreshed in the background and swapped atomically. A refresh that
//     fails, is malformed or shrinks suspiciously keeps the last good list.
//   - GeoIP: country and autonomous system of an address from MaxMind or
//     DB-IP .mmdb files, reloaded when the files change.
//
// Nothing here does I/O on the lookup path: every Lookup reads immutable
// data behind an atomic pointer.
package reputation

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
)

// Set is an immutable set of IPv4 and IPv6 prefixes. The zero value and a
// nil *Set are empty sets. It is safe for concurrent use.
//
// Design: the prefixes are flattened into sorted, disjoint address ranges,
// each labelled with the prefix length of the most specific configured
// prefix covering it (or "none" for the gaps between). A lookup finds the
// last range starting at or before the address; the answer is the address
// masked to the label's length, which is exactly the configured prefix
// because that prefix covers the address. Storing a one-byte label instead
// of the prefix keeps a million-prefix set near 20 MiB (4 or 16 bytes of
// start plus 1 of label per range, at most two ranges per prefix, plus the
// index), and adjacent ranges with the same label (sibling /24s side by
// side, as in country lists) merge into one. A two-level radix index (see
// radix) narrows the search to a few ranges on one or two cache lines.
//
// Why not a trie: this needs no pointers (nothing for the GC to scan, one
// allocation per array), its size is predictable, and a lookup is a fixed
// number of reads; a million random lookups cost about one cache miss to
// main memory each, which is what a trie costs at best. A trie's advantage,
// cheap incremental updates, is worthless for a set rebuilt whole on every
// refresh. BenchmarkSetLookup has the numbers.
//
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are IPv4 addresses here: a
// lookup unmaps them first, so they match IPv4 entries, and an entry inside
// ::ffff:0:0/96 is stored as the IPv4 prefix it denotes. A wider IPv6 entry
// (::/0, ::/8) covers IPv6 addresses only; use 0.0.0.0/0 for all of IPv4.
// Zones (fe80::1%eth0) are ignored.
type Set struct {
	n  int
	v4 table4
	v6 table6
}

// noMatch labels the gaps between configured prefixes.
const noMatch = 0xff

// indexMin is the number of ranges from which a family gets the radix
// index (512 KiB and up). Below it a plain binary search over a few cache
// lines is as fast, and small sets (inline allow lists) stay small.
const indexMin = 4096

// table4 holds the IPv4 ranges: range i covers [starts[i], starts[i+1]).
type table4 struct {
	starts []uint32
	bits   []uint8
	index  radix // empty for small sets
}

// table6 is table4 for 128-bit addresses. The halves of a start sit side
// by side: when the high halves tie (an address at a range start, /65 and
// longer prefixes) the low half is on the same cache line.
type table6 struct {
	starts []u128
	bits   []uint8
	index  radix // on the top 32 bits of hi; empty for small sets
}

// NewSet builds a Set from prefixes. Host bits are cleared (1.2.3.4/24 is
// 1.2.3.0/24), duplicates count once, and invalid prefixes (the zero
// netip.Prefix) are skipped. The slice is not retained.
func NewSet(prefixes []netip.Prefix) *Set {
	n4 := 0
	for _, p := range prefixes {
		if p.IsValid() && (p.Addr().Is4() || p.Addr().Is4In6() && p.Bits() >= 96) {
			n4++
		}
	}
	// Exact sizes: a million-prefix build should not also leave a trail
	// of outgrown slices for the collector.
	v4, v6 := make([]span, 0, n4), make([]span, 0, len(prefixes)-n4)
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		p = canonical(p)
		if p.Addr().Is4() {
			v4 = append(v4, spanOf(p))
		} else {
			v6 = append(v6, spanOf(p))
		}
	}
	s := &Set{}
	var d4, d6 int
	s.v4, d4 = build4(v4)
	s.v6, d6 = build6(v6)
	s.n = d4 + d6
	return s
}

// canonical masks p and turns an entry inside ::ffff:0:0/96 into the IPv4
// prefix it denotes, so it meets unmapped lookups.
func canonical(p netip.Prefix) netip.Prefix {
	a, b := p.Addr(), p.Bits()
	if a.Is4In6() && b >= 96 {
		return netip.PrefixFrom(a.Unmap(), b-96).Masked()
	}
	return netip.PrefixFrom(a.WithZone(""), b).Masked()
}

// u128 is an address as a number; IPv4 uses lo only.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) inc() u128 {
	a.lo++
	if a.lo == 0 {
		a.hi++
	}
	return a
}

// span is one configured prefix as an inclusive address range.
type span struct {
	start, end u128
	bits       uint8
}

func spanOf(p netip.Prefix) span {
	a, b := p.Addr(), p.Bits()
	if a.Is4() {
		v := a.As4()
		start := uint64(v[0])<<24 | uint64(v[1])<<16 | uint64(v[2])<<8 | uint64(v[3])
		host := uint64(1)<<(32-b) - 1
		return span{start: u128{0, start}, end: u128{0, start | host}, bits: uint8(b)}
	}
	v := a.As16()
	var start u128
	for i := range 8 {
		start.hi = start.hi<<8 | uint64(v[i])
		start.lo = start.lo<<8 | uint64(v[8+i])
	}
	end := start
	if host := 128 - b; host >= 64 {
		// Go defines a shift by 64 as 0, so this is all ones for host == 128.
		end.hi |= uint64(1)<<(host-64) - 1
		end.lo = ^uint64(0)
	} else {
		end.lo |= uint64(1)<<host - 1
	}
	return span{start: start, end: end, bits: uint8(b)}
}

// flatten turns possibly nested spans into sorted boundaries: from each
// boundary's position up to the next one, the most specific covering span
// has length label (noMatch for none). last is the family's highest
// address. It also returns the number of distinct spans.
func flatten(spans []span, last u128) (pos []u128, label []uint8, distinct int) {
	// Outer before inner at the same start, so a child is pushed after its
	// parent. Prefixes never partly overlap: they nest or are disjoint.
	slices.SortFunc(spans, func(a, b span) int {
		if c := cmp.Compare(a.start.hi, b.start.hi); c != 0 {
			return c
		}
		if c := cmp.Compare(a.start.lo, b.start.lo); c != 0 {
			return c
		}
		return cmp.Compare(a.bits, b.bits)
	})
	// Each span adds at most two boundaries: its start and after its end.
	pos, label = make([]u128, 0, 2*len(spans)), make([]uint8, 0, 2*len(spans))
	emit := func(p u128, l uint8) {
		n := len(pos)
		if n > 0 && pos[n-1] == p {
			// Two boundaries at one address (a child ending with its
			// parent): the later one decides.
			label[n-1] = l
			if n > 1 && label[n-2] == l {
				pos, label = pos[:n-1], label[:n-1]
			}
			return
		}
		if n > 0 && label[n-1] == l {
			// Same label continues: adjacent same-length prefixes merge,
			// and masking the address still yields the right one.
			return
		}
		pos, label = append(pos, p), append(label, l)
	}
	var stack []span // enclosing spans, innermost last
	pop := func() {
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if top.end == last {
			return // nothing follows the end of the address space
		}
		l := uint8(noMatch)
		if len(stack) > 0 {
			l = stack[len(stack)-1].bits
		}
		emit(top.end.inc(), l)
	}
	for i, sp := range spans {
		if i > 0 && sp.start == spans[i-1].start && sp.bits == spans[i-1].bits {
			continue // duplicate
		}
		distinct++
		for len(stack) > 0 && stack[len(stack)-1].end.less(sp.start) {
			pop()
		}
		stack = append(stack, sp)
		emit(sp.start, sp.bits)
	}
	for len(stack) > 0 {
		pop()
	}
	return pos, label, distinct
}

func build4(spans []span) (table4, int) {
	pos, label, n := flatten(spans, u128{0, 1<<32 - 1})
	var t table4
	if len(pos) == 0 {
		return t, n
	}
	t.starts = make([]uint32, len(pos))
	for i, p := range pos {
		t.starts[i] = uint32(p.lo)
	}
	t.bits = slices.Clone(label) // exact size: label grew by appending
	if len(pos) >= indexMin {
		t.index = buildRadix(len(pos), func(i int) uint32 { return t.starts[i] })
	}
	return t, n
}

func build6(spans []span) (table6, int) {
	pos, label, n := flatten(spans, u128{^uint64(0), ^uint64(0)})
	var t table6
	if len(pos) == 0 {
		return t, n
	}
	t.starts = slices.Clone(pos)
	t.bits = slices.Clone(label)
	if len(pos) >= indexMin {
		t.index = buildRadix(len(pos), func(i int) uint32 { return uint32(t.starts[i].hi >> 32) })
	}
	return t, n
}

// radix narrows a lookup to a short run of ranges in two steps: a table on
// the top 16 address bits and, for a bucket holding more than leafMax
// ranges, a second table on the next 1 to 16 bits sized to leave about
// leafTarget ranges per slot. Two levels keep the lookup to a fixed number
// of dependent memory reads whatever the distribution: real IPv6 lists
// crowd into a few /16s (2001::, 2a0x::) where a one-level index would
// leave thousands of ranges to search. Anything still crowded after the
// second level (thousands of /128s in one /32) falls back to a binary
// search of that slot, which stays correct, only slower.
type radix struct {
	// root[k], for k in 0..65536: the low 32 bits are the first range whose
	// top 16 bits are >= k. When bits 59-63 hold s > 0, bucket k is split
	// on the next s bits and its table starts at sub[bits 32-58].
	root []uint64
	// sub holds the second-level tables: 1<<s+1 positions each, the last
	// being the end of the bucket.
	sub []uint32
}

const (
	leafMax    = 32 // ranges a bucket may hold before it is split
	leafTarget = 4  // ranges per second-level slot to aim for
	subShift   = 59
	offMask    = 1<<(subShift-32) - 1
)

// buildRadix indexes n sorted ranges; key32(i) is the top 32 bits of the
// start of range i.
func buildRadix(n int, key32 func(int) uint32) radix {
	var x radix
	x.root = make([]uint64, 1<<16+1)
	i := 0
	for k := range x.root {
		for i < n && key32(i)>>16 < uint32(k) {
			i++
		}
		x.root[k] = uint64(i)
	}
	for k := range 1 << 16 {
		lo, hi := int(uint32(x.root[k])), int(uint32(x.root[k+1]))
		if hi-lo <= leafMax {
			continue
		}
		s := 1
		for s < 16 && (hi-lo)>>s > leafTarget {
			s++
		}
		off := len(x.sub)
		if off > offMask {
			continue // cannot happen below 2^27 ranges; search the bucket instead
		}
		j := lo
		for slot := range 1 << s {
			for j < hi && int(key32(j)&0xffff>>(16-s)) < slot {
				j++
			}
			x.sub = append(x.sub, uint32(j))
		}
		x.sub = append(x.sub, uint32(hi))
		x.root[k] |= uint64(off)<<32 | uint64(s)<<subShift
	}
	x.sub = slices.Clone(x.sub) // exact size
	return x
}

// run returns the ranges [lo, hi) to search for an address whose top 32
// bits are a32: every range before lo starts at or before the address,
// every range from hi on after it.
//
// For a split bucket it also returns guess, a range in the bucket where
// the address would fall if the bucket's ranges were spread evenly, else
// -1. The guess needs only the root entry, so the caller's read of it
// goes out to memory together with the second-level read instead of after
// it; it usually lands on, or on the page of, the ranges the search then
// reads, and its comparison narrows the run besides.
func (x *radix) run(a32 uint32) (lo, hi, guess int) {
	k := a32 >> 16
	e := x.root[k]
	lo, hi = int(uint32(e)), int(uint32(x.root[k+1]))
	if s := e >> subShift; s != 0 {
		low := int(a32 & 0xffff)
		guess = lo + (hi-lo)*low>>16
		j := int(e>>32&offMask) + low>>(16-s)
		return int(x.sub[j]), int(x.sub[j+1]), guess
	}
	return lo, hi, -1
}

func (x *radix) sizeBytes() int { return cap(x.root)*8 + cap(x.sub)*4 }

// Len reports the number of distinct prefixes in the set (after masking
// host bits and mapping ::ffff:a.b.c.d entries to IPv4).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// Lookup reports whether addr is in the set and, if so, the most specific
// configured prefix containing it. IPv4-mapped IPv6 addresses are looked up
// as IPv4. It does not allocate.
func (s *Set) Lookup(addr netip.Addr) (entry netip.Prefix, ok bool) {
	if s == nil || !addr.IsValid() {
		return netip.Prefix{}, false
	}
	addr = addr.Unmap()
	var b uint8
	if addr.Is4() {
		b, ok = s.v4.lookup(addr.As4())
	} else {
		addr = addr.WithZone("")
		b, ok = s.v6.lookup(addr.As16())
	}
	if !ok {
		return netip.Prefix{}, false
	}
	// The label's prefix covers addr, so masking addr recovers it.
	p, _ := addr.Prefix(int(b))
	return p, true
}

func (t *table4) lookup(v [4]byte) (uint8, bool) {
	a := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	lo, hi, q := 0, len(t.starts), -1
	if t.index.root != nil {
		lo, hi, q = t.index.run(a)
	}
	if q >= 0 {
		if t.starts[q] <= a {
			lo = max(lo, q+1)
		} else {
			hi = min(hi, q)
		}
	} else if lo < hi {
		q = lo
	} else {
		return t.label(lo)
	}
	// Read a label near the answer now: the load depends on nothing the
	// search computes, so its cache miss overlaps the search's instead of
	// following it, and the answer's label is almost always on its line.
	bq := t.bits[q]
	if hi-lo <= leafMax {
		// Count the starts <= a: independent loads and, branch-free, no
		// misprediction where the count stops growing.
		n := lo
		for _, st := range t.starts[lo:hi] {
			n += 1 - int((uint64(a)-uint64(st))>>63)
		}
		lo = n
	} else {
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if t.starts[m] <= a {
				lo = m + 1
			} else {
				hi = m
			}
		}
	}
	if lo == q+1 {
		return bq, bq != noMatch
	}
	return t.label(lo)
}

// label answers for an address whose first range starting after it is
// range p: the range before p covers it.
func (t *table4) label(p int) (uint8, bool) {
	if p == 0 {
		return 0, false
	}
	b := t.bits[p-1]
	return b, b != noMatch
}

// le reports a <= b.
func (a u128) le(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo <= b.lo) }

func (t *table6) lookup(v [16]byte) (uint8, bool) {
	var a u128
	for i := range 8 {
		a.hi = a.hi<<8 | uint64(v[i])
		a.lo = a.lo<<8 | uint64(v[8+i])
	}
	lo, hi, q := 0, len(t.starts), -1
	if t.index.root != nil {
		lo, hi, q = t.index.run(uint32(a.hi >> 32))
	}
	if q >= 0 { // see table4.lookup
		if t.starts[q].le(a) {
			lo = max(lo, q+1)
		} else {
			hi = min(hi, q)
		}
	} else if lo < hi {
		q = lo
	} else {
		return t.label(lo)
	}
	bq := t.bits[q]
	if hi-lo <= leafMax {
		n := lo
		for _, st := range t.starts[lo:hi] {
			_, borrow := bits.Sub64(a.lo, st.lo, 0)
			_, borrow = bits.Sub64(a.hi, st.hi, borrow)
			n += 1 - int(borrow) // borrow == 0: st <= a
		}
		lo = n
	} else {
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if t.starts[m].le(a) {
				lo = m + 1
			} else {
				hi = m
			}
		}
	}
	if lo == q+1 {
		return bq, bq != noMatch
	}
	return t.label(lo)
}

func (t *table6) label(p int) (uint8, bool) {
	if p == 0 {
		return 0, false
	}
	b := t.bits[p-1]
	return b, b != noMatch
}

// sizeBytes is the memory held by the set's arrays, for the benchmark log.
func (s *Set) sizeBytes() int {
	if s == nil {
		return 0
	}
	return cap(s.v4.starts)*4 + cap(s.v4.bits) + s.v4.index.sizeBytes() +
		cap(s.v6.starts)*16 + cap(s.v6.bits) + s.v6.index.sizeBytes()
}
