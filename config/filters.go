package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ClientIPConfig is the resolved client_ip section.
type ClientIPConfig struct {
	Trusted []netip.Prefix
	Header  string // x-forwarded-for or forwarded
}

// List actions.
const (
	ListAllow = "allow"
	ListDeny  = "deny"
)

// ListConfig is a resolved IP list.
type ListConfig struct {
	Name      string
	Action    string
	Inline    []string
	File      string
	URL       string
	Refresh   time.Duration
	MaxShrink float64
}

// GeoIPConfig names the GeoIP databases ("" when not configured).
type GeoIPConfig struct {
	CountryDB string
	ASNDB     string
}

// BansConfig is the resolved bans section.
type BansConfig struct {
	Enabled     bool
	Threshold   int
	Window      time.Duration
	Duration    time.Duration
	StatusCodes []int
	StateFile   string
	MaxEntries  int
}

// FiltersConfig are a site's resolved cheap checks.
type FiltersConfig struct {
	AllowLists    []string
	DenyLists     []string
	AllowSkipsWAF bool
	CountryAllow  []string
	CountryDeny   []string
	DenyASNs      []uint
	// DenyListsAction and GeoIPAction are ActionBlock or ActionChallenge.
	DenyListsAction string
	GeoIPAction     string
}

// Answers of a filter hit (rate limits, deny lists, GeoIP rules).
const (
	ActionBlock     = "block"
	ActionChallenge = "challenge"
)

// Rate limit keys.
const (
	KeyIP      = "ip"
	KeyIPRoute = "ip_route"
	KeyHeader  = "header"
)

// RateLimitConfig is one resolved rate limit.
type RateLimitConfig struct {
	Name       string
	Rate       float64
	Burst      int
	Key        string
	Header     string
	IPv6Prefix int
	MaxKeys    int
	// Action is ActionBlock or ActionChallenge; with ActionChallenge,
	// CeilingRate and CeilingBurst are the budget of a client with a pass.
	Action       string
	CeilingRate  float64
	CeilingBurst int
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

func (c *checker) resolveClientIP(f *File, cfg *Config) {
	cfg.ClientIP = ClientIPConfig{Header: "x-forwarded-for"}
	switch h := strings.ToLower(f.ClientIP.Header); h {
	case "", "x-forwarded-for":
	case "forwarded":
		cfg.ClientIP.Header = h
	default:
		c.errorf("client_ip.header", "must be x-forwarded-for or forwarded, got %q", f.ClientIP.Header)
	}
	for i, s := range f.ClientIP.TrustedProxies {
		p, err := parsePrefix(s)
		if err != nil {
			c.errorf(fmt.Sprintf("client_ip.trusted_proxies[%d]", i), "%v", err)
			continue
		}
		cfg.ClientIP.Trusted = append(cfg.ClientIP.Trusted, p)
	}
	for i, l := range f.Listeners {
		if l.ProxyProtocol && len(cfg.ClientIP.Trusted) == 0 {
			c.errorf(fmt.Sprintf("listeners[%d].proxy_protocol", i), "needs client_ip.trusted_proxies: the PROXY header is only believed from them")
		}
	}
}

// parsePrefix accepts a CIDR or a bare IP (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("must be an IP or CIDR, got %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("must be an IP or CIDR, got %q", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (c *checker) resolveReputation(f *File, cfg *Config) map[string]string {
	actions := map[string]string{}
	for i, l := range f.Reputation.Lists {
		p := fmt.Sprintf("reputation.lists[%d]", i)
		lc := ListConfig{Name: l.Name, Action: l.Action, Inline: l.Inline, URL: l.URL,
			Refresh: durationOr(l.Refresh, time.Hour), MaxShrink: 0.5}
		switch {
		case l.Name == "":
			c.errorf(p+".name", "is required")
		case actions[l.Name] != "":
			c.errorf(p+".name", "duplicate list name %q", l.Name)
		}
		if l.Action != ListAllow && l.Action != ListDeny {
			c.errorf(p+".action", "must be allow or deny, got %q", l.Action)
		}
		actions[l.Name] = l.Action
		if len(l.Inline) == 0 && l.File == "" && l.URL == "" {
			c.errorf(p, "give inline entries, a file or a url")
		}
		for j, e := range l.Inline {
			if _, err := parsePrefix(e); err != nil {
				c.errorf(fmt.Sprintf("%s.inline[%d]", p, j), "%v", err)
			}
		}
		if l.File != "" {
			lc.File = c.relative(l.File)
			if _, err := os.Stat(lc.File); err != nil {
				c.errorf(p+".file", "%v", err)
			}
		}
		if l.URL != "" {
			if _, err := parseHTTPURL(l.URL, "http", "https"); err != nil {
				c.errorf(p+".url", "%v", err)
			}
		}
		if lc.Refresh < time.Second {
			c.errorf(p+".refresh", "must be at least 1s, got %s", lc.Refresh)
		}
		if l.MaxShrink != nil {
			if *l.MaxShrink <= 0 || *l.MaxShrink > 1 {
				c.errorf(p+".max_shrink", "must be more than 0 and at most 1 (1 accepts any shrink), got %v", *l.MaxShrink)
			}
			lc.MaxShrink = *l.MaxShrink
		}
		cfg.Lists = append(cfg.Lists, lc)
	}
	for field, path := range map[string]*string{"country_db": &cfg.GeoIP.CountryDB, "asn_db": &cfg.GeoIP.ASNDB} {
		src := f.Reputation.GeoIP.CountryDB
		if field == "asn_db" {
			src = f.Reputation.GeoIP.ASNDB
		}
		if src == "" {
			continue
		}
		*path = c.relative(src)
		if _, err := os.Stat(*path); err != nil {
			c.errorf("reputation.geoip."+field, "%v", err)
		}
	}
	return actions
}

// siteFilters resolves a site's filters against the defined lists.
func (c *checker) siteFilters(fl *Filters, p string, actions map[string]string, geo GeoIPConfig) FiltersConfig {
	out := FiltersConfig{DenyListsAction: ActionBlock, GeoIPAction: ActionBlock}
	if fl == nil {
		return out
	}
	out.DenyListsAction = c.filterAction(fl.DenyListsAction, p+".deny_lists_action")
	out.GeoIPAction = c.filterAction(fl.GeoIPAction, p+".geoip_action")
	if out.DenyListsAction == ActionChallenge && len(fl.DenyLists) == 0 {
		c.errorf(p+".deny_lists_action", "challenge needs deny_lists to answer")
	}
	if out.GeoIPAction == ActionChallenge && fl.Countries == nil && len(fl.DenyASNs) == 0 {
		c.errorf(p+".geoip_action", "challenge needs countries or deny_asns to answer")
	}
	out.AllowSkipsWAF = fl.AllowSkipsWAF
	check := func(names []string, field, want string) []string {
		for i, n := range names {
			switch actions[n] {
			case "":
				c.errorf(fmt.Sprintf("%s.%s[%d]", p, field, i), "unknown list %q", n)
			case want:
			default:
				c.errorf(fmt.Sprintf("%s.%s[%d]", p, field, i), "list %q is a %s list", n, actions[n])
			}
		}
		return names
	}
	out.AllowLists = check(fl.AllowLists, "allow_lists", ListAllow)
	out.DenyLists = check(fl.DenyLists, "deny_lists", ListDeny)
	if cr := fl.Countries; cr != nil {
		if geo.CountryDB == "" {
			c.errorf(p+".countries", "needs reputation.geoip.country_db")
		}
		if len(cr.Allow) > 0 && len(cr.Deny) > 0 {
			c.errorf(p+".countries", "give allow or deny, not both")
		}
		for field, list := range map[string][]string{"allow": cr.Allow, "deny": cr.Deny} {
			for i, code := range list {
				code = strings.ToUpper(strings.TrimSpace(code))
				if !countryCode.MatchString(code) {
					c.errorf(fmt.Sprintf("%s.countries.%s[%d]", p, field, i), "must be an ISO 3166 country code like DE, got %q", list[i])
					continue
				}
				if field == "allow" {
					out.CountryAllow = append(out.CountryAllow, code)
				} else {
					out.CountryDeny = append(out.CountryDeny, code)
				}
			}
		}
	}
	if len(fl.DenyASNs) > 0 && geo.ASNDB == "" {
		c.errorf(p+".deny_asns", "needs reputation.geoip.asn_db")
	}
	for i, asn := range fl.DenyASNs {
		if asn <= 0 || int64(asn) > 4294967295 {
			c.errorf(fmt.Sprintf("%s.deny_asns[%d]", p, i), "must be an AS number, got %d", asn)
			continue
		}
		out.DenyASNs = append(out.DenyASNs, uint(asn))
	}
	return out
}

func (c *checker) rateLimits(rls []RateLimit, p string) []RateLimitConfig {
	var out []RateLimitConfig
	for i, rl := range rls {
		ip := fmt.Sprintf("%s[%d]", p, i)
		rc := RateLimitConfig{Name: rl.Name, Rate: rl.Rate, Burst: intOr(rl.Burst, 1), Key: rl.Key, Header: rl.Header,
			IPv6Prefix: intOr(rl.IPv6Prefix, 64), MaxKeys: intOr(rl.MaxKeys, 100000)}
		if rc.Name == "" {
			rc.Name = ip
		}
		if rc.Rate <= 0 {
			c.errorf(ip+".rate", "must be a positive number of requests per second, got %v", rl.Rate)
		}
		if rc.Burst < 1 || rc.Burst > 1000000 {
			c.errorf(ip+".burst", "must be 1..1000000, got %d", rc.Burst)
		}
		switch rc.Key {
		case "":
			rc.Key = KeyIP
		case KeyIP, KeyIPRoute:
		case KeyHeader:
			if !methodToken.MatchString(rc.Header) {
				c.errorf(ip+".header", "key: header needs a header name, got %q", rc.Header)
			}
		default:
			c.errorf(ip+".key", "must be ip, ip_route or header, got %q", rl.Key)
		}
		if rc.IPv6Prefix < 1 || rc.IPv6Prefix > 128 {
			c.errorf(ip+".ipv6_prefix", "must be 1..128, got %d", rc.IPv6Prefix)
		}
		if rc.MaxKeys < 1 || rc.MaxKeys > 100000000 {
			c.errorf(ip+".max_keys", "must be 1..100000000, got %d", rc.MaxKeys)
		}
		rc.Action = c.filterAction(rl.Action, ip+".action")
		switch {
		case rc.Action != ActionChallenge && rl.Ceiling != nil:
			c.errorf(ip+".ceiling", "applies only with action: challenge (the budget of a client that solved it)")
		case rc.Action == ActionChallenge && rl.Ceiling == nil:
			rc.CeilingRate, rc.CeilingBurst = 10*rc.Rate, min(10*rc.Burst, 10000000)
		case rc.Action == ActionChallenge:
			rc.CeilingRate, rc.CeilingBurst = rl.Ceiling.Rate, intOr(rl.Ceiling.Burst, min(10*rc.Burst, 10000000))
			if rc.CeilingRate < rc.Rate || rc.CeilingRate <= 0 {
				c.errorf(ip+".ceiling.rate", "must be at least the limit's rate (%v): a solved challenge must not leave a client less than it had, got %v", rc.Rate, rl.Ceiling.Rate)
			}
			if rc.CeilingBurst < rc.Burst || rc.CeilingBurst > 10000000 {
				c.errorf(ip+".ceiling.burst", "must be at least the limit's burst (%d) and at most 10000000, got %d", rc.Burst, rc.CeilingBurst)
			}
		}
		out = append(out, rc)
	}
	return out
}

// filterAction resolves the answer of a filter hit: block (default) or
// challenge.
func (c *checker) filterAction(a, path string) string {
	switch a {
	case "", ActionBlock:
		return ActionBlock
	case ActionChallenge:
		return ActionChallenge
	}
	c.errorf(path, "must be block or challenge, got %q", a)
	return ActionBlock
}

func (c *checker) resolveBans(f *File, cfg *Config) {
	b := f.Bans
	cfg.Bans = BansConfig{
		Enabled:     b.Enabled,
		Threshold:   intOr(b.Threshold, 10),
		Window:      durationOr(b.Window, time.Minute),
		Duration:    durationOr(b.Duration, 10*time.Minute),
		StatusCodes: b.StatusCodes,
		StateFile:   b.StateFile,
		MaxEntries:  intOr(b.MaxEntries, 100000),
	}
	if cfg.Bans.StateFile == "" {
		cfg.Bans.StateFile = filepath.Join(cfg.TLS.StateDir, "bans.json")
	} else {
		cfg.Bans.StateFile = c.relative(cfg.Bans.StateFile)
	}
	if cfg.Bans.Threshold < 1 || cfg.Bans.Threshold > 1000 {
		c.errorf("bans.threshold", "must be 1..1000, got %d", cfg.Bans.Threshold)
	}
	if cfg.Bans.Window <= 0 {
		c.errorf("bans.window", "must be positive")
	}
	if cfg.Bans.Duration <= 0 {
		c.errorf("bans.duration", "must be positive")
	}
	for i, code := range cfg.Bans.StatusCodes {
		if code < 100 || code > 599 {
			c.errorf(fmt.Sprintf("bans.status_codes[%d]", i), "must be an HTTP status code, got %d", code)
		}
	}
	if cfg.Bans.MaxEntries < 1 {
		c.errorf("bans.max_entries", "must be at least 1, got %d", cfg.Bans.MaxEntries)
	}
}
