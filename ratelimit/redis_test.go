package ratelimit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/internal/redistest"
)

// counterValue sums the samples of the connection's series named name.
func counterValue(t *testing.T, conn *redisconn.Conn, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(conn.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += metricValue(m)
		}
	}
	return sum
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

// The shared limiter decides exactly as the memory limiter on the same
// arrivals (caller's clock), including a clock that steps back. Rates are
// chosen with whole-microsecond intervals, the shared limiter's resolution.
func TestRedisParityWithMemory(t *testing.T) {
	conn := redistest.Shared(t)
	ms := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, v := range n {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	burstThenSteady := []time.Duration{}
	for i := range 40 {
		burstThenSteady = append(burstThenSteady, time.Duration(i*37)*time.Millisecond)
	}
	tests := []struct {
		name     string
		rule     Rule
		arrivals []time.Duration // offsets from t0
	}{
		{"burst of 5 at once", Rule{Rate: 10, Burst: 5}, ms(0, 0, 0, 0, 0, 0, 0, 50, 100, 100, 150, 1000)},
		{"spaced at the rate", Rule{Rate: 10, Burst: 1}, ms(0, 100, 200, 250, 300, 399, 400, 500)},
		{"slow rate", Rule{Rate: 0.5, Burst: 2}, ms(0, 1, 2, 1999, 2000, 2001, 6000, 6000, 6000)},
		{"fast rate", Rule{Rate: 1000, Burst: 3}, ms(0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 10)},
		{"steady stream over the rate", Rule{Rate: 4, Burst: 3}, burstThenSteady},
		{"clock steps back", Rule{Rate: 10, Burst: 2}, ms(5000, 5000, 5000, 0, 0, 100, 5100, 5100)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := NewMemory(tt.rule, 100)
			shared := NewRedis(conn, tt.rule, RedisOptions{ID: fmt.Sprintf("parity%d", i), MaxKeys: 100, CallerClock: true})
			key := addrKey("192.0.2.7")
			for j, off := range tt.arrivals {
				now := t0.Add(off)
				want, got := mem.Allow(key, now), shared.Allow(key, now)
				if got != want {
					t.Errorf("arrival %d at +%v: shared %+v, memory %+v", j, off, got, want)
				}
			}
		})
	}
	if n := counterValue(t, conn, "portcullis_redis_fallback_total"); n != 0 {
		t.Errorf("%v decisions fell back to local state; want all from Redis", n)
	}
}

// Two limiters on two connections (two instances) share one budget: over a
// window of arrivals spread across both, the total admitted is what one
// limiter would admit, within ±5% (here exactly, on a shared clock).
func TestRedisTwoInstancesShareBudget(t *testing.T) {
	a := redistest.Shared(t)
	rule := Rule{Rate: 50, Burst: 10}
	// Both connections use the same prefix (one cluster): the second one
	// takes the first's.
	b2 := redistest.Shared(t, func(c *config.RedisConfig) { c.KeyPrefix = a.Prefix() })
	la := NewRedis(a, rule, RedisOptions{ID: "shared", MaxKeys: 100, CallerClock: true})
	lb := NewRedis(b2, rule, RedisOptions{ID: "shared", MaxKeys: 100, CallerClock: true})
	key := addrKey("2001:db8::1")
	const window = 4 * time.Second
	allowed := 0
	// Each instance sees a request every 3 ms, offset by 1 ms: about 330
	// requests a second in all, far over the limit of 50.
	for off := time.Duration(0); off < window; off += time.Millisecond {
		var d Decision
		switch off % (3 * time.Millisecond) {
		case 0:
			d = la.Allow(key, t0.Add(off))
		case time.Millisecond:
			d = lb.Allow(key, t0.Add(off))
		default:
			continue
		}
		if d.Allowed {
			allowed++
		}
	}
	want := float64(rule.Burst) + rule.Rate*window.Seconds()
	if f := float64(allowed); f < want*0.95 || f > want*1.05 {
		t.Errorf("admitted %d over %v across two instances, want %v ±5%%", allowed, window, want)
	}
}

// The same with the server's clock, instances running at once: the budget
// is shared, so the total stays within one limiter's allowance for the
// elapsed time (two unshared limiters would admit about twice as much).
func TestRedisConcurrentInstancesServerClock(t *testing.T) {
	a := redistest.Shared(t)
	b := redistest.Shared(t, func(c *config.RedisConfig) { c.KeyPrefix = a.Prefix() })
	rule := Rule{Rate: 200, Burst: 20}
	ls := []*Redis{
		NewRedis(a, rule, RedisOptions{ID: "live", MaxKeys: 100}),
		NewRedis(b, rule, RedisOptions{ID: "live", MaxKeys: 100}),
	}
	key := addrKey("198.51.100.9")
	var allowed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			for i := 0; i < 3000; i++ {
				if l.Allow(key, time.Now()).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	ceiling := float64(rule.Burst) + rule.Rate*elapsed.Seconds() + 1
	if got := float64(allowed.Load()); got > ceiling {
		t.Errorf("admitted %v in %v across two instances, more than one budget allows (%.0f)", got, elapsed, ceiling)
	}
	if allowed.Load() < int64(rule.Burst) {
		t.Errorf("admitted %d, fewer than one burst (%d)", allowed.Load(), rule.Burst)
	}
}

// A key refused until T is refused locally until T, without a round trip,
// with the same answer Redis gives.
func TestRedisLocalPrecheck(t *testing.T) {
	conn := redistest.Shared(t)
	l := NewRedis(conn, Rule{Rate: 1, Burst: 1}, RedisOptions{ID: "pre", MaxKeys: 10, CallerClock: true})
	key := addrKey("203.0.113.5")
	if !l.Allow(key, t0).Allowed {
		t.Fatal("first request refused")
	}
	first := l.Allow(key, t0.Add(100*time.Millisecond))
	if first.Allowed || first.RetryAfter != 900*time.Millisecond {
		t.Fatalf("second request: %+v, want refused with RetryAfter 900ms", first)
	}
	calls := counterValue(t, conn, "portcullis_redis_local_refusals_total")
	d := l.Allow(key, t0.Add(600*time.Millisecond))
	if d.Allowed || d.RetryAfter != 400*time.Millisecond || d.ResetAfter != 400*time.Millisecond || d.Limit != 1 {
		t.Errorf("pre-checked refusal: %+v, want RetryAfter and ResetAfter 400ms", d)
	}
	if got := counterValue(t, conn, "portcullis_redis_local_refusals_total"); got != calls+1 {
		t.Errorf("local refusals %v, want %v", got, calls+1)
	}
	// At T the key is asked about again, and allowed.
	if d := l.Allow(key, t0.Add(time.Second)); !d.Allowed {
		t.Errorf("at T: %+v, want allowed", d)
	}
}

// Idle keys expire: the script sets a TTL of at most the window.
func TestRedisKeyTTL(t *testing.T) {
	conn := redistest.Shared(t)
	l := NewRedis(conn, Rule{Rate: 2, Burst: 4}, RedisOptions{ID: "ttl", MaxKeys: 10})
	key := addrKey("192.0.2.99")
	l.Allow(key, time.Now())
	ttl, err := conn.Client.PTTL(context.Background(), conn.Prefix()+"rl:ttl:"+key.String()).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 2*time.Second { // window = 4/2 s
		t.Errorf("TTL %v, want within (0, 2s]", ttl)
	}
}

// Redis going away: decisions continue from the local limiter, the
// connection reports degraded; Redis returning: decisions come from Redis
// again. The outage is real (the server is killed) and so is the recovery
// (a new server on the same port, its script cache empty: EVALSHA fails
// with NOSCRIPT and the script is sent again).
func TestRedisOutageFallbackAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redistest.Config(t, srv.Addr)
	cfg.Timeout = time.Second
	conn := redistest.Connect(t, cfg)
	rule := Rule{Rate: 1, Burst: 2}
	l := NewRedis(conn, rule, RedisOptions{ID: "outage", MaxKeys: 100})
	key := addrKey("192.0.2.1")
	exists := func() bool {
		n, _ := conn.Client.Exists(context.Background(), conn.Prefix()+"rl:outage:"+key.String()).Result()
		return n == 1
	}
	if !l.Allow(key, time.Now()).Allowed || !exists() {
		t.Fatal("first request not decided by Redis")
	}
	if down, _ := conn.Degraded(); down {
		t.Fatal("degraded before the outage")
	}

	srv.Stop()
	other := addrKey("192.0.2.2")
	// The first call notices; every decision still has an answer: the local
	// limiter's, with the same rule (burst 2, then refused).
	got := []bool{l.Allow(other, time.Now()).Allowed, l.Allow(other, time.Now()).Allowed, l.Allow(other, time.Now()).Allowed}
	if down, why := conn.Degraded(); !down || why == "" {
		t.Fatalf("not degraded after the outage: %v %q", down, why)
	}
	if !got[1] || got[2] {
		t.Errorf("local fallback decisions %v, want the second allowed and the third refused", got)
	}
	if n := counterValue(t, conn, "portcullis_redis_fallback_total"); n < 2 {
		t.Errorf("fallback decisions counted %v, want at least 2", n)
	}
	if g := counterValue(t, conn, "portcullis_redis_degraded"); g != 1 {
		t.Errorf("degraded gauge %v, want 1", g)
	}

	srv.Restart()
	redistest.Eventually(t, 10*time.Second, "connection up again", conn.Up)
	if down, _ := conn.Degraded(); down {
		t.Error("still degraded after recovery")
	}
	third := addrKey("192.0.2.3")
	if !l.Allow(third, time.Now()).Allowed {
		t.Error("request after recovery refused")
	}
	if n, _ := conn.Client.Exists(context.Background(), conn.Prefix()+"rl:outage:"+third.String()).Result(); n != 1 {
		t.Error("decision after recovery was not made in Redis")
	}
}

// A call slower than the timeout counts as a failure: the limiter does
// not wait longer than the bound.
func TestRedisTimeoutFallsBack(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redistest.Config(t, srv.Addr)
	cfg.Timeout = 200 * time.Millisecond
	conn := redistest.Connect(t, cfg)
	l := NewRedis(conn, Rule{Rate: 5, Burst: 5}, RedisOptions{ID: "slow", MaxKeys: 10})
	// Stall the server for five seconds: every client's commands wait.
	blocker := redistest.Connect(t, redistest.Config(t, srv.Addr))
	if err := blocker.Client.Do(context.Background(), "CLIENT", "PAUSE", "5000", "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	d := l.Allow(addrKey("192.0.2.50"), time.Now())
	if !d.Allowed {
		t.Errorf("decision during the stall: %+v, want the local limiter's allow", d)
	}
	if conn.Up() {
		t.Error("connection still up after a timed-out call")
	}
}

func TestSharedKeysAreStable(t *testing.T) {
	// Fixed values: a shared key must not depend on the process.
	if got := SharedKeyFromString("api-key-1").String(); got != SharedKeyFromString("api-key-1").String() || got == SharedKeyFromString("api-key-2").String() {
		t.Errorf("SharedKeyFromString not a function of its input: %s", got)
	}
	k := KeyFromAddr(netip.MustParseAddr("192.0.2.1"), 64)
	again := RouteID("a", "/") // a second call: RouteID is a function of its input
	if k.SharedWith(RouteID("a", "/")) == k.SharedWith(RouteID("a", "/x")) || RouteID("a", "/") != again {
		t.Error("SharedWith/RouteID do not separate routes")
	}
}

// hostileRedis is a server speaking the Redis protocol on loopback that
// answers every script with the same reply: what a compromised or broken
// Redis could send. Other commands get an error (the client then falls
// back to RESP2 and ignores its optional set-up), PING gets PONG.
func hostileRedis(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					switch strings.ToUpper(args[0]) {
					case "PING":
						_, err = io.WriteString(c, "+PONG\r\n")
					case "EVALSHA", "EVAL":
						_, err = io.WriteString(c, reply)
					default:
						_, err = io.WriteString(c, "-ERR unknown command\r\n")
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad command header %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("bad bulk header %q", line)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// A Redis that answers with absurd numbers (a refusal for eleven days, a
// negative or huge remaining count) cannot make the instance refuse a key
// locally for longer than one interval, nor send such headers: the
// answer is bounded by what the script can return.
func TestRedisHostileAnswersAreBounded(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  Decision
	}{
		{"refused for eleven days", "*4\r\n:0\r\n:999999999999\r\n:999999999999\r\n:0\r\n",
			Decision{Allowed: false, Limit: 5, Remaining: 0, ResetAfter: 1200 * time.Millisecond, RetryAfter: 200 * time.Millisecond}},
		{"negative times, huge remaining", "*4\r\n:1\r\n:-5\r\n:-5\r\n:1000000\r\n",
			Decision{Allowed: true, Limit: 5, Remaining: 5}},
		{"negative remaining", "*4\r\n:0\r\n:1000\r\n:1000\r\n:-7\r\n",
			Decision{Allowed: false, Limit: 5, Remaining: 0, ResetAfter: time.Millisecond, RetryAfter: time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := hostileRedis(t, tc.reply)
			conn, err := redisconn.New(&config.RedisConfig{Network: "tcp", Addr: addr, Timeout: 2 * time.Second, Dial: time.Second, KeyPrefix: "hostile:"}, redisconn.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			l := NewRedis(conn, Rule{Rate: 5, Burst: 5}, RedisOptions{ID: "hostile", MaxKeys: 10})
			now := time.Now()
			key := addrKey("192.0.2.77")
			if d := l.Allow(key, now); d != tc.want {
				t.Errorf("decision %+v, want %+v (fallbacks %v)", d, tc.want, counterValue(t, conn, "portcullis_redis_fallback_total"))
			}
			if !tc.want.Allowed {
				// One interval later the key is asked about again, not
				// refused from the local pre-check.
				before := counterValue(t, conn, "portcullis_redis_local_refusals_total")
				l.Allow(key, now.Add(tc.want.RetryAfter))
				if got := counterValue(t, conn, "portcullis_redis_local_refusals_total"); got != before {
					t.Errorf("refused locally after RetryAfter %v", tc.want.RetryAfter)
				}
			}
		})
	}
}
