package gateway

import (
	"github.com/portcullis-waf/portcullis/config"
	"github.com/portcullis-waf/portcullis/proxy"
)

// Read-only state for the admin console, read through the composition
// (instance): the stages do not know the console exists.

// PoolHealth returns the health of every upstream pool's targets, by pool
// name.
func (p *Pipeline) PoolHealth() map[string][]proxy.TargetHealth {
	out := make(map[string][]proxy.TargetHealth, len(p.pools))
	for name, pool := range p.pools {
		out[name] = pool.Health()
	}
	return out
}

// LimitTracked reports how many keys a rate limit tracks now (see
// ratelimit.Limits.Tracked): rc as configured on site, on the route at
// path, or on the site itself when path is "". ok is false for a limit
// shared through Redis.
func (p *Pipeline) LimitTracked(site, path string, rc config.RateLimitConfig) (keys int, ok bool) {
	return p.limits.Tracked(site, path, rc)
}
