// Package config parses and validates Portcullis's YAML configuration into
// immutable values.
//
// Place in the request path: none at run time. config runs before anything
// listens (and again on reload): Load reads the file, reports every problem at
// once with file:line and the field path, and returns a *Config that nothing
// mutates afterwards. gateway builds the pipeline from it.
//
// The types in this file mirror the YAML document. Every field documents its
// default and, where it matters, its security consequence. Resolved values
// (defaults applied, overrides merged, files read) are in resolved.go.
package config

// File is the YAML document.
type File struct {
	// Listeners are the addresses that accept client traffic.
	// Default: ":8080" (http); with any tls site, ":80" (http) and ":443" (https).
	Listeners []Listener `yaml:"listeners"`
	// Server holds limits that protect every listener from slow or oversized clients.
	Server Server `yaml:"server"`
	// Upstreams are named pools of servers that routes forward to.
	Upstreams []Upstream `yaml:"upstreams"`
	// Sites match requests by Host header and route them. At least one is required.
	Sites []Site `yaml:"sites"`
	// WAF holds the defaults for every site; sites and routes override fields.
	WAF WAF `yaml:"waf"`
	// Audit configures the audit records.
	Audit Audit `yaml:"audit"`
	// TLS holds settings shared by every site with a certificate.
	TLS TLS `yaml:"tls"`
	// ClientIP decides which address is the client's.
	ClientIP ClientIP `yaml:"client_ip"`
	// Reputation holds IP allow and deny lists and the GeoIP databases.
	Reputation Reputation `yaml:"reputation"`
	// Bans configures automatic bans of misbehaving clients.
	Bans Bans `yaml:"bans"`
	// Admin is the operator's listener (dashboard, API). Default: off.
	Admin *Admin `yaml:"admin"`
	// Log configures Portcullis's own log.
	Log Log `yaml:"log"`
	// Alerts sends webhooks about incidents. Default: off.
	Alerts *Alerts `yaml:"alerts"`
	// Cluster shares state between instances (Redis). Default: off.
	Cluster *Cluster `yaml:"cluster"`
	// CrowdSec connects to a CrowdSec Local API: its decisions become
	// bans, and Portcullis's blocks become CrowdSec alerts. Default: off.
	CrowdSec *CrowdSec `yaml:"crowdsec"`
	// Challenge configures the JavaScript proof-of-work challenge that
	// routes with challenge: true answer with. Default: 16 bits, passes
	// valid 1h, a random key per start.
	Challenge *Challenge `yaml:"challenge"`
	// BlockPages are the refusal page templates of every site that sets
	// none of its own. Default: the built-in neutral page.
	BlockPages *BlockPages `yaml:"block_pages"`
}

// ClientIP configures the real client address.
type ClientIP struct {
	// TrustedProxies are the CIDRs (or IPs) of proxies and load balancers in
	// front of Portcullis. Only a peer in this list may tell the client
	// address through the header below or the PROXY protocol.
	// Default: none — every header claim is ignored, the TCP peer is the client.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Header is x-forwarded-for (default) or forwarded (RFC 7239).
	Header string `yaml:"header"`
}

// Reputation holds IP lists and GeoIP databases.
type Reputation struct {
	// Lists are allow and deny lists; a site names the ones it uses.
	Lists []IPList `yaml:"lists"`
	// GeoIP databases (MaxMind or DB-IP .mmdb). When set, every audit record
	// carries the client's country and ASN.
	GeoIP GeoIP `yaml:"geoip"`
}

// IPList is a named list of IPs and CIDRs from inline entries, a file
// and/or a feed URL (one entry per line, # and ; comments: FireHOL .netset,
// Spamhaus DROP).
type IPList struct {
	// Name identifies the list in sites and audit records. Required.
	Name string `yaml:"name"`
	// Action is deny (refuse with 403) or allow (skip every filter and ban;
	// see sites[].filters.allow_skips_waf). Required.
	Action string `yaml:"action"`
	// Inline entries.
	Inline []string `yaml:"inline"`
	// File is a local list, reloaded when it changes.
	File string `yaml:"file"`
	// URL is a feed fetched with conditional requests every Refresh.
	URL string `yaml:"url"`
	// Refresh is how often File and URL are checked. Default: 1h.
	Refresh *Duration `yaml:"refresh"`
	// MaxShrink rejects a refresh whose size falls by more than this
	// fraction of the last good list (a truncated download). Default: 0.5.
	MaxShrink *float64 `yaml:"max_shrink"`
}

// GeoIP names the databases.
type GeoIP struct {
	// CountryDB is a Country or City database (GeoLite2-Country.mmdb).
	CountryDB string `yaml:"country_db"`
	// ASNDB is an ASN database (GeoLite2-ASN.mmdb).
	ASNDB string `yaml:"asn_db"`
}

// Bans configures automatic bans ("bad behaviour").
type Bans struct {
	// Enabled turns automatic bans on. Default: false.
	Enabled bool `yaml:"enabled"`
	// Threshold is how many strikes (WAF blocks, or responses with one of
	// StatusCodes) within Window ban a client. Default: 10.
	Threshold *int `yaml:"threshold"`
	// Window is the time the strikes must fall in. Default: 1m.
	Window *Duration `yaml:"window"`
	// Duration is how long a ban lasts. Default: 10m.
	Duration *Duration `yaml:"duration"`
	// StatusCodes also count as strikes, e.g. [404] against scanners.
	// Default: none (only WAF blocks count).
	StatusCodes []int `yaml:"status_codes"`
	// StateFile keeps bans across restarts; `portcullis bans` edits it.
	// Default: <tls.state_dir>/bans.json.
	StateFile string `yaml:"state_file"`
	// MaxEntries bounds the number of bans. Default: 100000.
	MaxEntries *int `yaml:"max_entries"`
}

// Filters are a site's cheap checks before the rule engine.
type Filters struct {
	// AllowLists name allow lists: a client on one skips deny lists,
	// GeoIP rules, rate limits and bans.
	AllowLists []string `yaml:"allow_lists"`
	// AllowSkipsWAF lets allow-listed clients skip the rule engine too.
	// Default: false.
	AllowSkipsWAF bool `yaml:"allow_skips_waf"`
	// DenyLists name deny lists: a client on one gets 403.
	DenyLists []string `yaml:"deny_lists"`
	// DenyListsAction is what a client on a deny list gets: block (403,
	// default) or challenge (the proof-of-work page, 403; once solved, its
	// pass lets the client past the deny lists until it expires).
	DenyListsAction string `yaml:"deny_lists_action"`
	// Countries allow or deny ISO country codes (needs reputation.geoip).
	// With an allow list, clients from unknown countries are refused.
	Countries *CountryRules `yaml:"countries"`
	// DenyASNs refuses clients from these autonomous systems.
	DenyASNs []int `yaml:"deny_asns"`
	// GeoIPAction is what a client refused by countries or deny_asns gets:
	// block (403, default) or challenge (as deny_lists_action).
	GeoIPAction string `yaml:"geoip_action"`
	// RateLimits apply to every route of the site (routes add their own).
	RateLimits []RateLimit `yaml:"rate_limits"`
}

// CountryRules allow or deny countries.
type CountryRules struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

// RateLimit is one limit: Rate requests per second with a Burst, per key.
type RateLimit struct {
	// Name labels the limit in audit records. Default: its index.
	Name string `yaml:"name"`
	// Rate is requests per second (0.5 = one every two seconds). Required.
	Rate float64 `yaml:"rate"`
	// Burst is how many requests may come at once. Default: 1.
	Burst *int `yaml:"burst"`
	// Key is ip (default), ip_route (per client and route) or header.
	Key string `yaml:"key"`
	// Header names the request header for key: header (e.g. X-Api-Key).
	Header string `yaml:"header"`
	// IPv6Prefix groups IPv6 clients by this prefix length. Default: 64.
	IPv6Prefix *int `yaml:"ipv6_prefix"`
	// MaxKeys bounds the tracked keys. Default: 100000.
	MaxKeys *int `yaml:"max_keys"`
	// Action is what a request over the limit gets: block (429, default)
	// or challenge (the proof-of-work page, 429). A client that solved the
	// challenge is let past this limit for its pass's lifetime: its
	// requests count against Ceiling instead.
	Action string `yaml:"action"`
	// Ceiling is the budget of a client with a solved challenge (action:
	// challenge only), per the same key: over it, 429 whatever the pass, so
	// that a solved pass cannot carry a flood. Default: 10 times rate and
	// burst.
	Ceiling *RateCeiling `yaml:"ceiling"`
}

// RateCeiling is the hard limit of a rate limit with action: challenge.
type RateCeiling struct {
	// Rate is requests per second; at least the limit's rate. Required.
	Rate float64 `yaml:"rate"`
	// Burst is how many at once; at least the limit's burst. Default: 10
	// times the limit's burst.
	Burst *int `yaml:"burst"`
}

// TLS holds global TLS settings.
type TLS struct {
	// Policy is intermediate (TLS 1.2 and 1.3, Mozilla's intermediate
	// suites) or modern (TLS 1.3 only). Default: intermediate.
	Policy string `yaml:"policy"`
	// StateDir keeps the ACME account, ACME certificates and self-signed
	// certificates (created 0700, keys 0600), and by default the ban state
	// and the audit database. Default: $PORTCULLIS_STATE_DIR when set, else
	// portcullis-state beside the configuration file. Like every path in
	// the file, a relative one is relative to the file's directory.
	StateDir string `yaml:"state_dir"`
	// DefaultHost names the site host whose certificate answers a handshake
	// for an unknown server name. Default: none (such handshakes fail).
	DefaultHost string `yaml:"default_host"`
	// ACME holds the defaults of every site with certificate: acme.
	ACME ACME `yaml:"acme"`
}

// ACME configures the certificate authority of acme sites.
type ACME struct {
	// Directory is the CA's directory URL. Default: Let's Encrypt
	// production, https://acme-v02.api.letsencrypt.org/directory. Staging:
	// https://acme-staging-v02.api.letsencrypt.org/directory.
	Directory string `yaml:"directory"`
	// Email is the account contact; Let's Encrypt uses it for expiry
	// notices, ZeroSSL requires it.
	Email string `yaml:"email"`
	// AcceptTerms must be true: registering accepts the CA's terms.
	AcceptTerms bool `yaml:"accept_terms"`
	// EABKeyID and EABHMACKey are the External Account Binding credentials
	// (ZeroSSL, many private CAs), as the CA hands them out.
	EABKeyID   string `yaml:"eab_key_id"`
	EABHMACKey string `yaml:"eab_hmac_key" secret:"value"`
	// CARoots is a PEM file of roots that sign the CA's own HTTPS
	// certificate (a private ACME server). Default: the system roots.
	CARoots string `yaml:"ca_roots"`
	// KeyType is ecdsa-p256 (default) or rsa-2048.
	KeyType string `yaml:"key_type"`
	// RenewBefore is how long before expiry to renew. Default: a third of
	// the lifetime, at most 30 days (30 days for Let's Encrypt's 90).
	RenewBefore *Duration `yaml:"renew_before"`
	// Challenges in order of preference: tls-alpn-01 (needs :443),
	// http-01 (needs :80) and dns-01 (needs dns01). Default: tls-alpn-01
	// then http-01; with dns01 set, dns-01 alone.
	Challenges []string `yaml:"challenges"`
	// DNS01 publishes DNS-01 challenge records (see DNS01 in tls.go);
	// required for wildcard site hosts.
	DNS01 *DNS01 `yaml:"dns01"`
	// StorageKeyFile and StorageKeyEnv (one of them) hold the key that
	// encrypts ACME keys and certificates kept in shared cluster storage
	// (see ACMESettings.StorageKey).
	StorageKeyFile string `yaml:"storage_key_file"`
	StorageKeyEnv  string `yaml:"storage_key_env"`
}

// SiteTLS is a site's certificate source.
type SiteTLS struct {
	// Certificate is acme, files or self-signed. Required.
	Certificate string `yaml:"certificate"`
	// CertFile and KeyFile are PEM files (certificate: files), relative to
	// the config file. They are reloaded when they change on disk.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// RedirectHTTP answers plain HTTP requests for this site with a 308 to
	// HTTPS (ACME HTTP-01 challenges still answer). Default: true.
	RedirectHTTP *bool `yaml:"redirect_http"`
	// HSTS sends Strict-Transport-Security on HTTPS responses.
	HSTS *HSTS `yaml:"hsts"`
}

// HSTS configures the Strict-Transport-Security header.
type HSTS struct {
	// MaxAge is how long browsers remember to use HTTPS only, e.g. 8760h.
	// Required when hsts is set.
	MaxAge *Duration `yaml:"max_age"`
	// IncludeSubdomains extends it to every subdomain.
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload asks to be in browsers' preload lists (needs a max age of a
	// year and include_subdomains).
	Preload bool `yaml:"preload"`
}

// Listener is one address accepting client traffic.
type Listener struct {
	// Name labels the listener in logs. Default: the address.
	Name string `yaml:"name"`
	// Address is host:port. ":8080" listens on every interface; use
	// "127.0.0.1:8080" to accept only local clients. Required.
	Address string `yaml:"address"`
	// Protocol is http (default) or https. An https listener serves the
	// sites that have tls settings; an http listener answers ACME HTTP-01
	// challenges and redirects those sites to HTTPS.
	Protocol string `yaml:"protocol"`
	// ProxyProtocol accepts the PROXY protocol (v1/v2) from
	// client_ip.trusted_proxies. Default: false.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// HTTP3 serves HTTP/3 (QUIC) on the UDP port of the same number as
	// this https listener, through the same pipeline and audit, and
	// advertises it to HTTP/1.1 and HTTP/2 clients with Alt-Svc. Only for
	// https listeners; it cannot be combined with proxy_protocol (UDP
	// carries no PROXY header: every client would have the balancer's
	// address). Open the UDP port in the firewall too. Default: true on
	// https listeners without proxy_protocol.
	HTTP3 *bool `yaml:"http3"`
}

// Server holds per-connection limits.
type Server struct {
	// ReadHeaderTimeout bounds how long a client may take to send the request
	// head (slowloris defence). Default: 10s.
	ReadHeaderTimeout *Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request including the body.
	// Default: 60s. 0 disables it (not recommended on public listeners).
	ReadTimeout *Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing the whole response. Default: 0 (none), so
	// long downloads and streams are not cut; send_timeout still cuts a
	// client that stops reading.
	WriteTimeout *Duration `yaml:"write_timeout"`
	// SendTimeout bounds each write of a response to the client (HTTP/1,
	// and each HTTP/2 stream): a client that takes longer to accept one
	// write (up to 32 KiB) is cut, and the upstream connection it held is
	// released. It is measured per write, not for the whole response, as
	// nginx's send_timeout. Default: 60s. 0 disables it.
	SendTimeout *Duration `yaml:"send_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default: 120s.
	IdleTimeout *Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request line plus headers. Default: 64KiB.
	MaxHeaderBytes *ByteSize `yaml:"max_header_bytes"`
	// ShutdownGrace is how long in-flight requests may run after a stop
	// signal. Default: 30s.
	ShutdownGrace *Duration `yaml:"shutdown_grace"`
	// WatchConfig reloads the configuration when its file changes (checked
	// every 2 s), as SIGHUP and `portcullis reload` do. Default: false.
	WatchConfig bool `yaml:"watch_config"`
	// Inspections bounds how many requests are inside the rule engine at
	// once, process-wide; every phase takes a slot. Inspection is CPU work:
	// running more at once than there are cores adds memory (every
	// transaction in flight holds its variables and transformation cache)
	// and latency, not throughput. New requests wait, with bodies up to
	// 128 KiB already read, before their transaction is created; work for
	// transactions in flight goes first. Default: 0, twice the CPUs Go uses
	// (at least 4).
	Inspections *int `yaml:"inspections"`
	// InspectionWait is how long a request may wait for an inspection slot
	// before it is answered 503 (and audited). Default: 10s.
	InspectionWait *Duration `yaml:"inspection_wait"`
	// MemoryLimit is a soft limit on the memory of the Go runtime (heap,
	// stacks and runtime data), as GOMEMLIMIT: the garbage collector runs
	// more often as the process nears it, and memory freed after a burst
	// is returned to the system. It is not a hard cap. Default: 0,
	// automatic (see DefaultMemoryLimit); GOMEMLIMIT from the environment
	// wins over the automatic value.
	MemoryLimit *ByteSize `yaml:"memory_limit"`
	// ClientConnections bounds the open connections of one client address
	// (IPv6: one /64). Further connections are closed at accept, before
	// any byte is read, and counted. Trusted proxies are not limited as
	// one client; behind the PROXY protocol the header's address is the
	// client. Default: 128. 0 disables it.
	ClientConnections *int `yaml:"client_connections"`
	// ClientConnectionRate bounds new connections per second of one client
	// address, with ClientConnectionBurst at once; further connections are
	// closed at accept and counted. It bounds reconnect floods (a client
	// that a per-connection limit cut off and that comes straight back).
	// Default: 50 per second, burst 200. 0 disables it.
	ClientConnectionRate  *float64 `yaml:"client_connection_rate"`
	ClientConnectionBurst *int     `yaml:"client_connection_burst"`
	// ClientRequests bounds the requests one client address (as decided by
	// client_ip) has in flight at once, waiting for inspection included.
	// Further requests get 429 and an audit record. Default: 128. 0
	// disables it.
	ClientRequests *int `yaml:"client_requests"`
	// DescriptorReserve is how many file descriptors stay free for upstream
	// connections, audit files and the admin listener: while fewer are
	// left, the listeners stop accepting (new connections wait in the
	// kernel's backlog) and /readyz answers 503. Default: 0, automatic: a
	// quarter of RLIMIT_NOFILE, at least 64.
	DescriptorReserve *int `yaml:"descriptor_reserve"`
}

// Site is a set of host names with their routes.
type Site struct {
	// Name labels the site in audit records. Default: the first host name.
	Name string `yaml:"name"`
	// Hosts are exact host names (case-insensitive, port ignored), "*.example.com"
	// for one level of subdomain, or "*" for any host. Required.
	Hosts []string `yaml:"hosts"`
	// WAF overrides the top-level waf settings for this site.
	WAF *WAF `yaml:"waf"`
	// TLS gives the site a certificate, so it is served on https listeners.
	TLS *SiteTLS `yaml:"tls"`
	// Filters are the site's cheap checks before the rule engine.
	Filters *Filters `yaml:"filters"`
	// Routes map requests to upstreams; the most specific matching route
	// wins (see Route). At least one is required.
	Routes []Route `yaml:"routes"`
	// BlockPages replace the built-in refusal page for this site (see
	// BlockPages in blockpages.go). Default: the top-level block_pages.
	BlockPages *BlockPages `yaml:"block_pages"`
}

// Route forwards matching requests to an upstream.
//
// Which route answers: the site is chosen by Host (an exact name beats
// "*.domain", which beats "*"); then, within the site, the routes are tried
// from the most specific to the least and the first whose conditions all
// hold wins:
//  1. path_match: exact routes before prefix routes;
//  2. longer paths before shorter ones;
//  3. more conditions (path_regex, methods, each header, each query
//     parameter count one each) before fewer;
//  4. the order in the file.
//
// Paths are matched on the cleaned, decoded path ("/a/../b" is "/b"), the
// form the upstream will resolve; a prefix matches whole segments only.
// No matching route: 404.
type Route struct {
	// Path is a prefix starting with "/": "/api" matches "/api" and
	// "/api/x" but not "/apix"; "/api/" matches "/api/x". Required.
	Path string `yaml:"path"`
	// PathMatch is prefix (default) or exact (the path must equal Path).
	PathMatch string `yaml:"path_match"`
	// PathRegex, when set, must also match the cleaned path (RE2 syntax,
	// linear time; unanchored unless written with ^ and $).
	PathRegex string `yaml:"path_regex"`
	// Methods, when set, limit the route to these methods.
	Methods []string `yaml:"methods"`
	// Headers must all be present, and equal their value when one is given.
	Headers []MatchPair `yaml:"headers"`
	// Query parameters must all be present, and equal their value when one
	// is given.
	Query []MatchPair `yaml:"query"`
	// Upstream names an entry of upstreams. Required.
	Upstream string `yaml:"upstream"`
	// WAF overrides the site's WAF settings for this route.
	WAF *WAF `yaml:"waf"`
	// RateLimits add to the site's limits for this route.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// Timeout bounds the whole exchange with the upstream, response body
	// included; past it the client gets 504 (or a cut stream). Default:
	// none, so downloads and streams are not cut.
	Timeout *Duration `yaml:"timeout"`
	// ResponseHeaderTimeout overrides the upstream's for this route.
	ResponseHeaderTimeout *Duration `yaml:"response_header_timeout"`
	// MaxBodySize refuses request bodies larger than this with 413, however
	// they are sent. Default: no limit beyond waf.request_body.limit (which
	// bounds inspection, and refuses larger bodies unless inspect_partial).
	MaxBodySize *ByteSize `yaml:"max_body_size"`
	// RequestHeaders edit the request sent to the upstream.
	RequestHeaders *HeaderEdits `yaml:"request_headers"`
	// ResponseHeaders edit the response sent to the client.
	ResponseHeaders *HeaderEdits `yaml:"response_headers"`
	// GRPC marks a gRPC route: only gRPC requests (HTTP/2, Content-Type
	// application/grpc...) are accepted, the rule engine inspects their
	// headers but not their binary bodies (which stream in both directions),
	// and the grpc-timeout deadline bounds the upstream call. The upstream
	// must speak HTTP/2 (h2c or https). Default: false.
	GRPC bool `yaml:"grpc"`
	// WebSocketIdleTimeout closes an upgraded (WebSocket) connection after
	// this long without a byte in either direction. Default: 5m. WebSocket
	// needs HTTP/1.1 towards the upstream: not through an h2c upstream.
	WebSocketIdleTimeout *Duration `yaml:"websocket_idle_timeout"`
	// Cache stores responses of the route in memory. Default: off.
	Cache *RouteCache `yaml:"cache"`
	// Challenge answers requests without a valid pass with a JavaScript
	// proof-of-work page (see the top-level challenge block): browsers pass
	// within a second, clients without JavaScript never reach the upstream.
	// Not for APIs or gRPC. Default: false.
	Challenge bool `yaml:"challenge"`
}

// WAF holds rule-engine settings. At top level they are the defaults; in a site
// or route, each field that is set overrides the level above. Lists
// (rules_before, rules_after, exclusions, crs_variables) add to the level above
// instead of replacing it, so a site-wide exclusion also holds in its routes.
type WAF struct {
	// Mode is block (deny requests whose anomaly score reaches the threshold),
	// detect (inspect and audit, never deny) or off (no inspection).
	// Default: block.
	Mode *string `yaml:"mode"`
	// Profile chooses how requests are judged: portcullis (every value the
	// application uses is decoded and judged by Portcullis's parser-based
	// detectors; the CRS is not loaded unless crs is set to true) or
	// stock-crs (the unmodified OWASP CRS, anomaly scoring, as nginx +
	// ModSecurity run it). Custom rules and exclusions work in both.
	// Default: portcullis.
	Profile *string `yaml:"profile"`
	// DetectionThreshold is the detector confidence (1..100) that blocks
	// under the portcullis profile. Default: 70. Lowering it catches more
	// and refuses more ordinary requests.
	DetectionThreshold *int `yaml:"detection_threshold"`
	// CRS loads the OWASP Core Rule Set embedded in the binary. Default:
	// true under profile stock-crs, false under portcullis (where true adds
	// the CRS beside the detectors: either can block). Turning it off under
	// stock-crs leaves only your custom rules.
	CRS *bool `yaml:"crs"`
	// Paranoia is the CRS paranoia level 1..4. Higher levels catch more attacks
	// and produce more false positives. Default: 1.
	Paranoia *int `yaml:"paranoia"`
	// InboundThreshold is the request anomaly score that blocks. Default: 5
	// (one critical match). Raising it lets more attacks through.
	InboundThreshold *int `yaml:"inbound_threshold"`
	// OutboundThreshold is the response anomaly score that blocks (only with
	// response inspection). Default: 4.
	OutboundThreshold *int `yaml:"outbound_threshold"`
	// OnError is what happens when the rule engine itself fails: block
	// (answer 5xx) or pass (forward the request; every such record is marked
	// fail_open). Default: block. pass trades safety for availability.
	OnError *string `yaml:"on_error"`
	// RequestBody sets request body inspection limits.
	RequestBody *RequestBody `yaml:"request_body"`
	// ResponseInspection sets response body inspection.
	ResponseInspection *ResponseInspection `yaml:"response_inspection"`
	// CRSVariables set CRS transaction variables (crs-setup.conf's tx.*), e.g.
	// allowed_methods, restricted_extensions, max_num_args. Names are the part
	// after "tx."; values are used verbatim. Default: none (CRS defaults).
	CRSVariables map[string]string `yaml:"crs_variables"`
	// RulesBefore are custom SecLang rules loaded before the CRS.
	RulesBefore []RuleSource `yaml:"rules_before"`
	// RulesAfter are custom SecLang rules loaded after the CRS (exclusions by
	// SecRuleRemoveById belong here or in exclusions).
	RulesAfter []RuleSource `yaml:"rules_after"`
	// Exclusions remove rules, or one target of a rule, to fix false positives.
	Exclusions []Exclusion `yaml:"exclusions"`
	// CRSPlugins are CRS plugin directories (relative to the config file):
	// their *-config.conf files load after the CRS setup, *-before.conf
	// before the CRS rules and *-after.conf after them, as the CRS orders
	// plugins. Like the other lists they add to the level above. Needs
	// the CRS (crs: true). Default: none.
	CRSPlugins []string `yaml:"crs_plugins"`
}

// RequestBody sets how much of a request body is inspected.
type RequestBody struct {
	// Limit is the largest body inspected. Default: 13MiB (CRS's default).
	Limit *ByteSize `yaml:"limit"`
	// OverLimit is reject (answer 413, audited) or inspect_partial (inspect
	// the first Limit bytes and forward the whole body). Default: reject.
	// inspect_partial lets an attacker hide a payload past the limit.
	OverLimit *string `yaml:"over_limit"`
	// NoFilesLimit is the largest body the engine parses into variables:
	// forms, JSON, XML and other types (whose whole body becomes
	// REQUEST_BODY). Only multipart bodies, whose file parts go to disk,
	// may be larger, up to Limit; their fields (parts without a file name,
	// and every part's headers) count against it, and over it are refused
	// with 413 in both OverLimit modes. Parsed bodies cost memory and CPU
	// many times their size (every rule's transformations copy the values).
	// Otherwise OverLimit applies. Default: 1MiB, at most Limit.
	NoFilesLimit *ByteSize `yaml:"no_files_limit"`
}

// ResponseInspection sets response body inspection.
type ResponseInspection struct {
	// Enabled turns response inspection on (CRS 95x data-leakage rules).
	// Default: false. Responses of the listed types are buffered up to Limit.
	Enabled *bool `yaml:"enabled"`
	// MIMETypes are the response content types inspected.
	// Default: text/html, text/plain, text/xml, application/json.
	MIMETypes []string `yaml:"mime_types"`
	// Limit is the largest response body inspected; the rest streams through
	// uninspected. Default: 512KiB.
	Limit *ByteSize `yaml:"limit"`
}

// RuleSource is custom SecLang given inline or as a file. Exactly one is set.
type RuleSource struct {
	// Inline is SecLang text.
	Inline string `yaml:"inline"`
	// File is a path to a SecLang file, relative to the config file's directory.
	File string `yaml:"file"`
}

// Exclusion removes rules or rule targets. Scope: the site or route it is
// written in, further narrowed by PathPrefix and Methods.
type Exclusion struct {
	// RuleIDs are rule ids (e.g. 942100) or ranges ("942100-942199").
	RuleIDs []string `yaml:"rule_ids"`
	// Tags are rule tags (e.g. attack-sqli, paranoia-level/2).
	Tags []string `yaml:"tags"`
	// Detectors are Portcullis detectors (e.g. sqli, xss/js) whose findings
	// are ignored (profile portcullis).
	Detectors []string `yaml:"detectors"`
	// Classes are attack classes (e.g. sqli, shell, traversal) whose
	// findings are ignored (profile portcullis).
	Classes []string `yaml:"classes"`
	// Target, when set, removes only this variable from the rules instead of
	// the whole rules, e.g. "ARGS:comment" or "REQUEST_COOKIES:session".
	// For detectors and classes it names the variable as the finding does
	// (ARGS:comment, JSON:user.bio, REQUEST_HEADERS:X-Note); a name ending
	// in "*" matches every variable it starts.
	Target string `yaml:"target"`
	// PathPrefix narrows the exclusion to request paths with this prefix.
	PathPrefix string `yaml:"path_prefix"`
	// ExactPath narrows the exclusion to this one request path (the path
	// as the rules see it: percent-decoded, without the query). Exclusive
	// with PathPrefix; "/" then means the root page only, where a
	// path_prefix of "/" would cover the whole site.
	ExactPath string `yaml:"exact_path"`
	// Methods narrows the exclusion to these request methods.
	Methods []string `yaml:"methods"`
	// Comment says why the exclusion exists; it is kept for reviewers.
	Comment string `yaml:"comment"`
}

// Audit configures audit records.
type Audit struct {
	// File is the JSON-lines audit file, created 0600. Relative to the
	// configuration file's directory. Default: portcullis-audit.jsonl beside
	// the configuration file, or in $PORTCULLIS_STATE_DIR when that is set.
	File *string `yaml:"file"`
	// RuleLog, when set, is a file of ModSecurity-style error-log lines, one per
	// matched rule (for fail2ban-style tools and the CRS test runner), relative
	// to the configuration file's directory. Default: off.
	RuleLog string `yaml:"rule_log"`
	// LogAll writes a record for every request, not only blocked, flagged
	// and failed ones. Default: false.
	LogAll bool `yaml:"log_all"`
	// QueueSize bounds records waiting to be written; overflow is dropped,
	// counted and logged. Default: 8192.
	QueueSize *int `yaml:"queue_size"`
	// RedactHeaders are extra request header names whose values are replaced
	// by "[redacted]". Authorization, Proxy-Authorization, Cookie and
	// Set-Cookie are always redacted.
	RedactHeaders []string `yaml:"redact_headers"`
	// RedactArgs are extra request argument names (query or form) whose
	// values are replaced by "[redacted]" in the record's URI and in rules'
	// matched data. Built in: password, passwd, pass, pwd, passphrase,
	// secret, client_secret, token, access_token, refresh_token, id_token,
	// api_key, apikey. Cookie values matched by rules are always redacted.
	RedactArgs []string `yaml:"redact_args"`
	// BodyLimit is how much of a blocked, flagged or sampled request's body
	// the record keeps (credential arguments redacted), so that
	// `portcullis audit replay` can judge it again. 0 keeps none.
	// Default: 64KiB.
	BodyLimit *ByteSize `yaml:"body_limit"`
	// SampleAllowed is the fraction of allowed requests recorded too (0.01
	// keeps 1%), so replay can show what a candidate config would newly
	// block. Default: 0.
	SampleAllowed *float64 `yaml:"sample_allowed"`
	// Store is the searchable audit database behind `portcullis audit` and
	// the dashboard.
	Store *AuditStore `yaml:"store"`
	// OnFailure is what happens while audit records cannot be written (a
	// full disk): serve keeps answering and counts every lost record
	// (metrics, /readyz text, one log line per 10s); refuse answers new
	// requests 503 until the audit writes again, and /readyz fails so a
	// load balancer sends traffic elsewhere. Default: serve. Security
	// consequence of serve: requests pass without a trace while the disk
	// is full; of refuse: a full disk takes the instance out of service.
	OnFailure string `yaml:"on_failure"`
	// Aggregate folds floods of near-identical blocked, flagged or failed
	// records from one source into counted summary records, so that
	// requests that are all refused cannot fill the disk.
	Aggregate *AuditAggregate `yaml:"aggregate"`
}

// AuditAggregate configures flood handling for decided records: per
// source (client address, or its IPv6 /64), site, route, stage, action,
// status, reason and rule ids, the first Samples records of each Window
// are kept in full and the rest counted into one summary record written
// when the window ends. Allowed records (log_all, sample_allowed) are never
// aggregated; the rule log gets every record.
type AuditAggregate struct {
	// Enabled turns aggregation on. Default: true.
	Enabled *bool `yaml:"enabled"`
	// Window is how long one key's window lasts, from its first record.
	// Default: 1m; 1s to 1h.
	Window *Duration `yaml:"window"`
	// Samples is how many records of one key are kept in full per window.
	// Default: 10; 1 to 10000.
	Samples *int `yaml:"samples"`
	// MaxKeys bounds the keys held at once (about 2 KiB of memory each);
	// past it, records are counted into catch-all summaries per stage,
	// action and status (marked overflow). Default: 10000; 1 to 1000000.
	MaxKeys *int `yaml:"max_keys"`
}
