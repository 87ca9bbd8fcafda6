package ratelimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the injected clock's start; no test reads the real clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func addrKey(s string) Key { return KeyFromAddr(netip.MustParseAddr(s), DefaultIPv6Prefix) }

func TestRuleValidate(t *testing.T) {
	tests := []struct {
		rule Rule
		want string // substring of the error; "" means valid
	}{
		{Rule{Rate: 10, Burst: 5}, ""},
		{Rule{Rate: 0.001, Burst: 1}, ""},
		{Rule{Rate: 1e9, Burst: 1}, ""},
		{Rule{Rate: 0, Burst: 5}, "rate 0 must be a positive"},
		{Rule{Rate: -1, Burst: 5}, "rate -1 must be a positive"},
		{Rule{Rate: 2e9, Burst: 5}, "above the maximum"},
		{Rule{Rate: 10, Burst: 0}, "burst 0 must be at least 1"},
		{Rule{Rate: 1e-12, Burst: 10}, "spans more than"},
	}
	for _, tt := range tests {
		err := tt.rule.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v: unexpected error %v", tt.rule, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tt.rule, err, tt.want)
		}
	}
	// Every problem is reported, not just the first.
	err := Rule{Rate: -1, Burst: 0}.Validate()
	if err == nil || !strings.Contains(err.Error(), "rate") || !strings.Contains(err.Error(), "burst") {
		t.Errorf("both problems expected, got %v", err)
	}
}

func TestNewMemoryRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		rule    Rule
		maxKeys int
	}{{Rule{Rate: 0, Burst: 1}, 10}, {Rule{Rate: 1, Burst: 1}, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewMemory(%+v, %d) did not panic", tt.rule, tt.maxKeys)
				}
			}()
			NewMemory(tt.rule, tt.maxKeys)
		}()
	}
}

func TestBurstHonoured(t *testing.T) {
	tests := []struct{ rule Rule }{
		{Rule{Rate: 10, Burst: 5}},
		{Rule{Rate: 1, Burst: 1}},
		{Rule{Rate: 0.5, Burst: 20}},
		{Rule{Rate: 1000, Burst: 3}},
	}
	for _, tt := range tests {
		m := NewMemory(tt.rule, 100)
		k := addrKey("192.0.2.1")
		for i := range tt.rule.Burst + 3 {
			d := m.Allow(k, t0)
			wantAllowed := i < tt.rule.Burst
			if d.Allowed != wantAllowed {
				t.Fatalf("%+v request %d: allowed=%v, want %v", tt.rule, i, d.Allowed, wantAllowed)
			}
			wantRemaining := max(tt.rule.Burst-1-i, 0)
			if d.Remaining != wantRemaining || d.Limit != tt.rule.Burst {
				t.Errorf("%+v request %d: remaining %d limit %d, want %d %d",
					tt.rule, i, d.Remaining, d.Limit, wantRemaining, tt.rule.Burst)
			}
			if d.Allowed != (d.RetryAfter == 0) {
				t.Errorf("%+v request %d: allowed=%v with RetryAfter %v", tt.rule, i, d.Allowed, d.RetryAfter)
			}
		}
	}
}

func TestSteadyRateHonoured(t *testing.T) {
	tests := []struct {
		name     string
		rule     Rule
		every    time.Duration // the client sends one request this often
		duration time.Duration
	}{
		{"10rps burst 5, client at 100rps", Rule{Rate: 10, Burst: 5}, 10 * time.Millisecond, 10 * time.Second},
		{"10rps burst 5, client at 1000rps", Rule{Rate: 10, Burst: 5}, time.Millisecond, 10 * time.Second},
		{"1rps burst 1", Rule{Rate: 1, Burst: 1}, 7 * time.Millisecond, 60 * time.Second},
		{"100rps burst 50", Rule{Rate: 100, Burst: 50}, 3 * time.Millisecond, 5 * time.Second},
		{"0.2rps burst 3", Rule{Rate: 0.2, Burst: 3}, 100 * time.Millisecond, 100 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory(tt.rule, 100)
			k := KeyFromString("api-key-1")
			allowed := 0
			for at := time.Duration(0); at <= tt.duration; at += tt.every {
				if m.Allow(k, t0.Add(at)).Allowed {
					allowed++
				}
			}
			want := tt.rule.Burst + int(tt.rule.Rate*tt.duration.Seconds())
			if allowed < want-1 || allowed > want+1 {
				t.Errorf("allowed %d over %v, want %d±1", allowed, tt.duration, want)
			}
		})
	}
}

func TestRecoveryAfterWaiting(t *testing.T) {
	rule := Rule{Rate: 10, Burst: 5} // T = 100ms
	m := NewMemory(rule, 100)
	k := addrKey("2001:db8::1")
	for range rule.Burst {
		m.Allow(k, t0)
	}
	d := m.Allow(k, t0)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond || d.ResetAfter != 500*time.Millisecond {
		t.Fatalf("exhausted: %+v, want refused, retry 100ms, reset 500ms", d)
	}
	steps := []struct {
		at        time.Duration
		allowed   bool
		remaining int
	}{
		{d.RetryAfter - time.Nanosecond, false, 0}, // one nanosecond early is still too early
		{d.RetryAfter, true, 0},
		{d.RetryAfter, false, 0},
		{d.RetryAfter + 100*time.Millisecond, true, 0},
		// After ResetAfter of silence the full burst is back.
		{2 * time.Second, true, rule.Burst - 1},
	}
	for _, st := range steps {
		got := m.Allow(k, t0.Add(st.at))
		if got.Allowed != st.allowed || got.Remaining != st.remaining {
			t.Errorf("at +%v: allowed=%v remaining=%d, want %v %d", st.at, got.Allowed, got.Remaining, st.allowed, st.remaining)
		}
	}
}

func TestClockStepBackDoesNotLockOut(t *testing.T) {
	m := NewMemory(Rule{Rate: 10, Burst: 2}, 100)
	k := addrKey("192.0.2.9")
	m.Allow(k, t0)
	m.Allow(k, t0)
	back := t0.Add(-time.Hour)
	d := m.Allow(k, back)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("after step back: %+v, want refused with retry 100ms", d)
	}
	if d := m.Allow(k, back.Add(100*time.Millisecond)); !d.Allowed {
		t.Errorf("still refused one interval after the step back: %+v", d)
	}
}

func TestConcurrentAllowGrantsExactlyBurst(t *testing.T) {
	rule := Rule{Rate: 1, Burst: 50}
	m := NewMemory(rule, 100_000)
	k := addrKey("198.51.100.7")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if m.Allow(k, t0).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != int64(rule.Burst) {
		t.Errorf("allowed %d of 800 simultaneous requests, want %d", got, rule.Burst)
	}
}

func TestSetHeaders(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		d    Decision
		want map[string]string // "" means absent
	}{
		{"allowed", Rule{Rate: 1, Burst: 10},
			Decision{Allowed: true, Limit: 10, Remaining: 7, ResetAfter: 2500 * time.Millisecond},
			map[string]string{HeaderLimit: "10", HeaderRemaining: "7", HeaderReset: "3", HeaderPolicy: "10;w=10", HeaderRetry: ""}},
		{"refused", Rule{Rate: 0.5, Burst: 3},
			Decision{Limit: 3, ResetAfter: 6 * time.Second, RetryAfter: 1001 * time.Millisecond},
			map[string]string{HeaderLimit: "3", HeaderRemaining: "0", HeaderReset: "6", HeaderPolicy: "3;w=6", HeaderRetry: "2"}},
		{"retry under a second says 1", Rule{Rate: 10, Burst: 10},
			Decision{Limit: 10, ResetAfter: time.Second, RetryAfter: 100 * time.Millisecond},
			map[string]string{HeaderReset: "1", HeaderPolicy: "10;w=1", HeaderRetry: "1"}},
		{"fractional window has no policy", Rule{Rate: 10, Burst: 5},
			Decision{Allowed: true, Limit: 5, Remaining: 4, ResetAfter: 100 * time.Millisecond},
			map[string]string{HeaderReset: "1", HeaderPolicy: "", HeaderRetry: ""}},
		{"exact seconds are not rounded up", Rule{Rate: 1, Burst: 2},
			Decision{Allowed: true, Limit: 2, Remaining: 1, ResetAfter: time.Second},
			map[string]string{HeaderReset: "1", HeaderPolicy: "2;w=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetHeaders(h, tt.d, tt.rule)
			for name, want := range tt.want {
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestHeadersFromLimiter(t *testing.T) {
	rule := Rule{Rate: 2, Burst: 4} // window 2s
	m := NewMemory(rule, 10)
	k := addrKey("192.0.2.1")
	var d Decision
	for range 5 {
		d = m.Allow(k, t0)
	}
	h := http.Header{}
	SetHeaders(h, d, m.Rule())
	want := map[string]string{HeaderLimit: "4", HeaderRemaining: "0", HeaderReset: "2", HeaderPolicy: "4;w=2", HeaderRetry: "1"}
	for name, v := range want {
		if got := h.Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

func TestEvictionKeepsMemoryBounded(t *testing.T) {
	for _, maxKeys := range []int{1, 7, 100, 1000, 20_000} {
		// A slow rate keeps every flooded key active, the worst case.
		m := NewMemory(Rule{Rate: 0.01, Burst: 2}, maxKeys)
		for i := range uint32(100_000) {
			a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if !m.Allow(KeyFromAddr(a, 0), t0.Add(time.Duration(i)*time.Microsecond)).Allowed {
				t.Fatalf("maxKeys %d: new key %v refused", maxKeys, a)
			}
		}
		st := m.Stats()
		if st.Keys > maxKeys || st.Keys < maxKeys/2 {
			t.Errorf("maxKeys %d: %d keys tracked", maxKeys, st.Keys)
		}
		if got := uint64(100_000 - st.Keys); st.EvictedActive+st.EvictedIdle != got {
			t.Errorf("maxKeys %d: %d+%d evictions, want %d", maxKeys, st.EvictedActive, st.EvictedIdle, got)
		}
		checkTables(t, m)
	}
}

// tracked reports whether m holds state for k, without changing it.
func (m *Memory) tracked(k Key) bool { return m.trackedFP(m.fingerprint(k)) }

// checkTables verifies every shard's table: the count matches the used
// slots, the load bound holds, no fingerprint is stored twice, every key is
// in its shard, the probe invariant holds (every bucket from a key's home up
// to the one before its own is full), and find returns each key's own slot.
// A backward-shift deletion that stranded a key behind a bucket with room
// would fail the last two.
func checkTables(t *testing.T, m *Memory) {
	t.Helper()
	for si := range m.shards {
		s := &m.shards[si]
		if len(s.table) != s.buckets*bucketSlots || s.buckets > m.maxBkts {
			t.Fatalf("shard %d: %d slots in %d buckets (max %d)", si, len(s.table), s.buckets, m.maxBkts)
		}
		full := func(b int) bool {
			for _, e := range s.table[b*bucketSlots : (b+1)*bucketSlots] {
				if e.fp == 0 {
					return false
				}
			}
			return true
		}
		used := 0
		seen := map[uint64]bool{}
		for i, e := range s.table {
			if e.fp == 0 {
				continue
			}
			used++
			if seen[e.fp] {
				t.Fatalf("shard %d: fingerprint %x stored twice", si, e.fp)
			}
			seen[e.fp] = true
			if int(e.fp>>m.shift) != si {
				t.Fatalf("fingerprint %x in shard %d, belongs in %d", e.fp, si, e.fp>>m.shift)
			}
			for b := home(e.fp, s.buckets); b != i/bucketSlots; b = (b + 1) % s.buckets {
				if !full(b) {
					t.Fatalf("shard %d: key at slot %d probed past bucket %d, which has room", si, i, b)
				}
			}
			if j, ok := s.find(e.fp); !ok || j != i {
				t.Fatalf("shard %d: key at %d found at %d, %v", si, i, j, ok)
			}
		}
		if used != s.count || used > m.perShard || used*loadDen > len(s.table)*loadNum {
			t.Fatalf("shard %d: %d used slots, count %d, bound %d, table %d", si, used, s.count, m.perShard, len(s.table))
		}
	}
}

func TestEvictionPrefersIdleKeys(t *testing.T) {
	const maxKeys = 100 // below 256: one shard
	rule := Rule{Rate: 1, Burst: 3}
	m := NewMemory(rule, maxKeys)
	throttled := addrKey("203.0.113.66")
	for range rule.Burst + 1 {
		m.Allow(throttled, t0)
	}
	var quiet []Key
	for i := range maxKeys - 1 {
		quiet = append(quiet, KeyFromString(fmt.Sprint("quiet-", i)))
		m.Allow(quiet[i], t0)
	}
	// 1.5 s later the quiet keys (one request each, TAT t0+1s) are idle;
	// the throttled key's TAT is t0+3s. Any eviction scan sees at least
	// evictScan-1 idle keys, so the first newcomer must take an idle slot.
	later := t0.Add(1500 * time.Millisecond)
	m.Allow(KeyFromString("first newcomer"), later)
	if st := m.Stats(); st.Keys != maxKeys || st.EvictedIdle != 1 || st.EvictedActive != 0 {
		t.Errorf("after one newcomer: %+v, want %d keys and one idle eviction", st, maxKeys)
	}
	// A flood: its keys (TAT later+1s = t0+2.5s) always have an earlier TAT
	// than the throttled key, so they go before it, however long it lasts.
	for i := range 10 * maxKeys {
		m.Allow(KeyFromString(fmt.Sprint("flood-", i)), later)
	}
	st := m.Stats()
	if st.Keys != maxKeys || st.EvictedIdle+st.EvictedActive != 10*maxKeys+1 {
		t.Errorf("after the flood: %+v", st)
	}
	checkTables(t, m)
	for _, k := range quiet {
		if m.tracked(k) {
			t.Errorf("idle key %v outlived a flood ten times the table", k)
		}
	}
	// The throttled key has earned back one request, not a fresh burst.
	if d := m.Allow(throttled, later); !d.Allowed || d.Remaining != 0 {
		t.Errorf("throttled key was evicted by the flood: %+v", d)
	}
}

func TestEvictionWhenNothingIsIdle(t *testing.T) {
	const maxKeys = 100
	m := NewMemory(Rule{Rate: 0.001, Burst: 1}, maxKeys) // T = 1000 s
	var keys []Key
	for i := range maxKeys {
		keys = append(keys, KeyFromString(fmt.Sprint("client-", i)))
		m.Allow(keys[i], t0.Add(time.Duration(i)*time.Second))
	}
	// At +10 min every key still owes time. Documented trade-off: the
	// newcomer gets in and one existing key loses its state.
	now := t0.Add(10 * time.Minute)
	if d := m.Allow(KeyFromString("newcomer"), now); !d.Allowed {
		t.Fatalf("newcomer refused: %+v", d)
	}
	st := m.Stats()
	if st.Keys != maxKeys || st.EvictedActive != 1 || st.EvictedIdle != 0 {
		t.Errorf("stats %+v, want %d keys and one active eviction", st, maxKeys)
	}
	lost := 0
	for _, k := range keys {
		if !m.tracked(k) {
			lost++
		}
	}
	if lost != 1 {
		t.Errorf("%d keys lost their state, want 1", lost)
	}
}

func TestKeyFromAddr(t *testing.T) {
	tests := []struct {
		a, b   string
		prefix int
		same   bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", DefaultIPv6Prefix, true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", DefaultIPv6Prefix, false},
		{"2001:db8:1:2::1", "2001:db8:1:2::1%eth0", DefaultIPv6Prefix, true},
		{"2001:db8:1:2::1", "2001:db8:1:2::2", 0, true},   // out of range: default /64
		{"2001:db8:1:2::1", "2001:db8:1:2::2", 129, true}, // out of range: default /64
		{"2001:db8:1:2::1", "2001:db8:1:2::2", 128, false},
		{"2001:db8:1:2::1", "2001:db8:1:2::1", 128, true},
		{"2001:db8:1:2::1", "2001:db8:1:ff::1", 48, true},
		{"2001:db8:1:2::1", "2001:db8:2:2::1", 48, false},
		{"2001:db8::1:1", "2001:db8::1:2", 112, true},
		{"2001:db8::1:1", "2001:db8::2:1", 112, false},
		{"192.0.2.1", "192.0.2.2", DefaultIPv6Prefix, false}, // IPv4: full address
		{"192.0.2.1", "::ffff:192.0.2.1", DefaultIPv6Prefix, true},
		{"192.0.2.1", "::ffff:192.0.2.1", 128, true},
		{"0.0.0.0", "::", DefaultIPv6Prefix, false},
		{"192.0.2.1", "::c000:201", 128, false}, // IPv4-compatible IPv6 is not IPv4
	}
	for _, tt := range tests {
		ka := KeyFromAddr(netip.MustParseAddr(tt.a), tt.prefix)
		kb := KeyFromAddr(netip.MustParseAddr(tt.b), tt.prefix)
		if (ka == kb) != tt.same {
			t.Errorf("/%d %s (%v) vs %s (%v): same=%v, want %v", tt.prefix, tt.a, ka, tt.b, kb, ka == kb, tt.same)
		}
	}
	if k := KeyFromAddr(netip.Addr{}, 64); k != (Key{}) {
		t.Errorf("invalid address key %v, want zero", k)
	}
}

func TestIPv6SubnetSharesOneBudget(t *testing.T) {
	m := NewMemory(Rule{Rate: 1, Burst: 3}, 100)
	allowed := 0
	for i := range 20 { // a host rotating through addresses in its /64
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 15: byte(i)})
		if m.Allow(KeyFromAddr(a, DefaultIPv6Prefix), t0).Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("rotating addresses in one /64 got %d requests through, want 3", allowed)
	}
}

func TestKeyFromStringAndWith(t *testing.T) {
	a, b := KeyFromString("key-123"), KeyFromString("key-123")
	if a != b {
		t.Errorf("KeyFromString not stable: %v vs %v", a, b)
	}
	distinct := []Key{
		KeyFromString("key-123"), KeyFromString("key-124"), KeyFromString(""),
		a.With(1), a.With(2), b.With(0),
		addrKey("192.0.2.1"), addrKey("192.0.2.1").With(1), addrKey("192.0.2.2").With(1),
		addrKey("2001:db8::1").With(1),
	}
	seen := map[Key]int{}
	for i, k := range distinct {
		if j, dup := seen[k]; dup {
			t.Errorf("keys %d and %d collide: %v", j, i, k)
		}
		seen[k] = i
	}
	if a.With(7) != b.With(7) {
		t.Error("With not stable")
	}
	if got := addrKey("192.0.2.1").String(); got != "00000000000000000000ffffc0000201" {
		t.Errorf("String() = %q", got)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	m := NewMemory(Rule{Rate: 100, Burst: 10}, 1000)
	ip := netip.MustParseAddr("2001:db8::1")
	header := strings.Repeat("x", 40)
	m.Allow(KeyFromAddr(ip, 64), t0)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		now := t0.Add(time.Duration(i) * time.Millisecond)
		m.Allow(KeyFromAddr(ip, 64), now)
		m.Allow(KeyFromString(header).With(3), now)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request", allocs)
	}
}
