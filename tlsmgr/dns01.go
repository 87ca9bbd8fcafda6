package tlsmgr

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ChallengeDNS01 is the DNS-01 challenge: a TXT record at
// _acme-challenge.<name>. It is the only challenge a CA offers for a
// wildcard name.
const ChallengeDNS01 = "dns-01"

// DNSProvider publishes and removes the TXT records of DNS-01 challenges.
// Implementations: RFC2136 (dynamic updates to BIND, Knot, PowerDNS…) and
// ExecHook (an operator's command).
type DNSProvider interface {
	// Present adds a TXT record with value at fqdn (absolute, with the
	// trailing dot, e.g. "_acme-challenge.example.com."). Other TXT records
	// at that name stay: the names example.com and *.example.com share it
	// and may be validated at the same time.
	Present(ctx context.Context, fqdn, value string) error
	// CleanUp removes the record that Present added, and only that one.
	CleanUp(ctx context.Context, fqdn, value string) error
}

// DNS01Config configures the DNS-01 challenge.
type DNS01Config struct {
	// Provider publishes the records. Required.
	Provider DNSProvider
	// Nameservers ("host:port") are asked, without recursion, whether the
	// record is visible before the CA is told to look. Default: the
	// authoritative servers of the zone, found through the system resolver
	// (NS records of the closest enclosing zone), on port 53.
	Nameservers []string
	// PropagationTimeout bounds the wait for the record to be visible on
	// every nameserver. Default 2m.
	PropagationTimeout time.Duration
	// PropagationInterval is the pause between checks. Default 2s.
	PropagationInterval time.Duration

	// resolver and nsPort replace the system resolver and port 53 in the
	// discovery of authoritative servers (tests).
	resolver *net.Resolver
	nsPort   string
}

func (c *DNS01Config) withDefaults() DNS01Config {
	out := *c
	if out.PropagationTimeout <= 0 {
		out.PropagationTimeout = 2 * time.Minute
	}
	if out.PropagationInterval <= 0 {
		out.PropagationInterval = 2 * time.Second
	}
	if out.resolver == nil {
		out.resolver = net.DefaultResolver
	}
	if out.nsPort == "" {
		out.nsPort = "53"
	}
	return out
}

// challengeFQDN is where the TXT record for an identifier goes; a wildcard's
// record is the base name's (RFC 8555 section 8.4 with 7.1.3: the
// authorization of *.example.com is for example.com).
func challengeFQDN(identifier string) string {
	return "_acme-challenge." + dns.Fqdn(strings.TrimPrefix(identifier, "*."))
}

// awaitPropagation polls the nameservers until each one answers the TXT
// query for fqdn with value, or the propagation timeout ends.
func (c *DNS01Config) awaitPropagation(ctx context.Context, fqdn, value string) error {
	ctx, cancel := context.WithTimeout(ctx, c.PropagationTimeout)
	defer cancel()
	servers := c.Nameservers
	var err error
	if len(servers) == 0 {
		if servers, err = c.authoritative(ctx, fqdn); err != nil {
			return fmt.Errorf("dns-01 %s: find the authoritative servers: %w", fqdn, err)
		}
	}
	pending := slices.Clone(servers)
	lastErr := map[string]error{}
	for {
		next := pending[:0]
		for _, ns := range pending {
			ok, err := hasTXT(ctx, ns, fqdn, value)
			if !ok {
				next = append(next, ns)
				lastErr[ns] = err
			}
		}
		pending = next
		if len(pending) == 0 {
			return nil
		}
		t := time.NewTimer(c.PropagationInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			var why []string
			for _, ns := range pending {
				if lastErr[ns] != nil {
					why = append(why, fmt.Sprintf("%s: %v", ns, lastErr[ns]))
				} else {
					why = append(why, ns+": record not there yet")
				}
			}
			return fmt.Errorf("dns-01 %s: TXT record not visible within %v (%s)", fqdn, c.PropagationTimeout, strings.Join(why, "; "))
		case <-t.C:
		}
	}
}

// hasTXT asks ns directly (no recursion) for the TXT records at fqdn.
func hasTXT(ctx context.Context, ns, fqdn, value string) (bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, dns.TypeTXT)
	m.RecursionDesired = false
	in, err := exchange(ctx, m, ns)
	if err != nil {
		return false, err
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return false, fmt.Errorf("answer %s", dns.RcodeToString[in.Rcode])
	}
	for _, rr := range in.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true, nil
		}
	}
	return false, nil
}

// exchange sends m over UDP and repeats it over TCP when the answer was
// truncated; each try is bounded by ctx and 10 seconds.
func exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &dns.Client{Net: "udp"}
	in, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && !in.Truncated {
		return in, nil
	}
	c.Net = "tcp"
	in, _, err = c.ExchangeContext(ctx, m, server)
	return in, err
}

// authoritative finds the nameservers of the zone that holds fqdn: the NS
// records of the closest enclosing name that has any, each address on
// nsPort.
func (c *DNS01Config) authoritative(ctx context.Context, fqdn string) ([]string, error) {
	labels := strings.Split(strings.TrimSuffix(fqdn, "."), ".")
	var (
		zone    string
		nss     []*net.NS
		lastErr error
	)
	// From the record's own name up: _acme-challenge may be a zone of its
	// own (a common way to delegate only the challenges).
	for i := 0; i < len(labels)-1 && len(nss) == 0; i++ {
		zone = strings.Join(labels[i:], ".")
		nss, lastErr = c.resolver.LookupNS(ctx, zone)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if len(nss) == 0 {
		return nil, fmt.Errorf("no enclosing zone has NS records (last: %s: %v)", zone, lastErr)
	}
	var out []string
	for _, ns := range nss {
		addrs, err := c.resolver.LookupHost(ctx, ns.Host)
		if err != nil {
			return nil, fmt.Errorf("nameserver %s of %s: %w", ns.Host, zone, err)
		}
		for _, a := range addrs {
			out = append(out, net.JoinHostPort(a, c.nsPort))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// withDefaultPort adds :53 to a nameserver given without a port.
func withDefaultPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.Trim(server, "[]"), strconv.Itoa(53))
}
