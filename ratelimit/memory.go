package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// Memory is the in-process Limiter: one rule, at most maxKeys tracked keys,
// state lost on restart (a restart forgives everyone a burst, which is
// harmless). Safe for concurrent use.
//
// Keys are spread over up to 64 shards, each with its own mutex and its own
// open-addressing table (linear probing, load at most one half) of 32-byte
// entries holding the key and its TAT. A lookup therefore usually touches one
// cache line, where a Go map plus a side array for eviction touched three;
// once the tables outgrow the CPU cache those misses are the whole cost. Both the shard
// and the table position come from a seeded runtime hash (the one Go maps
// use), so a client cannot aim keys at one shard or one probe chain.
//
// Eviction: a key whose TAT is in the past is indistinguishable from a key
// never seen, so dropping it loses nothing. When a new key arrives at a full
// shard, a clock hand sweeping the table examines up to evictScan keys and
// evicts the first idle one; if none of those is idle, it evicts the one with
// the earliest TAT among them, the key closest to being idle, so a client that
// is being throttled (TAT far ahead) is the last to go. Because the scan is
// bounded, "prefer idle" is approximate: an idle key further along the sweep
// may outlive an active one examined now.
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
	maxTable int   // table length at which a shard stops growing
	shift    uint  // 64 - log2(len(shards))
	seed     maphash.Seed
	shards   []shard
}

var _ Limiter = (*Memory)(nil)

const (
	maxShards = 64
	// minPerShard keeps shards big enough for the eviction scan to have a
	// choice; small tables get fewer shards (down to one).
	minPerShard = 128
	// evictScan bounds the work of one eviction.
	evictScan = 16
	// initialTable is a new shard's table length; tables double up to
	// maxTable, so an idle gateway does not reserve maxKeys entries.
	initialTable = 16
)

// entry is one table slot, padded to 32 bytes so that no entry straddles two
// cache lines.
type entry struct {
	key  Key
	tat  int64 // Unix nanoseconds
	used bool
}

type shard struct {
	mu            sync.Mutex
	table         []entry // length a power of two
	count         int
	hand          int
	evictedIdle   uint64
	evictedActive uint64
	_             [64]byte // keep neighbouring shards' mutexes off one cache line
}

// NewMemory returns a limiter for rule that tracks at most maxKeys keys.
// Tables grow with use up to about 64 bytes per key (100,000 keys: 6.4 MB).
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
		shards:   make([]shard, n),
	}
	m.tau = m.interval * int64(rule.Burst)
	m.maxTable = 2
	for m.maxTable < 2*m.perShard {
		m.maxTable *= 2
	}
	for i := range m.shards {
		m.shards[i].table = make([]entry, min(initialTable, m.maxTable))
	}
	return m
}

// Rule returns the rule the limiter enforces (for SetHeaders).
func (m *Memory) Rule() Rule { return m.rule }

// Allow implements Limiter with GCRA. It does not allocate unless it adds a
// key to a shard whose table has not yet grown to its bound.
func (m *Memory) Allow(key Key, now time.Time) Decision {
	t := now.UnixNano()
	h := maphash.Comparable(m.seed, key)
	s := &m.shards[h>>m.shift] // shift 64 yields 0: one shard
	s.mu.Lock()
	i, found := s.find(key, h)
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
		m.insert(s, key, h, next, t)
	}
	s.mu.Unlock()
	return Decision{
		Allowed:    true,
		Limit:      m.rule.Burst,
		Remaining:  int((m.tau - ahead) / m.interval),
		ResetAfter: time.Duration(ahead),
	}
}

// find returns key's slot, or the empty slot where it would go. The table is
// never full (load <= 1/2), so the probe ends.
func (s *shard) find(key Key, h uint64) (int, bool) {
	mask := len(s.table) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		e := &s.table[i]
		if !e.used {
			return i, false
		}
		if e.key == key {
			return i, true
		}
	}
}

// insert adds key with the given TAT: growing the table while below its
// bound, else evicting another key. Called with s.mu held.
func (m *Memory) insert(s *shard, key Key, h uint64, tat, now int64) {
	if s.count >= m.perShard {
		m.remove(s, s.victim(now))
	} else if 2*(s.count+1) > len(s.table) && len(s.table) < m.maxTable {
		m.grow(s)
	}
	i, _ := s.find(key, h)
	s.table[i] = entry{key: key, tat: tat, used: true}
	s.count++
}

func (m *Memory) grow(s *shard) {
	old := s.table
	s.table = make([]entry, 2*len(old))
	for _, e := range old {
		if e.used {
			i, _ := s.find(e.key, maphash.Comparable(m.seed, e.key))
			s.table[i] = e
		}
	}
	s.hand = 0
}

// victim picks the entry to evict: the first idle one among the next
// evictScan entries from the hand, else the one among them with the earliest
// TAT. The shard is full, so it holds at least one entry.
func (s *shard) victim(now int64) int {
	mask := len(s.table) - 1
	best, seen := -1, 0
	for i := s.hand; seen < evictScan && seen < s.count; i = (i + 1) & mask {
		e := &s.table[i]
		if !e.used {
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
	s.hand = (best + 1) & mask
	return best
}

// remove empties slot i and shifts later entries of its probe run back, so
// every key stays reachable from its home slot without tombstones (which
// would otherwise accumulate under constant eviction and lengthen probes).
func (m *Memory) remove(s *shard, i int) {
	mask := len(s.table) - 1
	s.table[i] = entry{}
	s.count--
	for j := (i + 1) & mask; s.table[j].used; j = (j + 1) & mask {
		home := int(maphash.Comparable(m.seed, s.table[j].key)) & mask
		// The entry at j may move to the hole at i unless its home lies
		// cyclically in (i, j], in which case i is before its home.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			s.table[i] = s.table[j]
			s.table[j] = entry{}
			i = j
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
