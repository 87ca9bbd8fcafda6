// Package reputation answers "is this client address on an allow or deny
// list, and where is it from", and holds the stages that act on it.
//
// Place in the request path: the gateway's chain runs its stages right after
// clientip/ has settled the real client address and before ratelimit/ and
// waf/, so a listed address is refused (or let through) before it costs a
// rate-limit round trip or a rule-engine evaluation:
//
//	allow lists (NewAllow) → bans/ → deny lists (NewDeny) → GeoIP rules (NewGeoIP) → ratelimit/
//
// Sources (stage.go) are one configuration's lists and databases: built
// from its validated config, owning their refresh goroutines, and taken
// over by the next configuration on a reload when unchanged.
//
// Three pieces underneath:
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
	"encoding/binary"
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
// because that prefix covers the address. Adjacent ranges with the same
// label (sibling /24s side by side, as in country lists) merge into one.
//
// The label shares a word with the bits of the range start that the index
// does not already imply (see set_table.go): 4 bytes per IPv4 range and 8
// per IPv6 range, plus 8 for the low half of an IPv6 start that has one
// (the bounds of /65 and longer prefixes), read only for addresses in
// that start's /64. A first-level index small enough to stay in cache
// narrows a lookup to one or two adjacent cache lines, so a lookup at
// random costs about one read from main memory. A million-prefix set
// takes about 13 MiB; BenchmarkSetLookup has the numbers.
//
// Why not a trie: this needs no pointers (nothing for the GC to scan, one
// allocation per array), its size is predictable, and a lookup is a fixed
// number of reads; a trie costs a dependent read per level. A trie's
// advantage, cheap incremental updates, is worthless for a set rebuilt
// whole on every refresh.
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
		v := addr.As4()
		b, ok = s.v4.lookup(binary.BigEndian.Uint32(v[:]))
	} else {
		// The zone needs no stripping: PrefixFrom, below, drops it.
		v := addr.As16()
		b, ok = s.v6.lookup(binary.BigEndian.Uint64(v[:8]), binary.BigEndian.Uint64(v[8:]))
	}
	if !ok {
		return netip.Prefix{}, false
	}
	// The label's prefix covers addr, so masking addr recovers it.
	p, _ := addr.Prefix(int(b))
	return p, true
}

// sizeBytes is the memory held by the set's arrays, for the benchmark log.
func (s *Set) sizeBytes() int {
	if s == nil {
		return 0
	}
	return cap(s.v4.words)*4 + s.v4.x.sizeBytes() +
		cap(s.v6.words)*8 + cap(s.v6.lows)*8 + cap(s.v6.lowRank)*4 + s.v6.x.sizeBytes()
}
