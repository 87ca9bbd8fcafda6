package config

import (
	"fmt"
	"time"
)

// Challenge configures the JavaScript proof-of-work challenge (package
// challenge) of routes with challenge: true.
type Challenge struct {
	// Difficulty is the number of leading zero bits of SHA-256 the browser
	// must find: each bit doubles its work (16: about 65,000 hashes, well
	// under a second on a phone). 8 to 24. Default: 16.
	Difficulty *int `yaml:"difficulty"`
	// PassTTL is how long a solved challenge lets the client through
	// (a signed cookie bound to its address, User-Agent and host).
	// Default: 1h; 1m to 30d.
	PassTTL *Duration `yaml:"cookie_ttl"`
	// KeyFile / KeyEnv hold the signing key (at least 32 bytes). Instances
	// that share it accept each other's passes, and passes survive a
	// restart. Default: a random key per start (passes end with the process).
	KeyFile string `yaml:"key_file"`
	KeyEnv  string `yaml:"key_env"`
}

// ChallengeConfig is the resolved challenge block (defaults without one).
type ChallengeConfig struct {
	Difficulty int
	PassTTL    time.Duration
	NonceTTL   time.Duration // how long a page may be answered
	Key        Secret        // "": a random key per start
}

func (c *checker) resolveChallenge(f *File, cfg *Config) {
	out := ChallengeConfig{Difficulty: 16, PassTTL: time.Hour, NonceTTL: 5 * time.Minute}
	if ch := f.Challenge; ch != nil {
		out = c.challengeBlock(ch)
	}
	cfg.Challenge = out
	// Instances of a cluster share rate limits and bans: a pass one of
	// them set must be accepted by the others, which needs one key.
	if used, at := cfg.UsesChallenge(); used && out.Key == "" && cfg.Cluster != nil && cfg.Cluster.Redis != nil {
		c.errorf(at, "with cluster.redis every instance must accept the passes of the others: set challenge.key_file or challenge.key_env (the same key on every instance; without one each instance signs with a random key of its own)")
	}
}

func (c *checker) challengeBlock(ch *Challenge) ChallengeConfig {
	out := ChallengeConfig{NonceTTL: 5 * time.Minute}
	const p = "challenge"
	out.Difficulty = intOr(ch.Difficulty, 16)
	out.PassTTL = durationOr(ch.PassTTL, time.Hour)
	if out.Difficulty < 8 || out.Difficulty > 24 {
		c.errorf(p+".difficulty", "must be between 8 and 24 bits, got %d", out.Difficulty)
	}
	if out.PassTTL < time.Minute || out.PassTTL > 30*24*time.Hour {
		c.errorf(p+".cookie_ttl", "must be between 1m and 30d, got %s", out.PassTTL)
	}
	if ch.KeyFile != "" || ch.KeyEnv != "" {
		if key, ok := c.crowdsecSecret(p, "key", ch.KeyFile, ch.KeyEnv); ok {
			if len(key) < 32 {
				c.errorf(p+".key_file", "the key must have at least 32 bytes, has %d (e.g. openssl rand -hex 32)", len(key))
			}
			out.Key = Secret(key)
		}
	}
	return out
}

// noChallengeOnGRPC refuses a challenge as the answer of a filter that a
// gRPC route (rp) of site sc (at p) goes through: a gRPC client runs no
// JavaScript, so the challenge would be a block that says otherwise.
func (c *checker) noChallengeOnGRPC(sc *SiteConfig, rc *RouteConfig, p, rp string) {
	const why = "cannot answer with challenge: %s is a grpc route, and a gRPC client runs no JavaScript (use block, or a separate site)"
	if sc.Filters.DenyListsAction == ActionChallenge {
		c.errorf(p+".filters.deny_lists_action", why, rp)
	}
	if sc.Filters.GeoIPAction == ActionChallenge {
		c.errorf(p+".filters.geoip_action", why, rp)
	}
	for i, rl := range sc.RateLimits {
		if rl.Action == ActionChallenge {
			c.errorf(fmt.Sprintf("%s.filters.rate_limits[%d].action", p, i), why, rp)
		}
	}
	for i, rl := range rc.RateLimits {
		if rl.Action == ActionChallenge {
			c.errorf(fmt.Sprintf("%s.rate_limits[%d].action", rp, i), why, "the route")
		}
	}
}

// UsesChallenge reports whether the configuration answers anything with
// the challenge: a route with challenge: true, or a filter (rate limit,
// deny lists, GeoIP rules) with action challenge; and the field of the
// first such use.
func (cfg *Config) UsesChallenge() (bool, string) {
	for i, sc := range cfg.Sites {
		switch {
		case sc.Filters.DenyListsAction == ActionChallenge:
			return true, fmt.Sprintf("sites[%d].filters.deny_lists_action", i)
		case sc.Filters.GeoIPAction == ActionChallenge:
			return true, fmt.Sprintf("sites[%d].filters.geoip_action", i)
		}
		for k, rl := range sc.RateLimits {
			if rl.Action == ActionChallenge {
				return true, fmt.Sprintf("sites[%d].filters.rate_limits[%d].action", i, k)
			}
		}
		for j, rc := range sc.Routes {
			if rc.Challenge {
				return true, fmt.Sprintf("sites[%d].routes[%d].challenge", i, j)
			}
			for k, rl := range rc.RateLimits {
				if rl.Action == ActionChallenge {
					return true, fmt.Sprintf("sites[%d].routes[%d].rate_limits[%d].action", i, j, k)
				}
			}
		}
	}
	return false, ""
}
