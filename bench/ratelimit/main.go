// Command ratelimit measures what a shared (Redis) rate-limit check adds
// to a request next to the local (memory) one, in the same run: per-call
// latency percentiles of ratelimit.Memory.Allow and ratelimit.Redis.Allow
// on the same keys, interleaved in rounds so that a noisy moment hurts both
// alike, and the pre-checked refusal (a key known to be refused, answered
// without a round trip).
//
//	go run ./bench/ratelimit                        # Redis on 127.0.0.1:6379
//	go run ./bench/ratelimit -redis 127.0.0.1:6380 -calls 50000 -parallel 8
//
// Only loopback addresses are accepted. Keys are written under a prefix of
// their own, deleted at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/internal/redisconn"
	"github.com/portcullis-waf/portcullis/ratelimit"
)

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "Redis `host:port` (loopback only)")
	calls := flag.Int("calls", 20000, "calls per limiter per round")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	parallel := flag.Int("parallel", 1, "concurrent callers (each makes calls/parallel calls)")
	keys := flag.Int("keys", 10000, "distinct client keys")
	timeout := flag.Duration("timeout", 50*time.Millisecond, "per-call timeout (cluster.redis.timeout)")
	flag.Parse()
	if host, _, err := net.SplitHostPort(*addr); err != nil || !isLoopback(host) {
		fmt.Fprintln(os.Stderr, "ratelimit bench: -redis must be a loopback host:port")
		os.Exit(2)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	prefix := "portcullis-bench:" + hex.EncodeToString(rnd[:]) + ":"
	conn, err := redisconn.New(&config.RedisConfig{Network: "tcp", Addr: *addr, Timeout: *timeout, Dial: time.Second, KeyPrefix: prefix}, redisconn.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	defer clean(conn.Client, prefix)
	if err := conn.Ping(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit bench:", err)
		os.Exit(1)
	}

	// A rule no key reaches: every call is a full decision (allowed), so
	// the shared limiter makes a round trip each time.
	open := ratelimit.Rule{Rate: 1e6, Burst: 1e6}
	mem := ratelimit.NewMemory(open, *keys)
	shared := ratelimit.NewRedis(conn, open, ratelimit.RedisOptions{ID: "bench", MaxKeys: *keys})
	// A rule every key exceeds at once: after the first refusal, the shared
	// limiter answers from its pre-check.
	tight := ratelimit.Rule{Rate: 0.001, Burst: 1}
	refusing := ratelimit.NewRedis(conn, tight, ratelimit.RedisOptions{ID: "bench-refused", MaxKeys: *keys})
	memRefusing := ratelimit.NewMemory(tight, *keys)

	ks := make([]ratelimit.Key, *keys)
	for i := range ks {
		ks[i] = ratelimit.KeyFromAddr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 64)
	}
	for _, k := range ks { // warm up: connections, script cache, refusals
		shared.Allow(k, time.Now())
		refusing.Allow(k, time.Now())
		refusing.Allow(k, time.Now())
		memRefusing.Allow(k, time.Now())
	}
	for i := 0; !conn.Up(); i++ {
		if i == 100 {
			_, why := conn.Degraded()
			fmt.Fprintln(os.Stderr, "ratelimit bench: redis failed during warm-up:", why)
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond) // the probe brings it back
	}

	type row struct {
		name string
		l    ratelimit.Limiter
		lat  []time.Duration
		wall time.Duration
	}
	rows := []*row{
		{name: "memory (local)", l: mem},
		{name: "redis (shared)", l: shared},
		{name: "memory, refused key", l: memRefusing},
		{name: "redis, refused key (pre-check)", l: refusing},
	}
	for range *rounds {
		for _, r := range rows {
			lat, wall := run(r.l, ks, *calls, *parallel)
			r.lat = append(r.lat, lat...)
			r.wall += wall
		}
	}
	if n := fallbacks(conn); n > 0 {
		fmt.Printf("warning: %d shared checks fell back to local state (timeouts over %v); the redis rows include them\n\n", n, *timeout)
	}
	fmt.Printf("Rate-limit check latency, %d calls x %d rounds per row, %d caller(s), %d keys, redis %s\n\n", *calls, *rounds, *parallel, *keys, *addr)
	fmt.Println("| limiter | p50 | p90 | p99 | p99.9 | calls/s | p50 vs memory | p99 vs memory |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	base := rows[0]
	for i, r := range rows {
		if i == 2 {
			base = rows[2]
		}
		slices.Sort(r.lat)
		slices.Sort(base.lat)
		fmt.Printf("| %s | %v | %v | %v | %v | %.0f | %.1fx (+%v) | %.1fx (+%v) |\n", r.name,
			pct(r.lat, 50), pct(r.lat, 90), pct(r.lat, 99), pct(r.lat, 99.9),
			float64(len(r.lat))/r.wall.Seconds(),
			ratio(pct(r.lat, 50), pct(base.lat, 50)), pct(r.lat, 50)-pct(base.lat, 50),
			ratio(pct(r.lat, 99), pct(base.lat, 99)), pct(r.lat, 99)-pct(base.lat, 99))
	}
}

// run makes n calls spread over p callers and returns each call's latency
// and the wall time.
func run(l ratelimit.Limiter, ks []ratelimit.Key, n, p int) ([]time.Duration, time.Duration) {
	out := make([][]time.Duration, p)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range p {
		wg.Go(func() {
			lat := make([]time.Duration, 0, n/p)
			for i := w; i < n; i += p {
				k := ks[i%len(ks)]
				t := time.Now()
				l.Allow(k, t)
				lat = append(lat, time.Since(t))
			}
			out[w] = lat
		})
	}
	wg.Wait()
	wall := time.Since(start)
	var all []time.Duration
	for _, o := range out {
		all = append(all, o...)
	}
	return all, wall
}

// fallbacks counts decisions the shared limiter made locally.
func fallbacks(conn *redisconn.Conn) int {
	reg := prometheus.NewRegistry()
	reg.MustRegister(conn.Collectors()...)
	mfs, _ := reg.Gather()
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "portcullis_redis_fallback_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return int(n)
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * q / 100)
	return sorted[i]
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func clean(c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 500 {
			c.Del(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		c.Del(ctx, batch...)
	}
}
