package connlimit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/clientip"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// dialFrom connects to addr from the loopback address src. A connection
// refused so fast that the reset reaches connect() itself is returned as
// nil: it was refused like one reset after connect returned.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serveAll accepts every connection of ln until it is closed and greets
// each with one byte, so that a client can tell an admitted connection (it
// reads the byte) from a refused one (it reads EOF or a reset) without
// waiting for anything. Accepted connections are sent on the channel.
func serveAll(t *testing.T, ln net.Listener) <-chan net.Conn {
	t.Helper()
	out := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			_, _ = c.Write([]byte{'A'})
			out <- c
		}
	}()
	return out
}

// admitted reports whether c was greeted by served.
func admitted(t *testing.T, c net.Conn) bool {
	if c == nil {
		return false // reset while connecting
	}
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound on a hang, never reached when correct
	var b [1]byte
	n, err := c.Read(b[:])
	if n == 1 {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("no greeting and no close within 30s")
	}
	return false
}

func listen(t *testing.T, l *Limiter, proxyProtocol bool, wrap func(net.Listener) net.Listener) *Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inner net.Listener = raw
	if wrap != nil {
		inner = wrap(raw)
	}
	ln := l.Listener(inner, proxyProtocol)
	t.Cleanup(func() { ln.Close() })
	return ln
}

var quiet = slog.New(slog.DiscardHandler)

func trusting(prefixes ...string) func(netip.Addr) bool {
	var ps []netip.Prefix
	for _, p := range prefixes {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	return func(a netip.Addr) bool {
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}

// TestPerClientConnections: a client address gets PerClient connections,
// the next one is closed at accept and counted; other addresses and
// trusted proxies are not affected; a closed connection frees its place.
func TestPerClientConnections(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config   // Log and MaxFiles are set below
		from       []string // one dial per entry, in order
		wantRefuse int      // how many are closed
		reason     string
	}{
		{"over the limit", Config{PerClient: 2}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, 1, ReasonPerClient},
		{"addresses apart", Config{PerClient: 1}, []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}, 0, ""},
		{"trusted proxy is not one client", Config{PerClient: 1, Trusted: trusting("127.0.0.1/32")}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, 0, ""},
		{"no limit", Config{}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, 0, ""},
		{"new connections per second", Config{Rate: 0.001, Burst: 2}, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, 1, ReasonRate},
		{"rate is per address", Config{Rate: 0.001, Burst: 1}, []string{"127.0.0.1", "127.0.0.2"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.MaxFiles = -1 // descriptors are not the subject here
			tt.cfg.Log = quiet
			l := New(tt.cfg)
			defer l.Close()
			ln := listen(t, l, false, nil)
			var clients []net.Conn
			for _, src := range tt.from {
				clients = append(clients, dialFrom(t, src, ln.Addr().String()))
			}
			want := len(tt.from) - tt.wantRefuse
			serveAll(t, ln)
			got := 0
			for _, c := range clients {
				if admitted(t, c) {
					got++
				}
			}
			if got != want {
				t.Errorf("%d connections admitted, want %d", got, want)
			}
			st := l.Stats()
			var refused uint64
			for _, n := range st.Refused {
				refused += n
			}
			if refused != uint64(tt.wantRefuse) || (tt.reason != "" && st.Refused[tt.reason] != uint64(tt.wantRefuse)) {
				t.Errorf("refused %v, want %d for %q", st.Refused, tt.wantRefuse, tt.reason)
			}
			if st.Open != int64(want) {
				t.Errorf("%d open, want %d", st.Open, want)
			}
		})
	}
}

// TestClosedConnectionFreesItsPlace: the place of a closed connection goes
// to the client's next one.
func TestClosedConnectionFreesItsPlace(t *testing.T) {
	l := New(Config{PerClient: 1, MaxFiles: -1, Log: quiet})
	defer l.Close()
	ln := listen(t, l, false, nil)
	accepted := serveAll(t, ln)
	first := dialFrom(t, "127.0.0.1", ln.Addr().String())
	if !admitted(t, first) {
		t.Fatal("first connection refused")
	}
	refused := dialFrom(t, "127.0.0.1", ln.Addr().String())
	if admitted(t, refused) {
		t.Fatal("second connection admitted while the first was open")
	}
	(<-accepted).Close()
	third := dialFrom(t, "127.0.0.1", ln.Addr().String())
	if !admitted(t, third) {
		t.Fatal("a connection after the first closed was refused")
	}
	if n := l.Stats().ClientsTracked; n != 1 {
		t.Errorf("%d clients tracked, want 1", n)
	}
}

// TestIPv6Grouping: IPv6 clients of one /64 are one client; another /64 is
// another.
func TestIPv6Grouping(t *testing.T) {
	l := New(Config{PerClient: 1, MaxFiles: -1, Log: quiet})
	defer l.Close()
	now := time.Now()
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"2001:db8:1:1::1", true},
		{"2001:db8:1:1::2", false}, // same /64
		{"2001:db8:1:2::1", true},  // next /64
		{"192.0.2.1", true},
		{"::ffff:192.0.2.1", false}, // the same IPv4 client
	} {
		if _, _, ok := l.admit(netip.MustParseAddr(tt.addr).Unmap(), now, 0); ok != tt.ok {
			t.Errorf("%s admitted %v, want %v", tt.addr, ok, tt.ok)
		}
	}
}

// TestProxyProtocolClient: behind a trusted balancer speaking the PROXY
// protocol, the header's address is the client that is limited, not the
// balancer.
func TestProxyProtocolClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	l := New(Config{PerClient: 1, Trusted: trusting("127.0.0.1/32"), MaxFiles: -1, Log: quiet})
	defer l.Close()
	ln := listen(t, l, true, func(raw net.Listener) net.Listener {
		return clientip.ProxyProtocolListener(raw, trusted, 5*time.Second)
	})
	header := func(src string) string { return fmt.Sprintf("PROXY TCP4 %s 127.0.0.1 40000 80\r\n", src) }
	results := make(chan string, 3)
	go func() {
		for range 3 {
			c, err := ln.Accept()
			if err != nil {
				results <- "accept: " + err.Error()
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				_, err := io.ReadFull(c, b)
				switch {
				case errors.Is(err, errRefused):
					results <- c.RemoteAddr().String() + " refused"
				case err != nil:
					results <- "read: " + err.Error()
				default:
					results <- c.RemoteAddr().String() + " admitted"
				}
				if err == nil {
					// Hold the place until the test ends.
					_, _ = io.Copy(io.Discard, c)
				}
			}()
		}
	}()
	got := map[string]int{}
	for i, src := range []string{"192.0.2.7", "192.0.2.7", "192.0.2.8"} {
		c := dialFrom(t, "127.0.0.1", ln.Addr().String())
		if _, err := io.WriteString(c, header(src)+"x"); err != nil {
			t.Fatal(err)
		}
		got[<-results]++
		_ = i
	}
	want := map[string]int{"192.0.2.7:40000 admitted": 1, "192.0.2.7:40000 refused": 1, "192.0.2.8:40000 admitted": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestDescriptorReserve: while the descriptors in use reach the limit less
// the reserve, Accept does not take connections; it resumes once some are
// free again, and the pause is reported.
func TestDescriptorReserve(t *testing.T) {
	var inUse atomic.Int64
	inUse.Store(95)
	l := New(Config{MaxFiles: 100, Reserve: 10, OpenFiles: func() (int, bool) { return int(inUse.Load()), true }, Log: quiet})
	defer l.Close()
	ln := listen(t, l, false, nil)
	c := dialFrom(t, "127.0.0.1", ln.Addr().String())
	accepted := make(chan net.Conn, 1)
	go func() {
		ac, err := ln.Accept()
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- ac
	}()
	if !waitfor.True(30*time.Second, func() bool { return l.Stats().Paused }) {
		t.Fatal("Accept did not pause with 95 of 100 descriptors in use and 10 reserved")
	}
	select {
	case <-accepted:
		t.Fatal("a connection was accepted while paused")
	default:
	}
	inUse.Store(50)
	ac := <-accepted
	if ac == nil {
		t.FailNow()
	}
	defer ac.Close()
	if _, err := ac.Write([]byte{'A'}); err != nil {
		t.Fatal(err)
	}
	if !admitted(t, c) {
		t.Error("the waiting connection was not served after the pause")
	}
	st := l.Stats()
	if st.Paused || st.Pauses != 1 {
		t.Errorf("after the pause: paused %v, pauses %d; want false, 1", st.Paused, st.Pauses)
	}
}

// TestPausedAcceptEndsOnClose: closing a listener ends an Accept paused
// for descriptors.
func TestPausedAcceptEndsOnClose(t *testing.T) {
	l := New(Config{MaxFiles: 100, Reserve: 10, OpenFiles: func() (int, bool) { return 99, true }, Log: quiet})
	defer l.Close()
	ln := listen(t, l, false, nil)
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	if !waitfor.True(30*time.Second, func() bool { return l.Stats().Paused }) {
		t.Fatal("Accept did not pause with 99 of 100 descriptors in use")
	}
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("paused Accept after Close: %v, want net.ErrClosed", err)
	}
}

func TestInFlight(t *testing.T) {
	f := NewInFlight(2, 64)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	r1, ok1 := f.Acquire(a)
	r2, ok2 := f.Acquire(a)
	_, ok3 := f.Acquire(a)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("three requests of one client at limit 2: %v %v %v", ok1, ok2, ok3)
	}
	if _, ok := f.Acquire(b); !ok {
		t.Error("another client refused")
	}
	r1()
	r3, ok := f.Acquire(a)
	if !ok {
		t.Fatal("refused after one ended")
	}
	r2()
	r3()
	if n := f.Clients(); n != 1 { // b still holds one
		t.Errorf("%d clients tracked, want 1", n)
	}
	v6 := NewInFlight(1, 0)
	if _, ok := v6.Acquire(netip.MustParseAddr("2001:db8::1")); !ok {
		t.Fatal("first IPv6 request refused")
	}
	if _, ok := v6.Acquire(netip.MustParseAddr("2001:db8::ffff")); ok {
		t.Error("a second address of the same /64 was not counted as the same client")
	}
	var none *InFlight
	if _, ok := none.Acquire(a); !ok {
		t.Error("nil table refused")
	}
	if _, ok := NewInFlight(0, 0).Acquire(a); !ok {
		t.Error("zero limit refused")
	}
}

// TestFairShareUnderDescriptorPressure: past the client connections'
// budget (half the descriptors above the reserve), a client holding its
// fair share is refused while a newcomer still gets in.
func TestFairShareUnderDescriptorPressure(t *testing.T) {
	l := New(Config{MaxFiles: 120, Reserve: 20, OpenFiles: func() (int, bool) { return 10, true }, Log: quiet})
	defer l.Close()
	if b := l.fds.clientBudget(); b != 50 {
		t.Fatalf("budget %d, want 50", b)
	}
	now := time.Now()
	heavy := netip.MustParseAddr("192.0.2.1")
	for i := range 50 { // below the budget: no share applies
		if _, _, ok := l.admit(heavy, now, l.share()); !ok {
			t.Fatalf("connection %d below the budget refused", i)
		}
		l.open.Add(1)
	}
	if s := l.share(); s != 25 {
		t.Fatalf("share at the budget with one client: %d, want 25", s)
	}
	if _, reason, ok := l.admit(heavy, now, l.share()); ok || reason != ReasonFairShare {
		t.Errorf("the heavy client over its share: ok %v, reason %q", ok, reason)
	}
	if _, _, ok := l.admit(netip.MustParseAddr("192.0.2.2"), now, l.share()); !ok {
		t.Error("a new client refused while another holds the budget")
	}
	if n := l.Stats().Refused[ReasonFairShare]; n != 1 {
		t.Errorf("fair-share refusals %d, want 1", n)
	}
}
