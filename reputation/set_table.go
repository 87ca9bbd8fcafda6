package reputation

import (
	"math/bits"
	"slices"
)

// This file holds the lookup structure behind Set: per address family, a
// sorted array of range starts with each range's label packed into the
// same word, and an index that maps the top bits of an address to the few
// words it has to compare against.
//
// The costs that shaped it, measured on the 2-core VM the target was set
// on (512 KiB of L2 per core): a random read costs about 36 ns while the
// data touched stays within about 2 MiB and 170 to 230 ns beyond 4 MiB
// (main memory plus a nested page walk); reading two or three adjacent
// cache lines at once costs barely more than reading one; and independent
// lookups overlap their misses, as many as the out-of-order window holds,
// so instructions and mispredicted branches per lookup count too. Hence:
// an index small enough to stay in L2 (128 KiB per family), after it one
// run of about two cache lines whose reads all go out at once, and a
// search of that run without loops or data-dependent branches.
const (
	// noMatch labels the gaps between configured prefixes.
	noMatch = 0xff

	// bucketTarget is the number of ranges per first-level bucket to aim
	// for: one or two cache lines of words.
	bucketTarget = 16
	// maxIndexBits caps the first level at 2^16 buckets (128 KiB).
	maxIndexBits = 16
	// leafMax is the most ranges a bucket holds before a second-level
	// table on the next address bits splits it, and the most the
	// fixed-step search takes.
	leafMax = 32
	// leafTarget is the number of ranges per second-level slot to aim for.
	leafTarget = 4
	// maxSubBits caps a second-level table at 2^16+1 entries.
	maxSubBits = 16
)

// index narrows a lookup to a run of words [lo, hi) in the family's array.
// It works on the distance d of an address from the family's first range
// start (base): bucket k = d>>shift holds the ranges whose starts share
// those top bits, so a list crowded into 2000::/3 or 10.0.0.0/8 still
// spreads over all 2^nbits buckets. The words store only the low shift
// bits of d (rem), which is what frees room for the label.
type index struct {
	// The first word whose range starts in bucket k or later, for k in
	// 0..nb+1 (nb = 1<<nbits), is base[k>>gbits] + off[k]: 2 bytes a
	// bucket rather than 4 keeps both families' indexes at 128 KiB each,
	// a quarter of this machine's 512 KiB L2, where 4 bytes a bucket had
	// them evicting each other in a mixed stream. Entries nb and nb+1 are
	// both len(words), so an address past the last bucket gets an empty
	// run. gbits is 8 unless a group of 256 buckets holds 65536 ranges or
	// more; then it shrinks, down to 0 (a base per bucket) if need be.
	base []uint32
	off  []uint16
	// subAt[k] is where bucket k's second-level table starts in sub, for
	// buckets holding more than leafMax ranges; nil when there is none.
	// The number of bits a bucket is split on follows from its size (see
	// splitBits), so it need not be stored.
	subAt []uint32
	// sub holds the second-level tables: 1<<s+1 word positions each, the
	// last being the end of the bucket.
	sub   []uint32
	shift uint8
	nbits uint8
	gbits uint8
}

// maxGroupBits sets the largest group of buckets sharing a base.
const maxGroupBits = 8

// splitBits is the number of bits after the bucket's own that a bucket of
// n > leafMax ranges is split on, given shift bits below the bucket's.
func splitBits(n int, shift uint8) uint8 {
	return uint8(min(bits.Len(uint(n/leafTarget)), maxSubBits, int(shift)))
}

// indexBits picks the number of first-level bits for n ranges whose
// starts lie within width bits of the base, given the words keep at most
// remMax bits of rem.
func indexBits(n, width, remMax int) uint8 {
	b := min(bits.Len(uint(n/bucketTarget)), maxIndexBits)
	b = max(b, width-remMax) // rem must fit the word
	return uint8(min(b, width))
}

// buildIndex indexes the sorted distances d of range starts from base; the
// range i is word i+1 (word 0 is the sentinel).
func buildIndex(d []uint64, nbits uint8, width int) index {
	x := index{nbits: nbits, shift: uint8(width - int(nbits))}
	nb := 1 << nbits
	first := make([]uint32, nb+2)
	i := 0
	for k := range nb + 1 {
		for i < len(d) && d[i]>>x.shift < uint64(k) {
			i++
		}
		first[k] = uint32(i + 1)
	}
	first[nb+1] = first[nb]
	x.gbits = maxGroupBits
	for !fitsGroups(first, x.gbits) {
		x.gbits--
	}
	x.base = make([]uint32, (nb+1)>>x.gbits+1)
	x.off = make([]uint16, nb+2)
	for k, f := range first {
		if k&(1<<x.gbits-1) == 0 {
			x.base[k>>x.gbits] = f
		}
		x.off[k] = uint16(f - x.base[k>>x.gbits])
	}
	mask := uint64(1)<<x.shift - 1
	for k := range nb {
		lo, hi := int(first[k]), int(first[k+1])
		if hi-lo <= leafMax {
			continue
		}
		s := splitBits(hi-lo, x.shift)
		if s == 0 {
			continue // one address's worth of starts: left to the search
		}
		if x.subAt == nil {
			x.subAt = make([]uint32, nb)
		}
		x.subAt[k] = uint32(len(x.sub))
		j := lo
		for slot := range 1 << s {
			for j < hi && (d[j-1]&mask)>>(x.shift-s) < uint64(slot) {
				j++
			}
			x.sub = append(x.sub, uint32(j))
		}
		x.sub = append(x.sub, uint32(hi))
	}
	x.sub = slices.Clip(x.sub)
	return x
}

// fitsGroups reports whether, in groups of 1<<g entries of first, every
// entry is within 16 bits of its group's first. It always holds for g = 0.
func fitsGroups(first []uint32, g uint8) bool {
	for k := 0; k < len(first); k += 1 << g {
		end := min(k+1<<g, len(first)) - 1
		if first[end]-first[k] > 0xffff {
			return false
		}
	}
	return true
}

// run returns the words [lo, hi) to compare an address at distance d from
// base against, and rem, the bits of d the words hold. Every word before lo
// starts at or before the address; every word from hi on, after it.
func (x *index) run(d uint64) (lo, hi int, rem uint64) {
	k := min(d>>x.shift, uint64(1)<<x.nbits)
	lo = int(x.base[k>>x.gbits]) + int(x.off[k])
	hi = int(x.base[(k+1)>>x.gbits]) + int(x.off[k+1])
	rem = d & (uint64(1)<<x.shift - 1)
	if hi-lo > leafMax && x.subAt != nil {
		if s := splitBits(hi-lo, x.shift); s > 0 {
			j := int(x.subAt[k]) + int(rem>>(x.shift-s))
			lo, hi = int(x.sub[j]), int(x.sub[j+1])
		}
	}
	return lo, hi, rem
}

func (x *index) sizeBytes() int {
	return cap(x.base)*4 + cap(x.off)*2 + cap(x.subAt)*4 + cap(x.sub)*4
}

// search returns the last position in [j, j+n) whose word is <= key,
// given that w[j] is and that the words are sorted.
func search[W uint32 | uint64](w []W, j, n int, key uint64) int {
	for n > 1 {
		half := n >> 1
		// Arithmetic, not a branch: which way it goes is a coin toss, and
		// a mispredict would wait for a cache miss.
		_, gt := bits.Sub64(key, uint64(w[j+half]), 0)
		j += half & (int(gt) - 1)
		n -= half
	}
	return j
}

// table4 holds the IPv4 ranges: range i covers [start i, start i+1).
//
// Word layout: rem<<8 | label, rem being at most 24 bits. Word 0 is a
// sentinel labelled noMatch standing for the addresses before the first
// range, so "the range before the first word of a run" always exists.
type table4 struct {
	words []uint32
	x     index
	base  uint32
}

func build4(spans []span) (table4, int) {
	pos, label, n := flatten(spans, u128{0, 1<<32 - 1})
	var t table4
	if len(pos) == 0 {
		return t, n
	}
	t.base = uint32(pos[0].lo)
	d := make([]uint64, len(pos))
	for i, p := range pos {
		d[i] = uint64(uint32(p.lo) - t.base)
	}
	width := bits.Len64(d[len(d)-1])
	t.x = buildIndex(d, indexBits(len(pos), width, 24), width)
	mask := uint64(1)<<t.x.shift - 1
	t.words = make([]uint32, len(pos)+1)
	t.words[0] = noMatch
	for i, di := range d {
		t.words[i+1] = uint32(di&mask)<<8 | uint32(label[i])
	}
	return t, n
}

func (t *table4) lookup(a uint32) (uint8, bool) {
	if t.words == nil || a < t.base {
		return 0, false
	}
	lo, hi, rem := t.x.run(uint64(a - t.base))
	// The label bits of key are all ones, so a start equal to the address
	// compares <= too.
	key := uint64(rem)<<8 | 0xff
	w := t.words
	// j ends at the last word of the run whose start is <= the address,
	// or lo-1, the range the run's first start interrupts.
	j := lo - 1
	if n := hi - lo; n > 0 {
		// The run's last word, its first and (the search's first probe)
		// its middle depend on nothing but the index, so their cache
		// misses go out together; for a run of up to three lines they
		// are all the lines the search reads.
		if uint64(w[hi-1]) <= key {
			j = hi - 1
		} else if uint64(w[lo]) <= key {
			j = search(w, lo, n-1, key) // the answer is in [lo, hi-1)
		}
	}
	b := uint8(w[j])
	return b, b != noMatch
}

func (t *table4) ranges() int { return max(len(t.words)-1, 0) }

// table6 is table4 for 128-bit addresses. The index and the words work on
// the high half of a start only: one 64-bit word per range, label
// included. A range that starts inside a /64 (a /65 or longer prefix, or
// the end of one) carries lowFlag, and its low half waits in lows, read
// only when the address falls into that same /64. lows holds only those
// low halves (a fifth of the ranges of the benchmark's list, and fewer in
// real ones, which rarely go past /64), so it is found by rank: lowRank
// counts the flagged words before each group of lowGroup words, and the
// flags within a group are on the cache line the lookup has just read.
//
// Word layout: rem<<(64-shift) | lowFlag | label, with shift <= 55 so the
// nine low bits are free.
type table6 struct {
	words   []uint64
	lows    []uint64 // low halves of the flagged words' starts, in order
	lowRank []uint32 // lowRank[g]: flagged words before word g*lowGroup
	x       index
	base    uint64
}

const (
	lowFlag = 1 << 8
	// lowGroup words make a cache line (a large set's words array starts
	// on a page), so counting flags within a group reads no new line.
	lowGroup = 8
)

func build6(spans []span) (table6, int) {
	pos, label, n := flatten(spans, u128{^uint64(0), ^uint64(0)})
	var t table6
	if len(pos) == 0 {
		return t, n
	}
	t.base = pos[0].hi
	d := make([]uint64, len(pos))
	for i, p := range pos {
		d[i] = p.hi - t.base
	}
	width := bits.Len64(d[len(d)-1])
	t.x = buildIndex(d, indexBits(len(pos), width, 55), width)
	mask := uint64(1)<<t.x.shift - 1
	t.words = make([]uint64, len(pos)+1)
	t.words[0] = noMatch
	nlow := 0
	for _, p := range pos {
		if p.lo != 0 {
			nlow++
		}
	}
	t.lows = make([]uint64, 0, nlow)
	t.lowRank = make([]uint32, len(t.words)/lowGroup+1)
	for i, p := range pos {
		w := (d[i]&mask)<<(64-t.x.shift) | uint64(label[i])
		if p.lo != 0 {
			w |= lowFlag
			t.lows = append(t.lows, p.lo)
		}
		t.words[i+1] = w
		if (i+2)%lowGroup == 0 {
			t.lowRank[(i+2)/lowGroup] = uint32(len(t.lows))
		}
	}
	return t, n
}

func (t *table6) lookup(ah, al uint64) (uint8, bool) {
	if t.words == nil || ah < t.base {
		return 0, false
	}
	lo, hi, rem := t.x.run(ah - t.base)
	// Go defines a shift by 64 as 0, so for shift == 0 free is all ones.
	free := uint64(1)<<(64-t.x.shift) - 1
	key := rem<<(64-t.x.shift) | free
	w := t.words
	j := lo - 1 // see table4.lookup
	if n := hi - lo; n > 0 {
		if w[hi-1] <= key {
			j = hi - 1
		} else if w[lo] <= key {
			j = search(w, lo, n-1, key)
		}
	}
	// Should the low halves be needed, the rank of the run's first group
	// is already on its way: read now, its miss overlaps the words'
	// instead of adding one more in a row before the low half's own.
	r0 := t.lowRank[lo/lowGroup]
	v := w[j]
	// The high halves say start j <= address. When start j lies in the
	// address's own /64 past its first address, the low halves decide.
	if j >= lo && v&lowFlag != 0 && v|free == key {
		j = t.settleLow(lo, j, key, free, al, r0)
		v = w[j]
	}
	b := uint8(v)
	return b, b != noMatch
}

// settleLow returns the last word j in [lo, c] whose start is <= the
// address (high half key, low half al), or lo-1 if there is none, given
// that the high halves of all of them are <= the address's. Starts in the
// address's /64 form a run ending at c, sorted by low half; a start at
// the /64's first address (no lowFlag) always qualifies.
func (t *table6) settleLow(lo, c int, key, free, al uint64, r0 uint32) int {
	ok := func(j int) bool {
		v := t.words[j]
		return v|free != key || v&lowFlag == 0 || t.low(j, lo/lowGroup, r0) <= al
	}
	// Usually the answer is c or just before it; a /64 crowded with /128s
	// gets a binary search instead of a walk.
	j := c
	for ; j >= lo && c-j < 8; j-- {
		if ok(j) {
			return j
		}
	}
	l, h := lo, j+1 // ok is true, then false, over [lo, c]
	for l < h {
		m := int(uint(l+h) >> 1)
		if ok(m) {
			l = m + 1
		} else {
			h = m
		}
	}
	return l - 1
}

// low returns the low half of flagged word j's start, given r0, the rank
// of group g0.
func (t *table6) low(j, g0 int, r0 uint32) uint64 {
	g := j / lowGroup
	r := int(r0)
	if g != g0 {
		r = int(t.lowRank[g])
	}
	for _, v := range t.words[g*lowGroup : j] {
		r += int(v&lowFlag) >> 8
	}
	return t.lows[r]
}

func (t *table6) ranges() int { return max(len(t.words)-1, 0) }
