package config

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// AuditStore configures the searchable audit database.
type AuditStore struct {
	// Enabled keeps records in the SQLite database as well as the JSONL file.
	// Default: true.
	Enabled *bool `yaml:"enabled"`
	// Path is the database file, created 0600. Default:
	// <tls.state_dir>/audit.db.
	Path string `yaml:"path"`
	// MaxAge deletes records older than this. Default: 30d.
	MaxAge *Duration `yaml:"max_age"`
	// MaxSize deletes the oldest records when the database grows past
	// this. Default: 1GiB.
	MaxSize *ByteSize `yaml:"max_size"`
}

// Admin configures the admin listener: dashboard, JSON API, and later
// metrics and health. It is off unless this block is present.
type Admin struct {
	// Listen is the address of the admin listener. Default: 127.0.0.1:9090.
	// Keep it off the public network: it has its own authentication, but
	// every exposed login form is a target.
	Listen string `yaml:"listen"`
	// Auth is who may use it: users with bcrypt password hashes and/or API
	// tokens, or the word none (only on a loopback-only listen address).
	Auth AdminAuth `yaml:"auth"`
	// CertFile and KeyFile serve the admin listener over HTTPS. Default:
	// plain HTTP, which suits loopback only.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// AdminAuth is either the scalar "none" or a mapping of users and tokens.
type AdminAuth struct {
	None   bool         `yaml:"-"`
	Users  []AdminUser  `yaml:"users"`
	Tokens []AdminToken `yaml:"tokens"`
}

// AdminUser is one dashboard login.
type AdminUser struct {
	Name string `yaml:"name"`
	// PasswordHash is a bcrypt hash (htpasswd -nbBC 12 user pass, or
	// `portcullis admin hash-password`). The password itself never goes
	// into the file.
	PasswordHash string `yaml:"password_hash" secret:"value"`
}

// AdminToken is one API token, given by its SHA-256 so the file does not
// hold a usable secret.
type AdminToken struct {
	Name   string `yaml:"name"`
	SHA256 string `yaml:"sha256" secret:"value"`
}

// parseScalar accepts the word none; the mapping form is walked as a struct.
func (a *AdminAuth) parseScalar(s string) error {
	if strings.TrimSpace(s) != "none" {
		return fmt.Errorf("must be none or a mapping with users and/or tokens, got %q", s)
	}
	*a = AdminAuth{None: true}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler for both forms.
func (a *AdminAuth) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return a.parseScalar(n.Value)
	}
	type plain AdminAuth // without this method, so Decode does not recurse
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = AdminAuth(p)
	return nil
}

// AuditStoreConfig is the resolved audit database setting.
type AuditStoreConfig struct {
	Enabled bool
	Path    string
	MaxAge  time.Duration
	MaxSize int64
}

// AdminConfig is the resolved admin listener; nil when there is none.
type AdminConfig struct {
	Listen            string
	Auth              AdminAuth
	CertFile, KeyFile string
}

// DefaultAdminListen is the admin address when the admin block names none.
const DefaultAdminListen = "127.0.0.1:9090"

func (c *checker) resolveAuditStore(a Audit, cfg *Config) {
	s := a.Store
	if s == nil {
		s = &AuditStore{}
	}
	cfg.Audit.Store = AuditStoreConfig{
		Enabled: s.Enabled == nil || *s.Enabled,
		Path:    filepath.Join(cfg.TLS.StateDir, "audit.db"),
		MaxAge:  durationOr(s.MaxAge, 30*24*time.Hour),
		MaxSize: sizeOr(s.MaxSize, 1<<30),
	}
	if s.Path != "" {
		cfg.Audit.Store.Path = c.relative(s.Path)
	}
	if cfg.Audit.Store.MaxAge < time.Minute && s.MaxAge != nil {
		c.errorf("audit.store.max_age", "must be at least 1m, got %s", cfg.Audit.Store.MaxAge)
	}
	if cfg.Audit.Store.MaxSize < 1<<20 && s.MaxSize != nil {
		c.errorf("audit.store.max_size", "must be at least 1MiB, got %d bytes", cfg.Audit.Store.MaxSize)
	}
	cfg.Audit.BodyLimit = sizeOr(a.BodyLimit, 64<<10)
	if cfg.Audit.BodyLimit > 16<<20 {
		c.errorf("audit.body_limit", "must be at most 16MiB, got %d bytes", cfg.Audit.BodyLimit)
	}
	if a.SampleAllowed != nil {
		cfg.Audit.SampleAllowed = *a.SampleAllowed
		if *a.SampleAllowed < 0 || *a.SampleAllowed > 1 {
			c.errorf("audit.sample_allowed", "must be a fraction from 0 to 1 (0.01 keeps 1%%), got %v", *a.SampleAllowed)
		}
	}
}

func (c *checker) resolveAdmin(f *File, cfg *Config) {
	a := f.Admin
	if a == nil {
		return
	}
	out := &AdminConfig{Listen: DefaultAdminListen, Auth: a.Auth}
	if a.Listen != "" {
		out.Listen = a.Listen
	}
	host, _, err := net.SplitHostPort(out.Listen)
	if err != nil {
		c.errorf("admin.listen", "must be host:port, got %q", out.Listen)
	}
	if a.Auth.None {
		if !LoopbackOnly(host) {
			c.errorf("admin.auth", "none is only allowed when admin.listen is a loopback address (127.0.0.1, ::1 or localhost), got %q", out.Listen)
		}
	} else if len(a.Auth.Users) == 0 && len(a.Auth.Tokens) == 0 {
		c.errorf("admin.auth", "must list users and/or tokens, or be none on a loopback-only listener")
	}
	seen := map[string]bool{}
	for i, u := range a.Auth.Users {
		p := fmt.Sprintf("admin.auth.users[%d]", i)
		if strings.TrimSpace(u.Name) == "" {
			c.errorf(p+".name", "must not be empty")
		} else if seen[u.Name] {
			c.errorf(p+".name", "duplicate user %q", u.Name)
		}
		seen[u.Name] = true
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			c.errorf(p+".password_hash", "must be a bcrypt hash ($2a$/$2b$/$2y$...), not a password")
		}
	}
	for i, t := range a.Auth.Tokens {
		p := fmt.Sprintf("admin.auth.tokens[%d]", i)
		if strings.TrimSpace(t.Name) == "" {
			c.errorf(p+".name", "must not be empty")
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			c.errorf(p+".sha256", "must be the 64 hex digits of the token's SHA-256 (printf %%s TOKEN | sha256sum)")
		}
	}
	if (a.CertFile == "") != (a.KeyFile == "") {
		c.errorf("admin", "cert_file and key_file must be set together")
	}
	if a.CertFile != "" {
		out.CertFile, out.KeyFile = c.relative(a.CertFile), c.relative(a.KeyFile)
	}
	cfg.Admin = out
}

// LoopbackOnly reports whether a listen host accepts only local connections.
// An empty host or a wildcard listens on every interface.
func LoopbackOnly(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Log configures Portcullis's own log (not the audit records).
type Log struct {
	// Format is text (key=value, for people) or json (for log shippers).
	// Default: text.
	Format string `yaml:"format"`
	// Level is debug, info, warn or error. Default: info. A reload applies a
	// new level; a new format needs a restart.
	Level string `yaml:"level"`
	// Access writes one JSON access-log line per request (time, client,
	// method, host, path, status, bytes, duration, action, request id) to
	// the log. Default: false: the audit records already cover every
	// request that matters, and an access log of all traffic is costly.
	Access bool `yaml:"access"`
}

// LogConfig is the resolved log section.
type LogConfig struct {
	Format string
	Level  slog.Level
	Access bool
}

func (c *checker) resolveLog(f *File, cfg *Config) {
	l := f.Log
	cfg.Log = LogConfig{Format: "text", Level: slog.LevelInfo, Access: l.Access}
	switch l.Format {
	case "", "text":
	case "json":
		cfg.Log.Format = "json"
	default:
		c.errorf("log.format", "must be text or json, got %q", l.Format)
	}
	if l.Level != "" {
		if err := cfg.Log.Level.UnmarshalText([]byte(l.Level)); err != nil || !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(l.Level)) {
			c.errorf("log.level", "must be debug, info, warn or error, got %q", l.Level)
		}
	}
}

// Alerts configures webhook alerts: attack spikes, new bans, certificates
// about to expire, feeds failing to refresh, audit records dropped. Each
// incident sends one message when it opens and one when it recovers.
// Default: off (no webhooks: alerts are only logged).
type Alerts struct {
	Webhooks []AlertWebhook `yaml:"webhooks"`
	// BlocksPerMinute opens an attack-spike incident above this many
	// blocked requests in a minute. Default: 0 (off).
	BlocksPerMinute int `yaml:"blocks_per_minute"`
	// CertExpiryWithin alerts for a certificate expiring within this.
	// Default: 14d.
	CertExpiryWithin *Duration `yaml:"cert_expiry_within"`
	// FeedStaleAfter alerts for a feed not refreshed for this long.
	// Default: 24h.
	FeedStaleAfter *Duration `yaml:"feed_stale_after"`
	// MaxPerHour caps opening and ban messages. Default: 60.
	MaxPerHour int `yaml:"max_per_hour"`
	// Cooldown is how long a condition must stay clear before a recovery
	// message. Default: 5m.
	Cooldown *Duration `yaml:"cooldown"`
}

// AlertWebhook is one receiver of alerts.
type AlertWebhook struct {
	// URL receives a JSON POST. It often holds a secret token: it is never
	// logged.
	URL string `yaml:"url" secret:"value"`
	// Format is generic (Portcullis's JSON) or slack (Slack-compatible
	// {"text": ...}). Default: generic.
	Format string `yaml:"format"`
	// Headers are added to every POST (e.g. Authorization).
	Headers map[string]string `yaml:"headers" secret:"headers"`
}

// AlertsConfig is the resolved alerts section; nil when absent.
type AlertsConfig struct {
	Webhooks         []AlertWebhook
	BlocksPerMinute  int
	CertExpiryWithin time.Duration
	FeedStaleAfter   time.Duration
	MaxPerHour       int
	Cooldown         time.Duration
}

func (c *checker) resolveAlerts(f *File, cfg *Config) {
	a := f.Alerts
	if a == nil {
		return
	}
	out := &AlertsConfig{Webhooks: a.Webhooks, BlocksPerMinute: a.BlocksPerMinute, MaxPerHour: a.MaxPerHour,
		CertExpiryWithin: durationOr(a.CertExpiryWithin, 0), FeedStaleAfter: durationOr(a.FeedStaleAfter, 0), Cooldown: durationOr(a.Cooldown, 0)}
	for i, w := range a.Webhooks {
		p := fmt.Sprintf("alerts.webhooks[%d]", i)
		if _, err := parseHTTPURL(w.URL, "http", "https"); err != nil {
			// The URL itself is not repeated: it often holds a token.
			c.errorf(p+".url", "must be an http or https URL with a valid host and port")
		}
		if w.Format != "" && w.Format != "generic" && w.Format != "slack" {
			c.errorf(p+".format", "must be generic or slack, got %q", w.Format)
		}
	}
	if a.BlocksPerMinute < 0 {
		c.errorf("alerts.blocks_per_minute", "must not be negative")
	}
	if a.MaxPerHour < 0 {
		c.errorf("alerts.max_per_hour", "must not be negative")
	}
	cfg.Alerts = out
}
