package reputation

import (
	"bytes"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := parsePrefix(s)
		if err != nil {
			t.Fatalf("bad test prefix %q: %v", s, err)
		}
		out = append(out, p)
	}
	return out
}

func TestSetLookup(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		addr    string
		want    string // "" for no match
	}{
		{"empty set", nil, "1.2.3.4", ""},
		{"v4 inside", []string{"10.0.0.0/8"}, "10.200.3.4", "10.0.0.0/8"},
		{"v4 first address", []string{"10.0.0.0/8"}, "10.0.0.0", "10.0.0.0/8"},
		{"v4 last address", []string{"10.0.0.0/8"}, "10.255.255.255", "10.0.0.0/8"},
		{"v4 just before", []string{"10.0.0.0/8"}, "9.255.255.255", ""},
		{"v4 just after", []string{"10.0.0.0/8"}, "11.0.0.0", ""},
		{"v4 /32", []string{"192.0.2.7"}, "192.0.2.7", "192.0.2.7/32"},
		{"v4 /32 neighbour", []string{"192.0.2.7"}, "192.0.2.8", ""},
		{"v4 most specific", []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"}, "10.1.2.3", "10.1.2.0/24"},
		{"v4 parent after child", []string{"10.0.0.0/8", "10.1.0.0/16"}, "10.2.0.0", "10.0.0.0/8"},
		{"v4 parent before child", []string{"10.1.0.0/16", "10.0.0.0/8"}, "10.0.255.255", "10.0.0.0/8"},
		{"v4 child ends with parent", []string{"10.0.0.0/8", "10.255.255.0/24"}, "10.255.255.255", "10.255.255.0/24"},
		{"v4 after parent and child end together", []string{"10.0.0.0/8", "10.255.255.0/24"}, "11.0.0.0", ""},
		{"v4 adjacent siblings", []string{"10.0.0.0/24", "10.0.1.0/24"}, "10.0.1.9", "10.0.1.0/24"},
		{"v4 duplicate", []string{"10.0.0.0/24", "10.0.0.0/24"}, "10.0.0.1", "10.0.0.0/24"},
		{"v4 host bits normalised", []string{"10.0.0.77/24"}, "10.0.0.1", "10.0.0.0/24"},
		{"v4 everything", []string{"0.0.0.0/0"}, "255.255.255.255", "0.0.0.0/0"},
		{"v4 everything, zero", []string{"0.0.0.0/0"}, "0.0.0.0", "0.0.0.0/0"},
		{"v4 everything with child", []string{"0.0.0.0/0", "255.255.255.255/32"}, "255.255.255.254", "0.0.0.0/0"},
		{"v4 last address /32", []string{"0.0.0.0/0", "255.255.255.255/32"}, "255.255.255.255", "255.255.255.255/32"},
		{"v4 not matched by ::/0", []string{"::/0"}, "1.2.3.4", ""},
		{"v6 not matched by 0.0.0.0/0", []string{"0.0.0.0/0"}, "2001:db8::1", ""},
		{"v6 inside", []string{"2001:db8::/32"}, "2001:db8:ffff::1", "2001:db8::/32"},
		{"v6 last address", []string{"2001:db8::/32"}, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::/32"},
		{"v6 just after", []string{"2001:db8::/32"}, "2001:db9::", ""},
		{"v6 /128", []string{"2001:db8::1"}, "2001:db8::1", "2001:db8::1/128"},
		{"v6 /128 neighbour", []string{"2001:db8::1"}, "2001:db8::2", ""},
		{"v6 /64 boundary low half", []string{"2001:db8:0:1::/64"}, "2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8:0:1::/64"},
		{"v6 /64 boundary next", []string{"2001:db8:0:1::/64"}, "2001:db8:0:2::", ""},
		{"v6 /65", []string{"2001:db8::8000:0:0:0/65"}, "2001:db8::8000:0:0:1", "2001:db8:0:0:8000::/65"},
		{"v6 /63 second /64", []string{"2001:db8::/63"}, "2001:db8:0:1::5", "2001:db8::/63"},
		{"v6 most specific", []string{"2001:db8::/32", "2001:db8:1::/48", "2001:db8:1::/64"}, "2001:db8:1::9", "2001:db8:1::/64"},
		{"v6 back to parent", []string{"2001:db8::/32", "2001:db8:1::/48"}, "2001:db8:2::", "2001:db8::/32"},
		{"v6 everything", []string{"::/0"}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
		{"v6 everything, zero", []string{"::/0"}, "::", "::/0"},
		{"v6 last address /128", []string{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"},
		{"v6 zone ignored", []string{"fe80::/10"}, "fe80::1%eth0", "fe80::/10"},
		{"mapped address matches v4 entry", []string{"192.0.2.0/24"}, "::ffff:192.0.2.9", "192.0.2.0/24"},
		{"mapped entry is v4", []string{"::ffff:192.0.2.0/120"}, "192.0.2.9", "192.0.2.0/24"},
		{"mapped entry, mapped address", []string{"::ffff:192.0.2.9"}, "::ffff:192.0.2.9", "192.0.2.9/32"},
		{"mapped address not matched by ::/0", []string{"::/0"}, "::ffff:192.0.2.9", ""},
		{"v4-compatible is IPv6", []string{"192.0.2.0/24"}, "::192.0.2.9", ""},
		{"mixed families", []string{"10.0.0.0/8", "2001:db8::/32"}, "2001:db8::5", "2001:db8::/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet(prefixes(t, tt.entries...))
			got, ok := s.Lookup(netip.MustParseAddr(tt.addr))
			if tt.want == "" {
				if ok {
					t.Fatalf("Lookup(%s) = %s, want no match", tt.addr, got)
				}
				return
			}
			if !ok || got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("Lookup(%s) = %s, %v; want %s", tt.addr, got, ok, tt.want)
			}
		})
	}
}

func TestSetLen(t *testing.T) {
	tests := []struct {
		entries []string
		want    int
	}{
		{nil, 0},
		{[]string{"10.0.0.0/8"}, 1},
		{[]string{"10.0.0.0/8", "10.1.2.3/8", "10.0.0.0/8"}, 1},
		{[]string{"192.0.2.1", "::ffff:192.0.2.1"}, 1},
		{[]string{"0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/32"}, 4},
	}
	for _, tt := range tests {
		if got := NewSet(prefixes(t, tt.entries...)).Len(); got != tt.want {
			t.Errorf("NewSet(%v).Len() = %d, want %d", tt.entries, got, tt.want)
		}
	}
	var nilSet *Set
	if _, ok := nilSet.Lookup(netip.MustParseAddr("1.2.3.4")); ok || nilSet.Len() != 0 {
		t.Error("nil set is not empty")
	}
	if _, ok := NewSet(prefixes(t, "0.0.0.0/0")).Lookup(netip.Addr{}); ok {
		t.Error("the zero Addr matched")
	}
	if NewSet([]netip.Prefix{{}}).Len() != 0 {
		t.Error("invalid prefix counted")
	}
}

// naiveLookup is the specification: the longest configured prefix that
// contains the (unmapped) address.
func naiveLookup(entries []netip.Prefix, a netip.Addr) (netip.Prefix, bool) {
	a = a.Unmap().WithZone("")
	best, found := netip.Prefix{}, false
	for _, p := range entries {
		p = canonical(p)
		if p.Contains(a) && (!found || p.Bits() > best.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

// randPrefix draws prefixes that nest and touch often: few distinct top
// bits, all lengths. dense packs them into a few /16s (IPv4) and one /16
// (IPv6), so the index splits buckets into second-level slots.
func randPrefix(r *rand.Rand, dense bool) netip.Prefix {
	if r.IntN(2) == 0 {
		v := r.Uint32() & 0xC3FFFFFF // cluster the first octet
		if dense {
			v = 0x0A000000 | r.Uint32()&0x3FFFF // 10.0.0.0/14
		}
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		p, _ := a.Prefix(r.IntN(33))
		return p
	}
	var b [16]byte
	b[0] = 0x20
	b[1] = byte(r.IntN(4))
	for i := 2; i < 16; i++ {
		b[i] = byte(r.IntN(3)) * 0x7f // 0x00, 0x7f, 0xfe: edges and middles
	}
	if dense {
		b[1], b[2], b[3] = 0x01, byte(r.IntN(256)), byte(r.IntN(256)) // 2001::/16
	}
	p, _ := netip.AddrFrom16(b).Prefix(r.IntN(129))
	return p
}

func randAddrNear(r *rand.Rand, entries []netip.Prefix) netip.Addr {
	if len(entries) == 0 || r.IntN(4) == 0 {
		return randPrefix(r, r.IntN(2) == 0).Addr()
	}
	p := entries[r.IntN(len(entries))]
	a := p.Addr()
	// The first or last address of p, or one beyond either.
	if r.IntN(2) == 0 {
		last := lastAddr(p)
		if r.IntN(2) == 0 && last.Next().IsValid() {
			return last.Next()
		}
		return last
	}
	if r.IntN(2) == 0 && a.Prev().IsValid() {
		return a.Prev()
	}
	return a
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestSetMatchesNaive checks the flattened ranges against the definition on
// random nested, adjacent and duplicate prefixes.
func TestSetMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n, lookups, dense := r.IntN(60), 300, round%2 == 0
		if round%40 == 0 {
			// Enough ranges for a large index, with crowded buckets.
			n, lookups = 12288, 100
		}
		entries := make([]netip.Prefix, n)
		for i := range entries {
			entries[i] = randPrefix(r, dense && r.IntN(4) > 0)
		}
		s := NewSet(entries)
		if n > 4096 && (s.v4.x.sub == nil || s.v6.x.sub == nil) {
			t.Fatalf("round %d: no second-level index (v4 %d ranges, v6 %d)", round, s.v4.ranges(), s.v6.ranges())
		}
		for range lookups {
			a := randAddrNear(r, entries)
			want, wok := naiveLookup(entries, a)
			got, gok := s.Lookup(a)
			if got != want || gok != wok {
				t.Fatalf("round %d: Lookup(%s) = %s, %v; want %s, %v (entries %v)", round, a, got, gok, want, wok, entries)
			}
		}
	}
}

// TestSetShapesMatchNaive checks, against the definition, the shapes that
// take the lookup off its usual path: buckets too crowded for the linear
// count (second-level tables, and the binary search when even a slot is
// crowded), many starts sharing one high half (/128s in one /64, resolved
// on the low halves), sets spanning a whole family (the widest index
// shift), and addresses before the first or after the last range.
func TestSetShapesMatchNaive(t *testing.T) {
	v4 := func(v uint32, bits int) netip.Prefix {
		p, _ := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).Prefix(bits)
		return p
	}
	v6 := func(hi, lo uint64, bits int) netip.Prefix {
		var b [16]byte
		for j := range 8 {
			b[j], b[8+j] = byte(hi>>(56-8*j)), byte(lo>>(56-8*j))
		}
		p, _ := netip.AddrFrom16(b).Prefix(bits)
		return p
	}
	const db8 = 0x20010db800000000
	tests := []struct {
		name string
		gen  func(r *rand.Rand) []netip.Prefix
	}{
		{"v4 crowded /16 among wide", func(r *rand.Rand) []netip.Prefix {
			out := []netip.Prefix{v4(0, 0), v4(0x0A000000, 8), v4(0xC0000000, 4)}
			for range 3000 {
				out = append(out, v4(0x0A010000|r.Uint32()&0xffff, 31+r.IntN(2)))
			}
			return out
		}},
		{"v4 alternating /32s in one slot", func(r *rand.Rand) []netip.Prefix {
			out := []netip.Prefix{v4(0x01000000, 8), v4(0xC8000000, 8)}
			for a := uint32(0); a < 8192; a += 2 {
				out = append(out, v4(0x0A020000+a, 32))
			}
			return out
		}},
		{"v4 sparse", func(r *rand.Rand) []netip.Prefix {
			return []netip.Prefix{v4(0x0A000001, 32), v4(0xFFFFFFFF, 32)}
		}},
		{"v6 /128s in one /64", func(r *rand.Rand) []netip.Prefix {
			out := []netip.Prefix{v6(db8, 0, 64)}
			for range 3000 {
				out = append(out, v6(db8, r.Uint64(), 96+r.IntN(33)))
			}
			return out
		}},
		{"v6 /128s in one /64 alone", func(r *rand.Rand) []netip.Prefix {
			var out []netip.Prefix
			for range 3000 {
				out = append(out, v6(db8, r.Uint64()>>r.IntN(64), 128))
			}
			return out
		}},
		{"v6 crowded /64 among spread /48s", func(r *rand.Rand) []netip.Prefix {
			var out []netip.Prefix
			for range 3000 {
				out = append(out, v6(r.Uint64()&^(7<<61)|1<<61, 0, 48))
				out = append(out, v6(db8|1<<16, r.Uint64()&0xffff, 112+r.IntN(17)))
			}
			return out
		}},
		{"v6 whole space", func(r *rand.Rand) []netip.Prefix {
			return []netip.Prefix{v6(0, 0, 0), v6(0, 0, 1), v6(1<<63, 0, 1), v6(0, 0, 128), v6(0, 1, 128),
				v6(^uint64(0), ^uint64(0), 128), v6(^uint64(0), 0, 65), v6(0x8000000000000000, 1<<63, 65)}
		}},
		{"v6 long prefixes at /64 edges", func(r *rand.Rand) []netip.Prefix {
			var out []netip.Prefix
			for range 2000 {
				hi := db8 | uint64(r.IntN(64))
				lo := uint64(0)
				if r.IntN(2) == 0 {
					lo = ^uint64(0)
				}
				out = append(out, v6(hi, lo, 65+r.IntN(64)), v6(hi, 0, 64-r.IntN(3)))
			}
			return out
		}},
		{"both families like the benchmark", func(r *rand.Rand) []netip.Prefix {
			return benchPrefixes(5000)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			entries := tt.gen(r)
			s := NewSet(entries)
			check := func(a netip.Addr) {
				t.Helper()
				want, wok := naiveLookup(entries, a)
				got, gok := s.Lookup(a)
				if got != want || gok != wok {
					t.Fatalf("Lookup(%s) = %s, %v; want %s, %v", a, got, gok, want, wok)
				}
			}
			for range 3000 {
				check(randAddrNear(r, entries))
			}
			for range 1000 {
				v := r.Uint32()
				check(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
				check(v6(r.Uint64(), r.Uint64(), 128).Addr())
				check(v6(db8|uint64(r.IntN(2))<<16, r.Uint64()>>r.IntN(64), 128).Addr())
			}
			for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8::", "::ffff:0.0.0.0"} {
				check(netip.MustParseAddr(a))
			}
		})
	}
}

// TestIndexRun checks the index's promise on its own: every word before
// the run starts at or before the address, every word from its end on
// after it. The crowded cases push more than 65,535 ranges into one group
// of buckets, so the index falls back to smaller groups.
func TestIndexRun(t *testing.T) {
	tests := []struct {
		name     string
		gen      func(r *rand.Rand, i int) uint64
		n        int
		crowded  bool // expect smaller groups than maxGroupBits
		remWidth int
	}{
		{"uniform 32-bit", func(r *rand.Rand, i int) uint64 { return uint64(r.Uint32()) }, 50000, false, 24},
		{"uniform 61-bit", func(r *rand.Rand, i int) uint64 { return r.Uint64() >> 3 }, 50000, false, 55},
		{"crowded low bits", func(r *rand.Rand, i int) uint64 {
			if i%2 == 0 {
				return uint64(r.IntN(1 << 17))
			}
			return r.Uint64() >> 24
		}, 200000, true, 55},
		{"all equal", func(r *rand.Rand, i int) uint64 { return 12345 }, 70000, true, 55},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			d := make([]uint64, tt.n)
			for i := range d {
				d[i] = tt.gen(r, i)
			}
			slices.Sort(d)
			base := d[0]
			for i := range d {
				d[i] -= base
			}
			width := bits.Len64(d[len(d)-1])
			x := buildIndex(d, indexBits(len(d), width, tt.remWidth), width)
			if got := x.gbits < maxGroupBits; got != tt.crowded {
				t.Errorf("gbits = %d, want smaller than %d: %v", x.gbits, maxGroupBits, tt.crowded)
			}
			check := func(q uint64) {
				lo, hi, _ := x.run(q)
				if lo < 1 || lo > hi || hi > len(d)+1 {
					t.Fatalf("run(%d) = [%d, %d) of %d words", q, lo, hi, len(d)+1)
				}
				// Word i+1 is range i.
				if lo > 1 && d[lo-2] > q {
					t.Fatalf("run(%d) = [%d, %d): word %d starts at %d, after the address", q, lo, hi, lo-1, d[lo-2])
				}
				if hi <= len(d) && d[hi-1] <= q {
					t.Fatalf("run(%d) = [%d, %d): word %d starts at %d, not after the address", q, lo, hi, hi, d[hi-1])
				}
			}
			for range 20000 {
				i := r.IntN(len(d))
				check(d[i])
				check(d[i] + 1)
				check(d[i] - min(d[i], 1))
				check(r.Uint64() >> r.IntN(64))
			}
			check(0)
			check(^uint64(0))
		})
	}
}

// TestSetCrowdedSlash64 puts 70,000 /128s into one /64: one run of equal
// high halves, searched by the low halves. The expected answer is plain.
func TestSetCrowdedSlash64(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	slash64 := netip.MustParsePrefix("2001:db8:1:2::/64")
	members := map[netip.Addr]bool{}
	entries := []netip.Prefix{slash64}
	hi := slash64.Addr().As16()
	for len(members) < 70000 {
		b := hi
		for j := 8; j < 16; j++ {
			b[j] = byte(r.Uint32())
		}
		a := netip.AddrFrom16(b)
		members[a] = true
		entries = append(entries, netip.PrefixFrom(a, 128))
	}
	s := NewSet(entries)
	check := func(a netip.Addr) {
		t.Helper()
		want := slash64
		if members[a] {
			want = netip.PrefixFrom(a, 128)
		} else if !slash64.Contains(a) {
			want = netip.Prefix{}
		}
		got, ok := s.Lookup(a)
		if got != want || ok != want.IsValid() {
			t.Fatalf("Lookup(%s) = %s, %v; want %s", a, got, ok, want)
		}
	}
	for a := range members {
		check(a)
		check(a.Next())
		check(a.Prev())
	}
	check(slash64.Addr())
	check(slash64.Addr().Prev())
	check(lastAddr(slash64))
	check(lastAddr(slash64).Next())
}

// FuzzSetLookup compares the set with the definition for fuzzed entries.
func FuzzSetLookup(f *testing.F) {
	f.Add([]byte("10.0.0.0/8\n10.1.0.0/16\n2001:db8::/32"), "10.1.2.3")
	f.Add([]byte("0.0.0.0/0\n255.255.255.255"), "255.255.255.255")
	f.Add([]byte("::/0\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "::ffff:1.2.3.4")
	f.Fuzz(func(t *testing.T, list []byte, addr string) {
		entries, err := ParseList(bytes.NewReader(list), 64)
		if err != nil {
			return
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		want, wok := naiveLookup(entries, a)
		got, gok := NewSet(entries).Lookup(a)
		if got != want || gok != wok {
			t.Fatalf("Lookup(%s) = %s, %v; want %s, %v", a, got, gok, want, wok)
		}
	})
}

func TestSetLookupDoesNotAllocate(t *testing.T) {
	s := NewSet(prefixes(t, "10.0.0.0/8", "2001:db8::/32"))
	addrs := []netip.Addr{
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:10.1.2.3"),
		netip.MustParseAddr("fe80::1%eth0"),
	}
	for _, a := range addrs {
		if n := testing.AllocsPerRun(100, func() { s.Lookup(a) }); n != 0 {
			t.Errorf("Lookup(%s) allocates %v times", a, n)
		}
	}
}

// benchPrefixes is a million prefixes shaped like real lists: IPv4 mostly
// /24 and /32 with some wider networks, IPv6 in 2000::/3 at the usual
// allocation sizes.
func benchPrefixes(n int) []netip.Prefix {
	r := rand.New(rand.NewPCG(42, 42))
	// Prefix lengths weighted roughly as in FireHOL and Spamhaus lists:
	// mostly single addresses and /24s (IPv4), /32 to /64 (IPv6).
	v4Lens := []int{12, 16, 18, 19, 20, 21, 22, 22, 23, 23, 24, 24, 24, 24, 24, 24, 28, 29, 30, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32, 32}
	v6Lens := []int{29, 32, 32, 36, 40, 44, 48, 48, 48, 48, 52, 56, 56, 60, 64, 64, 64, 64, 64, 64, 96, 112, 128, 128, 128}
	out := make([]netip.Prefix, n)
	for i := range out {
		var a netip.Addr
		var bits int
		if i%5 < 3 { // 60% IPv4
			v := r.Uint32()
			a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			bits = v4Lens[r.IntN(len(v4Lens))]
		} else { // in 2000::/3, where global unicast lives
			hi, lo := r.Uint64()&^(7<<61)|1<<61, r.Uint64()
			var b [16]byte
			for j := range 8 {
				b[j], b[8+j] = byte(hi>>(56-8*j)), byte(lo>>(56-8*j))
			}
			a = netip.AddrFrom16(b)
			bits = v6Lens[r.IntN(len(v6Lens))]
		}
		out[i], _ = a.Prefix(bits)
	}
	return out
}

var bench struct {
	once    sync.Once
	entries []netip.Prefix
	set     *Set
	heap    uint64
}

func benchSet(b *testing.B) (*Set, []netip.Prefix) {
	bench.once.Do(func() {
		bench.entries = benchPrefixes(1_000_000)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		bench.set = NewSet(bench.entries)
		runtime.GC()
		runtime.ReadMemStats(&after)
		bench.heap = after.HeapAlloc - before.HeapAlloc
	})
	b.Logf("1,000,000 prefixes -> %d distinct; set holds %.1f MiB of arrays (%d v4 ranges, %d v6 ranges); heap grew %.1f MiB",
		bench.set.Len(), float64(bench.set.sizeBytes())/(1<<20), bench.set.v4.ranges(), bench.set.v6.ranges(), float64(bench.heap)/(1<<20))
	return bench.set, bench.entries
}

// BenchmarkSetLookup looks up addresses in a set of 1,000,000 prefixes
// (60% IPv4, 40% IPv6). The addresses are spread at random so nearly every
// lookup misses the CPU caches: the worst case, where real traffic, with
// its repeat visitors, does better. "hit" addresses lie inside a listed
// prefix; "random" ones anywhere (in 2000::/3 for IPv6); "mixed"
// interleaves all four; "mixed-zipf" repeats them as real clients do.
// Run with -v for the set's memory.
func BenchmarkSetLookup(b *testing.B) {
	s, entries := benchSet(b)
	r := rand.New(rand.NewPCG(7, 7))
	mk := func(v4, hit bool) []netip.Addr {
		addrs := make([]netip.Addr, 1<<16)
		for i := range addrs {
			p := entries[r.IntN(len(entries))]
			for p.Addr().Is4() != v4 {
				p = entries[r.IntN(len(entries))]
			}
			if !hit {
				p = netip.PrefixFrom(p.Addr(), 3) // anywhere in 2000::/3; v4 /3s are enough spread too
				if v4 {
					p = netip.PrefixFrom(p.Addr(), 0)
				}
			}
			// A random address inside p.
			bb := p.Masked().Addr().AsSlice()
			for j := p.Bits(); j < len(bb)*8; j++ {
				if r.IntN(2) == 1 {
					bb[j/8] |= 0x80 >> (j % 8)
				}
			}
			addrs[i], _ = netip.AddrFromSlice(bb)
		}
		return addrs
	}
	v4r, v4h, v6r, v6h := mk(true, false), mk(true, true), mk(false, false), mk(false, true)
	mixed := make([]netip.Addr, 1<<16)
	for i := range mixed {
		mixed[i] = [][]netip.Addr{v4r, v4h, v6r, v6h}[i%4][i]
	}
	// Real traffic repeats: the same mix drawn with Zipf frequencies (a few
	// clients send most requests), so popular entries stay in cache.
	zipf := make([]netip.Addr, 1<<16)
	z := rand.NewZipf(r, 1.1, 1, uint64(len(mixed)-1))
	for i := range zipf {
		zipf[i] = mixed[z.Uint64()]
	}
	cases := []struct {
		name  string
		addrs []netip.Addr
	}{
		{"v4-random", v4r},
		{"v4-hit", v4h},
		{"v6-random", v6r},
		{"v6-hit", v6h},
		{"mixed", mixed},
		{"mixed-zipf", zipf},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			hits, i := 0, 0
			cpu := cpuTime()
			for b.Loop() {
				if _, ok := s.Lookup(c.addrs[i&(1<<16-1)]); ok {
					hits++
				}
				i++
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(i), "cpu-ns/op")
			b.ReportMetric(float64(hits)/float64(i), "hit-ratio")
			b.ReportMetric(float64(s.sizeBytes())/(1<<20), "MiB-set")
		})
	}
	// The yardstick: one dependent read at a random place in an array as
	// large as the set, i.e. this machine's cache-miss latency. A lookup
	// cannot beat it by much; compare the two when judging a result from
	// another machine.
	b.Run("reference-miss", func(b *testing.B) {
		next := make([]uint32, s.sizeBytes()/4)
		perm := r.Perm(len(next))
		for i, p := range perm {
			next[p] = uint32(perm[(i+1)%len(perm)])
		}
		x := uint32(0)
		for b.Loop() {
			x = next[x]
		}
		runtime.KeepAlive(x)
	})
}

func BenchmarkNewSet(b *testing.B) {
	entries := benchPrefixes(1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		NewSet(entries)
	}
}
