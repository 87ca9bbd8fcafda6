package tlsmgr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIG algorithms accepted for RFC 2136 updates. HMAC-MD5 and HMAC-SHA1
// are refused: both are deprecated for TSIG (RFC 8945 section 6).
var tsigAlgorithms = map[string]string{
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// TSIGAlgorithms lists the accepted TSIG algorithm names, for messages.
const TSIGAlgorithms = "hmac-sha256, hmac-sha384 or hmac-sha512"

// RFC2136Config configures dynamic DNS updates (RFC 2136) signed with TSIG
// (RFC 8945), as BIND, Knot DNS and PowerDNS accept them.
type RFC2136Config struct {
	// Server is the primary that takes updates, "host:port"; a missing
	// port means 53. Required.
	Server string
	// Zone is the zone to update, e.g. "example.com". Default: found by
	// asking Server for the SOA of the record's name.
	Zone string
	// TSIGKey is the key's name as the server knows it. Required.
	TSIGKey string
	// TSIGAlgorithm is hmac-sha256 (default), hmac-sha384 or hmac-sha512.
	TSIGAlgorithm string
	// TSIGSecret is the key's secret, base64 as in the server's key
	// statement (tsig-keygen prints it). Required.
	TSIGSecret string
	// TTL of the TXT records. Default 60s.
	TTL time.Duration
	// Timeout bounds each exchange with the server. Default 10s.
	Timeout time.Duration
}

// RFC2136 is a DNSProvider that adds and removes TXT records through TSIG-
// signed dynamic updates over TCP.
type RFC2136 struct {
	cfg     RFC2136Config
	keyName string // FQDN
	alg     string
}

// NewRFC2136 checks cfg.
func NewRFC2136(cfg RFC2136Config) (*RFC2136, error) {
	if cfg.Server == "" {
		return nil, errors.New("rfc2136: server is required")
	}
	cfg.Server = withDefaultPort(cfg.Server)
	if cfg.TSIGKey == "" {
		return nil, errors.New("rfc2136: TSIG key name is required (updates are never sent unsigned)")
	}
	if cfg.TSIGAlgorithm == "" {
		cfg.TSIGAlgorithm = "hmac-sha256"
	}
	alg, ok := tsigAlgorithms[strings.ToLower(strings.TrimSuffix(cfg.TSIGAlgorithm, "."))]
	if !ok {
		return nil, fmt.Errorf("rfc2136: TSIG algorithm must be %s, got %q", TSIGAlgorithms, cfg.TSIGAlgorithm)
	}
	if _, err := ParseTSIGSecret(cfg.TSIGSecret); err != nil {
		return nil, fmt.Errorf("rfc2136: %w", err)
	}
	cfg.TSIGSecret = strings.TrimSpace(cfg.TSIGSecret)
	if cfg.TTL <= 0 {
		cfg.TTL = time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Zone != "" {
		cfg.Zone = dns.Fqdn(strings.ToLower(cfg.Zone))
		if _, ok := dns.IsDomainName(cfg.Zone); !ok {
			return nil, fmt.Errorf("rfc2136: zone %q is not a domain name", cfg.Zone)
		}
	}
	return &RFC2136{cfg: cfg, keyName: dns.Fqdn(strings.ToLower(cfg.TSIGKey)), alg: alg}, nil
}

// ParseTSIGSecret checks a TSIG secret (base64, as BIND's key statement
// and tsig-keygen write it) and returns its bytes.
func ParseTSIGSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("TSIG secret is empty")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("TSIG secret is not base64 (as tsig-keygen prints it)")
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("TSIG secret is %d bytes; use at least 16 (tsig-keygen makes 32)", len(b))
	}
	return b, nil
}

func (p *RFC2136) client() *dns.Client {
	return &dns.Client{Net: "tcp", Timeout: p.cfg.Timeout, TsigSecret: map[string]string{p.keyName: p.cfg.TSIGSecret}}
}

// zone returns the configured zone or asks the server for the SOA that
// covers fqdn.
func (p *RFC2136) zone(ctx context.Context, fqdn string) (string, error) {
	if p.cfg.Zone != "" {
		if !dns.IsSubDomain(p.cfg.Zone, fqdn) {
			return "", fmt.Errorf("rfc2136: %s is not in zone %s", fqdn, p.cfg.Zone)
		}
		return p.cfg.Zone, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(fqdn, dns.TypeSOA)
	m.RecursionDesired = false
	m.SetTsig(p.keyName, p.alg, 300, time.Now().Unix())
	in, _, err := p.client().ExchangeContext(ctx, m, p.cfg.Server)
	if err != nil {
		return "", fmt.Errorf("rfc2136: find the zone of %s at %s: %w", fqdn, p.cfg.Server, err)
	}
	for _, rr := range append(in.Answer, in.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, fqdn) {
			return strings.ToLower(soa.Hdr.Name), nil
		}
	}
	return "", fmt.Errorf("rfc2136: %s answered no SOA for %s (%s); set the zone", p.cfg.Server, fqdn, dns.RcodeToString[in.Rcode])
}

// Present implements DNSProvider.
func (p *RFC2136) Present(ctx context.Context, fqdn, value string) error {
	return p.update(ctx, fqdn, value, true)
}

// CleanUp implements DNSProvider.
func (p *RFC2136) CleanUp(ctx context.Context, fqdn, value string) error {
	return p.update(ctx, fqdn, value, false)
}

func (p *RFC2136) update(ctx context.Context, fqdn, value string, add bool) error {
	fqdn = dns.Fqdn(strings.ToLower(fqdn))
	zone, err := p.zone(ctx, fqdn)
	if err != nil {
		return err
	}
	rr := &dns.TXT{
		Hdr: dns.RR_Header{Name: fqdn, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(p.cfg.TTL / time.Second)},
		Txt: []string{value},
	}
	m := new(dns.Msg)
	m.SetUpdate(zone)
	what := "add"
	if add {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr}) // this value only: a parallel challenge's record stays
		what = "remove"
	}
	m.SetTsig(p.keyName, p.alg, 300, time.Now().Unix())
	in, _, err := p.client().ExchangeContext(ctx, m, p.cfg.Server)
	if err != nil {
		return fmt.Errorf("rfc2136: %s TXT %s at %s: %w", what, fqdn, p.cfg.Server, err)
	}
	if in.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("rfc2136: %s TXT %s at %s: server answered %s", what, fqdn, p.cfg.Server, dns.RcodeToString[in.Rcode])
	}
	return nil
}

var _ DNSProvider = (*RFC2136)(nil)
