package ratelimit

import "github.com/portcullis-waf/portcullis/config"

// Tracked reports how many keys (clients, or the limit's key) the limit
// built for site and path (path "" for a site's limit) from rc tracks now,
// for the admin console. ok is false when that is not cheap to know: a
// limit shared through Redis, or one these limits did not build.
func (ls *Limits) Tracked(site, path string, rc config.RateLimitConfig) (keys int, ok bool) {
	if ls == nil {
		return 0, false
	}
	m, isMemory := ls.used[limitKey(site, path, rc)].(*Memory)
	if !isMemory {
		return 0, false
	}
	return m.Stats().Keys, true
}
