package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Redis is the cluster's Redis server (cluster.redis). Everything the
// instances share through it is listed in SECURITY.md, with what a client of
// that server could do to them.
type Redis struct {
	// URL is redis://host:port[/db] or, with TLS, rediss://host:port[/db].
	// Required. It must not hold a password (use PasswordFile or
	// PasswordEnv); a user name in it is taken as Username.
	URL string `yaml:"url"`
	// Username is the ACL user (Redis 6+). Default: none (the default user).
	Username string `yaml:"username"`
	// Password is refused when written out: a secret in the configuration
	// file ends up in backups, diffs and support tickets. A placeholder
	// ("{env.REDIS_PASSWORD}", "{file.redis.pw}") is accepted.
	Password string `yaml:"password" secret:"value"`
	// PasswordFile holds the password (trailing newline ignored), such as a
	// Docker or systemd credential. Default: none.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	// Default: none. Without either, Redis must accept the connection
	// without AUTH: anyone who can reach it can then change bans and limits.
	PasswordEnv string `yaml:"password_env"`
	// DB is the database number; overrides the one in URL. Default: 0.
	DB *int `yaml:"db"`
	// TLS settings for a rediss:// URL.
	TLS *RedisTLS `yaml:"tls"`
	// Timeout bounds one call on the request path (a rate-limit check, a
	// session lookup). A call that takes longer counts as a failure: the
	// instance falls back to local state until Redis answers again.
	// Default: 50ms.
	Timeout *Duration `yaml:"timeout"`
	// DialTimeout bounds connecting. Default: 1s.
	DialTimeout *Duration `yaml:"dial_timeout"`
	// KeyPrefix starts every key Portcullis writes. Default:
	// "portcullis:<cluster.name>:". Two clusters on one server must differ.
	KeyPrefix string `yaml:"key_prefix"`
	// PoolSize is the most connections one instance opens. Default: 10
	// per CPU (the client library's default).
	PoolSize *int `yaml:"pool_size"`
}

// RedisTLS configures TLS to Redis (rediss:// URLs only).
type RedisTLS struct {
	// CAFile is a PEM file of the CAs that sign the server's certificate.
	// Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, for servers that
	// require one (tls-auth-clients yes). Default: none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name checked in the server's certificate. Default:
	// the URL's host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// anyone on the path can then read and change the shared state.
	// Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Secret is a credential read from a file or the environment. It prints as
// [redacted] so that logging a configuration value never leaks it.
type Secret string

func (Secret) String() string   { return "[redacted]" }
func (Secret) GoString() string { return `"[redacted]"` }

// Reveal returns the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

// RedisConfig is the resolved cluster.redis block.
type RedisConfig struct {
	Network   string // tcp
	Addr      string // host:port
	Username  string
	Password  Secret
	DB        int
	TLS       *RedisTLSConfig // nil: plain TCP
	Timeout   time.Duration
	Dial      time.Duration
	KeyPrefix string
	PoolSize  int // 0: the client's default
}

// RedisTLSConfig is the resolved TLS setting of a rediss:// URL.
type RedisTLSConfig struct {
	CAPEM              []byte // nil: system roots
	CertFile, KeyFile  string
	ServerName         string
	InsecureSkipVerify bool
}

// maxSecretFile bounds password_file.
const maxSecretFile = 4 << 10

func (c *checker) resolveRedis(r *Redis, clusterName string) *RedisConfig {
	const p = "cluster.redis"
	out := &RedisConfig{Network: "tcp", Timeout: durationOr(r.Timeout, 50*time.Millisecond),
		Dial: durationOr(r.DialTimeout, time.Second), Username: r.Username, PoolSize: intOr(r.PoolSize, 0)}
	u, err := url.Parse(r.URL)
	switch {
	case r.URL == "":
		c.errorf(p+".url", "is required (redis://host:6379 or rediss://host:6380)")
	case err != nil:
		c.errorf(p+".url", "is not a URL: %v", unwrapURLError(err))
	case u.Scheme != "redis" && u.Scheme != "rediss":
		c.errorf(p+".url", "must start with redis:// or rediss:// (TLS), got %q", u.Scheme+"://")
	case u.Host == "" || u.Opaque != "":
		c.errorf(p+".url", "must name a host, as in redis://10.0.0.5:6379")
	case u.RawQuery != "" || u.Fragment != "":
		c.errorf(p+".url", "must not have a query or fragment; the settings are fields of cluster.redis")
	default:
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = "6379"
		}
		if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
			c.errorf(p+".url", "port %q is not a port number", port)
		}
		out.Addr = net.JoinHostPort(host, port)
		if pw, set := u.User.Password(); set || pw != "" {
			c.errorf(p+".url", "must not hold a password; use password_file or password_env")
		}
		if name := u.User.Username(); name != "" {
			if r.Username != "" && r.Username != name {
				c.errorf(p+".username", "%q differs from the user %q in url", r.Username, name)
			}
			out.Username = name
		}
		if db := strings.Trim(u.Path, "/"); db != "" {
			n, derr := strconv.Atoi(db)
			if derr != nil || n < 0 {
				c.errorf(p+".url", "path must be a database number like /0, got %q", u.Path)
			}
			out.DB = n
		}
		if u.Scheme == "rediss" {
			out.TLS = &RedisTLSConfig{ServerName: host}
		}
	}
	if r.DB != nil {
		if *r.DB < 0 || *r.DB > 1<<16 {
			c.errorf(p+".db", "must be between 0 and 65536, got %d", *r.DB)
		}
		out.DB = *r.DB
	}
	out.Password = c.password(p, r.Password, r.PasswordFile, r.PasswordEnv)
	if r.TLS != nil {
		if out.TLS == nil && out.Addr != "" {
			c.errorf(p+".tls", "needs a rediss:// url (redis:// is plain TCP)")
		}
		t := out.TLS
		if t == nil {
			t = &RedisTLSConfig{}
		}
		if r.TLS.ServerName != "" {
			t.ServerName = r.TLS.ServerName
		}
		t.InsecureSkipVerify = r.TLS.InsecureSkipVerify
		if r.TLS.CAFile != "" {
			pem, err := readSmall(c.relative(r.TLS.CAFile), 1<<20)
			if err != nil {
				c.errorf(p+".tls.ca_file", "%v", err)
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				c.errorf(p+".tls.ca_file", "holds no PEM certificate")
			}
			t.CAPEM = pem
		}
		if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
			c.errorf(p+".tls", "cert_file and key_file go together")
		}
		if r.TLS.CertFile != "" {
			t.CertFile, t.KeyFile = c.relative(r.TLS.CertFile), c.relative(r.TLS.KeyFile)
			for field, f := range map[string]string{"cert_file": t.CertFile, "key_file": t.KeyFile} {
				if _, err := os.Stat(f); err != nil {
					c.errorf(p+".tls."+field, "%v", err)
				}
			}
		}
	}
	if r.Timeout != nil && (out.Timeout < time.Millisecond || out.Timeout > 10*time.Second) {
		c.errorf(p+".timeout", "must be between 1ms and 10s, got %v", out.Timeout)
	}
	if r.DialTimeout != nil && (out.Dial < time.Millisecond || out.Dial > time.Minute) {
		c.errorf(p+".dial_timeout", "must be between 1ms and 1m, got %v", out.Dial)
	}
	if r.PoolSize != nil && (out.PoolSize < 1 || out.PoolSize > 10000) {
		c.errorf(p+".pool_size", "must be between 1 and 10000, got %d", out.PoolSize)
	}
	out.KeyPrefix = r.KeyPrefix
	if out.KeyPrefix == "" {
		out.KeyPrefix = "portcullis:" + clusterName + ":"
	} else if len(out.KeyPrefix) > 128 || strings.ContainsAny(out.KeyPrefix, " \t\r\n*?[]") {
		c.errorf(p+".key_prefix", "must be at most 128 characters without spaces or glob characters, got %q", out.KeyPrefix)
	}
	return out
}

// readSmall reads a file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > limit {
		return nil, fmt.Errorf("%s must be a regular file of at most %d bytes", path, limit)
	}
	return os.ReadFile(path)
}

// password resolves a cluster service's password from exactly one of its
// three fields (p is the section's path): password only from a
// {env.NAME}/{file.PATH} placeholder, never written out; password_file
// read relative to the configuration file (trailing newline ignored);
// password_env from the environment. None: no password.
func (c *checker) password(p, inline, file, env string) Secret {
	var out Secret
	switch {
	case inline != "" && !c.secretPaths[p+".password"]:
		c.errorf(p+".password", "inline passwords are not accepted; put it in a file (password_file) or the environment (password_env), or write \"{env.NAME}\" or \"{file.PATH}\"")
	case inline != "" && (file != "" || env != ""):
		c.errorf(p+".password", "give one of password, password_file or password_env")
	case inline != "":
		out = Secret(inline) // from a placeholder: not in the file
	}
	switch {
	case file != "" && env != "":
		c.errorf(p+".password_file", "give password_file or password_env, not both")
	case file != "":
		path := c.relative(file)
		data, err := readSmall(path, maxSecretFile)
		if err != nil {
			c.errorf(p+".password_file", "%v", err)
		} else if pw := strings.TrimRight(string(data), "\r\n"); pw == "" {
			c.errorf(p+".password_file", "%s is empty", path)
		} else {
			out = Secret(pw)
		}
	case env != "":
		if pw := os.Getenv(env); pw == "" {
			c.errorf(p+".password_env", "environment variable %s is not set or empty", env)
		} else {
			out = Secret(pw)
		}
	}
	return out
}
