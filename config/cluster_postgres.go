package config

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Postgres is the cluster's shared audit store (cluster.postgres): every
// instance writes its audit records there, and the dashboard and the audit
// commands of any instance read all of them. SECURITY.md says what a client
// of that server could do.
type Postgres struct {
	// URL is postgres://user@host:port/database. Required. It must not
	// hold a password (use PasswordFile or PasswordEnv) nor query
	// parameters (the settings are fields here).
	URL string `yaml:"url"`
	// Password is refused when written out: a secret in the configuration
	// file ends up in backups, diffs and support tickets. A placeholder
	// ("{env.PG_PASSWORD}", "{file.pg.pw}") is accepted.
	Password string `yaml:"password" secret:"value"`
	// PasswordFile holds the password (trailing newline ignored). Default:
	// none.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	// Default: none. Without either the server must let the user in
	// without one (trust or peer authentication).
	PasswordEnv string `yaml:"password_env"`
	// SSLMode is libpq's sslmode: disable, require, verify-ca or
	// verify-full. Default: disable for a loopback host, verify-full
	// otherwise (records hold client addresses, URIs and request bodies:
	// they must not cross a network in clear or to an impostor).
	SSLMode string `yaml:"ssl_mode"`
	// TLS names the CA and the client certificate. Default: system roots,
	// no client certificate.
	TLS *PostgresTLS `yaml:"tls"`
	// Schema holds Portcullis's tables; created when missing. Two clusters
	// on one database must use different schemas. Default: "portcullis".
	Schema string `yaml:"schema"`
	// Instance names this instance in every record it writes, so a search
	// across the cluster says where a request was refused. Default: the
	// host name.
	Instance string `yaml:"instance"`
	// MaxAge drops the daily partitions whose records are all older than
	// this. Default: 0 (keep everything).
	MaxAge *Duration `yaml:"max_age"`
	// Timeout bounds one write of a batch and one query. Default: 10s.
	Timeout *Duration `yaml:"timeout"`
	// DialTimeout bounds connecting. Default: 5s.
	DialTimeout *Duration `yaml:"dial_timeout"`
	// SpoolDir holds the records written while PostgreSQL cannot be
	// reached, delivered in order when it returns. Default:
	// <tls.state_dir>/audit-spool.
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMaxSize bounds the spool. Past it, new batches are not spooled:
	// they are counted lost (portcullis_audit_spool_dropped_records_total
	// and the store sink's lost count) and the audit reports degraded.
	// Default: 1GiB.
	SpoolMaxSize *ByteSize `yaml:"spool_max_size"`
}

// PostgresTLS are the files of a verified connection.
type PostgresTLS struct {
	// CAFile is a PEM file of the CAs that sign the server's certificate
	// (sslrootcert). Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (sslcert, sslkey).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// PostgresConfig is the resolved cluster.postgres block.
type PostgresConfig struct {
	// ConnString is a postgres:// URL without the password, with sslmode
	// and the TLS files as parameters.
	ConnString string
	Addr       string // host:port, for messages
	Database   string
	Password   Secret
	SSLMode    string
	Schema     string
	Instance   string
	MaxAge     time.Duration
	Timeout    time.Duration
	Dial       time.Duration
	SpoolDir   string
	SpoolMax   int64
}

var (
	sqlIdent     = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	instanceName = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

func (c *checker) resolvePostgres(pg *Postgres, cfg *Config) *PostgresConfig {
	const p = "cluster.postgres"
	out := &PostgresConfig{Schema: pg.Schema, Instance: pg.Instance, MaxAge: durationOr(pg.MaxAge, 0),
		Timeout: durationOr(pg.Timeout, 10*time.Second), Dial: durationOr(pg.DialTimeout, 5*time.Second),
		SpoolDir: pg.SpoolDir, SpoolMax: sizeOr(pg.SpoolMaxSize, 1<<30)}
	u, err := url.Parse(pg.URL)
	host := ""
	switch {
	case pg.URL == "":
		c.errorf(p+".url", "is required (postgres://user@host:5432/database)")
	case err != nil:
		c.errorf(p+".url", "is not a URL: %v", unwrapURLError(err))
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		c.errorf(p+".url", "must start with postgres://, got %q", u.Scheme+"://")
	case u.Host == "" || u.Opaque != "":
		c.errorf(p+".url", "must name a host, as in postgres://portcullis@10.0.0.6:5432/audit")
	case u.RawQuery != "" || u.Fragment != "":
		c.errorf(p+".url", "must not have a query or fragment; the settings are fields of cluster.postgres")
	default:
		host = u.Hostname()
		port := u.Port()
		if port == "" {
			port = "5432"
		}
		if n, perr := strconv.Atoi(port); perr != nil || n < 1 || n > 65535 {
			c.errorf(p+".url", "port %q is not a port number", port)
		}
		out.Addr = net.JoinHostPort(host, port)
		if pw, set := u.User.Password(); set || pw != "" {
			c.errorf(p+".url", "must not hold a password; use password_file or password_env")
		}
		if u.User.Username() == "" {
			c.errorf(p+".url", "must name a user, as in postgres://portcullis@host/audit")
		}
		out.Database = strings.Trim(u.Path, "/")
		if out.Database == "" || strings.Contains(out.Database, "/") {
			c.errorf(p+".url", "must name one database, as in postgres://portcullis@host/audit")
		}
	}
	out.Password = c.password(p, pg.Password, pg.PasswordFile, pg.PasswordEnv)
	out.SSLMode = pg.SSLMode
	if out.SSLMode == "" {
		out.SSLMode = "verify-full"
		if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
			out.SSLMode = "disable"
		}
	}
	switch out.SSLMode {
	case "disable", "require", "verify-ca", "verify-full":
	default:
		c.errorf(p+".ssl_mode", "must be disable, require, verify-ca or verify-full, got %q", pg.SSLMode)
	}
	q := url.Values{}
	q.Set("sslmode", out.SSLMode)
	if t := pg.TLS; t != nil {
		if out.SSLMode == "disable" {
			c.errorf(p+".tls", "needs ssl_mode require, verify-ca or verify-full")
		}
		if t.CAFile != "" {
			q.Set("sslrootcert", c.relative(t.CAFile))
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			c.errorf(p+".tls", "cert_file and key_file go together")
		}
		if t.CertFile != "" {
			q.Set("sslcert", c.relative(t.CertFile))
			q.Set("sslkey", c.relative(t.KeyFile))
		}
		for field, f := range map[string]string{"ca_file": t.CAFile, "cert_file": t.CertFile, "key_file": t.KeyFile} {
			if f == "" {
				continue
			}
			if _, err := os.Stat(c.relative(f)); err != nil {
				c.errorf(p+".tls."+field, "%v", err)
			}
		}
	}
	if out.Schema == "" {
		out.Schema = "portcullis"
	} else if !sqlIdent.MatchString(out.Schema) {
		c.errorf(p+".schema", "must be a lower-case SQL name (letters, digits, '_', at most 63), got %q", out.Schema)
	}
	if out.Instance == "" {
		if h, err := os.Hostname(); err == nil {
			out.Instance = h
		}
	}
	if !instanceName.MatchString(out.Instance) {
		c.errorf(p+".instance", "must be 1 to 128 letters, digits, '.', '_', ':' or '-', got %q", out.Instance)
	}
	if pg.MaxAge != nil && out.MaxAge != 0 && out.MaxAge < 24*time.Hour {
		c.errorf(p+".max_age", "must be 0 (keep everything) or at least 24h (records are dropped a day at a time), got %v", out.MaxAge)
	}
	if pg.Timeout != nil && (out.Timeout < 10*time.Millisecond || out.Timeout > 10*time.Minute) {
		c.errorf(p+".timeout", "must be between 10ms and 10m, got %v", out.Timeout)
	}
	if pg.DialTimeout != nil && (out.Dial < 10*time.Millisecond || out.Dial > time.Minute) {
		c.errorf(p+".dial_timeout", "must be between 10ms and 1m, got %v", out.Dial)
	}
	if pg.SpoolMaxSize != nil && out.SpoolMax < 1<<20 {
		c.errorf(p+".spool_max_size", "must be at least 1MiB, got %d bytes", out.SpoolMax)
	}
	if out.SpoolDir == "" {
		out.SpoolDir = filepath.Join(cfg.TLS.StateDir, "audit-spool")
	} else {
		out.SpoolDir = c.relative(out.SpoolDir)
	}
	if u != nil && host != "" {
		cs := *u
		cs.User = url.User(u.User.Username())
		cs.RawQuery = q.Encode()
		out.ConnString = cs.String()
	}
	return out
}
