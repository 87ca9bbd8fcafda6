package ratelimit

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// scaled shrinks the long single-goroutine loops under the race detector,
// which slows them twentyfold and has nothing to find in them; the
// concurrent tests run in full.
func scaled(n int) int {
	if raceEnabled {
		return max(n/8, 1)
	}
	return n
}

// refGCRA is GCRA at its plainest: one TAT per key in a map, never
// forgetting, written from the definition rather than from Memory.
type refGCRA struct {
	burst         int
	interval, tau int64
	tat           map[uint64]int64
}

func newRef(rule Rule) *refGCRA {
	T := int64(rule.interval())
	return &refGCRA{burst: rule.Burst, interval: T, tau: T * int64(rule.Burst), tat: map[uint64]int64{}}
}

func (r *refGCRA) allow(k uint64, t int64) Decision {
	tat, ok := r.tat[k]
	if !ok || tat < t {
		tat = t // a bucket that has refilled is the same as a new one
	}
	if tat > t+r.tau {
		tat = t + r.tau // the clock went back: the bucket is empty, no worse
		r.tat[k] = tat
	}
	if tat+r.interval > t+r.tau {
		return Decision{Limit: r.burst, ResetAfter: time.Duration(tat - t), RetryAfter: time.Duration(tat + r.interval - t - r.tau)}
	}
	r.tat[k] = tat + r.interval
	return Decision{
		Allowed:    true,
		Limit:      r.burst,
		Remaining:  int((t + r.tau - tat - r.interval) / r.interval),
		ResetAfter: time.Duration(tat + r.interval - t),
	}
}

// trackedFP reports whether m holds state for fingerprint fp.
func (m *Memory) trackedFP(fp uint64) bool {
	s := &m.shards[fp>>m.shift]
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.find(fp)
	return ok
}

// Fingerprint masks (see Memory.fpAnd): a test limiter applies and, then or,
// to every fingerprint, so that real keys going through the real Allow
// collide or crowd into chosen buckets.
type fpMask struct{ and, or uint64 }

var (
	// noMask leaves fingerprints alone.
	noMask = fpMask{^uint64(0), 0}
	// homeFirst zeroes the low 32 bits that pick the home bucket: every key
	// starts at bucket 0, at every stage of growth.
	homeFirst = fpMask{0xffffffff_00000000, 0}
	// homeLast sets them: every key starts at the last bucket, so probe
	// runs wrap around the end of the table.
	homeLast = fpMask{0xffffffff_00000000, 0xffffffff}
	// homeMiddleLast leaves one of those bits to the hash: keys start at the
	// middle or at the last bucket.
	homeMiddleLast = fpMask{0xffffffff_80000000, 0x7fffffff}
)

// newMasked is NewMemory with fingerprints narrowed by mask.
func newMasked(rule Rule, maxKeys int, mask fpMask) *Memory {
	m := NewMemory(rule, maxKeys)
	m.fpAnd, m.fpOr = mask.and, mask.or
	return m
}

// manyKeys returns n distinct keys.
func manyKeys(n int) []Key {
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = KeyFromString(strconv.Itoa(i))
	}
	return keys
}

// TestDifferentialAgainstReference drives Memory and refGCRA with the same
// random requests. The reference keeps one bucket per fingerprint, so keys
// whose fingerprints collide (the narrow masks below force that) must share
// exactly one bucket, neither more nor less. While Memory holds a
// fingerprint its decision must equal the reference's exactly; once it has
// dropped one (only under pressure) its decision must be a new key's, and
// the reference forgets the fingerprint too.
func TestDifferentialAgainstReference(t *testing.T) {
	tests := []struct {
		name     string
		rule     Rule
		maxKeys  int
		keys     int
		mask     fpMask
		maxStep  time.Duration // clock advance per request: uniform in [0, maxStep)
		pressure bool          // more keys than fit: evictions expected
	}{
		{"few keys, bursty", Rule{Rate: 10, Burst: 5}, 1000, 20, noMask, 50 * time.Millisecond, false},
		{"many keys, growth", Rule{Rate: 100, Burst: 3}, 100_000, 5000, noMask, time.Millisecond, false},
		{"burst 1", Rule{Rate: 1, Burst: 1}, 1000, 50, noMask, 100 * time.Millisecond, false},
		{"fractional interval", Rule{Rate: 3, Burst: 7}, 1000, 30, noMask, 30 * time.Millisecond, false},
		{"nanosecond interval", Rule{Rate: 1e9, Burst: 2}, 1000, 10, noMask, 3, false},
		{"one home bucket", Rule{Rate: 5, Burst: 4}, 200, 150, homeFirst, 20 * time.Millisecond, false},
		{"runs wrap around", Rule{Rate: 5, Burst: 4}, 200, 150, homeLast, 20 * time.Millisecond, false},
		{"two crowded homes", Rule{Rate: 5, Burst: 4}, 200, 150, homeMiddleLast, 20 * time.Millisecond, false},
		{"256 fingerprints", Rule{Rate: 5, Burst: 4}, 1000, 600, fpMask{0xff, 0}, 5 * time.Millisecond, false},
		{"3 fingerprints", Rule{Rate: 50, Burst: 10}, 1000, 40, fpMask{0x3, 0}, time.Millisecond, false},
		{"pressure, hashed", Rule{Rate: 2, Burst: 3}, 300, 2000, noMask, 5 * time.Millisecond, true},
		{"pressure, one home", Rule{Rate: 2, Burst: 3}, 100, 400, homeFirst, 5 * time.Millisecond, true},
		{"pressure, wrapping", Rule{Rate: 2, Burst: 3}, 100, 400, homeLast, 5 * time.Millisecond, true},
		{"pressure, colliding", Rule{Rate: 2, Burst: 3}, 100, 2000, fpMask{0x3ff, 0}, 5 * time.Millisecond, true},
		{"pressure, tiny table", Rule{Rate: 2, Burst: 3}, 3, 10, noMask, 50 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(len(tt.name)), 7))
			m := newMasked(tt.rule, tt.maxKeys, tt.mask)
			ref := newRef(tt.rule)
			keys := manyKeys(tt.keys)
			now := t0
			forgotten := 0
			for i := range scaled(40_000) {
				now = now.Add(time.Duration(r.Int64N(int64(tt.maxStep))))
				if r.IntN(500) == 0 {
					now = now.Add(-time.Duration(r.Int64N(2 * ref.tau))) // the clock steps back
				}
				// A skewed choice: some keys are hammered, some rarely seen.
				k := keys[int(float64(len(keys))*r.Float64()*r.Float64())]
				fp := m.fingerprint(k)
				if !m.trackedFP(fp) {
					if _, ok := ref.tat[fp]; ok {
						if !tt.pressure {
							t.Fatalf("request %d: key %v was dropped without pressure", i, k)
						}
						delete(ref.tat, fp)
						forgotten++
					}
				} else if _, ok := ref.tat[fp]; !ok {
					t.Fatalf("request %d: fingerprint %x never seen is tracked", i, fp)
				}
				got, want := m.Allow(k, now), ref.allow(fp, now.UnixNano())
				if got != want {
					t.Fatalf("request %d, key %v at +%v: got %+v, want %+v", i, k, now.Sub(t0), got, want)
				}
				if i%1000 == 0 {
					checkTables(t, m)
				}
			}
			checkTables(t, m)
			st := m.Stats()
			if tt.pressure != (forgotten > 0) || (st.EvictedIdle+st.EvictedActive > 0) != tt.pressure {
				t.Errorf("pressure %v: %d keys forgotten, stats %+v", tt.pressure, forgotten, st)
			}
			if st.Keys > tt.maxKeys {
				t.Errorf("%d keys tracked, bound %d", st.Keys, tt.maxKeys)
			}
		})
	}
}

// TestCollidingKeysShareOneBucket: keys whose fingerprints are equal are one
// key to the table. A group of them together gets what one key gets, so a
// collision can make a limit stricter for its members but never looser.
func TestCollidingKeysShareOneBucket(t *testing.T) {
	tests := []struct {
		rule    Rule
		maxKeys int
		keys    int
		mask    fpMask // how many distinct fingerprints the keys get
	}{
		{Rule{Rate: 10, Burst: 5}, 100, 50, fpMask{0x1, 0}}, // fingerprint 0 becomes 1: all share one
		{Rule{Rate: 10, Burst: 5}, 100, 50, fpMask{0x7, 0}},
		{Rule{Rate: 1, Burst: 1}, 10, 30, fpMask{0x3, 0}},
		{Rule{Rate: 100, Burst: 20}, 100_000, 100, fpMask{0xf, 0}},
	}
	for _, tt := range tests {
		m := newMasked(tt.rule, tt.maxKeys, tt.mask)
		keys := manyKeys(tt.keys)
		allowed := map[uint64]int{} // per fingerprint, summed over its keys
		members := map[uint64]int{}
		for _, k := range keys {
			members[m.fingerprint(k)]++
		}
		seconds := scaled(8) + 2
		for i := range seconds * 1000 { // every key asks every millisecond
			now := t0.Add(time.Duration(i) * time.Millisecond)
			for _, k := range keys {
				if m.Allow(k, now).Allowed {
					allowed[m.fingerprint(k)]++
				}
			}
		}
		// Each group saturates its one bucket: Burst plus Rate per second.
		want := tt.rule.Burst + int(tt.rule.Rate*float64(seconds))
		for fp, n := range allowed {
			if n > want || n < want-1 {
				t.Errorf("%+v: %d keys sharing fingerprint %x got %d requests through, want %d", tt.rule, members[fp], fp, n, want)
			}
		}
		if len(allowed) != len(members) || len(members) > int(tt.mask.and)+1 {
			t.Errorf("%+v: %d groups allowed, %d fingerprints", tt.rule, len(allowed), len(members))
		}
	}
}

// TestRemoveKeepsProbeInvariant evicts and re-adds keys in tables shaped by
// the fingerprint masks: crowded homes, runs that wrap around the end,
// buckets in which some keys are at home and some displaced. After every
// step each key must still be found and the probe invariant hold.
func TestRemoveKeepsProbeInvariant(t *testing.T) {
	tests := []struct {
		name    string
		maxKeys int
		mask    fpMask
	}{
		{"all at bucket 0", 40, homeFirst},
		{"all at the last bucket", 40, homeLast},
		{"middle and last", 40, homeMiddleLast},
		{"spread", 40, noMask},
		{"one bucket table", 1, homeLast},
		{"two keys", 2, homeLast},
		{"larger", 250, homeMiddleLast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMasked(Rule{Rate: 1, Burst: 1}, tt.maxKeys, tt.mask)
			s := &m.shards[0]
			r := rand.New(rand.NewPCG(3, uint64(tt.maxKeys)))
			keys := manyKeys(4 * tt.maxKeys)
			live := map[uint64]bool{}
			now := t0
			for i := range scaled(3000) {
				k := keys[r.IntN(len(keys))]
				fp := m.fingerprint(k)
				now = now.Add(time.Duration(r.IntN(3)) * time.Second) // idle and active keys mixed
				if had := m.trackedFP(fp); had != live[fp] {
					t.Fatalf("step %d: key %v tracked=%v, want %v", i, k, had, live[fp])
				}
				before := m.Stats()
				m.Allow(k, now)
				after := m.Stats()
				live[fp] = true
				if after.EvictedIdle+after.EvictedActive > before.EvictedIdle+before.EvictedActive {
					// Exactly one key left; find out which.
					gone := 0
					for f := range live {
						if f != fp && !m.trackedFP(f) {
							delete(live, f)
							gone++
						}
					}
					if gone != 1 {
						t.Fatalf("step %d: one eviction counted, %d keys gone", i, gone)
					}
				}
				if len(live) < 50 || i%50 == 0 {
					checkTables(t, m)
				}
				if len(live) != s.count {
					t.Fatalf("step %d: %d keys expected, count %d", i, len(live), s.count)
				}
			}
		})
	}
}

// TestEvictionUnderPressure floods tables of several sizes with new keys,
// all active, while a few clients are being throttled. The bound holds,
// every newcomer gets in, and the throttled clients keep their state:
// a sample always holds newer, less indebted keys to evict first.
func TestEvictionUnderPressure(t *testing.T) {
	tests := []struct {
		maxKeys   int
		throttled int // clients with the latest TATs, fewer than evictScan
		flood     int
	}{
		{100, 5, 5000},
		{1000, 10, 20_000},
		{20_000, 10, 100_000},
		{64 * 1024, 15, scaled(200_000)},
	}
	for _, tt := range tests {
		rule := Rule{Rate: 0.01, Burst: 2} // T = 100 s: nothing becomes idle
		m := NewMemory(rule, tt.maxKeys)
		var throttled []Key
		for i := range tt.throttled {
			k := KeyFromString("throttled-" + string(rune('a'+i)))
			throttled = append(throttled, k)
			for range rule.Burst + 1 {
				m.Allow(k, t0)
			}
		}
		for i := range tt.flood {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if d := m.Allow(KeyFromAddr(a, 0), t0.Add(time.Duration(i)*time.Microsecond)); !d.Allowed {
				t.Fatalf("maxKeys %d: newcomer %d refused", tt.maxKeys, i)
			}
		}
		checkTables(t, m)
		st := m.Stats()
		if st.Keys > tt.maxKeys || st.EvictedIdle != 0 || int(st.EvictedActive) != tt.throttled+tt.flood-st.Keys {
			t.Errorf("maxKeys %d: stats %+v", tt.maxKeys, st)
		}
		for _, k := range throttled {
			if d := m.Allow(k, t0.Add(time.Second)); d.Allowed {
				t.Errorf("maxKeys %d: throttled client %v evicted by the flood", tt.maxKeys, k)
			}
		}
	}
}

// TestTableGrowsToItsBound: tables start small, grow with use, and stop at
// the size that holds maxKeys within the load bound.
func TestTableGrowsToItsBound(t *testing.T) {
	for _, maxKeys := range []int{1, 5, 100, 255, 256, 1000, 100_000} {
		m := NewMemory(Rule{Rate: 1, Burst: 1}, maxKeys)
		if got := m.shards[0].buckets; got > initialBuckets {
			t.Errorf("maxKeys %d: new table has %d buckets", maxKeys, got)
		}
		for i := range 2 * maxKeys {
			m.Allow(KeyFromString(strconv.Itoa(i)), t0)
		}
		checkTables(t, m)
		total := 0
		for i := range m.shards {
			total += len(m.shards[i].table)
		}
		// Within the load bound plus rounding to whole buckets per shard.
		if limit := maxKeys*loadDen/loadNum + len(m.shards)*bucketSlots; total > limit {
			t.Errorf("maxKeys %d: %d slots, want at most %d", maxKeys, total, limit)
		}
		if maxKeys > 1 && m.Stats().Keys < maxKeys/2 {
			t.Errorf("maxKeys %d: only %d keys held", maxKeys, m.Stats().Keys)
		}
	}
}

// TestBucketsAreCacheLines: a bucket read should be one cache line. The
// runtime gives this slice 16-byte alignment in practice (not by contract),
// and setTable cuts it to 64.
func TestBucketsAreCacheLines(t *testing.T) {
	if runtime.Compiler != "gc" {
		t.Skip("alignment is the gc runtime's")
	}
	for _, maxKeys := range []int{1, 100, 10_000, 1 << 20} {
		m := NewMemory(Rule{Rate: 1, Burst: 1}, maxKeys)
		for i := range m.shards {
			if p := uintptr(unsafe.Pointer(&m.shards[i].table[0])); p%cacheLine != 0 {
				t.Fatalf("maxKeys %d shard %d: table at %#x", maxKeys, i, p)
			}
		}
	}
	if unsafe.Sizeof(slot{})*bucketSlots != cacheLine {
		t.Errorf("a bucket is %d bytes", unsafe.Sizeof(slot{})*bucketSlots)
	}
}

// TestConcurrentFloodKeepsTablesSound runs growth and eviction from several
// goroutines at once (meant for -race), then checks the tables.
func TestConcurrentFloodKeepsTablesSound(t *testing.T) {
	m := NewMemory(Rule{Rate: 1, Burst: 2}, 2000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 5000 {
				a := netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)})
				m.Allow(KeyFromAddr(a, 0), t0.Add(time.Duration(i)*time.Millisecond))
				m.Allow(KeyFromString("shared"), t0.Add(time.Duration(i)*time.Millisecond))
			}
		})
	}
	wg.Wait()
	checkTables(t, m)
	// Every flood key was added once; "shared" at least once, and again
	// whenever it was evicted.
	if st := m.Stats(); st.Keys > 2000 || int(st.EvictedIdle+st.EvictedActive) < 8*5000+1-st.Keys {
		t.Errorf("stats %+v", st)
	}
}
