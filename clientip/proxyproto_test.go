package clientip

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// proxyServer serves, on 127.0.0.1 behind ProxyProtocolListener, a handler
// that answers with the client address Resolve decides.
func proxyServer(t *testing.T, trusted []string) *httptest.Server {
	t.Helper()
	prefixes, err := ParsePrefixes(trusted)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(prefixes, "")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c := r.Resolve(req.RemoteAddr, req.Header)
		io.WriteString(w, req.RemoteAddr+" "+c.Addr.String())
	}))
	srv.Listener = ProxyProtocolListener(ln, prefixes, time.Second)
	srv.Config.ReadHeaderTimeout = 2 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// exchange connects to srv, writes preamble then a GET request, and returns
// the response body, or the error reading the response.
func exchange(t *testing.T, srv *httptest.Server, preamble []byte, extra string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extra + "\r\n"
	if _, err := c.Write(append(preamble, req...)); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func v2Header(t *testing.T, proto proxyproto.AddressFamilyAndProtocol, src, dst net.Addr) []byte {
	t.Helper()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proto, SourceAddr: src, DestinationAddr: dst}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProxyProtocolTrustedPeer(t *testing.T) {
	srv := proxyServer(t, []string{"127.0.0.1"})
	dst := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}
	tests := []struct {
		name     string
		preamble []byte
		extra    string
		remote   string // RemoteAddr seen by the handler; a bare IP when the port is the ephemeral one
		client   string // Resolve's Addr
	}{
		{"v1 ipv4", []byte("PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n"), "", "198.51.100.7:5555", "198.51.100.7"},
		{"v1 ipv6", []byte("PROXY TCP6 2001:db8::7 ::1 5555 443\r\n"), "", "[2001:db8::7]:5555", "2001:db8::7"},
		{"v2 ipv4", v2Header(t, proxyproto.TCPv4, &net.TCPAddr{IP: net.IPv4(198, 51, 100, 8), Port: 6000}, dst), "", "198.51.100.8:6000", "198.51.100.8"},
		{"v2 ipv6", v2Header(t, proxyproto.TCPv6, &net.TCPAddr{IP: net.ParseIP("2001:db8::8"), Port: 6001}, &net.TCPAddr{IP: net.IPv6loopback, Port: 443}), "", "[2001:db8::8]:6001", "2001:db8::8"},
		// The header is optional from a trusted peer: its own health check.
		{"no header", nil, "", "127.0.0.1", "127.0.0.1"},
		{"v1 unknown keeps peer", []byte("PROXY UNKNOWN\r\n"), "", "127.0.0.1", "127.0.0.1"},
		{"v2 local keeps peer", []byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), "", "127.0.0.1", "127.0.0.1"},
		// The PROXY source is the peer Resolve sees: an untrusted one
		// cannot add X-Forwarded-For, a trusted one (a CDN in front of
		// the balancer) can.
		{"header source untrusted ignores xff", []byte("PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n"), "X-Forwarded-For: 6.6.6.6\r\n", "198.51.100.7:5555", "198.51.100.7"},
		{"header source trusted reads xff", []byte("PROXY TCP4 127.0.0.1 127.0.0.1 5555 443\r\n"), "X-Forwarded-For: 6.6.6.6\r\n", "127.0.0.1:5555", "6.6.6.6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exchange(t, srv, tt.preamble, tt.extra)
			if err != nil {
				t.Fatal(err)
			}
			remote, client, _ := strings.Cut(got, " ")
			if !strings.Contains(tt.remote, ":") {
				ap, err := netip.ParseAddrPort(remote)
				if err != nil {
					t.Fatal(err)
				}
				remote = ap.Addr().String()
			}
			if remote != tt.remote || client != tt.client {
				t.Errorf("RemoteAddr %q, client %q; want %q, %q", remote, client, tt.remote, tt.client)
			}
		})
	}
}

// TestProxyProtocolRefused: a PROXY header from an untrusted peer closes the
// connection; so does one that is malformed or names a non-TCP source, even
// from a trusted peer.
func TestProxyProtocolRefused(t *testing.T) {
	trusted := proxyServer(t, []string{"127.0.0.1"})
	// Trust only a network we never send traffic to: 127.0.0.1 is untrusted.
	untrustedSrv := proxyServer(t, []string{"10.0.0.0/8"})
	udp := v2Header(t, proxyproto.UDPv4, &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 53}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53})
	tests := []struct {
		name     string
		srv      *httptest.Server
		preamble []byte
	}{
		{"untrusted v1", untrustedSrv, []byte("PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n")},
		{"untrusted v2", untrustedSrv, v2Header(t, proxyproto.TCPv4, &net.TCPAddr{IP: net.IPv4(198, 51, 100, 8), Port: 6000}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443})},
		{"untrusted v1 unknown", untrustedSrv, []byte("PROXY UNKNOWN\r\n")},
		{"trusted malformed v1", trusted, []byte("PROXY TCP4 not-an-ip 127.0.0.1 5555 443\r\n")},
		{"trusted udp source", trusted, udp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", tt.srv.Listener.Addr().String(), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			c.Write(append(tt.preamble, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"...))
			// Closed without a byte written: EOF, or a reset when the
			// server closed with our request still unread.
			got, err := io.ReadAll(c)
			var ne net.Error
			if len(got) != 0 || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("got %q, %v; want the connection closed without an answer", got, err)
			}
		})
	}
}

func TestProxyProtocolUntrustedPlain(t *testing.T) {
	srv := proxyServer(t, []string{"10.0.0.0/8"})
	for _, extra := range []string{"", "X-Forwarded-For: 10.0.0.1, 198.51.100.7\r\n"} {
		got, err := exchange(t, srv, nil, extra)
		if err != nil {
			t.Fatal(err)
		}
		addr, client, _ := strings.Cut(got, " ")
		if ap, err := netip.ParseAddrPort(addr); err != nil || ap.Addr().String() != "127.0.0.1" || client != "127.0.0.1" {
			t.Errorf("plain connection %q: got %q", extra, got)
		}
	}
	// Methods starting with P make the listener look further for a
	// signature; they must still work.
	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestProxyProtocolSlowHeaderDoesNotBlock: a client that connects and says
// nothing must not stall the accept loop for the next one.
func TestProxyProtocolSlowHeaderDoesNotBlock(t *testing.T) {
	srv := proxyServer(t, []string{"127.0.0.1"})
	silent, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	got, err := exchange(t, srv, []byte("PROXY TCP4 198.51.100.7 127.0.0.1 5555 443\r\n"), "")
	if err != nil || !strings.HasSuffix(got, " 198.51.100.7") {
		t.Fatalf("second connection: %q %v", got, err)
	}
}

func TestNetAddrIP(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1}, "10.0.0.1"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0"}, "fe80::1"},
		{&net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, "10.0.0.1"},
		{&net.UnixAddr{Name: "@", Net: "unix"}, "invalid IP"},
		{&net.TCPAddr{}, "invalid IP"},
		{nil, "invalid IP"},
	} {
		a, ok := netAddrIP(tt.addr)
		if a.String() != tt.want || ok != a.IsValid() {
			t.Errorf("netAddrIP(%v) = %v %v, want %s", tt.addr, a, ok, tt.want)
		}
	}
}
