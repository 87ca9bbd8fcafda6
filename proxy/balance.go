package proxy

import (
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/portcullis-waf/portcullis/config"
)

// The balancer picks a target for one attempt. It never allocates: the set
// of targets already tried lives on the caller's stack (a fixed bit set,
// which is why pools are bounded by config.MaxTargets), the policies are
// switch cases on concrete types rather than an interface that would make
// that set escape, and the hash key is computed in place.

// triedSet marks targets already tried by one request.
type triedSet [config.MaxTargets / 64]uint64

func (s *triedSet) has(i int) bool { return s[i>>6]&(1<<(i&63)) != 0 }
func (s *triedSet) add(i int)      { s[i>>6] |= 1 << (i & 63) }

// balancer holds the per-policy state of a pool.
type balancer struct {
	policy string
	rr     rrCounter // round robin and tie-breaking position

	mu      sync.Mutex // smooth weighted round robin state
	current []int64

	ring []ringPoint // consistent hash ring, sorted by hash
}

// rrCounter is a padded atomic counter: it is written by every request, so
// it should not share a cache line with read-mostly fields.
type rrCounter struct {
	_ [64]byte
	n atomic.Uint64
	_ [56]byte
}

type ringPoint struct {
	hash   uint64
	target int
}

func newBalancer(policy string, targets []*target) *balancer {
	b := &balancer{policy: policy}
	switch policy {
	case config.PolicyWeightedRoundRobin:
		b.current = make([]int64, len(targets))
	case config.PolicyIPHash, config.PolicyHash:
		b.ring = buildRing(targets)
	}
	return b
}

// pointsPerWeight is the number of ring points per unit of weight. With 256
// points a target's share of the keys is within about ±6% (one standard
// deviation) of its weight; the ring of 10 targets is 40 KiB.
const pointsPerWeight = 256

// maxRingPoints bounds the ring of a large pool with large weights.
const maxRingPoints = 1 << 18

func buildRing(targets []*target) []ringPoint {
	total := 0
	for _, t := range targets {
		total += t.weight * pointsPerWeight
	}
	scale := 1.0
	if total > maxRingPoints {
		scale = float64(maxRingPoints) / float64(total)
	}
	var ring []ringPoint
	for i, t := range targets {
		n := max(1, int(float64(t.weight*pointsPerWeight)*scale))
		for v := 0; v < n; v++ {
			// Points depend on the target's URL, not its position, so adding
			// or removing one target moves only its own share of the keys.
			ring = append(ring, ringPoint{hash: hashString(t.name + "#" + strconv.Itoa(v)), target: i})
		}
	}
	sort.Slice(ring, func(a, b int) bool { return ring[a].hash < ring[b].hash })
	return ring
}

// pick returns the index of a usable target, or -1. key is the request's
// hash key (hash policies only).
func (p *Pool) pick(tried *triedSet, key uint64, now int64) int {
	ts := p.targets
	n := len(ts)
	b := p.bal
	switch b.policy {
	case config.PolicyWeightedRoundRobin:
		return p.pickSmoothWeighted(tried, now)
	case config.PolicyLeastConnections:
		start := int(b.rr.n.Add(1) % uint64(n))
		best := -1
		for k := 0; k < n; k++ {
			i := (start + k) % n
			if !ts[i].usable(tried, now) {
				continue
			}
			// inflight/weight < best.inflight/best.weight, without division.
			if best < 0 || ts[i].inflight.Load()*int64(ts[best].weight) < ts[best].inflight.Load()*int64(ts[i].weight) {
				best = i
			}
		}
		return best
	case config.PolicyRandomTwoChoices:
		if n >= 2 {
			a := rand.IntN(n)
			c := rand.IntN(n - 1)
			if c >= a {
				c++
			}
			ua, uc := ts[a].usable(tried, now), ts[c].usable(tried, now)
			switch {
			case ua && uc:
				// (inflight+1)/weight, the load each would have with this
				// request, without division: at equal load (idle, say) the
				// heavier target wins, so weights count even then.
				if (ts[c].inflight.Load()+1)*int64(ts[a].weight) < (ts[a].inflight.Load()+1)*int64(ts[c].weight) {
					return c
				}
				return a
			case ua:
				return a
			case uc:
				return c
			}
		}
		// Both choices unusable: fall back to the first usable target in turn.
	case config.PolicyIPHash, config.PolicyHash:
		ring := b.ring
		i := sort.Search(len(ring), func(i int) bool { return ring[i].hash >= key })
		for k := 0; k < len(ring); k++ {
			pt := ring[(i+k)%len(ring)]
			if ts[pt.target].usable(tried, now) {
				return pt.target
			}
		}
		return -1
	}
	start := int((b.rr.n.Add(1) - 1) % uint64(n))
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if ts[i].usable(tried, now) {
			return i
		}
	}
	return -1
}

// pickSmoothWeighted is nginx's smooth weighted round robin: every usable
// target gains its weight, the richest is chosen and pays the total. Over
// a cycle each target is chosen in proportion to its weight, interleaved.
func (p *Pool) pickSmoothWeighted(tried *triedSet, now int64) int {
	b := p.bal
	b.mu.Lock()
	defer b.mu.Unlock()
	best, total := -1, int64(0)
	for i, t := range p.targets {
		if !t.usable(tried, now) {
			continue
		}
		w := int64(t.weight)
		b.current[i] += w
		total += w
		if best < 0 || b.current[i] > b.current[best] {
			best = i
		}
	}
	if best >= 0 {
		b.current[best] -= total
	}
	return best
}

// hashKey is the request's position on the ring: the header or cookie named
// by hash_on, or the client address when that is absent.
func (p *Pool) hashKey(r *http.Request, clientIP string) uint64 {
	switch {
	case p.hashHeader != "":
		if vs := r.Header[p.hashHeader]; len(vs) > 0 && vs[0] != "" {
			return hashString(vs[0])
		}
	case p.hashCookie != "":
		if v, ok := cookieValue(r.Header["Cookie"], p.hashCookie); ok {
			return hashString(v)
		}
	}
	return hashString(clientIP)
}

// cookieValue finds a cookie without parsing every cookie into a slice
// (http.Request.Cookie allocates).
func cookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for len(line) > 0 {
			var part string
			if i := indexByte(line, ';'); i >= 0 {
				part, line = line[:i], line[i+1:]
			} else {
				part, line = line, ""
			}
			part = trimSpace(part)
			if len(part) > len(name) && part[len(name)] == '=' && part[:len(name)] == name {
				v := part[len(name)+1:]
				if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, v != ""
			}
		}
	}
	return "", false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// hashString is FNV-1a with a final avalanche (splitmix64's mixer): FNV
// alone clusters similar keys such as consecutive IP addresses.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
