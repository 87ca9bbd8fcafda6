package config

import (
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// CrowdSec connects Portcullis to a CrowdSec Local API (LAPI), as a bouncer
// (its decisions become bans) and as a watcher (Portcullis's blocks become
// CrowdSec alerts, "signals"). Either part may be left out, not both.
// Secrets never go into this file: each comes from a file or the
// environment.
type CrowdSec struct {
	// LAPIURL is the Local API's base URL, e.g. http://127.0.0.1:8080
	// (the crowdsec package's default). Required. Use https when it is not
	// on this machine: the bouncer key and the machine password travel
	// with every request.
	LAPIURL string `yaml:"lapi_url"`
	// Timeout bounds each call to the LAPI. Default: 10s.
	Timeout *Duration `yaml:"timeout"`
	// Bouncer pulls decisions (cscli decisions add, or scenarios of the
	// CrowdSec agents) into the ban table: type ban, scope Ip or Range.
	// Needs bans.enabled. Default: off.
	Bouncer *CrowdSecBouncer `yaml:"bouncer"`
	// Signals sends Portcullis's blocks to the LAPI as alerts, one per
	// client address and batch. Default: off.
	Signals *CrowdSecSignals `yaml:"signals"`
}

// CrowdSecBouncer are the bouncer's settings. Register it with
// `cscli bouncers add portcullis`, which prints the key.
type CrowdSecBouncer struct {
	// APIKey is not accepted: the key goes into api_key_file or api_key_env.
	APIKey string `yaml:"api_key" secret:"value"`
	// APIKeyFile is a file holding the bouncer key (one line).
	APIKeyFile string `yaml:"api_key_file"`
	// APIKeyEnv names an environment variable holding the bouncer key.
	APIKeyEnv string `yaml:"api_key_env"`
	// PollInterval is how often new and deleted decisions are fetched: a
	// decision takes effect within it. Default: 10s; at least 1s.
	PollInterval *Duration `yaml:"poll_interval"`
}

// CrowdSecSignals are the watcher's settings. Register the machine with
// `cscli machines add portcullis --password …`.
type CrowdSecSignals struct {
	// MachineID is the watcher's login. Required.
	MachineID string `yaml:"machine_id"`
	// Password is not accepted: it goes into password_file or password_env.
	Password string `yaml:"password" secret:"value"`
	// PasswordFile is a file holding the machine's password.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding it.
	PasswordEnv string `yaml:"password_env"`
	// FlushInterval is how often queued blocks are sent. Default: 5s.
	FlushInterval *Duration `yaml:"flush_interval"`
	// BatchSize is the most alerts sent in one request. Default: 50.
	BatchSize *int `yaml:"batch_size"`
	// QueueSize bounds the blocks waiting to be sent; beyond it they are
	// dropped and counted (the request path never waits). Default: 1000.
	QueueSize *int `yaml:"queue_size"`
	// Remediation marks the alerts as asking for a remediation, so that
	// the LAPI's profiles.yaml may turn them into decisions for every
	// bouncer (Portcullis included). Default: false, alerts only.
	Remediation bool `yaml:"remediation"`
}

// CrowdSecConfig is the resolved crowdsec block; nil without one.
type CrowdSecConfig struct {
	LAPIURL string // without a trailing slash
	Timeout time.Duration
	Bouncer *CrowdSecBouncerConfig // nil: not a bouncer
	Signals *CrowdSecSignalsConfig // nil: no signals
}

// CrowdSecBouncerConfig is the resolved crowdsec.bouncer block.
type CrowdSecBouncerConfig struct {
	APIKey       Secret
	PollInterval time.Duration
}

// CrowdSecSignalsConfig is the resolved crowdsec.signals block.
type CrowdSecSignalsConfig struct {
	MachineID     string
	Password      Secret
	FlushInterval time.Duration
	BatchSize     int
	QueueSize     int
	Remediation   bool
}

func (c *checker) resolveCrowdSec(f *File, cfg *Config) {
	cs := f.CrowdSec
	if cs == nil {
		return
	}
	const p = "crowdsec"
	out := &CrowdSecConfig{LAPIURL: strings.TrimRight(cs.LAPIURL, "/"), Timeout: durationOr(cs.Timeout, 10*time.Second)}
	if cs.LAPIURL == "" {
		c.errorf(p+".lapi_url", "is required, e.g. http://127.0.0.1:8080")
	} else if u, err := url.Parse(cs.LAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.errorf(p+".lapi_url", "must be an http:// or https:// URL with a host, got %q", cs.LAPIURL)
	} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		c.errorf(p+".lapi_url", "must not carry credentials, a query or a fragment")
	}
	if out.Timeout <= 0 || out.Timeout > 5*time.Minute {
		c.errorf(p+".timeout", "must be between 1ms and 5m, got %s", out.Timeout)
	}
	if cs.Bouncer == nil && cs.Signals == nil {
		c.errorf(p, "needs bouncer, signals or both")
	}
	if b := cs.Bouncer; b != nil {
		bp := p + ".bouncer"
		ob := &CrowdSecBouncerConfig{PollInterval: durationOr(b.PollInterval, 10*time.Second)}
		if b.APIKey != "" {
			c.errorf(bp+".api_key", "inline keys are not accepted; put it in a file (api_key_file) or the environment (api_key_env)")
		}
		if key, ok := c.crowdsecSecret(bp, "api_key", b.APIKeyFile, b.APIKeyEnv); ok {
			ob.APIKey = Secret(key)
		}
		if ob.PollInterval < time.Second || ob.PollInterval > time.Hour {
			c.errorf(bp+".poll_interval", "must be between 1s and 1h, got %s", ob.PollInterval)
		}
		if !cfg.Bans.Enabled {
			c.errorf(bp, "needs bans.enabled: true (decisions become bans)")
		}
		out.Bouncer = ob
	}
	if s := cs.Signals; s != nil {
		sp := p + ".signals"
		sig := &CrowdSecSignalsConfig{MachineID: s.MachineID, FlushInterval: durationOr(s.FlushInterval, 5*time.Second),
			BatchSize: intOr(s.BatchSize, 50), QueueSize: intOr(s.QueueSize, 1000), Remediation: s.Remediation}
		if s.MachineID == "" {
			c.errorf(sp+".machine_id", "is required (cscli machines add NAME --password …)")
		}
		if s.Password != "" {
			c.errorf(sp+".password", "inline passwords are not accepted; put it in a file (password_file) or the environment (password_env)")
		}
		if pw, ok := c.crowdsecSecret(sp, "password", s.PasswordFile, s.PasswordEnv); ok {
			sig.Password = Secret(pw)
		}
		if sig.FlushInterval < 100*time.Millisecond || sig.FlushInterval > time.Hour {
			c.errorf(sp+".flush_interval", "must be between 100ms and 1h, got %s", sig.FlushInterval)
		}
		if sig.BatchSize < 1 || sig.BatchSize > 1000 {
			c.errorf(sp+".batch_size", "must be between 1 and 1000, got %d", sig.BatchSize)
		}
		if sig.QueueSize < 1 || sig.QueueSize > 1_000_000 {
			c.errorf(sp+".queue_size", "must be between 1 and 1000000, got %d", sig.QueueSize)
		}
		out.Signals = sig
	}
	cfg.CrowdSec = out
}

// crowdsecSecret reads a required secret from <name>_file or <name>_env,
// one line, surrounding space trimmed.
func (c *checker) crowdsecSecret(p, name, file, env string) (string, bool) {
	switch {
	case file != "" && env != "":
		c.errorf(p+"."+name+"_file", "give %s_file or %s_env, not both", name, name)
	case file != "":
		path := c.relative(file)
		data, err := readSmall(path, maxSecretFile)
		if err != nil {
			c.errorf(p+"."+name+"_file", "%v", err)
		} else if v := strings.TrimSpace(string(data)); v == "" {
			c.errorf(p+"."+name+"_file", "%s is empty", path)
		} else {
			return v, true
		}
	case env != "":
		if v := strings.TrimSpace(os.Getenv(env)); v == "" {
			c.errorf(p+"."+name+"_env", "environment variable %s is not set or empty", env)
		} else {
			return v, true
		}
	default:
		c.errorf(p, "%s_file or %s_env is required (the secret never goes into this file)", name, name)
	}
	return "", false
}

// Loopback reports whether the LAPI is on this machine (plain http is
// then acceptable).
func (cc *CrowdSecConfig) Loopback() bool {
	u, err := url.Parse(cc.LAPIURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
