package tlsmgr

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/tlsmgr/acmetest"
)

// dns01Setup runs Pebble resolving through a real BIND (its VA reads the
// challenge TXT records from it) and a Manager whose ACME source publishes
// them with provider. Only a TLS listener is served: a DNS-01 validation
// needs no inbound connection.
func dns01Setup(t *testing.T, b *acmetest.BIND, provider DNSProvider, hosts ...string) (*acmetest.Server, *ACME, string) {
	t.Helper()
	ca := acmetest.Start(t, acmetest.Options{Resolver: b.Addr})
	cfg := acmeConfig(ca, t.TempDir(), hosts...)
	cfg.DNS01 = &DNS01Config{
		Provider:            provider,
		Nameservers:         []string{b.Addr},
		PropagationTimeout:  30 * time.Second,
		PropagationInterval: 100 * time.Millisecond,
	}
	httpLn, tlsLn := listeners(t)
	_, a := startManager(t, cfg, httpLn, tlsLn)
	return ca, a, tlsLn.Addr().String()
}

// checkWildcardServed: a name under the wildcard gets the wildcard's
// certificate (which names only the wildcard), the apex its own, and names
// the configuration does not cover get nothing and cause no order.
func checkWildcardServed(t *testing.T, ca *acmetest.Server, a *ACME, addr string) {
	t.Helper()
	for _, h := range []string{"*.example.test", "example.test"} {
		if _, err := a.Certificate(context.Background(), h); err != nil {
			t.Fatalf("no certificate for %s: %v", h, err)
		}
	}
	for _, tc := range []struct {
		sni   string
		names []string
	}{
		{"a.example.test", []string{"*.example.test"}},
		{"b.example.test", []string{"*.example.test"}},
		{"example.test", []string{"example.test"}},
	} {
		leaf := served(t, addr, tc.sni, ca.IssuerRoots())
		if !slices.Equal(leaf.DNSNames, tc.names) {
			t.Errorf("SNI %s: certificate names %v, want %v", tc.sni, leaf.DNSNames, tc.names)
		}
	}
	if n := ca.Orders(); n != 2 {
		t.Errorf("%d orders, want 2 (one per configured name)", n)
	}
	// Two labels below the wildcard: not covered, no certificate, no order.
	if _, err := handshake(addr, &tls.Config{ServerName: "x.y.example.test", RootCAs: ca.IssuerRoots()}); err == nil {
		t.Error("x.y.example.test got a certificate")
	}
	if n := ca.Orders(); n != 2 {
		t.Errorf("an unconfigured name caused an order (%d orders)", n)
	}
}

// TestDNS01WildcardWithRFC2136: *.example.test and example.test are issued
// through DNS-01 with TSIG-signed RFC 2136 updates to BIND, which Pebble
// then queries; the challenge records are gone afterwards.
func TestDNS01WildcardWithRFC2136(t *testing.T) {
	b := acmetest.StartBIND(t, "example.test")
	ca, a, addr := dns01Setup(t, b, rfc2136For(t, b, nil), "*.example.test", "example.test")
	checkWildcardServed(t, ca, a, addr)
	waitFor(t, func() bool { return len(b.TXT(t, "_acme-challenge.example.test.")) == 0 })
}

// TestDNS01WithExecHook: the same through the exec provider, with a hook
// script that itself runs nsupdate (BIND's client) against BIND; the TSIG
// secret reaches the script only because pass_env names it.
func TestDNS01WithExecHook(t *testing.T) {
	nsupdate := acmetest.RequireTool(t, "nsupdate", "bind9-dnsutils")
	b := acmetest.StartBIND(t, "example.test")
	host, port, _ := net.SplitHostPort(b.Addr)
	t.Setenv("TEST_TSIG_SECRET", b.Secret)
	script := writeScript(t, t.TempDir(), "dns-hook.sh", fmt.Sprintf(`set -eu
case "$1" in present) op=add ;; cleanup) op=delete ;; *) echo "unknown action $1" >&2; exit 2 ;; esac
%s -y "%s:%s:$TEST_TSIG_SECRET" <<EOF
server %s %s
zone %s
update $op $2 60 TXT "$3"
send
EOF
`, nsupdate, b.Algorithm, strings.TrimSuffix(b.KeyName, "."), host, port, b.Zone))
	hook, err := NewExecHook(ExecHookConfig{Command: []string{script}, Timeout: 30 * time.Second, PassEnv: []string{"TEST_TSIG_SECRET"}})
	if err != nil {
		t.Fatal(err)
	}
	ca, a, addr := dns01Setup(t, b, hook, "*.example.test", "example.test")
	checkWildcardServed(t, ca, a, addr)
	waitFor(t, func() bool { return len(b.TXT(t, "_acme-challenge.example.test.")) == 0 })
}
