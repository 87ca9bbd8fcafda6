package config

import "time"

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
	ch := f.Challenge
	if ch == nil {
		cfg.Challenge = out
		return
	}
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
	cfg.Challenge = out
}
