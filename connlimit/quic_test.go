package connlimit

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// TestQUICHooks: the QUIC transport's hooks share the per-client table
// with TCP, give a place back when the connection's context ends, ask a
// full address for a Retry, never limit trusted proxies, and count a
// refused attempt once however many Initial packets it sends.
func TestQUICHooks(t *testing.T) {
	trusted := netip.MustParsePrefix("10.0.0.0/8")
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	cases := []struct {
		name        string
		perClient   int
		from        []string // one connection attempt each, in order
		wantRefused []bool
		wantRetry   bool // VerifySourceAddress for the last address, after the attempts
		wantCounted uint64
	}{
		{"under the limit", 2, []string{"192.0.2.1:1000", "192.0.2.1:1001"}, []bool{false, false}, true, 0},
		{"over the limit", 2, []string{"192.0.2.1:1000", "192.0.2.1:1001", "192.0.2.1:1002"}, []bool{false, false, true}, true, 1},
		{"same attempt, two Initials", 1, []string{"192.0.2.1:1000", "192.0.2.1:1001", "192.0.2.1:1001"}, []bool{false, true, true}, true, 1},
		{"two attempts", 1, []string{"192.0.2.1:1000", "192.0.2.1:1001", "192.0.2.1:1002"}, []bool{false, true, true}, true, 2},
		{"other addresses", 1, []string{"192.0.2.1:1000", "192.0.2.2:1000", "[2001:db8::1]:1000"}, []bool{false, false, false}, true, 0},
		{"IPv6 /64 is one client", 1, []string{"[2001:db8::1]:1000", "[2001:db8::2]:1000"}, []bool{false, true}, true, 1},
		{"trusted proxy", 1, []string{"10.1.1.1:1000", "10.1.1.1:1001", "10.1.1.1:1002"}, []bool{false, false, false}, false, 0},
		{"no limit", 0, []string{"192.0.2.1:1000", "192.0.2.1:1001"}, []bool{false, false}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Config{PerClient: tc.perClient, Trusted: trusted.Contains, MaxFiles: -1})
			defer l.Close()
			var cancels []context.CancelFunc
			for i, from := range tc.from {
				ctx, cancel := context.WithCancel(context.Background())
				cancels = append(cancels, cancel)
				_, err := l.QUICConnContext(ctx, &quic.ClientInfo{RemoteAddr: udp(from)})
				if (err != nil) != tc.wantRefused[i] {
					t.Fatalf("attempt %d from %s: err %v, want refused %v", i, from, err, tc.wantRefused[i])
				}
			}
			last := udp(tc.from[len(tc.from)-1])
			if got := l.QUICVerifySourceAddress(last); got != tc.wantRetry {
				t.Errorf("retry for %s: %v, want %v", last, got, tc.wantRetry)
			}
			st := l.Stats()
			if st.QUICRefused != tc.wantCounted || st.Refused[ReasonPerClient] != tc.wantCounted {
				t.Errorf("refusals counted: QUIC %d, per_client %d; want %d", st.QUICRefused, st.Refused[ReasonPerClient], tc.wantCounted)
			}
			admitted := 0
			for _, r := range tc.wantRefused {
				if !r {
					admitted++
				}
			}
			if st.QUICOpen != int64(admitted) {
				t.Errorf("open %d, want %d", st.QUICOpen, admitted)
			}
			// Ending the connections' contexts gives every place back.
			for _, c := range cancels {
				c()
			}
			if !waitfor.True(10*time.Second, func() bool { return l.Stats().QUICOpen == 0 && l.conns.len() == 0 }) {
				t.Fatalf("places not given back: open %d, clients %d", l.Stats().QUICOpen, l.conns.len())
			}
			if l.QUICVerifySourceAddress(last) {
				t.Error("retry asked of an address without connections")
			}
		})
	}
}
