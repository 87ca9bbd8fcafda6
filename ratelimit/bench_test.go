package ratelimit

import (
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// benchKeys returns n distinct IPv4 client keys.
func benchKeys(n int) []Key {
	keys := make([]Key, n)
	for i := range keys {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		keys[i] = KeyFromAddr(a, DefaultIPv6Prefix)
	}
	return keys
}

// benchCases name the key populations. "100kKeys" cycles through all keys
// uniformly, the worst case for the CPU cache: every call misses to main
// memory. "100kKeysZipf" draws from the same keys with a skewed (Zipf)
// popularity, closer to real traffic where a few clients send most requests.
var benchCases = []struct {
	name    string
	keys    int
	maxKeys int
	zipf    bool
}{
	{"1key", 1, 100_000, false},
	{"100kKeys", 100_000, 200_000, false},
	{"100kKeysZipf", 100_000, 200_000, true},
	// More distinct keys than the table holds: every new key evicts one.
	{"100kKeysEvicting", 100_000, 10_000, false},
	// A table sized for a million clients, all of them active. The shards
	// are bounded separately, so the few that draw more than their share
	// of keys evict some.
	{"1MKeys", 1_000_000, 1_000_000, false},
}

// benchSequence returns the keys in the order the benchmark presents them.
func benchSequence(keys []Key, zipf bool) []Key {
	if !zipf {
		return keys
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, uint64(len(keys)-1))
	seq := make([]Key, 1<<20)
	for i := range seq {
		seq[i] = keys[z.Uint64()]
	}
	return seq
}

// The clock advances 10µs per call and the rule allows 50k/s with a burst of
// 100, so the benchmarks exercise both answers.
var benchRule = Rule{Rate: 50_000, Burst: 100}

func BenchmarkAllow(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMemory(benchRule, bc.maxKeys)
			keys := benchKeys(bc.keys)
			for i, k := range keys { // warm the table: measure steady state, not growth
				m.Allow(k, t0.Add(time.Duration(i)))
			}
			keys = benchSequence(keys, bc.zipf)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				m.Allow(keys[i%len(keys)], t0.Add(time.Duration(i)*10*time.Microsecond))
				i++
			}
			// After the loop: ResetTimer drops metrics reported before it.
			b.ReportMetric(float64(m.tableBytes())/float64(m.Stats().Keys), "tableB/key")
		})
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			m := NewMemory(benchRule, bc.maxKeys)
			keys := benchKeys(bc.keys)
			for i, k := range keys {
				m.Allow(k, t0.Add(time.Duration(i)))
			}
			keys = benchSequence(keys, bc.zipf)
			var worker atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(worker.Add(1)) * 7919 // different goroutines, different keys
				for pb.Next() {
					m.Allow(keys[i%len(keys)], t0.Add(time.Duration(i)*10*time.Microsecond))
					i++
				}
			})
		})
	}
}

// tableBytes is the memory the shards' tables take.
func (m *Memory) tableBytes() int {
	n := 0
	for i := range m.shards {
		n += len(m.shards[i].table) * int(unsafe.Sizeof(slot{}))
	}
	return n
}

func BenchmarkKey(b *testing.B) {
	v6 := netip.MustParseAddr("2001:db8:1:2::1")
	b.Run("FromAddr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			KeyFromAddr(v6, DefaultIPv6Prefix)
		}
	})
	b.Run("FromString32", func(b *testing.B) {
		b.ReportAllocs()
		s := "0123456789abcdef0123456789abcdef"
		for b.Loop() {
			KeyFromString(s)
		}
	})
	b.Run("With", func(b *testing.B) {
		b.ReportAllocs()
		k := KeyFromAddr(v6, DefaultIPv6Prefix)
		for b.Loop() {
			k.With(42)
		}
	})
}
