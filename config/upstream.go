package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds what the proxy stage needs: upstream pools (targets,
// balancing, TLS towards the targets, health checks, retries) and what a
// route asks of the proxy beyond its upstream's name (matching conditions,
// timeouts, header edits, the response cache).

// Upstream is a named pool of servers.
type Upstream struct {
	// Name is how routes refer to the pool. Required, unique.
	Name string `yaml:"name"`
	// Targets are the pool's servers: a base URL (http or https, no query or
	// fragment) or a mapping {url, weight, max_conns}. At least one is
	// required.
	Targets []Target `yaml:"targets"`
	// Policy chooses a target for each request:
	//   round_robin           each target in turn; weights are ignored (default)
	//   weighted_round_robin  smooth weighted round robin: a target of weight 3
	//                         gets three requests for each one of a weight-1
	//                         target, interleaved rather than in bursts
	//   least_connections     the target with the fewest requests in flight
	//                         per unit of weight
	//   random_two_choices    two targets at random, the less loaded of the two
	//                         (cheap, and avoids herding onto one idle target)
	//   ip_hash               consistent hash of the client address: a client
	//                         keeps its target while the pool does not change
	//   hash                  consistent hash of a header or cookie (hash_on);
	//                         sticky sessions without shared state
	// Unavailable targets (down, ejected, at max_conns) are skipped; with the
	// hash policies the next target on the ring takes over.
	Policy string `yaml:"policy"`
	// HashOn names the header or cookie that policy: hash uses (exactly one).
	// Requests without it are hashed on the client address.
	HashOn *HashOn `yaml:"hash_on"`
	// MaxConnsPerTarget bounds the requests in flight to each target (for
	// HTTP/1.1, its connections); a target at its limit is skipped, and when
	// every target is, the client gets 503. A target's own max_conns wins.
	// Default: 0, no limit.
	MaxConnsPerTarget *int `yaml:"max_conns_per_target"`
	// DialTimeout bounds connecting to a target. Default: 5s.
	DialTimeout *Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds waiting for the upstream's response
	// headers after the request was sent; past it the client gets 504.
	// Default: 60s. Routes may override it.
	ResponseHeaderTimeout *Duration `yaml:"response_header_timeout"`
	// MaxIdleConnsPerTarget sizes the keep-alive pool per target.
	// Default: 256, enough for a busy 2-core proxy without reconnect churn.
	MaxIdleConnsPerTarget *int `yaml:"max_idle_conns_per_target"`
	// TLSInsecureSkipVerify disables certificate checks towards https targets.
	// Default: false. Only for test backends: it allows interception.
	TLSInsecureSkipVerify bool `yaml:"tls_insecure_skip_verify"`
	// TLS configures connections to https targets.
	TLS *UpstreamTLS `yaml:"tls"`
	// H2C speaks cleartext HTTP/2 (prior knowledge) to http targets, as gRPC
	// servers without TLS expect. Default: false (HTTP/1.1 to http targets;
	// https targets negotiate HTTP/2 by ALPN either way).
	H2C bool `yaml:"h2c"`
	// HealthCheck probes every target in the background. Default: none.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// PassiveCheck ejects targets that fail real requests. Default: on,
	// with the defaults of its fields.
	PassiveCheck *PassiveCheck `yaml:"passive_check"`
	// Retries resend a failed request to another target.
	Retries *Retries `yaml:"retries"`
}

// Target is one server of a pool. In YAML it is a URL or a mapping.
type Target struct {
	// URL is the base URL: http or https, host and port, optionally a path
	// that is put before every request path. Required.
	URL string `yaml:"url"`
	// Weight is the target's share for weighted_round_robin, least_connections,
	// random_two_choices and the hash policies. 1..1000, default 1.
	Weight *int `yaml:"weight"`
	// MaxConns overrides the pool's max_conns_per_target for this target.
	MaxConns *int `yaml:"max_conns"`
}

// parseScalar accepts the URL form; the mapping form is walked as a struct.
func (t *Target) parseScalar(s string) error {
	*t = Target{URL: s}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler for both forms.
func (t *Target) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return t.parseScalar(n.Value)
	}
	type plain Target // without this method, so Decode does not recurse
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = Target(p)
	return nil
}

// HashOn names the request value that policy: hash uses.
type HashOn struct {
	// Header is a request header name, e.g. X-User-Id.
	Header string `yaml:"header"`
	// Cookie is a cookie name, e.g. session.
	Cookie string `yaml:"cookie"`
}

// UpstreamTLS configures TLS towards https targets.
type UpstreamTLS struct {
	// CAFile is a PEM file of the CA certificates that sign the targets'
	// certificates (relative to the config file). Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is the name sent in SNI and checked in the target's
	// certificate. Default: the host of each target URL.
	ServerName string `yaml:"server_name"`
	// CertFile and KeyFile are Portcullis's client certificate and key (PEM)
	// for targets that require mutual TLS. Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// HealthCheck configures active health checks. A target that fails Fall
// checks in a row is taken out of the pool until it passes Rise in a row.
type HealthCheck struct {
	// Path is requested with GET on every target. Required, starts with "/".
	Path string `yaml:"path"`
	// ExpectStatus is the status range that counts as healthy, "200-399"
	// (default) or a single status such as "204".
	ExpectStatus string `yaml:"expect_status"`
	// Interval between checks of one target. Default: 10s.
	Interval *Duration `yaml:"interval"`
	// Timeout of one check; must be shorter than Interval. Default: 2s.
	Timeout *Duration `yaml:"timeout"`
	// Rise is how many passed checks in a row bring a target back. Default: 2.
	Rise *int `yaml:"rise"`
	// Fall is how many failed checks in a row take a target out. Default: 3.
	Fall *int `yaml:"fall"`
	// Host is the Host header of the checks. Default: the target's host.
	Host string `yaml:"host"`
}

// PassiveCheck configures ejection of targets that fail real traffic. An
// ejected target gets no requests for CoolDown, then is tried again.
type PassiveCheck struct {
	// Disabled turns passive checks off. Default: false.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures ejects a target after this many connection errors
	// or timeouts in a row. Default: 5; 0 turns this test off. Counted are
	// failures to connect, the response_header_timeout, and connections
	// that broke after the whole request was written; the client's own
	// failures (an oversized, truncated or too slow request body) and the
	// route's timeout never count against a target.
	ConsecutiveFailures *int `yaml:"consecutive_failures"`
	// FailureRatio ejects a target when this fraction of its responses in
	// Window were 5xx (at least MinRequests of them). Default: 0 (off).
	FailureRatio *float64 `yaml:"failure_ratio"`
	// MinRequests is the smallest sample FailureRatio judges. Default: 20.
	MinRequests *int `yaml:"min_requests"`
	// Window is the period FailureRatio counts over. Default: 10s.
	Window *Duration `yaml:"window"`
	// CoolDown is how long an ejected target rests. Default: 10s.
	CoolDown *Duration `yaml:"cool_down"`
}

// Retries configures resending a request after a connection error.
//
// A request is resent only to a target not yet tried, only after a
// connection error (never after a response, not even a 5xx, and never after
// a timeout waiting for the response), and only when it is safe: either the
// connection was never established (nothing reached any upstream), or the
// method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or, with
// idempotency_key, a request with an Idempotency-Key header) and its body,
// if any, was kept whole in the body_buffer. A POST whose bytes reached an
// upstream is never replayed.
type Retries struct {
	// Attempts is how many times a request may be resent. Default: 2;
	// 0 turns retries off.
	Attempts *int `yaml:"attempts"`
	// Budget bounds the time from the first attempt after which no new one
	// starts. Default: 10s.
	Budget *Duration `yaml:"budget"`
	// BodyBuffer is how much of an idempotent request's body is kept in
	// memory so that it can be resent. Default: 64KiB.
	BodyBuffer *ByteSize `yaml:"body_buffer"`
	// IdempotencyKey treats a request carrying an Idempotency-Key or
	// X-Idempotency-Key header as idempotent, so that a POST or PATCH with
	// one may be resent after its bytes reached an upstream. The header is
	// the client's claim: turn this on only when every target of the
	// upstream deduplicates requests by that key; otherwise any client can
	// have its POSTs replayed. Default: false.
	IdempotencyKey bool `yaml:"idempotency_key"`
}

// Balancing policies.
const (
	PolicyRoundRobin         = "round_robin"
	PolicyWeightedRoundRobin = "weighted_round_robin"
	PolicyLeastConnections   = "least_connections"
	PolicyRandomTwoChoices   = "random_two_choices"
	PolicyIPHash             = "ip_hash"
	PolicyHash               = "hash"
)

// MaxTargets bounds a pool's size; the balancer tracks tried targets in a
// fixed bit set so that picking never allocates.
const MaxTargets = 1024

// UpstreamConfig is a resolved upstream pool.
type UpstreamConfig struct {
	Name                  string
	Targets               []TargetConfig
	Policy                string
	HashHeader            string // canonical header name for policy hash, or ""
	HashCookie            string // cookie name for policy hash, or ""
	DialTimeout           time.Duration
	ResponseHeaderTimeout time.Duration
	MaxIdleConnsPerTarget int
	TLSInsecureSkipVerify bool
	TLS                   UpstreamTLSConfig
	H2C                   bool
	HealthCheck           *HealthCheckConfig // nil: no active checks
	Passive               PassiveConfig
	Retries               RetryConfig
}

// TargetConfig is one resolved target.
type TargetConfig struct {
	URL      *url.URL
	Weight   int
	MaxConns int // 0: no limit
}

// UpstreamTLSConfig holds what was read from the upstream tls files.
type UpstreamTLSConfig struct {
	RootCAs    *x509.CertPool   // nil: system roots
	ServerName string           // "": each target's host
	ClientCert *tls.Certificate // nil: no client certificate
}

// HealthCheckConfig is a resolved active health check.
type HealthCheckConfig struct {
	Path               string
	StatusLo, StatusHi int
	Interval, Timeout  time.Duration
	Rise, Fall         int
	Host               string
}

// PassiveConfig is a resolved passive check; Enabled false turns it off.
type PassiveConfig struct {
	Enabled             bool
	ConsecutiveFailures int     // 0: off
	FailureRatio        float64 // 0: off
	MinRequests         int
	Window              time.Duration
	CoolDown            time.Duration
}

// RetryConfig is the resolved retry policy.
type RetryConfig struct {
	Attempts       int
	Budget         time.Duration
	BodyBuffer     int64
	IdempotencyKey bool // honour Idempotency-Key headers
}

func (c *checker) resolveUpstreams(f *File, cfg *Config) map[string]bool {
	names := map[string]bool{}
	for i, u := range f.Upstreams {
		p := fmt.Sprintf("upstreams[%d]", i)
		switch {
		case u.Name == "":
			c.errorf(p+".name", "is required")
		case names[u.Name]:
			c.errorf(p+".name", "duplicate upstream name %q", u.Name)
		}
		names[u.Name] = true
		uc := &UpstreamConfig{
			Name:                  u.Name,
			Policy:                PolicyRoundRobin,
			DialTimeout:           durationOr(u.DialTimeout, 5*time.Second),
			ResponseHeaderTimeout: durationOr(u.ResponseHeaderTimeout, 60*time.Second),
			MaxIdleConnsPerTarget: intOr(u.MaxIdleConnsPerTarget, 256),
			TLSInsecureSkipVerify: u.TLSInsecureSkipVerify,
			H2C:                   u.H2C,
		}
		if uc.MaxIdleConnsPerTarget < 0 || uc.MaxIdleConnsPerTarget > 100000 {
			c.errorf(p+".max_idle_conns_per_target", "must be 0..100000, got %d", uc.MaxIdleConnsPerTarget)
		}
		c.resolvePolicy(u, uc, p)
		c.resolveTargets(u, uc, p)
		if u.TLS != nil {
			uc.TLS = c.upstreamTLS(u.TLS, p+".tls")
		}
		if u.HealthCheck != nil {
			uc.HealthCheck = c.healthCheck(u.HealthCheck, p+".health_check")
		}
		uc.Passive = c.passiveCheck(u.PassiveCheck, p+".passive_check")
		uc.Retries = c.retries(u.Retries, p+".retries")
		cfg.Upstreams = append(cfg.Upstreams, uc)
	}
	return names
}

func (c *checker) resolvePolicy(u Upstream, uc *UpstreamConfig, p string) {
	switch u.Policy {
	case "":
	case PolicyRoundRobin, PolicyWeightedRoundRobin, PolicyLeastConnections, PolicyRandomTwoChoices, PolicyIPHash, PolicyHash:
		uc.Policy = u.Policy
	default:
		c.errorf(p+".policy", "must be round_robin, weighted_round_robin, least_connections, random_two_choices, ip_hash or hash, got %q", u.Policy)
	}
	h := u.HashOn
	switch {
	case uc.Policy == PolicyHash && h == nil:
		c.errorf(p+".hash_on", "policy hash needs hash_on with a header or a cookie")
	case h == nil:
	case uc.Policy != PolicyHash:
		c.errorf(p+".hash_on", "is only used with policy: hash")
	case (h.Header == "") == (h.Cookie == ""):
		c.errorf(p+".hash_on", "set exactly one of header or cookie")
	case h.Header != "" && !methodToken.MatchString(h.Header):
		c.errorf(p+".hash_on.header", "must be a header name, got %q", h.Header)
	case h.Cookie != "" && !methodToken.MatchString(h.Cookie):
		c.errorf(p+".hash_on.cookie", "must be a cookie name, got %q", h.Cookie)
	default:
		uc.HashCookie = h.Cookie
		if h.Header != "" {
			uc.HashHeader = http.CanonicalHeaderKey(h.Header)
		}
	}
}

func (c *checker) resolveTargets(u Upstream, uc *UpstreamConfig, p string) {
	if len(u.Targets) == 0 {
		c.errorf(p+".targets", "at least one target URL is required")
	}
	if len(u.Targets) > MaxTargets {
		c.errorf(p+".targets", "at most %d targets per upstream, got %d", MaxTargets, len(u.Targets))
	}
	maxConns := intOr(u.MaxConnsPerTarget, 0)
	if maxConns < 0 || maxConns > 1_000_000 {
		c.errorf(p+".max_conns_per_target", "must be 0..1000000, got %d", maxConns)
	}
	seen := map[string]int{}
	for j, t := range u.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, j)
		up := tp // where the URL is: the item itself, or its url field
		if _, mapped := c.lines[tp+".url"]; mapped || t.Weight != nil || t.MaxConns != nil {
			up = tp + ".url"
		}
		tc := TargetConfig{Weight: intOr(t.Weight, 1), MaxConns: intOr(t.MaxConns, maxConns)}
		if tc.Weight < 1 || tc.Weight > 1000 {
			c.errorf(tp+".weight", "must be 1..1000, got %d", tc.Weight)
		}
		if t.MaxConns != nil && (*t.MaxConns < 0 || *t.MaxConns > 1_000_000) {
			c.errorf(tp+".max_conns", "must be 0..1000000, got %d", *t.MaxConns)
		}
		if t.URL == "" {
			c.errorf(up, "a target URL is required")
			continue
		}
		tu, err := parseHTTPURL(t.URL, "http", "https")
		switch {
		case err != nil:
			c.errorf(up, "%v", err)
		case tu.RawQuery != "" || tu.Fragment != "" || tu.User != nil:
			c.errorf(up, "URL %q must not contain a query, fragment or user info", t.URL)
		case u.H2C && tu.Scheme != "http":
			c.errorf(up, "h2c is cleartext HTTP/2: target must be http, got %q", t.URL)
		default:
			key := tu.Scheme + "://" + strings.ToLower(tu.Host) + tu.Path
			if k, dup := seen[key]; dup {
				c.errorf(up, "duplicates %s.targets[%d] %q (use weight for a larger share)", p, k, t.URL)
				continue
			}
			seen[key] = j
			tc.URL = tu
			uc.Targets = append(uc.Targets, tc)
		}
	}
}

func (c *checker) upstreamTLS(t *UpstreamTLS, p string) UpstreamTLSConfig {
	var out UpstreamTLSConfig
	out.ServerName = t.ServerName
	if t.ServerName != "" && !hostPattern.MatchString(strings.ToLower(t.ServerName)) {
		c.errorf(p+".server_name", "must be a host name, got %q", t.ServerName)
	}
	if t.CAFile != "" {
		data, err := readLimited(c.relative(t.CAFile))
		if err != nil {
			c.errorf(p+".ca_file", "%v", err)
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(data) {
				c.errorf(p+".ca_file", "no PEM certificate found in %s", t.CAFile)
			}
			out.RootCAs = pool
		}
	}
	switch {
	case t.CertFile == "" && t.KeyFile == "":
	case t.CertFile == "" || t.KeyFile == "":
		c.errorf(p, "a client certificate needs both cert_file and key_file")
	default:
		certPEM, err := readLimited(c.relative(t.CertFile))
		if err != nil {
			c.errorf(p+".cert_file", "%v", err)
			break
		}
		keyPEM, err := readLimited(c.relative(t.KeyFile))
		if err != nil {
			c.errorf(p+".key_file", "%v", err)
			break
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			c.errorf(p+".cert_file", "client certificate and key do not form a pair: %v", err)
			break
		}
		out.ClientCert = &cert
	}
	return out
}

func (c *checker) healthCheck(h *HealthCheck, p string) *HealthCheckConfig {
	out := &HealthCheckConfig{
		Path: h.Path, StatusLo: 200, StatusHi: 399, Host: h.Host,
		Interval: durationOr(h.Interval, 10*time.Second),
		Timeout:  durationOr(h.Timeout, 2*time.Second),
		Rise:     intOr(h.Rise, 2),
		Fall:     intOr(h.Fall, 3),
	}
	switch {
	case h.Path == "":
		c.errorf(p+".path", "is required, e.g. /healthz")
	case !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n#"):
		c.errorf(p+".path", "must start with \"/\" and contain no spaces or fragment, got %q", h.Path)
	}
	if h.ExpectStatus != "" {
		lo, hi, err := parseStatusRange(h.ExpectStatus)
		if err != nil {
			c.errorf(p+".expect_status", "%v", err)
		}
		out.StatusLo, out.StatusHi = lo, hi
	}
	if out.Interval < 100*time.Millisecond || out.Interval > 24*time.Hour {
		c.errorf(p+".interval", "must be between 100ms and 24h, got %s", out.Interval)
	}
	switch {
	case out.Timeout <= 0:
		c.errorf(p+".timeout", "must be positive")
	case out.Timeout >= out.Interval:
		c.errorf(p+".timeout", "must be shorter than the interval (%s), got %s", out.Interval, out.Timeout)
	}
	c.setInt(&out.Rise, h.Rise, p+".rise", 1, 100)
	c.setInt(&out.Fall, h.Fall, p+".fall", 1, 100)
	if h.Host != "" && !hostPattern.MatchString(strings.ToLower(h.Host)) {
		c.errorf(p+".host", "must be a host name, got %q", h.Host)
	}
	return out
}

// parseStatusRange reads "200-399" or "204".
func parseStatusRange(s string) (int, int, error) {
	from, to, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(from))
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.Atoi(strings.TrimSpace(to))
	}
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || hi < lo {
		return 200, 399, fmt.Errorf("must be a status or a range like 200-399, got %q", s)
	}
	return lo, hi, nil
}

func (c *checker) passiveCheck(pc *PassiveCheck, p string) PassiveConfig {
	if pc == nil {
		pc = &PassiveCheck{}
	}
	out := PassiveConfig{
		Enabled:             !pc.Disabled,
		ConsecutiveFailures: intOr(pc.ConsecutiveFailures, 5),
		MinRequests:         intOr(pc.MinRequests, 20),
		Window:              durationOr(pc.Window, 10*time.Second),
		CoolDown:            durationOr(pc.CoolDown, 10*time.Second),
	}
	c.setInt(&out.ConsecutiveFailures, pc.ConsecutiveFailures, p+".consecutive_failures", 0, 1000)
	c.setInt(&out.MinRequests, pc.MinRequests, p+".min_requests", 1, 1_000_000)
	if pc.FailureRatio != nil {
		if *pc.FailureRatio < 0 || *pc.FailureRatio > 1 {
			c.errorf(p+".failure_ratio", "must be 0..1, got %v", *pc.FailureRatio)
		}
		out.FailureRatio = *pc.FailureRatio
	}
	if out.Window < 100*time.Millisecond {
		c.errorf(p+".window", "must be at least 100ms, got %s", out.Window)
	}
	if out.CoolDown < 10*time.Millisecond {
		c.errorf(p+".cool_down", "must be at least 10ms, got %s", out.CoolDown)
	}
	return out
}

func (c *checker) retries(r *Retries, p string) RetryConfig {
	if r == nil {
		r = &Retries{}
	}
	out := RetryConfig{
		Attempts:       intOr(r.Attempts, 2),
		Budget:         durationOr(r.Budget, 10*time.Second),
		BodyBuffer:     sizeOr(r.BodyBuffer, 64<<10),
		IdempotencyKey: r.IdempotencyKey,
	}
	c.setInt(&out.Attempts, r.Attempts, p+".attempts", 0, 10)
	if out.Budget <= 0 {
		c.errorf(p+".budget", "must be positive")
	}
	if out.BodyBuffer > 16<<20 {
		c.errorf(p+".body_buffer", "must be at most 16MiB, got %d", out.BodyBuffer)
	}
	return out
}

// MatchPair is a header or query parameter a route requires.
type MatchPair struct {
	// Name of the header (case-insensitive) or query parameter
	// (case-sensitive). Required.
	Name string `yaml:"name"`
	// Value, when set, must equal one of the request's values exactly;
	// unset, the header or parameter only has to be present.
	Value *string `yaml:"value"`
}

// HeaderEdits change headers on their way through the proxy. Remove runs
// first, then Set (replaces), then Add (appends).
type HeaderEdits struct {
	Remove []string          `yaml:"remove"`
	Set    map[string]string `yaml:"set" secret:"headers"`
	Add    map[string]string `yaml:"add" secret:"headers"`
}

// RouteCache configures the response cache of a route (RFC 9111, shared
// cache). Every request is still inspected by the WAF before a stored
// response is served.
//
// What is stored: answers to GET with a status a shared cache may store
// (200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501; 302 and 307 with
// explicit freshness), fresh by s-maxage, max-age or Expires, or carrying
// a validator (ETag, Last-Modified) to be revalidated. Never stored:
// no-store, private, Vary: *, a response to a request with Authorization
// unless it says public, s-maxage or must-revalidate, and (unless
// store_set_cookie) a response with Set-Cookie.
//
// The key is scheme, host, path and query; responses are told apart further
// by the request headers their Vary names. Requests with Cookie (unless
// ignore_cookies), with Range or with Cache-Control: no-store bypass the
// cache: they are forwarded untouched and their responses are not stored. To keep unkeyed inputs from shaping a stored response
// (cache poisoning), a request that may fill the cache reaches the upstream
// with only Accept, Accept-Encoding, Accept-Language, Authorization and the
// forward_headers; every other client header is dropped.
type RouteCache struct {
	// Enabled turns the cache on for the route. Default: false.
	Enabled bool `yaml:"enabled"`
	// MaxSize bounds the bytes the route's cache holds (bodies and headers);
	// the least recently used responses go first. Default: 64MiB.
	MaxSize *ByteSize `yaml:"max_size"`
	// MaxObjectSize is the largest response body stored; at most half of
	// MaxSize. Default: 1MiB, or half of MaxSize when that is smaller.
	MaxObjectSize *ByteSize `yaml:"max_object_size"`
	// ForwardHeaders are extra request headers that reach the upstream on a
	// fill. If the response depends on one, it must name it in Vary. Cookie,
	// the conditional headers (If-None-Match, If-Modified-Since, If-Match,
	// If-Unmodified-Since, If-Range), Range and Cache-Control are refused:
	// the cache answers those itself.
	ForwardHeaders []string `yaml:"forward_headers"`
	// IgnoreCookies serves and fills the cache for requests with cookies,
	// which are then not sent to the upstream (static assets). Default:
	// false: requests with Cookie bypass the cache.
	IgnoreCookies bool `yaml:"ignore_cookies"`
	// StoreSetCookie stores responses that set cookies, without their
	// Set-Cookie headers (only the client whose request filled the cache
	// gets them). Default: false: such responses are not stored.
	StoreSetCookie bool `yaml:"store_set_cookie"`
	// StaleIfError serves a stale response for this long past its freshness
	// when the upstream fails (5xx or unreachable); the response's own
	// stale-if-error directive wins. Default: 0.
	StaleIfError *Duration `yaml:"stale_if_error"`
}

// RouteMatch holds the request conditions of a route beyond its path.
type RouteMatch struct {
	Exact     bool           // the path must equal Path
	PathRegex *regexp.Regexp // nil: none; matched against the cleaned path
	Methods   []string       // upper-case; empty: any
	Headers   []MatchConfig  // canonical names
	Query     []MatchConfig
}

// Conditions counts the conditions beyond the path, for precedence.
func (m RouteMatch) Conditions() int {
	n := len(m.Headers) + len(m.Query)
	if m.PathRegex != nil {
		n++
	}
	if len(m.Methods) > 0 {
		n++
	}
	return n
}

// MatchConfig is a resolved header or query condition.
type MatchConfig struct {
	Name     string
	Value    string
	HasValue bool
}

// RouteProxyConfig is what a route asks of the proxy.
type RouteProxyConfig struct {
	Timeout               time.Duration // 0: none
	ResponseHeaderTimeout time.Duration // 0: the upstream's
	MaxBodySize           int64         // 0: no limit
	RequestHeaders        HeaderEditsConfig
	ResponseHeaders       HeaderEditsConfig
	GRPC                  bool
	WebSocketIdleTimeout  time.Duration
}

// HeaderEditsConfig holds validated header edits with canonical names.
type HeaderEditsConfig struct {
	Remove []string
	Set    [][2]string // sorted by name
	Add    [][2]string
}

// Empty reports whether there is nothing to do.
func (h HeaderEditsConfig) Empty() bool {
	return len(h.Remove) == 0 && len(h.Set) == 0 && len(h.Add) == 0
}

// CacheConfig is a route's resolved cache settings.
type CacheConfig struct {
	MaxSize        int64
	MaxObjectSize  int64
	ForwardHeaders []string // canonical
	IgnoreCookies  bool
	StoreSetCookie bool
	StaleIfError   time.Duration
}

// hopHeaders may not be set or added by a route: they describe one
// connection, and the proxy manages them itself.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true,
}

func (c *checker) routeMatch(r Route, p string) RouteMatch {
	var m RouteMatch
	switch r.PathMatch {
	case "", "prefix":
	case "exact":
		m.Exact = true
	default:
		c.errorf(p+".path_match", "must be prefix or exact, got %q", r.PathMatch)
	}
	if r.PathRegex != "" {
		re, err := regexp.Compile(r.PathRegex)
		if err != nil {
			c.errorf(p+".path_regex", "invalid regular expression: %v", err)
		}
		m.PathRegex = re
	}
	for i, meth := range r.Methods {
		if !methodToken.MatchString(meth) {
			c.errorf(fmt.Sprintf("%s.methods[%d]", p, i), "must be an HTTP method, got %q", meth)
			continue
		}
		m.Methods = append(m.Methods, strings.ToUpper(meth))
	}
	for i, h := range r.Headers {
		hp := fmt.Sprintf("%s.headers[%d]", p, i)
		if !methodToken.MatchString(h.Name) {
			c.errorf(hp+".name", "must be a header name, got %q", h.Name)
			continue
		}
		m.Headers = append(m.Headers, matchConfig(http.CanonicalHeaderKey(h.Name), h.Value))
	}
	for i, q := range r.Query {
		if q.Name == "" {
			c.errorf(fmt.Sprintf("%s.query[%d].name", p, i), "is required")
			continue
		}
		m.Query = append(m.Query, matchConfig(q.Name, q.Value))
	}
	return m
}

func matchConfig(name string, v *string) MatchConfig {
	if v == nil {
		return MatchConfig{Name: name}
	}
	return MatchConfig{Name: name, Value: *v, HasValue: true}
}

// matchSignature identifies a route's conditions, to find duplicates.
func matchSignature(path string, m RouteMatch) string {
	var b strings.Builder
	b.WriteString(path)
	if m.Exact {
		b.WriteString(" =")
	}
	if m.PathRegex != nil {
		b.WriteString(" ~" + m.PathRegex.String())
	}
	fmt.Fprintf(&b, " %v %v %v", m.Methods, m.Headers, m.Query)
	return b.String()
}

func (c *checker) routeProxy(r Route, upstreams []*UpstreamConfig, p string) RouteProxyConfig {
	out := RouteProxyConfig{
		Timeout:               durationOr(r.Timeout, 0),
		ResponseHeaderTimeout: durationOr(r.ResponseHeaderTimeout, 0),
		MaxBodySize:           sizeOr(r.MaxBodySize, 0),
		RequestHeaders:        c.headerEdits(r.RequestHeaders, p+".request_headers"),
		ResponseHeaders:       c.headerEdits(r.ResponseHeaders, p+".response_headers"),
		GRPC:                  r.GRPC,
		WebSocketIdleTimeout:  durationOr(r.WebSocketIdleTimeout, 5*time.Minute),
	}
	if r.MaxBodySize != nil && *r.MaxBodySize < 1 {
		c.errorf(p+".max_body_size", "must be at least 1 byte (omit it for no limit)")
	}
	if r.WebSocketIdleTimeout != nil && out.WebSocketIdleTimeout < 10*time.Millisecond {
		c.errorf(p+".websocket_idle_timeout", "must be at least 10ms, got %s", out.WebSocketIdleTimeout)
	}
	for _, u := range upstreams {
		if !r.GRPC || u.Name != r.Upstream || u.H2C {
			continue
		}
		for _, t := range u.Targets {
			if t.URL.Scheme == "http" {
				c.errorf(p+".grpc", "gRPC needs HTTP/2 to the upstream: set h2c on upstream %q or use https targets", r.Upstream)
				break
			}
		}
	}
	return out
}

func (c *checker) headerEdits(h *HeaderEdits, p string) HeaderEditsConfig {
	var out HeaderEditsConfig
	if h == nil {
		return out
	}
	for i, name := range h.Remove {
		if !methodToken.MatchString(name) {
			c.errorf(fmt.Sprintf("%s.remove[%d]", p, i), "must be a header name, got %q", name)
			continue
		}
		out.Remove = append(out.Remove, http.CanonicalHeaderKey(name))
	}
	out.Set = c.headerPairs(h.Set, p+".set")
	out.Add = c.headerPairs(h.Add, p+".add")
	return out
}

func (c *checker) headerPairs(m map[string]string, p string) [][2]string {
	var out [][2]string
	for name, v := range m {
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !methodToken.MatchString(name):
			c.errorf(p+"."+name, "must be a header name")
		case hopHeaders[canon]:
			c.errorf(p+"."+name, "is managed by the proxy and cannot be set by a route")
		case strings.ContainsAny(v, "\r\n\x00"):
			c.errorf(p+"."+name, "value must not contain line breaks or NUL")
		default:
			out = append(out, [2]string{canon, v})
		}
	}
	// Sorted so that equal configurations resolve equally (maps are unordered).
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j][0] < out[j-1][0]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (c *checker) routeCache(rc *RouteCache, p string) *CacheConfig {
	if rc == nil || !rc.Enabled {
		return nil
	}
	out := &CacheConfig{
		MaxSize:        sizeOr(rc.MaxSize, 64<<20),
		MaxObjectSize:  sizeOr(rc.MaxObjectSize, 0),
		IgnoreCookies:  rc.IgnoreCookies,
		StoreSetCookie: rc.StoreSetCookie,
		StaleIfError:   durationOr(rc.StaleIfError, 0),
	}
	sizeOK := out.MaxSize >= 64<<10 && out.MaxSize <= 64<<30
	if !sizeOK {
		c.errorf(p+".max_size", "must be between 64KiB and 64GiB, got %d", out.MaxSize)
	}
	if rc.MaxObjectSize == nil {
		out.MaxObjectSize = min(1<<20, out.MaxSize/2)
	}
	switch {
	case !sizeOK:
	case out.MaxObjectSize < 1:
		c.errorf(p+".max_object_size", "must be at least 1 byte")
	case out.MaxObjectSize > out.MaxSize/2:
		c.errorf(p+".max_object_size", "must be at most half of max_size (%d), got %d", out.MaxSize, out.MaxObjectSize)
	}
	for i, h := range rc.ForwardHeaders {
		canon := http.CanonicalHeaderKey(h)
		switch {
		case !methodToken.MatchString(h):
			c.errorf(fmt.Sprintf("%s.forward_headers[%d]", p, i), "must be a header name, got %q", h)
		case canon == "Cookie":
			c.errorf(fmt.Sprintf("%s.forward_headers[%d]", p, i), "Cookie cannot be forwarded on a cached route: it would let one user's response be served to another")
		case strings.HasPrefix(canon, "If-") || canon == "Range" || canon == "Cache-Control":
			c.errorf(fmt.Sprintf("%s.forward_headers[%d]", p, i), "%s cannot be forwarded on a cached route: conditional, partial and cache-directive requests are the cache's to answer, and a fill must ask for the whole current response", canon)
		default:
			out.ForwardHeaders = append(out.ForwardHeaders, canon)
		}
	}
	return out
}
