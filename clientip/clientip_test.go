package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testTrusted is the proxy network of every resolver test: two private
// ranges, one IPv6 range, one single host.
var testTrusted = []string{"10.0.0.0/8", "192.168.0.0/16", "2001:db8:ffff::/48", "127.0.0.1"}

func newTestResolver(t testing.TB, header string) *Resolver {
	t.Helper()
	prefixes, err := ParsePrefixes(testTrusted)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(prefixes, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type resolveCase struct {
	name      string
	remote    string
	forwarded bool     // resolver reads Forwarded instead of X-Forwarded-For
	xff       []string // X-Forwarded-For lines
	fwd       []string // Forwarded lines
	addr      string   // want Addr ("" = invalid)
	port      int
	via       bool
}

const (
	untrusted   = "203.0.113.9:1234"
	trusted     = "10.0.0.1:40000"
	trusted6    = "[2001:db8:ffff::1]:40000"
	trustedPeer = "10.0.0.1"
)

var resolveCases = []resolveCase{
	// An untrusted peer is the client, whatever it claims.
	{name: "untrusted no header", remote: untrusted, addr: "203.0.113.9", port: 1234},
	{name: "untrusted forged xff", remote: untrusted, xff: []string{"198.51.100.7"}, addr: "203.0.113.9", port: 1234},
	{name: "untrusted forged trusted-looking xff", remote: untrusted, xff: []string{"10.0.0.2"}, addr: "203.0.113.9", port: 1234},
	{name: "untrusted forged chain", remote: untrusted, xff: []string{"1.1.1.1, 10.0.0.2", "192.168.0.1"}, addr: "203.0.113.9", port: 1234},
	{name: "untrusted forged forwarded", remote: untrusted, forwarded: true, fwd: []string{`for=198.51.100.7`}, addr: "203.0.113.9", port: 1234},
	{name: "untrusted ipv6 forged xff", remote: "[2001:db8::9]:443", xff: []string{"198.51.100.7"}, addr: "2001:db8::9", port: 443},
	{name: "untrusted zone stripped", remote: "[fe80::1%eth0]:443", xff: []string{"198.51.100.7"}, addr: "fe80::1", port: 443},
	{name: "untrusted mapped peer unmapped", remote: "[::ffff:203.0.113.9]:80", xff: []string{"198.51.100.7"}, addr: "203.0.113.9", port: 80},
	{name: "untrusted bare ip", remote: "203.0.113.9", xff: []string{"198.51.100.7"}, addr: "203.0.113.9"},
	{name: "unparseable remote", remote: "@", xff: []string{"198.51.100.7"}},
	{name: "empty remote", remote: ""},

	// A trusted peer is believed, right-most untrusted entry wins.
	{name: "trusted no header", remote: trusted, addr: trustedPeer, port: 40000},
	{name: "trusted one hop", remote: trusted, xff: []string{"198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "trusted forged left", remote: trusted, xff: []string{"6.6.6.6, 198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "trusted forged left trusted-looking", remote: trusted, xff: []string{"10.9.9.9, 198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "trusted chain", remote: trusted, xff: []string{"6.6.6.6, 198.51.100.7, 10.0.0.2, 192.168.1.1"}, addr: "198.51.100.7", via: true},
	{name: "trusted ipv6 peer", remote: trusted6, xff: []string{"198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "trusted mapped peer", remote: "[::ffff:10.0.0.1]:80", xff: []string{"198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "trusted bare ip peer", remote: "127.0.0.1", xff: []string{"198.51.100.7"}, addr: "198.51.100.7", via: true},

	// Several header lines are one list, in order.
	{name: "lines forged first", remote: trusted, xff: []string{"6.6.6.6", "198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "lines split chain", remote: trusted, xff: []string{"6.6.6.6, 198.51.100.7", "10.0.0.2"}, addr: "198.51.100.7", via: true},
	{name: "lines three", remote: trusted, xff: []string{"6.6.6.6", "198.51.100.7, 10.0.0.3", "10.0.0.2"}, addr: "198.51.100.7", via: true},
	{name: "lines trailing empty", remote: trusted, xff: []string{"198.51.100.7", ""}, addr: "198.51.100.7", via: true},

	// Spelling.
	{name: "spaces and tabs", remote: trusted, xff: []string{"  6.6.6.6 ,\t198.51.100.7  \t"}, addr: "198.51.100.7", via: true},
	{name: "no spaces", remote: trusted, xff: []string{"6.6.6.6,198.51.100.7,10.0.0.2"}, addr: "198.51.100.7", via: true},
	{name: "ipv4 port", remote: trusted, xff: []string{"198.51.100.7:5678"}, addr: "198.51.100.7", port: 5678, via: true},
	{name: "ipv4 port zero", remote: trusted, xff: []string{"198.51.100.7:0"}, addr: "198.51.100.7", via: true},
	{name: "ipv4 obfuscated port", remote: trusted, xff: []string{"198.51.100.7:_p1"}, addr: "198.51.100.7", via: true},
	{name: "ipv6 bare", remote: trusted, xff: []string{"2001:db8::7"}, addr: "2001:db8::7", via: true},
	{name: "ipv6 brackets", remote: trusted, xff: []string{"[2001:db8::7]"}, addr: "2001:db8::7", via: true},
	{name: "ipv6 brackets port", remote: trusted, xff: []string{"[2001:db8::7]:443"}, addr: "2001:db8::7", port: 443, via: true},
	{name: "ipv6 unbracketed is never a port", remote: trusted, xff: []string{"2001:db8::7:443"}, addr: "2001:db8::7:443", via: true},
	{name: "ipv6 upper case", remote: trusted, xff: []string{"2001:DB8::7"}, addr: "2001:db8::7", via: true},
	{name: "ipv6 zone", remote: trusted, xff: []string{"fe80::1%eth0"}, addr: "fe80::1", via: true},
	{name: "ipv6 zone brackets port", remote: trusted, xff: []string{"[fe80::1%eth0]:80"}, addr: "fe80::1", port: 80, via: true},
	{name: "ipv4 mapped entry", remote: trusted, xff: []string{"::ffff:198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "ipv4 mapped trusted hop", remote: trusted, xff: []string{"198.51.100.7, ::ffff:10.0.0.3"}, addr: "198.51.100.7", via: true},
	{name: "trusted ipv6 hop", remote: trusted, xff: []string{"198.51.100.7, [2001:db8:ffff::2]:80"}, addr: "198.51.100.7", via: true},

	// All hops trusted: the left-most is the client.
	{name: "all trusted", remote: trusted, xff: []string{"10.0.0.5, 10.0.0.4, 192.168.0.1"}, addr: "10.0.0.5", via: true},
	{name: "all trusted with empties", remote: trusted, xff: []string{", 10.0.0.5,, 10.0.0.4 ,"}, addr: "10.0.0.5", via: true},
	{name: "all trusted ports", remote: trusted, xff: []string{"10.0.0.5:81, 10.0.0.4:82"}, addr: "10.0.0.5", port: 81, via: true},

	// Empty header: the peer.
	{name: "empty line", remote: trusted, xff: []string{""}, addr: trustedPeer, port: 40000},
	{name: "only empty elements", remote: trusted, xff: []string{" , ,\t,"}, addr: trustedPeer, port: 40000},

	// Malformed, unknown, obfuscated: stop at the nearest trusted hop.
	{name: "malformed right-most", remote: trusted, xff: []string{"198.51.100.7, garbage"}, addr: trustedPeer, port: 40000},
	{name: "malformed after trusted hop", remote: trusted, xff: []string{"198.51.100.7, garbage, 10.0.0.2:99"}, addr: "10.0.0.2", port: 99, via: true},
	{name: "malformed left of client", remote: trusted, xff: []string{"garbage, 198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "unknown", remote: trusted, xff: []string{"198.51.100.7, unknown"}, addr: trustedPeer, port: 40000},
	{name: "obfuscated", remote: trusted, xff: []string{"_hidden"}, addr: trustedPeer, port: 40000},
	{name: "obfuscated after hop", remote: trusted, xff: []string{"_hidden, 192.168.4.4"}, addr: "192.168.4.4", via: true},
	{name: "malformed in later line", remote: trusted, xff: []string{"198.51.100.7", "10.0.0.3, bogus", "10.0.0.2"}, addr: "10.0.0.2", via: true},
	{name: "garbage bytes", remote: trusted, xff: []string{"\x00\xff\x7f"}, addr: trustedPeer, port: 40000},
	{name: "five octets", remote: trusted, xff: []string{"1.2.3.4.5"}, addr: trustedPeer, port: 40000},
	{name: "octet too big", remote: trusted, xff: []string{"256.1.1.1"}, addr: trustedPeer, port: 40000},
	{name: "leading zero octet", remote: trusted, xff: []string{"01.2.3.4"}, addr: trustedPeer, port: 40000},
	{name: "port too big", remote: trusted, xff: []string{"1.2.3.4:99999"}, addr: trustedPeer, port: 40000},
	{name: "port 65536", remote: trusted, xff: []string{"1.2.3.4:65536"}, addr: trustedPeer, port: 40000},
	{name: "port sign", remote: trusted, xff: []string{"1.2.3.4:+80"}, addr: trustedPeer, port: 40000},
	{name: "port negative", remote: trusted, xff: []string{"1.2.3.4:-1"}, addr: trustedPeer, port: 40000},
	{name: "port empty", remote: trusted, xff: []string{"1.2.3.4:"}, addr: trustedPeer, port: 40000},
	{name: "two ports", remote: trusted, xff: []string{"1.2.3.4:80:90"}, addr: trustedPeer, port: 40000},
	{name: "bracketed ipv4", remote: trusted, xff: []string{"[1.2.3.4]:80"}, addr: trustedPeer, port: 40000},
	{name: "unclosed bracket", remote: trusted, xff: []string{"[2001:db8::1"}, addr: trustedPeer, port: 40000},
	{name: "stray bracket", remote: trusted, xff: []string{"2001:db8::1]"}, addr: trustedPeer, port: 40000},
	{name: "junk after bracket", remote: trusted, xff: []string{"[2001:db8::1]x"}, addr: trustedPeer, port: 40000},
	{name: "two addresses no comma", remote: trusted, xff: []string{"1.2.3.4 5.6.7.8"}, addr: trustedPeer, port: 40000},
	{name: "hostname", remote: trusted, xff: []string{"example.com"}, addr: trustedPeer, port: 40000},
	{name: "quoted xff", remote: trusted, xff: []string{`"198.51.100.7"`}, addr: trustedPeer, port: 40000},
	{name: "ipv4 zone", remote: trusted, xff: []string{"1.2.3.4%eth0"}, addr: trustedPeer, port: 40000},
	{name: "empty zone", remote: trusted, xff: []string{"fe80::1%"}, addr: trustedPeer, port: 40000},
	{name: "zone with space", remote: trusted, xff: []string{"::% 0"}, addr: trustedPeer, port: 40000},
	{name: "zone with quote", remote: trusted, xff: []string{`[fe80::1%"]:80`}, addr: trustedPeer, port: 40000},
	{name: "zone percent-encoded", remote: trusted, xff: []string{"[fe80::1%25eth0]:80"}, addr: "fe80::1", port: 80, via: true},

	// The configured header only.
	{name: "xff mode ignores forwarded", remote: trusted, fwd: []string{"for=198.51.100.7"}, addr: trustedPeer, port: 40000},
	{name: "forwarded mode ignores xff", remote: trusted, forwarded: true, xff: []string{"198.51.100.7"}, addr: trustedPeer, port: 40000},

	// Forwarded (RFC 7239).
	{name: "fwd one hop", remote: trusted, forwarded: true, fwd: []string{"for=198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "fwd params", remote: trusted, forwarded: true, fwd: []string{"for=198.51.100.7;proto=https;by=10.0.0.1"}, addr: "198.51.100.7", via: true},
	{name: "fwd params before for", remote: trusted, forwarded: true, fwd: []string{"proto=https;by=10.0.0.1;host=example.com;for=198.51.100.7"}, addr: "198.51.100.7", via: true},
	{name: "fwd quoted ipv6 port", remote: trusted, forwarded: true, fwd: []string{`for="[2001:db8::7]:4711"`}, addr: "2001:db8::7", port: 4711, via: true},
	{name: "fwd quoted ipv4 port", remote: trusted, forwarded: true, fwd: []string{`for="198.51.100.7:8080"`}, addr: "198.51.100.7", port: 8080, via: true},
	{name: "fwd name case", remote: trusted, forwarded: true, fwd: []string{`For="198.51.100.7:8080"`}, addr: "198.51.100.7", port: 8080, via: true},
	{name: "fwd unquoted brackets", remote: trusted, forwarded: true, fwd: []string{"for=[2001:db8::7]"}, addr: "2001:db8::7", via: true},
	{name: "fwd chain", remote: trusted, forwarded: true, fwd: []string{"for=6.6.6.6, for=198.51.100.7, for=10.0.0.2"}, addr: "198.51.100.7", via: true},
	{name: "fwd lines", remote: trusted, forwarded: true, fwd: []string{"for=6.6.6.6", "for=198.51.100.7;proto=https", "for=10.0.0.2"}, addr: "198.51.100.7", via: true},
	{name: "fwd ipv6 peer", remote: trusted6, forwarded: true, fwd: []string{`for="[2001:db8:ffff::9]", for=198.51.100.7`}, addr: "198.51.100.7", via: true},
	{name: "fwd all trusted", remote: trusted, forwarded: true, fwd: []string{`for=10.0.0.3, for="[2001:db8:ffff::2]:1"`}, addr: "10.0.0.3", via: true},
	{name: "fwd spaces", remote: trusted, forwarded: true, fwd: []string{" for=198.51.100.7 ; proto=http ,\tfor=10.0.0.2 "}, addr: "198.51.100.7", via: true},
	{name: "fwd obfuscated", remote: trusted, forwarded: true, fwd: []string{"for=_hidden"}, addr: trustedPeer, port: 40000},
	{name: "fwd obfuscated after hop", remote: trusted, forwarded: true, fwd: []string{"for=198.51.100.7, for=_hidden, for=10.0.0.2"}, addr: "10.0.0.2", via: true},
	{name: "fwd unknown", remote: trusted, forwarded: true, fwd: []string{"for=unknown"}, addr: trustedPeer, port: 40000},
	{name: "fwd quoted unknown", remote: trusted, forwarded: true, fwd: []string{`for="unknown"`}, addr: trustedPeer, port: 40000},
	{name: "fwd unknown with port", remote: trusted, forwarded: true, fwd: []string{`for="unknown:80"`}, addr: trustedPeer, port: 40000},
	{name: "fwd obfuscated port", remote: trusted, forwarded: true, fwd: []string{`for="198.51.100.7:_port"`}, addr: "198.51.100.7", via: true},
	{name: "fwd no for", remote: trusted, forwarded: true, fwd: []string{"198.51.100.7, proto=https;by=10.0.0.9"}, addr: trustedPeer, port: 40000},
	{name: "fwd duplicate for", remote: trusted, forwarded: true, fwd: []string{"for=198.51.100.7;for=6.6.6.6"}, addr: trustedPeer, port: 40000},
	{name: "fwd pair without =", remote: trusted, forwarded: true, fwd: []string{"for=198.51.100.7;secure"}, addr: trustedPeer, port: 40000},
	{name: "fwd empty for", remote: trusted, forwarded: true, fwd: []string{"for="}, addr: trustedPeer, port: 40000},
	{name: "fwd empty quoted for", remote: trusted, forwarded: true, fwd: []string{`for=""`}, addr: trustedPeer, port: 40000},
	{name: "fwd lone quote", remote: trusted, forwarded: true, fwd: []string{`for="`}, addr: trustedPeer, port: 40000},
	{name: "fwd escaped quote", remote: trusted, forwarded: true, fwd: []string{`for="198.51.100.7\""`}, addr: trustedPeer, port: 40000},
	{name: "fwd quoted separators in other param", remote: trusted, forwarded: true, fwd: []string{`for=198.51.100.7;ext="a,b;c=d"`}, addr: "198.51.100.7", via: true},
	{name: "fwd quoted escaped quote in other param", remote: trusted, forwarded: true, fwd: []string{`for=198.51.100.7;ext="a\",b"`}, addr: "198.51.100.7", via: true},
	{name: "fwd forged unbalanced quote left", remote: trusted, forwarded: true, fwd: []string{`for="6.6.6.6, for=198.51.100.7`}, addr: "198.51.100.7", via: true},
	{name: "fwd forged open quote swallows nothing", remote: trusted, forwarded: true, fwd: []string{`for=", for="[2001:db8::7]:1"`}, addr: "2001:db8::7", port: 1, via: true},
	{name: "fwd empty elements", remote: trusted, forwarded: true, fwd: []string{",, for=198.51.100.7 ,,"}, addr: "198.51.100.7", via: true},
	{name: "fwd garbage", remote: trusted, forwarded: true, fwd: []string{";;;===,,,"}, addr: trustedPeer, port: 40000},
	{name: "fwd xff syntax", remote: trusted, forwarded: true, fwd: []string{"198.51.100.7"}, addr: trustedPeer, port: 40000},
	{name: "fwd empty line", remote: trusted, forwarded: true, fwd: []string{""}, addr: trustedPeer, port: 40000},
}

func headerFor(xff, fwd []string) http.Header {
	h := http.Header{}
	for _, v := range xff {
		h.Add("X-Forwarded-For", v)
	}
	for _, v := range fwd {
		h.Add("Forwarded", v)
	}
	return h
}

func TestResolve(t *testing.T) {
	rx, rf := newTestResolver(t, ""), newTestResolver(t, HeaderForwarded)
	for _, tt := range resolveCases {
		t.Run(tt.name, func(t *testing.T) {
			r := rx
			if tt.forwarded {
				r = rf
			}
			got := r.Resolve(tt.remote, headerFor(tt.xff, tt.fwd))
			var want Client
			if tt.addr != "" {
				peer, _, _ := parsePeer(tt.remote)
				want = Client{Addr: netip.MustParseAddr(tt.addr), Port: tt.port, Peer: peer, ViaProxy: tt.via}
			}
			if got != want {
				t.Errorf("Resolve(%q, xff %q, fwd %q) = %+v, want %+v", tt.remote, tt.xff, tt.fwd, got, want)
			}
		})
	}
}

func ExampleResolver_Resolve() {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8"})
	if err != nil {
		panic(err)
	}
	r, err := New(trusted, HeaderXForwardedFor)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Add("X-Forwarded-For", "6.6.6.6, 198.51.100.7") // the client forged 6.6.6.6
	h.Add("X-Forwarded-For", "10.0.0.2")              // a second proxy of ours

	fmt.Printf("%+v\n", r.Resolve("10.0.0.1:40000", h))   // from our balancer
	fmt.Printf("%+v\n", r.Resolve("203.0.113.9:1234", h)) // straight from the client
	// Output:
	// {Addr:198.51.100.7 Port:0 Peer:10.0.0.1 ViaProxy:true}
	// {Addr:203.0.113.9 Port:1234 Peer:203.0.113.9 ViaProxy:false}
}

func TestTrusted(t *testing.T) {
	r := newTestResolver(t, "")
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"11.0.0.1", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::ffff:10.1.2.3", true}, // mapped: one spelling per address
		{"2001:db8:ffff:1::1", true},
		{"2001:db8:fffe::1", false},
		{"fe80::1%eth0", false},
		{"2001:db8:ffff::1%eth0", true}, // zone stripped
	} {
		if got := r.Trusted(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Trusted(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if r.Trusted(netip.Addr{}) {
		t.Error("the zero Addr is trusted")
	}
	// A mapped prefix trusts the IPv4 addresses it describes.
	m, err := New([]netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !m.Trusted(netip.MustParseAddr("10.9.9.9")) || m.Trusted(netip.MustParseAddr("11.0.0.1")) {
		t.Error("mapped prefix not unmapped")
	}
	var none Resolver
	if none.Trusted(netip.MustParseAddr("10.0.0.1")) {
		t.Error("empty resolver trusts")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  string
		want    string // "" = no error
	}{
		{"defaults", nil, "", ""},
		{"xff", nil, "X-Forwarded-For", ""},
		{"forwarded", nil, "Forwarded", ""},
		{"unknown header", nil, "x-real-ip", `clientip: header "x-real-ip" is not x-forwarded-for or forwarded`},
		{"zero prefix", []netip.Prefix{{}}, "", "clientip: trusted proxy (item 1) is not a valid prefix"},
		{"everything v4", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("0.0.0.0/0")}, "",
			"clientip: trusted proxy 0.0.0.0/0 would trust every address, so any client could choose its own; list the proxies' own ranges"},
		{"everything mapped v4", []netip.Prefix{netip.MustParsePrefix("::ffff:0.0.0.0/96")}, "",
			"clientip: trusted proxy ::ffff:0.0.0.0/96 would trust every address, so any client could choose its own; list the proxies' own ranges"},
		{"everything v6 and bad header", []netip.Prefix{netip.MustParsePrefix("::/0")}, "both", "clientip: trusted proxy ::/0 would trust every address, so any client could choose its own; list the proxies' own ranges\n" +
			`clientip: header "both" is not x-forwarded-for or forwarded`},
	}
	for _, tt := range tests {
		r, err := New(tt.trusted, tt.header)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want == "" && r == nil:
			t.Errorf("%s: nil resolver", tt.name)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestNewCopiesPrefixes(t *testing.T) {
	p := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	r, err := New(p, "")
	if err != nil {
		t.Fatal(err)
	}
	p[0] = netip.MustParsePrefix("11.0.0.0/8") // the caller's slice changes after New
	if !r.Trusted(netip.MustParseAddr("10.0.0.1")) || r.Trusted(netip.MustParseAddr("11.0.0.1")) {
		t.Error("resolver follows the caller's slice")
	}
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.0.0.0/8", " 192.0.2.1 ", "2001:db8::1", "10.1.2.3/16", "::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128", "10.1.0.0/16", "::ffff:10.0.0.0/104"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("item %d: %s, want %s", i, got[i], want[i])
		}
	}
	if p, err := ParsePrefixes(nil); err != nil || len(p) != 0 {
		t.Errorf("nil: %v %v", p, err)
	}

	_, err = ParsePrefixes([]string{"10.0.0.0/8", "10.0.0.0/33", "example.com", "fe80::1%eth0", ""})
	wantErr := `clientip: trusted proxy "10.0.0.0/33" (item 2): netip.ParsePrefix("10.0.0.0/33"): prefix length out of range` + "\n" +
		`clientip: trusted proxy "example.com" (item 3): ParseAddr("example.com"): unexpected character (at "example.com")` + "\n" +
		`clientip: trusted proxy "fe80::1%eth0" (item 4): zones are not allowed` + "\n" +
		`clientip: trusted proxy "" (item 5): ParseAddr(""): unable to parse IP`
	if err == nil || err.Error() != wantErr {
		t.Errorf("error:\n%v\nwant:\n%s", err, wantErr)
	}
}

// TestResolveAllocs guards the promise that the common case is free.
func TestResolveAllocs(t *testing.T) {
	r := newTestResolver(t, "")
	h := headerFor([]string{"6.6.6.6, 198.51.100.7, 10.0.0.3, 10.0.0.2"}, nil)
	for _, tt := range []struct {
		name, remote string
	}{
		{"untrusted", untrusted},
		{"untrusted ipv6", "[2001:db8::9]:443"},
		{"trusted xff", trusted},
	} {
		if n := testing.AllocsPerRun(100, func() { r.Resolve(tt.remote, h) }); n != 0 {
			t.Errorf("%s: %v allocations per Resolve", tt.name, n)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	rx, rf := newTestResolver(b, ""), newTestResolver(b, HeaderForwarded)
	for _, bb := range []struct {
		name   string
		r      *Resolver
		remote string
		h      http.Header
	}{
		{"untrusted-peer", rx, untrusted, headerFor([]string{"198.51.100.7"}, nil)},
		{"trusted-peer-xff-3-hops", rx, trusted, headerFor([]string{"198.51.100.7, 10.0.0.3, 10.0.0.2"}, nil)},
		{"trusted-peer-forwarded-3-hops", rf, trusted, headerFor(nil, []string{`for=198.51.100.7;proto=https, for="[2001:db8:ffff::3]:443", for=10.0.0.2`})},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bb.r.Resolve(bb.remote, bb.h)
			}
		})
	}
}

// FuzzResolve checks the invariants that make the address safe to key on,
// whatever the headers hold:
//   - a peer that parses always yields a valid Addr;
//   - from an untrusted peer the result is exactly the peer;
//   - Addr is the peer or an address spelled somewhere in the header read;
//   - without ViaProxy, Addr and Port are the peer's;
//   - Addr is a valid, normalised (unzoned, unmapped) address;
//   - the result equals a deliberately plain reference walk (strings.Split,
//     net.SplitHostPort) that finds the right-most untrusted entry, stops at
//     the nearest trusted hop on a bad entry, and takes the left-most when
//     all are trusted — so a trusted address comes back only when every hop
//     is trusted or the walk stopped at a trusted hop. Forwarded values with
//     quotes are left out of this comparison, because splitting quoted
//     strings is what the reference keeps plain.
//
// The peer is picked from fuzzPeers (it comes from the socket, not from the
// client); header lines are joined with "\n" and capped in length, because
// the engine minimises every new input in time quadratic in its size.
func FuzzResolve(f *testing.F) {
	for _, tt := range resolveCases {
		i := slices.Index(fuzzPeers, tt.remote)
		if i < 0 {
			f.Fatalf("case %q: remote %q missing from fuzzPeers", tt.name, tt.remote)
		}
		f.Add(uint8(i), tt.forwarded, strings.Join(tt.xff, "\n"), strings.Join(tt.fwd, "\n"))
	}
	rx, rf := newTestResolver(f, ""), newTestResolver(f, HeaderForwarded)
	f.Fuzz(func(t *testing.T, peerIndex uint8, forwarded bool, xff, fwd string) {
		if len(xff) > 256 || len(fwd) > 256 {
			return
		}
		remote := fuzzPeers[int(peerIndex)%len(fuzzPeers)]
		var xl, fl []string
		if xff != "" {
			xl = strings.Split(xff, "\n")
		}
		if fwd != "" {
			fl = strings.Split(fwd, "\n")
		}
		r, read := rx, xl
		if forwarded {
			r, read = rf, fl
		}
		got := r.Resolve(remote, headerFor(xl, fl))

		peer, peerPort, ok := parsePeer(remote)
		if !ok {
			if got != (Client{}) {
				t.Fatalf("unparseable remote %q gave %+v", remote, got)
			}
			return
		}
		self := Client{Addr: peer, Port: peerPort, Peer: peer}
		switch {
		case !got.Addr.IsValid() || got.Peer != peer:
			t.Fatalf("%+v for peer %s", got, peer)
		case !r.Trusted(peer) && got != self:
			t.Fatalf("untrusted peer %s spoofed into %+v", peer, got)
		case !got.ViaProxy && got != self:
			t.Fatalf("not via proxy but %+v, peer %+v", got, self)
		case got.ViaProxy && !spelledIn(got.Addr, strings.Join(read, "\n")):
			t.Fatalf("address %s does not appear in %q", got.Addr, read)
		case got.Addr.Zone() != "" || got.Addr.Is4In6():
			t.Fatalf("address not normalised: %s", got.Addr)
		}
		if forwarded && strings.ContainsAny(fwd, `"\`) {
			return
		}
		if want := referenceResolve(r, self, read, forwarded); got != want {
			t.Fatalf("Resolve(%q, %q) = %+v, reference %+v", remote, read, got, want)
		}
	})
}

// spelledIn reports whether some token of text spells a (alone, with a
// port, or with an obfuscated port).
func spelledIn(a netip.Addr, text string) bool {
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool { return strings.ContainsRune(",; \t\n\"=[]", r) }) {
		cands := []string{tok}
		if i := strings.LastIndexByte(tok, ':'); i >= 0 {
			cands = append(cands, tok[:i])
		}
		for _, c := range cands {
			if b, err := netip.ParseAddr(c); err == nil && b.WithZone("").Unmap() == a {
				return true
			}
		}
	}
	return false
}

var fuzzPeers = []string{
	untrusted, trusted, trusted6, "127.0.0.1", "[::ffff:10.0.0.1]:80",
	"[2001:db8::9]:443", "[fe80::1%eth0]:443", "[::ffff:203.0.113.9]:80", "203.0.113.9", "@", "",
}

var (
	refDigits = regexp.MustCompile(`^[0-9]{1,5}$`)
	refObf    = regexp.MustCompile(`^_[A-Za-z0-9._-]+$`)
	refZone   = regexp.MustCompile(`^[A-Za-z0-9._~%-]*$`)
)

// referenceResolve is the plain, allocating statement of the walk.
func referenceResolve(r *Resolver, self Client, lines []string, forwarded bool) Client {
	if !r.Trusted(self.Peer) {
		return self
	}
	var elems []string
	for _, l := range lines {
		elems = append(elems, strings.Split(l, ",")...)
	}
	last := self
	for i := len(elems) - 1; i >= 0; i-- {
		e := strings.Trim(elems[i], " \t")
		if e == "" {
			continue
		}
		if forwarded {
			var node string
			n := 0
			for _, pair := range strings.Split(e, ";") {
				pair = strings.Trim(pair, " \t")
				if pair == "" {
					continue
				}
				name, value, ok := strings.Cut(pair, "=")
				if !ok {
					return last
				}
				if strings.EqualFold(strings.Trim(name, " \t"), "for") {
					n++
					node = strings.Trim(value, " \t")
				}
			}
			if n != 1 {
				return last
			}
			e = node
		}
		a, port, ok := referenceNode(e)
		if !ok {
			return last
		}
		last = Client{Addr: a, Port: port, Peer: self.Peer, ViaProxy: true}
		if !r.Trusted(a) {
			return last
		}
	}
	return last
}

func referenceNode(s string) (netip.Addr, int, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.WithZone("").Unmap(), 0, refZone.MatchString(a.Zone())
	}
	if len(s) > 2 && s[0] == '[' && strings.IndexByte(s, ']') == len(s)-1 {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		return a.WithZone("").Unmap(), 0, err == nil && a.Is6() && refZone.MatchString(a.Zone())
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || (s[0] == '[') != a.Is6() || !refZone.MatchString(a.Zone()) {
		return netip.Addr{}, 0, false
	}
	if refObf.MatchString(port) {
		return a.WithZone("").Unmap(), 0, true
	}
	n, err := strconv.Atoi(port)
	if !refDigits.MatchString(port) || err != nil || n > 65535 {
		return netip.Addr{}, 0, false
	}
	return a.WithZone("").Unmap(), n, true
}
