package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
	"unsafe"
)

// Memory is the in-process Limiter: one rule, at most maxKeys tracked keys,
// state lost on restart (a restart forgives everyone a burst, which is
// harmless). Safe for concurrent use.
//
// Layout. Keys are spread over up to 64 shards, each with its own mutex and
// its own open-addressing table of 16-byte slots: a 64-bit fingerprint of the
// key and its TAT. Four slots make a 64-byte bucket aligned to a cache line; a
// key is looked for in its home bucket, then in the following ones (linear
// probing by bucket), and tables are kept at most 80% full, where a lookup
// reads 1.4 buckets on average. The table holds no pointers, so the garbage
// collector never scans it. Once the tables outgrow the CPU cache, the one
// cache miss per Allow is the whole cost, so bytes per key decide the speed:
// a slot is half the size of one holding the whole 16-byte Key, and the load
// factor is 0.8 rather than 0.5, so a key costs 20 to 40 bytes (depending on
// where growth left the table) instead of 64 to 128.
//
// Fingerprints. A key's fingerprint is a seeded 64-bit runtime hash of it
// (the hash Go maps use, keyed by a secret per-limiter seed); the shard and
// the home bucket are taken from its bits, and it is stored instead of the
// key, so a lookup compares integers and never chases a pointer. Two keys
// with equal fingerprints share one slot, that is one bucket of requests:
// together they get what one key gets, so a collision can make a limit
// stricter, never looser. By chance it is negligible: a lookup compares its
// fingerprint with about 6 stored ones (15 for a new key in a full table),
// each equal to another key's with probability 2^-64; at a million requests
// a second, 16 comparisons each, that is 5·10^14 comparisons a year against
// 1.8·10^19 values, one shared bucket every 37,000 years or so. It cannot be
// aimed: the seed is secret and never leaves the process, so a client cannot
// choose a key (an address in its IPv6 network, a header value) that lands
// on a victim's fingerprint, and colliding with its own keys only merges its
// own budgets.
//
// Eviction: a key whose TAT is in the past is indistinguishable from a key
// never seen, so dropping it loses nothing. When a new key arrives at a full
// shard, the up to evictScan keys stored from the newcomer's home bucket on
// are examined and the first idle one is evicted; if none of those is idle,
// the one with the earliest TAT among them goes, the key closest to being
// idle, so a client that is being throttled (TAT far ahead) is the last to
// go. Because the sample is bounded, "prefer idle" is approximate: an idle
// key elsewhere may outlive an active one examined now. The TAT serves as a
// clock's reference bit would: it says both whether a key was used recently
// and how much state dropping it would lose, so no extra flag is kept.
//
// The trade-off: once a flood of distinct keys (many addresses, made-up API
// keys) keeps every slot busy, each new key evicts a non-idle one and that
// client gets a fresh burst. That is the price of bounded memory. Such
// evictions are counted in Stats so the operator can see it and raise maxKeys
// or coarsen the key (a shorter IPv6 prefix).
type Memory struct {
	rule     Rule
	interval int64 // T, nanoseconds
	tau      int64 // Burst·T: how far ahead of now a TAT may be
	perShard int   // most keys one shard holds
	maxBkts  int   // bucket count at which a shard stops growing
	shift    uint  // 64 - log2(len(shards))
	seed     maphash.Seed
	// fpAnd and fpOr are applied to every fingerprint: ^0 and 0, except
	// in tests, which narrow fingerprints to force collisions and crowd
	// keys into chosen buckets through the real Allow.
	fpAnd, fpOr uint64
	shards      []shard
}

var _ Limiter = (*Memory)(nil)

const (
	maxShards = 64
	// minPerShard keeps shards big enough for the eviction scan to have a
	// choice; small tables get fewer shards (down to one).
	minPerShard = 128
	// evictScan bounds the work of one eviction.
	evictScan = 16
	// initialBuckets is a new shard's table size; tables double up to
	// maxBkts, so an idle gateway does not reserve maxKeys slots.
	initialBuckets = 4
	// bucketSlots slots of 16 bytes fill one 64-byte cache line (find
	// compares them one by one, written out for four).
	bucketSlots = 4
	// A table holds at most loadNum/loadDen·(its slots) keys. Measured on
	// random fingerprints with four-slot buckets, a lookup of a present key
	// reads 1.27 buckets on average at load 0.75, 1.38 at 0.8, 1.56 at 0.85
	// and 2.06 at 0.9; a lookup of an absent key (every new key) 2.7, 3.7,
	// 5.9 and 14. 0.8 is where the extra bytes of a lower load stop buying
	// much.
	loadNum, loadDen = 4, 5
	cacheLine        = 64
)

// slot is one tracked key. fp 0 marks an empty slot; fingerprint never
// returns 0.
type slot struct {
	fp  uint64
	tat int64 // Unix nanoseconds
}

type shard struct {
	mu            sync.Mutex
	table         []slot // buckets·bucketSlots slots; bucket b is table[b*bucketSlots:]
	buckets       int
	count         int
	evictedIdle   uint64
	evictedActive uint64
	_             [64]byte // keep neighbouring shards' mutexes off one cache line
}

// NewMemory returns a limiter for rule that tracks at most maxKeys keys.
// Tables grow with use up to 20 bytes per key, plus a rounding up to whole
// buckets (1,000,000 keys: 20 MB; 100,000 keys: 2 MB). While growing, a table
// uses between 20 and 40 bytes per key it holds.
//
// rule must pass Validate and maxKeys must be at least 1; NewMemory panics
// otherwise, because both come from configuration, which config/ validates
// (with file and line) before any pipeline is built.
func NewMemory(rule Rule, maxKeys int) *Memory {
	if err := rule.Validate(); err != nil {
		panic(fmt.Sprintf("ratelimit.NewMemory: invalid rule: %v", err))
	}
	if maxKeys < 1 || maxKeys > math.MaxInt32 {
		panic(fmt.Sprintf("ratelimit.NewMemory: maxKeys %d must be between 1 and %d", maxKeys, math.MaxInt32))
	}
	n, bits := 1, uint(0)
	for n < maxShards && 2*n*minPerShard <= maxKeys {
		n, bits = 2*n, bits+1
	}
	m := &Memory{
		rule:     rule,
		interval: int64(rule.interval()),
		perShard: maxKeys / n, // n·perShard <= maxKeys: the bound is never exceeded
		shift:    64 - bits,
		seed:     maphash.MakeSeed(),
		fpAnd:    ^uint64(0),
		shards:   make([]shard, n),
	}
	m.tau = m.interval * int64(rule.Burst)
	// The fewest buckets that hold perShard keys within the load bound. Since
	// that bound is below one, a full table still has an empty slot, which is
	// what ends every probe.
	m.maxBkts = (m.perShard*loadDen + bucketSlots*loadNum - 1) / (bucketSlots * loadNum)
	for i := range m.shards {
		m.shards[i].setTable(min(initialBuckets, m.maxBkts))
	}
	return m
}

// Rule returns the rule the limiter enforces (for SetHeaders).
func (m *Memory) Rule() Rule { return m.rule }

// fingerprint is key's seeded 64-bit hash, never 0 (0 marks an empty slot;
// the key that hashes to 0 shares a fingerprint with the one that hashes to
// 1, which is as likely as any other pair colliding). fpAnd and fpOr leave
// it as it is outside tests.
func (m *Memory) fingerprint(key Key) uint64 {
	fp := maphash.Comparable(m.seed, key)&m.fpAnd | m.fpOr
	if fp == 0 {
		fp = 1
	}
	return fp
}

// Allow implements Limiter with GCRA. It does not allocate unless it adds a
// key to a shard whose table has not yet grown to its bound.
//
// The whole lookup is written out here rather than in a helper taking the
// fingerprint: returning the Decision through one more call cost 10 to 15 ns
// (a quarter of the single-key case) in measurements.
func (m *Memory) Allow(key Key, now time.Time) Decision {
	t := now.UnixNano()
	fp := m.fingerprint(key)
	s := &m.shards[fp>>m.shift] // shift 64 yields 0: one shard
	s.mu.Lock()
	i, found := s.find(fp)
	tat := t
	if found && s.table[i].tat > t {
		tat = s.table[i].tat
	}
	clamped := false
	if tat-t > m.tau {
		// Impossible unless the wall clock stepped back (or a concurrent
		// request read the clock later and won the lock). Treat the bucket
		// as empty rather than refuse the key until the clock catches up
		// with the stored TAT, which after an NTP step could be hours.
		tat, clamped = t+m.tau, true
	}
	next := tat + m.interval
	ahead := next - t
	if ahead > m.tau {
		if clamped {
			s.table[i].tat = tat
		}
		s.mu.Unlock()
		return Decision{
			Limit:      m.rule.Burst,
			ResetAfter: time.Duration(tat - t),
			RetryAfter: time.Duration(ahead - m.tau),
		}
	}
	if found {
		s.table[i].tat = next
	} else {
		m.insert(s, fp, next, t, i)
	}
	s.mu.Unlock()
	return Decision{
		Allowed:    true,
		Limit:      m.rule.Burst,
		Remaining:  int((m.tau - ahead) / m.interval),
		ResetAfter: time.Duration(ahead),
	}
}

// setTable gives s an empty table of the given number of buckets, aligned
// so that each bucket is one cache line (one miss per bucket read, not two).
// Go promises only 8-byte alignment, so the slice is cut from a slightly
// larger one; should an allocation not even be 16-byte aligned, buckets
// straddle lines, which is slower but still correct.
func (s *shard) setTable(buckets int) {
	raw := make([]slot, buckets*bucketSlots+bucketSlots-1)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%cacheLine) / int(unsafe.Sizeof(slot{}))
	s.table = raw[skip : skip+buckets*bucketSlots : skip+buckets*bucketSlots]
	s.buckets = buckets
}

// home is fp's first bucket: its low 32 bits scaled to the bucket count (a
// multiply rather than a modulo, and the count need not be a power of two,
// so a full table is sized to the key bound rather than rounded up to double
// it). The shard comes from the top bits, so the two are independent.
func home(fp uint64, buckets int) int {
	return int(uint64(uint32(fp)) * uint64(buckets) >> 32)
}

// find returns fp's slot, or else an empty slot where it could go. It stops
// at the first bucket with an empty slot: no key is ever stored beyond a
// bucket that was not full when it was placed, and remove keeps that true.
// A present key is usually in its home bucket, so that bucket is compared
// first without looking for room.
func (s *shard) find(fp uint64) (int, bool) {
	b := home(fp, s.buckets)
	for {
		i := b * bucketSlots
		bk := (*[bucketSlots]slot)(s.table[i:])
		switch fp {
		case bk[0].fp:
			return i, true
		case bk[1].fp:
			return i + 1, true
		case bk[2].fp:
			return i + 2, true
		case bk[3].fp:
			return i + 3, true
		}
		for j := range bk {
			if bk[j].fp == 0 {
				return i + j, false
			}
		}
		if b++; b == s.buckets {
			b = 0
		}
	}
}

// insert adds fp with the given TAT at slot hint (from find), unless the
// table first has to grow or drop a key. Called with s.mu held.
func (m *Memory) insert(s *shard, fp uint64, tat, now int64, hint int) {
	if s.count >= m.perShard {
		v := s.victim(fp, now)
		if s.inRun(fp, v, hint) {
			// The newcomer may sit anywhere from its home bucket up to the
			// bucket with room that find stopped at; no bucket's fullness
			// changes, so nothing else has to move.
			s.table[v] = slot{fp: fp, tat: tat}
			return
		}
		s.remove(v)
		hint, _ = s.find(fp)
	} else if (s.count+1)*loadDen > len(s.table)*loadNum && s.buckets < m.maxBkts {
		s.grow(min(2*s.buckets, m.maxBkts))
		hint, _ = s.find(fp)
	}
	s.table[hint] = slot{fp: fp, tat: tat}
	s.count++
}

// grow moves every key to a new table. Fingerprints carry their home, so
// nothing is hashed again.
func (s *shard) grow(buckets int) {
	old := s.table
	s.setTable(buckets)
	for _, e := range old {
		if e.fp != 0 {
			i, _ := s.find(e.fp)
			s.table[i] = e
		}
	}
}

// victim picks the slot to evict for newcomer fp: among the first evictScan
// keys from fp's home bucket on, the first idle one, else the one with the
// earliest TAT. The shard is full, so it holds at least one key.
//
// Sampling where the newcomer lands, rather than where a clock hand has got
// to, matters twice. A sweeping hand empties the part of the table just
// behind it and leaves the part ahead of it nearly full; at load 0.8 that
// grew probe runs to hundreds of buckets in simulation (a miss scanned ~700
// buckets in a 4,883-bucket table). Samples at random places leave the load
// even, and they start on the cache lines find has just read, where a victim
// can be replaced in place. The place is where the secret seed put the
// newcomer, so a client cannot aim evictions at a region of the table.
func (s *shard) victim(fp uint64, now int64) int {
	best, seen := -1, 0
	for i := home(fp, s.buckets) * bucketSlots; seen < evictScan && seen < s.count; i++ {
		if i == len(s.table) {
			i = 0
		}
		e := &s.table[i]
		if e.fp == 0 {
			continue
		}
		seen++
		if e.tat <= now {
			best = i
			break
		}
		if best < 0 || e.tat < s.table[best].tat {
			best = i
		}
	}
	if s.table[best].tat <= now {
		s.evictedIdle++
	} else {
		s.evictedActive++
	}
	return best
}

// inRun reports whether slot v lies between fp's home bucket and the bucket
// of slot end (where find stopped, having found every bucket before it full).
func (s *shard) inRun(fp uint64, v, end int) bool {
	h := home(fp, s.buckets)
	dv, de := v/bucketSlots-h, end/bucketSlots-h
	if dv < 0 {
		dv += s.buckets
	}
	if de < 0 {
		de += s.buckets
	}
	return dv <= de
}

// remove empties slot i and fills the hole from later buckets of its probe
// run (backward shift), so that find can keep stopping at the first bucket
// with room, without tombstones (which would accumulate under constant
// eviction and lengthen probes).
//
// The invariant: a key stored in bucket p with home h has every bucket from
// h up to p-1 (cyclically) full. After a hole opens in bucket hb, a key in
// a later bucket b whose home is at or before hb may move into it; the hole
// then moves to b. Once a bucket that already had room is reached, no key
// beyond it can have probed past it, so none needs to move.
func (s *shard) remove(i int) {
	s.table[i] = slot{}
	s.count--
	hole, hb := i, i/bucketSlots
	for b := hb; ; {
		if b++; b == s.buckets {
			b = 0
		}
		if b == hb {
			return // went all the way round: everything else was full
		}
		db := b - hb // how far back the hole is from b
		if db < 0 {
			db += s.buckets
		}
		bk := (*[bucketSlots]slot)(s.table[b*bucketSlots:])
		full, moved := true, false
		for j := range bk {
			if bk[j].fp == 0 {
				full = false
				continue
			}
			if moved {
				continue
			}
			dh := b - home(bk[j].fp, s.buckets) // how far back its home is
			if dh < 0 {
				dh += s.buckets
			}
			if dh >= db {
				s.table[hole] = bk[j]
				bk[j] = slot{}
				hole, moved = b*bucketSlots+j, true
			}
		}
		if !full {
			return
		}
		if moved {
			hb = b
		}
	}
}

// Stats describes the key table, for metrics.
type Stats struct {
	// Keys is the number of tracked keys, idle ones included (never more
	// than the maxKeys given to NewMemory).
	Keys int
	// EvictedIdle counts keys dropped that had fully recovered (no state
	// lost).
	EvictedIdle uint64
	// EvictedActive counts keys dropped while still owing time: each one is
	// a client that got a fresh burst because the table was full. A rising
	// count means a flood of distinct keys or a table too small.
	EvictedActive uint64
}

// Stats returns current counts. It locks each shard in turn, so it is meant
// for a metrics scrape, not for the request path.
func (m *Memory) Stats() Stats {
	var st Stats
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		st.Keys += s.count
		st.EvictedIdle += s.evictedIdle
		st.EvictedActive += s.evictedActive
		s.mu.Unlock()
	}
	return st
}
