package bans

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewTrackerValidates(t *testing.T) {
	s := memStore(t, 10)
	tests := []struct {
		store          *Store
		threshold      int
		window, banFor time.Duration
		maxKeys        int
		want           string
	}{
		{s, 5, time.Minute, time.Hour, 100, ""},
		{nil, 5, time.Minute, time.Hour, 100, "store is nil"},
		{s, 0, time.Minute, time.Hour, 100, "threshold 0 must be between 1 and 1000"},
		{s, 1001, time.Minute, time.Hour, 100, "threshold 1001"},
		{s, 5, 0, time.Hour, 100, "window 0s must be positive"},
		{s, 5, time.Minute, -time.Hour, 100, "ban duration -1h0m0s must be positive"},
		{s, 5, time.Minute, time.Hour, 0, "maxKeys 0 must be at least 1"},
	}
	for _, tt := range tests {
		_, err := NewTracker(tt.store, tt.threshold, tt.window, tt.banFor, tt.maxKeys)
		if tt.want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want it to contain %q", err, tt.want)
		}
	}
	// All problems at once.
	_, err := NewTracker(nil, 0, 0, 0, 0)
	if err == nil || strings.Count(err.Error(), "\n") != 4 {
		t.Errorf("want five problems, got %v", err)
	}
}

func TestStrikesBanWithinWindow(t *testing.T) {
	tests := []struct {
		name      string
		threshold int
		strikes   []time.Duration // offsets from t0, one client
		banAt     int             // index of the strike that bans; -1 for none
	}{
		{"threshold reached quickly", 3, []time.Duration{0, 10 * time.Second, 20 * time.Second}, 2},
		{"same instant", 3, []time.Duration{0, 0, 0}, 2},
		{"spread over more than the window", 3, []time.Duration{0, 30 * time.Second, 61 * time.Second}, -1},
		{"exactly the window apart is outside", 3, []time.Duration{0, 30 * time.Second, 60 * time.Second}, -1},
		{"sliding: the oldest drops out", 3, []time.Duration{0, 30 * time.Second, 61 * time.Second, 62 * time.Second}, 3},
		{"steady trickle never bans", 3, []time.Duration{0, 31 * time.Second, 62 * time.Second, 93 * time.Second, 124 * time.Second}, -1},
		{"long pause resets", 2, []time.Duration{0, 2 * time.Minute, 2*time.Minute + time.Second}, 2},
		{"threshold one", 1, []time.Duration{5 * time.Second}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memStore(t, 10)
			tr, err := NewTracker(s, tt.threshold, time.Minute, time.Hour, 10)
			if err != nil {
				t.Fatal(err)
			}
			a := netip.MustParseAddr("192.0.2.7")
			for i, at := range tt.strikes {
				banned, err := tr.Strike(a, "status 404", t0.Add(at))
				if err != nil {
					t.Fatal(err)
				}
				if banned != (i == tt.banAt) {
					t.Fatalf("strike %d at +%v: banned=%v", i, at, banned)
				}
			}
			_, isBanned := s.Banned(a, t0.Add(tt.strikes[len(tt.strikes)-1]))
			if isBanned != (tt.banAt >= 0) {
				t.Errorf("Banned = %v", isBanned)
			}
		})
	}
}

func TestAutoBan(t *testing.T) {
	s := memStore(t, 10)
	tr, err := NewTracker(s, 3, time.Minute, 15*time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("198.51.100.23")
	for i, reason := range []string{"status 404", "waf block", "status 404"} {
		if _, err := tr.Strike(a, reason, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(2 * time.Second)
	b, ok := s.Banned(a, at)
	if !ok {
		t.Fatal("not banned after three strikes")
	}
	want := Ban{
		Prefix:  netip.MustParsePrefix("198.51.100.23/32"),
		Reason:  "3 strikes within 1m0s: status 404 (2), waf block (1)",
		Source:  SourceAuto,
		Created: at,
		Until:   at.Add(15 * time.Minute),
	}
	if b != want {
		t.Errorf("ban %+v\nwant %+v", b, want)
	}
	if tr.Stats().Counters != 0 {
		t.Errorf("counter kept after the ban: %+v", tr.Stats())
	}
	// The ban ends on time, and the client starts from zero strikes.
	if _, ok := s.Banned(a, want.Until); ok {
		t.Error("still banned at Until")
	}
	if banned, _ := tr.Strike(a, "status 404", want.Until); banned {
		t.Error("one strike after the ban banned again")
	}
}

func TestReasonsSummary(t *testing.T) {
	type strike struct {
		at     time.Duration
		reason string
	}
	tests := []struct {
		name      string
		threshold int
		strikes   []strike
		want      string
	}{
		{"more reasons than slots", 8, []strike{
			{0, "a"}, {0, "b"}, {0, "c"}, {0, "d"}, {0, "e"}, {0, "f"}, {0, "b"}, {0, strings.Repeat("z", 100)},
		}, "8 strikes within 1m0s: b (2), a (1), c (1), d (1), other (3)"},
		{"slot freed when its strikes leave the ring", 5, []strike{
			{0, "a"}, {time.Second, "b"}, {30 * time.Second, "c"}, {31 * time.Second, "d"},
			{60 * time.Second, "e"}, // "a" still in the ring: e is "other"
			{61 * time.Second, "f"}, // "a" is being replaced: still "other"
			{62 * time.Second, "g"}, // "a" gone: g takes its slot; c..g fall within 32 s
		}, "5 strikes within 1m0s: c (1), d (1), g (1), other (2)"},
		{"empty reason", 2, []strike{{0, ""}, {0, "waf block"}}, "2 strikes within 1m0s: unspecified (1), waf block (1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memStore(t, 10)
			tr, err := NewTracker(s, tt.threshold, time.Minute, time.Hour, 10)
			if err != nil {
				t.Fatal(err)
			}
			a := netip.MustParseAddr("192.0.2.1")
			for i, st := range tt.strikes {
				banned, err := tr.Strike(a, st.reason, t0.Add(st.at))
				if err != nil || banned != (i == len(tt.strikes)-1) {
					t.Fatalf("strike %d: banned=%v err=%v", i, banned, err)
				}
			}
			b, _ := s.Banned(a, t0.Add(tt.strikes[len(tt.strikes)-1].at))
			if b.Reason != tt.want {
				t.Errorf("reason %q\nwant   %q", b.Reason, tt.want)
			}
		})
	}
}

func TestIPv6ClientsCountedByNetwork(t *testing.T) {
	s := memStore(t, 10)
	tr, err := NewTracker(s, 3, time.Minute, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // one host rotating addresses in its /64
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 15: byte(i + 1)})
		if _, err := tr.Strike(a, "waf block", t0); err != nil {
			t.Fatal(err)
		}
	}
	b, ok := s.Banned(netip.MustParseAddr("2001:db8:1:2:dead:beef::1"), t0)
	if !ok || b.Prefix.String() != "2001:db8:1:2::/64" {
		t.Errorf("rotating /64 not banned as a network: %+v %v", b, ok)
	}
	if _, ok := s.Banned(netip.MustParseAddr("2001:db8:1:3::1"), t0); ok {
		t.Error("neighbouring /64 banned")
	}
	if _, err := tr.Strike(netip.Addr{}, "x", t0); err == nil {
		t.Error("strike for an invalid address accepted")
	}
}

func TestTrackerBounded(t *testing.T) {
	s := memStore(t, 10)
	const maxKeys = 50
	tr, err := NewTracker(s, 3, time.Minute, time.Hour, maxKeys)
	if err != nil {
		t.Fatal(err)
	}
	strike := func(i int, at time.Duration) {
		t.Helper()
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := tr.Strike(a, "status 404", t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxKeys {
		strike(i, 0)
	}
	// Two minutes on, those counters are stale: newcomers replace them
	// without losing anything.
	for i := range maxKeys {
		strike(1000+i, 2*time.Minute)
	}
	st := tr.Stats()
	if st.Counters != maxKeys || st.EvictedStale != maxKeys || st.EvictedActive != 0 {
		t.Errorf("after the stale round: %+v", st)
	}
	// A flood of distinct addresses: memory stays bounded.
	for i := range 10_000 {
		strike(2000+i, 2*time.Minute+time.Second)
	}
	st = tr.Stats()
	if st.Counters != maxKeys || st.EvictedStale+st.EvictedActive != 10_000+maxKeys {
		t.Errorf("after the flood: %+v", st)
	}
	if s.Len() != 0 {
		t.Errorf("single strikes caused bans: %v", s.List(t0))
	}
}

func TestStrikeReportsStoreErrors(t *testing.T) {
	full := memStore(t, 1)
	if err := full.Add(manual("10.9.9.9/32", t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracker(full, 1, time.Minute, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	banned, err := tr.Strike(netip.MustParseAddr("192.0.2.1"), "waf block", t0)
	if banned || !errors.Is(err, ErrFull) {
		t.Errorf("full store: banned=%v err=%v, want false and ErrFull", banned, err)
	}

	// A ban that is in effect but not saved is reported as both.
	dir := filepath.Join(t.TempDir(), "gone")
	s, err := Open(filepath.Join(dir, "bans.json"), 10)
	if err != nil {
		t.Fatal(err)
	}
	breakDir(t, dir)
	tr, err = NewTracker(s, 1, time.Minute, time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	banned, err = tr.Strike(netip.MustParseAddr("192.0.2.1"), "waf block", t0)
	if !banned || !errors.Is(err, ErrNotSaved) {
		t.Errorf("unwritable file: banned=%v err=%v, want true and ErrNotSaved", banned, err)
	}
}

func BenchmarkStrike(b *testing.B) {
	s := memStore(b, 100_000)
	tr, err := NewTracker(s, 10, time.Minute, time.Hour, 10_000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// 100k clients through 10k counters: steady-state eviction, no bans.
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, err := tr.Strike(a, "status 404", t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			b.Fatal(fmt.Sprint(err))
		}
		i = (i + 1) % 100_000
	}
}
