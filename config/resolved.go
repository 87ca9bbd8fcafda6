package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-waf/portcullis/respond"
	"github.com/portcullis-waf/portcullis/tlsmgr"
)

// Config is the validated, resolved configuration. It is never modified after
// Load returns; a reload builds a new one.
type Config struct {
	Source    string // the file it came from ("" for built-in defaults)
	Listeners []ListenerConfig
	Server    ServerConfig
	Upstreams []*UpstreamConfig
	Sites     []*SiteConfig
	Audit     AuditConfig
	TLS       TLSConfig
	ClientIP  ClientIPConfig
	Lists     []ListConfig
	GeoIP     GeoIPConfig
	Bans      BansConfig
	Admin     *AdminConfig // nil: no admin listener
	Log       LogConfig
	Alerts    *AlertsConfig   // nil: no alerts
	Cluster   *ClusterConfig  // nil: a single instance, no shared services
	CrowdSec  *CrowdSecConfig // nil: no CrowdSec Local API
	Challenge ChallengeConfig

	// document is the file as decoded (placeholders expanded), and
	// secretPaths the fields that held a placeholder: what Effective shows,
	// masked.
	document    *File
	secretPaths map[string]bool
}

// ListenerConfig is a resolved listener.
type ListenerConfig struct {
	Name          string
	Address       string
	HTTPS         bool
	ProxyProtocol bool
	HTTP3         bool // serve HTTP/3 on the UDP port of the same number (https only)
}

// TLSConfig holds resolved global TLS settings.
type TLSConfig struct {
	Policy      string // intermediate or modern
	StateDir    string
	DefaultHost string
	ACME        ACMESettings
}

// ACMESettings are the resolved CA settings of acme sites.
type ACMESettings struct {
	Directory   string
	Email       string
	AcceptTerms bool
	EABKeyID    string
	EABHMACKey  string
	CARootsPEM  []byte // nil: system roots
	KeyType     string
	RenewBefore time.Duration // 0: a third of the lifetime, at most 30 days
	Challenges  []string
	DNS01       *DNS01Settings // nil: no DNS-01
	// StorageKey (32 bytes) seals what is kept in shared cluster storage;
	// nil when neither storage_key_file nor storage_key_env is set.
	StorageKey []byte
}

// Certificate sources of a site: tlsmgr's names (Certificates passes them on).
const (
	CertACME       = string(tlsmgr.SourceACME)
	CertFiles      = string(tlsmgr.SourceFiles)
	CertSelfSigned = string(tlsmgr.SourceSelfSigned)
)

// SiteTLSConfig is a site's resolved TLS settings.
type SiteTLSConfig struct {
	Source       string // acme, files or self-signed
	CertFile     string // resolved against the configuration file's directory
	KeyFile      string
	RedirectHTTP bool
	HSTS         string // the Strict-Transport-Security value, or ""
}

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// ServerConfig holds resolved connection limits.
type ServerConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	ShutdownGrace     time.Duration
	WatchConfig       bool
	Inspections       int           // 0: twice runtime.GOMAXPROCS
	InspectionWait    time.Duration // how long a request waits for a slot
	MemoryLimit       int64         // 0: automatic (DefaultMemoryLimit)
	SendTimeout       time.Duration // per write to the client; 0: none

	ClientConnections     int     // open connections per client address; 0: no limit
	ClientConnectionRate  float64 // new connections per second per client; 0: no limit
	ClientConnectionBurst int
	ClientRequests        int // requests in flight per client; 0: no limit
	DescriptorReserve     int // 0: automatic
}

// Defaults of the per-client limits (server.client_*): see the README's
// "Denial of service" section for what each costs a legitimate client.
const (
	DefaultClientConnections     = 128
	DefaultClientConnectionRate  = 50
	DefaultClientConnectionBurst = 200
	DefaultClientRequests        = 128
	DefaultSendTimeout           = 60 * time.Second
)

// SiteConfig is a resolved site.
type SiteConfig struct {
	Name       string
	Hosts      []string // lower-case; "*" or "*.example.com" wildcards
	Routes     []*RouteConfig
	TLS        *SiteTLSConfig // nil: served on http listeners only
	Filters    FiltersConfig
	RateLimits []RateLimitConfig // one budget shared by every route of the site
	// Pages are the site's refusal page templates (block_pages); nil: the
	// built-in page.
	Pages *respond.Pages
}

// RouteConfig is a resolved route with its fully merged WAF settings.
type RouteConfig struct {
	Path       string
	Match      RouteMatch // conditions beyond the path prefix
	Upstream   string
	WAF        WAFSettings
	RateLimits []RateLimitConfig // the route's own, on top of the site's
	Proxy      RouteProxyConfig
	Cache      *CacheConfig // nil: no cache
	Challenge  bool         // answer with the proof-of-work challenge until passed
}

// Modes of the rule engine.
const (
	ModeBlock  = "block"
	ModeDetect = "detect"
	ModeOff    = "off"
)

// Body limit behaviours.
const (
	OverLimitReject  = "reject"
	OverLimitPartial = "inspect_partial"
)

// Engine error policies.
const (
	OnErrorBlock = "block"
	OnErrorPass  = "pass"
)

// WAFSettings are the effective rule-engine settings of one route. Two routes
// with equal settings share one compiled rule set (see rules.Key).
type WAFSettings struct {
	Mode string
	// Profile is ProfilePortcullis or ProfileStockCRS.
	Profile string
	// DetectionThreshold is the detector confidence that blocks (portcullis).
	DetectionThreshold int
	CRS                bool
	crsSet             bool // crs was set at some level; else the profile decides
	Paranoia           int
	InboundThreshold   int
	OutboundThreshold  int
	OnError            string
	BodyLimit          int64
	BodyOverLimit      string
	BodyNoFilesLimit   int64 // parsed (not multipart) bodies; BodyLimit applies if lower
	ResponseInspect    bool
	ResponseMIMETypes  []string
	ResponseLimit      int64
	CRSVariables       map[string]string
	RulesBefore        []RuleText
	RulesAfter         []RuleText
	Exclusions         []ExclusionConfig
	Plugins            []*CRSPlugin // CRS plugins, in the order listed
}

// RuleText is custom SecLang with where it came from, for error messages.
type RuleText struct {
	Origin string // "file.conf" or the field path of an inline rule
	Text   string
}

// ExclusionConfig is a validated exclusion.
type ExclusionConfig struct {
	Path       string // field path, for error messages
	RuleIDs    []IDRange
	Tags       []string
	Detectors  []string
	Classes    []string
	Target     string
	PathPrefix string
	ExactPath  string
	Methods    []string
}

// IDRange is an inclusive range of rule ids; a single id has From == To.
type IDRange struct{ From, To int }

func (r IDRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// Detection profiles (waf.profile).
const (
	// ProfilePortcullis judges decoded values with Portcullis's detectors.
	ProfilePortcullis = "portcullis"
	// ProfileStockCRS runs the unmodified OWASP CRS.
	ProfileStockCRS = "stock-crs"
)

// DefaultDetectionThreshold is the detector confidence that blocks by
// default: what the detectors call an attack rather than a suspicion.
const DefaultDetectionThreshold = 70

// DetectionClasses are the attack classes exclusions may name (the values
// of waf/detect.Class, which config cannot import).
var DetectionClasses = []string{"sqli", "xss", "shell", "traversal", "ssti", "ssrf", "ldap", "nosql", "xxe", "crlf", "jndi", "deserialization", "ssi"}

// DefaultWAF are the settings when nothing is configured. CRS is resolved
// from the profile once every level is merged (see finishWAF).
func DefaultWAF() WAFSettings {
	return WAFSettings{
		Mode: ModeBlock, Profile: ProfilePortcullis, DetectionThreshold: DefaultDetectionThreshold,
		CRS: false, Paranoia: 1,
		InboundThreshold: 5, OutboundThreshold: 4,
		OnError:   OnErrorBlock,
		BodyLimit: 13 << 20, BodyOverLimit: OverLimitReject, BodyNoFilesLimit: 1 << 20,
		ResponseMIMETypes: []string{"text/html", "text/plain", "text/xml", "application/json"},
		ResponseLimit:     512 << 10,
	}
}

// DefaultAuditFile is where records go when the config names no file.
const DefaultAuditFile = "portcullis-audit.jsonl"

// AuditConfig holds resolved audit settings.
type AuditConfig struct {
	File          string
	RuleLog       string
	LogAll        bool
	QueueSize     int
	RedactHeaders []string
	RedactArgs    []string
	BodyLimit     int64
	SampleAllowed float64
	Store         AuditStoreConfig
	// OnFailure is AuditServe or AuditRefuse.
	OnFailure string
	Aggregate AuditAggregateConfig
}

// Audit failure policies (audit.on_failure).
const (
	AuditServe  = "serve"
	AuditRefuse = "refuse"
)

// AuditAggregateConfig is the resolved audit.aggregate block; Samples is 0
// when aggregation is off.
type AuditAggregateConfig struct {
	Window  time.Duration
	Samples int
	MaxKeys int
}

// Default returns the configuration used by `portcullis run --upstream URL`
// without a file: one listener, one catch-all site, CRS at paranoia 1
// blocking, and a request rate limit per client address
// (DefaultRate/DefaultBurst, named DefaultRateLimitName).
//
// A configuration file gets no request rate limit it does not set: a site's
// traffic (an API called by a few servers, pages behind a CDN) decides what
// rate is normal, and a wrong default would refuse legitimate clients. The
// server's per-client connection and in-flight limits apply to both.
//
// A trial of it is told to use http://127.0.0.1:8080, and CRS 920350
// ("Host header is a numeric IP address") would flag every such request.
// The defaults therefore drop 920350 for a request whose Host is a loopback
// address literal, and for nothing else: a numeric public Host (a scanner
// walking address ranges) still scores.
func Default(listen, upstream string) (*Config, error) {
	text := fmt.Sprintf("listeners:\n  - address: %q\nupstreams:\n  - name: default\n    targets: [%q]\nsites:\n  - name: default\n    hosts: [\"*\"]\n    filters:\n      rate_limits:\n        - {name: %q, rate: %d, burst: %d}\n    routes:\n      - path: /\n        upstream: default\n",
		listen, upstream, DefaultRateLimitName, DefaultRate, DefaultBurst)
	return Parse("command line", []byte(text+loopbackHostExclusion))
}

// The request rate limit per client address of the configuration without
// a file: 50 requests per second sustained, 200 at once (a page with all
// its assets, fetched cold).
const (
	DefaultRateLimitName = "default per-client limit"
	DefaultRate          = 50
	DefaultBurst         = 200
)

// LoopbackHostRuleID is the rule of the embedded defaults that drops CRS
// 920350 for a loopback Host.
const LoopbackHostRuleID = 200012

var loopbackHostExclusion = fmt.Sprintf(`waf:
  rules_before:
    - inline: |
        SecRule REQUEST_HEADERS:Host "@rx ^(?:127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|\[::1\])(?::[0-9]{1,5})?$" "id:%d,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=920350"
`, LoopbackHostRuleID)

// crsVarsWithFields are CRS variables that a waf field sets; setting them
// through crs_variables would silently contradict the validated field.
var crsVarsWithFields = map[string]string{
	"blocking_paranoia_level":          "paranoia",
	"paranoia_level":                   "paranoia",
	"executing_paranoia_level":         "paranoia",
	"inbound_anomaly_score_threshold":  "inbound_threshold",
	"outbound_anomaly_score_threshold": "outbound_threshold",
}

var (
	crsVarName  = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	methodToken = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	tagPattern  = regexp.MustCompile(`^[A-Za-z0-9_./\-]+$`)
	// detectorPattern accepts a detector name: a class, optionally
	// followed by "/" and a sub-detector ("xss/js").
	detectorPattern = regexp.MustCompile(`^[a-z0-9_]+(/[a-z0-9_.-]+)?$`)
	// targetPattern accepts a SecLang variable with an optional key:
	// ARGS, ARGS:name, REQUEST_COOKIES:/regex/, ARGS_NAMES:json.a.b
	targetPattern = regexp.MustCompile(`^[A-Z_]+(:[^\s"',|]+)?$`)
	hostPattern   = regexp.MustCompile(`^(\*|(\*\.)?[a-z0-9]([a-z0-9\-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]*[a-z0-9])?)*)$`)
)

func (c *checker) resolve(f *File) *Config {
	cfg := &Config{Source: c.file}
	c.resolveListeners(f, cfg)
	cfg.Server = ServerConfig{
		ReadHeaderTimeout: durationOr(f.Server.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       durationOr(f.Server.ReadTimeout, 60*time.Second),
		WriteTimeout:      durationOr(f.Server.WriteTimeout, 0),
		IdleTimeout:       durationOr(f.Server.IdleTimeout, 120*time.Second),
		MaxHeaderBytes:    int(sizeOr(f.Server.MaxHeaderBytes, 64<<10)),
		ShutdownGrace:     durationOr(f.Server.ShutdownGrace, 30*time.Second),
		WatchConfig:       f.Server.WatchConfig,
		InspectionWait:    durationOr(f.Server.InspectionWait, 10*time.Second),
		MemoryLimit:       sizeOr(f.Server.MemoryLimit, 0),
		SendTimeout:       durationOr(f.Server.SendTimeout, DefaultSendTimeout),

		ClientConnections:     intOr(f.Server.ClientConnections, DefaultClientConnections),
		ClientConnectionBurst: intOr(f.Server.ClientConnectionBurst, DefaultClientConnectionBurst),
		ClientRequests:        intOr(f.Server.ClientRequests, DefaultClientRequests),
		DescriptorReserve:     intOr(f.Server.DescriptorReserve, 0),
	}
	cfg.Server.ClientConnectionRate = DefaultClientConnectionRate
	if r := f.Server.ClientConnectionRate; r != nil {
		if *r < 0 || *r > 1e6 || *r != *r {
			c.errorf("server.client_connection_rate", "must be between 0 (no limit) and 1000000 connections per second, got %v", *r)
		}
		cfg.Server.ClientConnectionRate = *r
	}
	for _, v := range []struct {
		path string
		n    *int
		lo   int
	}{
		{"server.client_connections", f.Server.ClientConnections, 0},
		{"server.client_connection_burst", f.Server.ClientConnectionBurst, 1},
		{"server.client_requests", f.Server.ClientRequests, 0},
		{"server.descriptor_reserve", f.Server.DescriptorReserve, 0},
	} {
		if v.n != nil && (*v.n < v.lo || *v.n > 1<<20) {
			c.errorf(v.path, "must be between %d and %d, got %d", v.lo, 1<<20, *v.n)
		}
	}
	if n := f.Server.Inspections; n != nil {
		if *n < 0 || *n > 4096 {
			c.errorf("server.inspections", "must be between 0 (automatic) and 4096, got %d", *n)
		}
		cfg.Server.Inspections = *n
	}
	if f.Server.InspectionWait != nil && cfg.Server.InspectionWait <= 0 {
		c.errorf("server.inspection_wait", "must be a positive duration like 10s")
	}
	if f.Server.MemoryLimit != nil && *f.Server.MemoryLimit < 32<<20 {
		c.errorf("server.memory_limit", "must be at least 32MiB (the compiled rule set alone takes about 25MiB), got %d", *f.Server.MemoryLimit)
	}
	if f.Server.MaxHeaderBytes != nil && (*f.Server.MaxHeaderBytes < 4096 || *f.Server.MaxHeaderBytes > 16<<20) {
		c.errorf("server.max_header_bytes", "must be between 4KiB and 16MiB, got %d", *f.Server.MaxHeaderBytes)
	}
	upstreams := c.resolveUpstreams(f, cfg)
	global := c.mergeWAF(DefaultWAF(), &f.WAF, "waf")
	c.resolveClientIP(f, cfg)
	lists := c.resolveReputation(f, cfg)
	c.resolveSites(f, cfg, upstreams, global, lists)
	c.resolveAudit(f, cfg)
	c.resolveTLS(f, cfg)
	c.resolveBans(f, cfg)
	c.resolveAuditStore(f.Audit, cfg)
	c.resolveAdmin(f, cfg)
	c.resolveLog(f, cfg)
	c.resolveAlerts(f, cfg)
	c.resolveCluster(f, cfg)
	c.resolveCrowdSec(f, cfg)
	c.resolveChallenge(f, cfg)
	c.checkRules(cfg)
	return cfg
}

func (c *checker) resolveListeners(f *File, cfg *Config) {
	if len(f.Listeners) == 0 {
		for _, s := range f.Sites {
			if s.TLS != nil {
				cfg.Listeners = []ListenerConfig{{Name: ":80", Address: ":80"}, {Name: ":443", Address: ":443", HTTPS: true, HTTP3: true}}
				return
			}
		}
		cfg.Listeners = []ListenerConfig{{Name: ":8080", Address: ":8080"}}
		return
	}
	seen := map[string]int{}
	for i, l := range f.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if l.Address == "" {
			c.errorf(p+".address", "is required")
			continue
		}
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			c.errorf(p+".address", "must be host:port or :port, got %q", l.Address)
			continue
		}
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			c.errorf(p+".address", "port must be 0..65535, got %q", port)
		}
		if host != "" && net.ParseIP(host) == nil && host != "localhost" {
			c.errorf(p+".address", "host must be an IP address or localhost, got %q", host)
		}
		if j, dup := seen[l.Address]; dup && port != "0" { // port 0: each gets its own
			c.errorf(p+".address", "duplicates listeners[%d].address %q", j, l.Address)
		}
		seen[l.Address] = i
		name := l.Name
		if name == "" {
			name = l.Address
		}
		https := false
		switch l.Protocol {
		case "", "http":
		case "https":
			https = true
		default:
			c.errorf(p+".protocol", "must be http or https, got %q", l.Protocol)
		}
		h3 := https && !l.ProxyProtocol
		if l.HTTP3 != nil {
			switch {
			case *l.HTTP3 && !https:
				c.errorf(p+".http3", "needs protocol: https (QUIC always runs TLS)")
			case *l.HTTP3 && l.ProxyProtocol:
				c.errorf(p+".http3", "cannot be combined with proxy_protocol: UDP carries no PROXY header, so every client would have the balancer's address")
			}
			h3 = *l.HTTP3 && https && !l.ProxyProtocol
		}
		cfg.Listeners = append(cfg.Listeners, ListenerConfig{Name: name, Address: l.Address, HTTPS: https, ProxyProtocol: l.ProxyProtocol, HTTP3: h3})
	}
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func (c *checker) resolveSites(f *File, cfg *Config, upstreams map[string]bool, global WAFSettings, lists map[string]string) {
	if len(f.Sites) == 0 {
		c.errorf("sites", "at least one site is required")
		return
	}
	hostOwner := map[string]string{}
	defaultPages := c.blockPages(f.BlockPages, "block_pages")
	for i, s := range f.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		sc := &SiteConfig{Name: s.Name, Pages: defaultPages}
		if s.BlockPages != nil {
			sc.Pages = c.blockPages(s.BlockPages, p+".block_pages")
		}
		if len(s.Hosts) == 0 {
			c.errorf(p+".hosts", "at least one host name is required (\"*\" matches any host)")
		}
		for j, h := range s.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", p, j)
			h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
			if !hostPattern.MatchString(h) {
				c.errorf(hp, "must be a host name, \"*.domain\" or \"*\", got %q", s.Hosts[j])
				continue
			}
			if owner, dup := hostOwner[h]; dup {
				c.errorf(hp, "host %q is already served by %s", h, owner)
				continue
			}
			hostOwner[h] = p
			sc.Hosts = append(sc.Hosts, h)
		}
		if sc.Name == "" && len(sc.Hosts) > 0 {
			sc.Name = sc.Hosts[0]
		}
		if s.TLS != nil {
			sc.TLS = c.siteTLS(s.TLS, sc.Hosts, p+".tls")
		}
		sc.Filters = c.siteFilters(s.Filters, p+".filters", lists, cfg.GeoIP)
		if s.Filters != nil {
			sc.RateLimits = c.rateLimits(s.Filters.RateLimits, p+".filters.rate_limits")
		}
		siteWAF := c.mergeWAF(global, s.WAF, p+".waf")
		if len(s.Routes) == 0 {
			c.errorf(p+".routes", "at least one route is required")
		}
		seen := map[string]int{}
		for j, r := range s.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", p, j)
			rc := &RouteConfig{Path: r.Path, Upstream: r.Upstream, Match: c.routeMatch(r, rp), Challenge: r.Challenge}
			if r.Challenge && r.GRPC {
				c.errorf(rp+".challenge", "cannot be used on a grpc route: a gRPC client runs no JavaScript")
			}
			sig := matchSignature(r.Path, rc.Match)
			k, dup := seen[sig]
			switch {
			case !strings.HasPrefix(r.Path, "/"):
				c.errorf(rp+".path", "must start with \"/\", got %q", r.Path)
			case dup && rc.Match.Conditions() == 0 && !rc.Match.Exact:
				c.errorf(rp+".path", "duplicate route path %q in this site", r.Path)
			case dup:
				c.errorf(rp, "matches exactly what %s.routes[%d] matches, so it could never answer", p, k)
			}
			seen[sig] = j
			switch {
			case r.Upstream == "":
				c.errorf(rp+".upstream", "is required")
			case !upstreams[r.Upstream]:
				c.errorf(rp+".upstream", "unknown upstream %q", r.Upstream)
			}
			rc.WAF = c.mergeWAF(siteWAF, r.WAF, rp+".waf")
			rc.RateLimits = c.rateLimits(r.RateLimits, rp+".rate_limits")
			if r.GRPC {
				c.noChallengeOnGRPC(sc, rc, p, rp)
			}
			rc.Proxy = c.routeProxy(r, cfg.Upstreams, rp)
			rc.Cache = c.routeCache(r.Cache, rp+".cache")
			sc.Routes = append(sc.Routes, rc)
		}
		cfg.Sites = append(cfg.Sites, sc)
	}
}

func (c *checker) resolveAudit(f *File, cfg *Config) {
	a := f.Audit
	cfg.Audit = AuditConfig{
		File:          c.relative(DefaultAuditFile),
		RuleLog:       a.RuleLog,
		LogAll:        a.LogAll,
		QueueSize:     intOr(a.QueueSize, 8192),
		RedactHeaders: a.RedactHeaders,
		RedactArgs:    a.RedactArgs,
	}
	if a.File != nil {
		if *a.File == "" {
			c.errorf("audit.file", "must not be empty (omit it for the default %s)", DefaultAuditFile)
		}
		cfg.Audit.File = c.relative(*a.File)
	} else if env := stateDirFromEnv(); env != "" {
		cfg.Audit.File = filepath.Join(env, DefaultAuditFile)
	}
	if a.RuleLog != "" {
		cfg.Audit.RuleLog = c.relative(a.RuleLog)
	}
	if cfg.Audit.QueueSize < 1 || cfg.Audit.QueueSize > 1<<20 {
		c.errorf("audit.queue_size", "must be 1..1048576, got %d", cfg.Audit.QueueSize)
	}
	for i, h := range a.RedactHeaders {
		if !methodToken.MatchString(h) {
			c.errorf(fmt.Sprintf("audit.redact_headers[%d]", i), "must be a header name, got %q", h)
		}
	}
	for i, name := range a.RedactArgs {
		if strings.TrimSpace(name) == "" {
			c.errorf(fmt.Sprintf("audit.redact_args[%d]", i), "must not be empty")
		}
	}
	cfg.Audit.OnFailure = AuditServe
	switch a.OnFailure {
	case "", AuditServe:
	case AuditRefuse:
		cfg.Audit.OnFailure = AuditRefuse
	default:
		c.errorf("audit.on_failure", "must be serve or refuse, got %q", a.OnFailure)
	}
	c.resolveAuditAggregate(a.Aggregate, cfg)
}

func (c *checker) resolveAuditAggregate(g *AuditAggregate, cfg *Config) {
	if g == nil {
		g = &AuditAggregate{}
	}
	agg := AuditAggregateConfig{
		Window:  durationOr(g.Window, time.Minute),
		Samples: intOr(g.Samples, 10),
		MaxKeys: intOr(g.MaxKeys, 10000),
	}
	if agg.Window < time.Second || agg.Window > time.Hour {
		c.errorf("audit.aggregate.window", "must be 1s to 1h, got %s", agg.Window)
	}
	if agg.Samples < 1 || agg.Samples > 10000 {
		c.errorf("audit.aggregate.samples", "must be 1..10000 (enabled: false turns aggregation off), got %d", agg.Samples)
	}
	if agg.MaxKeys < 1 || agg.MaxKeys > 1000000 {
		c.errorf("audit.aggregate.max_keys", "must be 1..1000000, got %d", agg.MaxKeys)
	}
	if g.Enabled != nil && !*g.Enabled {
		agg.Samples = 0
	}
	cfg.Audit.Aggregate = agg
}

// mergeWAF applies the overrides in w (at field path p) on top of base.
func (c *checker) mergeWAF(base WAFSettings, w *WAF, p string) WAFSettings {
	out := base
	// Copy the slices and map so that a route's additions never alias its site's.
	out.RulesBefore = slices.Clone(base.RulesBefore)
	out.RulesAfter = slices.Clone(base.RulesAfter)
	out.Exclusions = slices.Clone(base.Exclusions)
	out.Plugins = slices.Clone(base.Plugins)
	out.ResponseMIMETypes = slices.Clone(base.ResponseMIMETypes)
	out.CRSVariables = make(map[string]string, len(base.CRSVariables))
	for k, v := range base.CRSVariables {
		out.CRSVariables[k] = v
	}
	if w == nil {
		return out
	}
	if w.Mode != nil {
		switch *w.Mode {
		case ModeBlock, ModeDetect, ModeOff:
			out.Mode = *w.Mode
		default:
			c.errorf(p+".mode", "must be block, detect or off, got %q", *w.Mode)
		}
	}
	if w.Profile != nil {
		switch *w.Profile {
		case ProfilePortcullis, ProfileStockCRS:
			out.Profile = *w.Profile
		default:
			c.errorf(p+".profile", "must be portcullis or stock-crs, got %q", *w.Profile)
		}
	}
	if w.CRS != nil {
		out.CRS, out.crsSet = *w.CRS, true
	}
	if !out.crsSet {
		out.CRS = out.Profile == ProfileStockCRS
	}
	c.setInt(&out.DetectionThreshold, w.DetectionThreshold, p+".detection_threshold", 1, 100)
	c.setInt(&out.Paranoia, w.Paranoia, p+".paranoia", 1, 4)
	c.setInt(&out.InboundThreshold, w.InboundThreshold, p+".inbound_threshold", 1, 10000)
	c.setInt(&out.OutboundThreshold, w.OutboundThreshold, p+".outbound_threshold", 1, 10000)
	if w.OnError != nil {
		switch *w.OnError {
		case OnErrorBlock, OnErrorPass:
			out.OnError = *w.OnError
		default:
			c.errorf(p+".on_error", "must be block or pass, got %q", *w.OnError)
		}
	}
	if rb := w.RequestBody; rb != nil {
		if rb.Limit != nil {
			if *rb.Limit < 1 || *rb.Limit > 1<<30 {
				c.errorf(p+".request_body.limit", "must be between 1 byte and 1GiB, got %d", *rb.Limit)
			}
			out.BodyLimit = int64(*rb.Limit)
		}
		if rb.OverLimit != nil {
			switch *rb.OverLimit {
			case OverLimitReject, OverLimitPartial:
				out.BodyOverLimit = *rb.OverLimit
			default:
				c.errorf(p+".request_body.over_limit", "must be reject or inspect_partial, got %q", *rb.OverLimit)
			}
		}
		if rb.NoFilesLimit != nil {
			if *rb.NoFilesLimit < 1 || *rb.NoFilesLimit > 1<<30 {
				c.errorf(p+".request_body.no_files_limit", "must be between 1 byte and 1GiB, got %d", *rb.NoFilesLimit)
			}
			out.BodyNoFilesLimit = int64(*rb.NoFilesLimit)
		}
	}
	if ri := w.ResponseInspection; ri != nil {
		if ri.MIMETypes != nil && len(ri.MIMETypes) == 0 {
			c.errorf(p+".response_inspection.mime_types", "must name at least one type (omit it for the defaults)")
		}
		if ri.Enabled != nil {
			out.ResponseInspect = *ri.Enabled
		}
		if ri.MIMETypes != nil {
			out.ResponseMIMETypes = nil
			for i, m := range ri.MIMETypes {
				m = strings.ToLower(strings.TrimSpace(m))
				if t, sub, ok := strings.Cut(m, "/"); !ok || !methodToken.MatchString(t) || !methodToken.MatchString(sub) {
					c.errorf(fmt.Sprintf("%s.response_inspection.mime_types[%d]", p, i), "must be a MIME type like text/html, got %q", ri.MIMETypes[i])
					continue
				}
				out.ResponseMIMETypes = append(out.ResponseMIMETypes, m)
			}
		}
		if ri.Limit != nil {
			if *ri.Limit < 1 || *ri.Limit > 1<<30 {
				c.errorf(p+".response_inspection.limit", "must be between 1 byte and 1GiB, got %d", *ri.Limit)
			}
			out.ResponseLimit = int64(*ri.Limit)
		}
	}
	for k, v := range w.CRSVariables {
		if !crsVarName.MatchString(k) {
			c.errorf(p+".crs_variables."+k, "must be a lower-case CRS variable name such as allowed_methods")
			continue
		}
		if field, own := crsVarsWithFields[k]; own {
			c.errorf(p+".crs_variables."+k, "is set by the %s field; set it there", field)
			continue
		}
		if err := checkCRSVariable(k); err != nil {
			c.errorf(p+".crs_variables."+k, "%v", err)
			continue
		}
		if strings.ContainsAny(v, "'\"\\\n\r") || strings.Contains(v, "%{") {
			c.errorf(p+".crs_variables."+k, "value must not contain quotes, backslashes, line breaks or %%{ macros")
			continue
		}
		out.CRSVariables[k] = v
	}
	out.RulesBefore = append(out.RulesBefore, c.ruleSources(w.RulesBefore, p+".rules_before")...)
	out.RulesAfter = append(out.RulesAfter, c.ruleSources(w.RulesAfter, p+".rules_after")...)
	for i, e := range w.Exclusions {
		if ex, ok := c.exclusion(e, fmt.Sprintf("%s.exclusions[%d]", p, i)); ok {
			out.Exclusions = append(out.Exclusions, ex)
		}
	}
	for _, pl := range c.crsPlugins(w.CRSPlugins, p+".crs_plugins") {
		if !slices.Contains(out.Plugins, pl) {
			out.Plugins = append(out.Plugins, pl)
		}
	}
	if len(w.CRSPlugins) > 0 && !out.CRS {
		c.errorf(p+".crs_plugins", "CRS plugins need the CRS, which is off here (set profile: stock-crs, or crs: true)")
	}
	return out
}

// setInt copies an override into dst, reporting it at path when outside lo..hi.
func (c *checker) setInt(dst, v *int, path string, lo, hi int) {
	if v == nil {
		return
	}
	if *v < lo || *v > hi {
		c.errorf(path, "must be %d..%d, got %d", lo, hi, *v)
	}
	*dst = *v
}

func (c *checker) ruleSources(srcs []RuleSource, p string) []RuleText {
	var out []RuleText
	for i, s := range srcs {
		ip := fmt.Sprintf("%s[%d]", p, i)
		switch {
		case (s.Inline == "") == (s.File == ""):
			c.errorf(ip, "set exactly one of inline or file")
		case s.Inline != "":
			field := ip + ".inline"
			out = append(out, RuleText{Origin: field, Text: s.Inline})
			rc := ruleCheck{origin: field, field: field, file: c.file, line: c.lineOf(field), text: s.Inline}
			if c.literal[field] {
				rc.line, rc.exact = rc.line+1, true // the text starts below the | indicator
			}
			c.ruleChecks = append(c.ruleChecks, rc)
		default:
			path := s.File
			if !filepath.IsAbs(path) && c.file != "" {
				path = filepath.Join(filepath.Dir(c.file), path)
			}
			data, err := readLimited(path)
			if err != nil {
				c.errorf(ip+".file", "%v", err)
				continue
			}
			out = append(out, RuleText{Origin: path, Text: string(data)})
			c.ruleChecks = append(c.ruleChecks, ruleCheck{origin: path, field: ip + ".file", file: path, line: 1, exact: true, text: string(data)})
		}
	}
	return out
}

func (c *checker) exclusion(e Exclusion, p string) (ExclusionConfig, bool) {
	ok := true
	ex := ExclusionConfig{Path: p, Target: e.Target, PathPrefix: e.PathPrefix, ExactPath: e.ExactPath}
	if len(e.RuleIDs) == 0 && len(e.Tags) == 0 && len(e.Detectors) == 0 && len(e.Classes) == 0 {
		c.errorf(p, "name at least one of rule_ids, tags, detectors or classes")
		ok = false
	}
	for i, d := range e.Detectors {
		if !detectorPattern.MatchString(d) {
			c.errorf(fmt.Sprintf("%s.detectors[%d]", p, i), "must be a detector name such as sqli or xss/js, got %q", d)
			ok = false
			continue
		}
		ex.Detectors = append(ex.Detectors, d)
	}
	for i, cl := range e.Classes {
		if !slices.Contains(DetectionClasses, cl) {
			c.errorf(fmt.Sprintf("%s.classes[%d]", p, i), "must be one of %s, got %q", strings.Join(DetectionClasses, ", "), cl)
			ok = false
			continue
		}
		ex.Classes = append(ex.Classes, cl)
	}
	for i, id := range e.RuleIDs {
		r, err := parseIDRange(id)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.rule_ids[%d]", p, i), "%v", err)
			ok = false
			continue
		}
		ex.RuleIDs = append(ex.RuleIDs, r)
	}
	for i, t := range e.Tags {
		if !tagPattern.MatchString(t) {
			c.errorf(fmt.Sprintf("%s.tags[%d]", p, i), "must be a rule tag such as attack-sqli, got %q", t)
			ok = false
			continue
		}
		ex.Tags = append(ex.Tags, t)
	}
	if e.Target != "" && !targetPattern.MatchString(strings.TrimSuffix(e.Target, "*")) {
		c.errorf(p+".target", "must be a variable like ARGS:comment or REQUEST_COOKIES:session, got %q", e.Target)
		ok = false
	}
	if e.PathPrefix != "" && (!strings.HasPrefix(e.PathPrefix, "/") || strings.ContainsAny(e.PathPrefix, "\"'\\ \t\r\n")) {
		c.errorf(p+".path_prefix", "must start with \"/\" and contain no quotes, backslashes or spaces, got %q", e.PathPrefix)
		ok = false
	}
	if e.ExactPath != "" && (!strings.HasPrefix(e.ExactPath, "/") || strings.ContainsAny(e.ExactPath, "\"'\\ \t\r\n")) {
		c.errorf(p+".exact_path", "must start with \"/\" and contain no quotes, backslashes or spaces, got %q", e.ExactPath)
		ok = false
	}
	if e.ExactPath != "" && e.PathPrefix != "" {
		c.errorf(p, "set path_prefix or exact_path, not both")
		ok = false
	}
	for i, m := range e.Methods {
		if !methodToken.MatchString(m) {
			c.errorf(fmt.Sprintf("%s.methods[%d]", p, i), "must be an HTTP method, got %q", m)
			ok = false
			continue
		}
		ex.Methods = append(ex.Methods, strings.ToUpper(m))
	}
	return ex, ok
}

func parseIDRange(s string) (IDRange, error) {
	from, to, isRange := strings.Cut(strings.TrimSpace(s), "-")
	a, err := strconv.Atoi(strings.TrimSpace(from))
	if err != nil || a < 1 {
		return IDRange{}, fmt.Errorf("must be a rule id or a range like 942100-942199, got %q", s)
	}
	if !isRange {
		return IDRange{a, a}, nil
	}
	b, err := strconv.Atoi(strings.TrimSpace(to))
	if err != nil || b < a {
		return IDRange{}, fmt.Errorf("must be a rule id or a range like 942100-942199, got %q", s)
	}
	return IDRange{a, b}, nil
}

func durationOr(d *Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

func sizeOr(b *ByteSize, def int64) int64 {
	if b == nil {
		return def
	}
	return int64(*b)
}

func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
