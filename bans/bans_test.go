package bans

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the injected clock's start. Only tests of loading a state file use
// the real clock, because Open judges expiry by it; they keep hours of margin.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func memStore(t testing.TB, max int) *Store {
	t.Helper()
	s, err := Open("", max)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func manual(prefix string, created time.Time, d time.Duration) Ban {
	return Ban{Prefix: netip.MustParsePrefix(prefix), Reason: "operator", Source: SourceManual, Created: created, Until: created.Add(d)}
}

func auto(prefix string, created time.Time, d time.Duration) Ban {
	b := manual(prefix, created, d)
	b.Source, b.Reason = SourceAuto, "strikes"
	return b
}

func TestBannedMatchesPrefixes(t *testing.T) {
	s := memStore(t, 100)
	for _, b := range []Ban{
		manual("203.0.113.0/24", t0, 2*time.Hour),
		auto("203.0.113.7/32", t0, time.Hour),
		auto("2001:db8:1:2::/64", t0, time.Hour),
		manual("198.51.100.99/16", t0, time.Hour), // stored masked
	} {
		if err := s.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		addr   string
		prefix string // "" means not banned
	}{
		{"203.0.113.7", "203.0.113.7/32"}, // the most specific ban wins
		{"203.0.113.8", "203.0.113.0/24"},
		{"::ffff:203.0.113.8", "203.0.113.0/24"}, // IPv4-mapped is the same client
		{"203.0.114.1", ""},
		{"198.51.1.1", "198.51.0.0/16"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1%eth0", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", ""},
		{"::cb00:7107", ""}, // IPv4-compatible IPv6 is not 203.0.113.7
	}
	for _, tt := range tests {
		b, ok := s.Banned(netip.MustParseAddr(tt.addr), t0.Add(time.Minute))
		if got := ""; ok {
			got = b.Prefix.String()
			if got != tt.prefix {
				t.Errorf("%s banned by %s, want %q", tt.addr, got, tt.prefix)
			}
		} else if tt.prefix != "" {
			t.Errorf("%s not banned, want %s", tt.addr, tt.prefix)
		}
	}
	if _, ok := s.Banned(netip.Addr{}, t0); ok {
		t.Error("invalid address banned")
	}
	// Once the /32 has expired the /24 still covers the address, and then
	// that expires too.
	a := netip.MustParseAddr("203.0.113.7")
	if b, ok := s.Banned(a, t0.Add(90*time.Minute)); !ok || b.Prefix.Bits() != 24 {
		t.Errorf("at +90m: %+v %v, want the /24", b, ok)
	}
	if b, ok := s.Banned(a, t0.Add(3*time.Hour)); ok {
		t.Errorf("expired bans still match: %+v", b)
	}
}

func TestExpiry(t *testing.T) {
	s := memStore(t, 10)
	b := auto("192.0.2.1/32", t0, 10*time.Minute)
	if err := s.Add(b); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	steps := []struct {
		at     time.Duration
		banned bool
	}{{0, true}, {10*time.Minute - time.Nanosecond, true}, {10 * time.Minute, false}, {time.Hour, false}}
	for _, st := range steps {
		if _, got := s.Banned(a, t0.Add(st.at)); got != st.banned {
			t.Errorf("at +%v banned=%v, want %v", st.at, got, st.banned)
		}
		if got := len(s.List(t0.Add(st.at))); got != map[bool]int{true: 1, false: 0}[st.banned] {
			t.Errorf("at +%v List has %d bans", st.at, got)
		}
	}
	if s.Len() != 1 {
		t.Errorf("expired ban dropped before a sweep: Len %d", s.Len())
	}
	if n, err := s.Sweep(t0.Add(10 * time.Minute)); n != 1 || err != nil || s.Len() != 0 {
		t.Errorf("Sweep = %d, %v; Len %d", n, err, s.Len())
	}
}

func TestManualAddRemoveList(t *testing.T) {
	s := memStore(t, 10)
	for _, p := range []string{"2001:db8::/32", "198.51.100.0/24", "192.0.2.1/32", "192.0.2.0/24", "::ffff:192.0.2.9/128"} {
		if err := s.Add(manual(p, t0, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, b := range s.List(t0) {
		got = append(got, b.Prefix.String())
	}
	want := "192.0.2.0/24 192.0.2.1/32 192.0.2.9/32 198.51.100.0/24 2001:db8::/32"
	if strings.Join(got, " ") != want {
		t.Errorf("List = %v, want %s", got, want)
	}

	// Adding the same prefix again replaces the ban.
	longer := manual("192.0.2.0/24", t0, 48*time.Hour)
	if err := s.Add(longer); err != nil || s.Len() != 5 {
		t.Fatalf("re-add: %v, Len %d", err, s.Len())
	}
	if _, ok := s.Banned(netip.MustParseAddr("192.0.2.200"), t0.Add(24*time.Hour)); !ok {
		t.Error("re-added ban was not extended")
	}

	removes := []struct {
		prefix  string
		removed bool
	}{
		{"192.0.2.0/24", true},
		{"192.0.2.0/24", false},
		{"192.0.2.0/25", false}, // only the exact prefix is lifted
		{"::ffff:192.0.2.9/128", true},
		{"2001:db8::1/32", true}, // masked like Add
	}
	for _, tt := range removes {
		removed, err := s.Remove(netip.MustParsePrefix(tt.prefix))
		if removed != tt.removed || err != nil {
			t.Errorf("Remove(%s) = %v, %v, want %v", tt.prefix, removed, err, tt.removed)
		}
	}
	if _, ok := s.Banned(netip.MustParseAddr("192.0.2.200"), t0); ok {
		t.Error("removed ban still matches")
	}
	if _, ok := s.Banned(netip.MustParseAddr("192.0.2.1"), t0); !ok {
		t.Error("the /32 went with the /24")
	}
	if _, err := s.Remove(netip.Prefix{}); err == nil {
		t.Error("Remove of an invalid prefix succeeded")
	}
}

func TestAddValidates(t *testing.T) {
	good := manual("192.0.2.0/24", t0, time.Hour)
	tests := []struct {
		name string
		edit func(*Ban)
		want string
	}{
		{"no prefix", func(b *Ban) { b.Prefix = netip.Prefix{} }, "prefix is missing or invalid"},
		{"bad source", func(b *Ban) { b.Source = "robot" }, `source "robot" must be "auto" or "manual" (or "crowdsec")`},
		{"until before created", func(b *Ban) { b.Until = b.Created.Add(-time.Second) }, "is not after created"},
		{"no times", func(b *Ban) { b.Created, b.Until = time.Time{}, time.Time{} }, "created time is missing"},
		{"long reason", func(b *Ban) { b.Reason = strings.Repeat("x", MaxReasonLen+1) }, "more than 512"},
	}
	s := memStore(t, 10)
	for _, tt := range tests {
		b := good
		tt.edit(&b)
		err := s.Add(b)
		if err == nil || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrNotSaved) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	if s.Len() != 0 {
		t.Errorf("invalid bans were added: %v", s.List(t0))
	}
}

func TestStoreBounded(t *testing.T) {
	s := memStore(t, 3)
	must := func(b Ban) {
		t.Helper()
		if err := s.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	must(auto("192.0.2.1/32", t0, time.Minute)) // expires first
	must(auto("192.0.2.2/32", t0, 2*time.Hour))
	must(manual("192.0.2.3/32", t0, time.Hour))
	// At +5 min the first has expired: it makes room.
	must(auto("192.0.2.4/32", t0.Add(5*time.Minute), time.Hour))
	assertBanned := func(now time.Time, want string) {
		t.Helper()
		var got []string
		for _, b := range s.List(now) {
			got = append(got, b.Prefix.Addr().String())
		}
		if strings.Join(got, " ") != want || s.Len() > 3 {
			t.Errorf("banned %v (Len %d), want %s", got, s.Len(), want)
		}
	}
	assertBanned(t0.Add(5*time.Minute), "192.0.2.2 192.0.2.3 192.0.2.4")
	// Nothing expired: the auto ban ending soonest (.4, at +65 min) goes;
	// the manual one (+60 min) stays although it ends sooner.
	must(auto("192.0.2.5/32", t0.Add(6*time.Minute), 3*time.Hour))
	assertBanned(t0.Add(6*time.Minute), "192.0.2.2 192.0.2.3 192.0.2.5")

	full := memStore(t, 2)
	for _, p := range []string{"10.0.0.1/32", "10.0.0.2/32"} {
		if err := full.Add(manual(p, t0, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := full.Add(auto("10.0.0.3/32", t0, time.Hour)); !errors.Is(err, ErrFull) {
		t.Errorf("all manual and full: %v, want ErrFull", err)
	}
	if _, err := Open("", 0); err == nil {
		t.Error("Open with maxEntries 0 succeeded")
	}
}

func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "bans.json")
	now := time.Now()
	s, err := Open(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []Ban{
		manual("192.0.2.0/24", now, 24*time.Hour),
		auto("2001:db8:1:2::/64", now, 2*time.Hour),
		auto("198.51.100.7/32", now.Add(-3*time.Hour), time.Hour), // already over
		auto("198.51.100.8/32", now, time.Hour),
	} {
		if err := s.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	if removed, err := s.Remove(netip.MustParsePrefix("198.51.100.8/32")); !removed || err != nil {
		t.Fatalf("Remove: %v %v", removed, err)
	}
	want := s.List(now)

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", st.Mode().Perm())
	}

	// A restart: the expired ban is not loaded, the rest are as they were.
	s.Close()
	s2, err := Open(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Len() != 2 {
		t.Errorf("reopened store holds %d bans, want 2", s2.Len())
	}
	got := s2.List(now)
	if len(got) != len(want) {
		t.Fatalf("after reopen %v, want %v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Prefix != w.Prefix || g.Reason != w.Reason || g.Source != w.Source || !g.Created.Equal(w.Created) || !g.Until.Equal(w.Until) {
			t.Errorf("ban %d after reopen %+v, want %+v", i, g, w)
		}
	}
	if _, ok := s2.Banned(netip.MustParseAddr("2001:db8:1:2::99"), now); !ok {
		t.Error("ban lost across restart")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "198.51.100.7") {
		t.Errorf("expired ban still in the file after reopening:\n%s", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 2 { // the state file and its lock
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestOpenKeepsManualBansWhenLimitLowered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.json")
	now := time.Now()
	s, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []Ban{
		auto("10.0.0.1/32", now, time.Hour),
		auto("10.0.0.2/32", now, 3*time.Hour),
		manual("10.0.0.3/32", now, time.Hour),
		auto("10.0.0.4/32", now, 2*time.Hour),
	} {
		if err := s.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = Open(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range s.List(now) {
		got = append(got, b.Prefix.String())
	}
	if strings.Join(got, " ") != "10.0.0.2/32 10.0.0.3/32" {
		t.Errorf("kept %v, want the manual ban and the longest auto ban", got)
	}
}

func TestCorruptStateFile(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"not JSON", "{not json", "is corrupt"},
		{"truncated", `{"version":1,"bans":[{"prefix":"192.0.2.1/32"`, "is corrupt"},
		{"trailing data", `{"version":1,"bans":[]} {}`, "data after the JSON document"},
		{"unknown field", `{"version":1,"bans":[],"extra":1}`, "is corrupt"},
		{"other version", `{"version":2,"bans":[]}`, "has version 2, want 1"},
		{"bad prefix", `{"version":1,"bans":[{"prefix":"192.0.2.300/32"}]}`, "is corrupt"},
		{"invalid ban", `{"version":1,"bans":[{"prefix":"192.0.2.1/32","source":"auto","created":"2026-01-01T00:00:00Z","until":"2025-01-01T00:00:00Z"}]}`,
			"entry 0: ban 192.0.2.1/32: until 2025-01-01T00:00:00Z is not after created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bans.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path, 10)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one naming %s and containing %q", err, path, tt.want)
			}
		})
	}
}

func TestUnsavedChangeStillApplies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := Open(filepath.Join(dir, "bans.json"), 10)
	if err != nil {
		t.Fatal(err)
	}
	breakDir(t, dir)
	err = s.Add(manual("192.0.2.0/24", t0, time.Hour))
	if !errors.Is(err, ErrNotSaved) || !strings.Contains(err.Error(), "bans.json") {
		t.Errorf("Add: %v, want ErrNotSaved naming the file", err)
	}
	if _, ok := s.Banned(netip.MustParseAddr("192.0.2.1"), t0); !ok {
		t.Error("unsaved ban not in effect")
	}
}

// breakDir replaces the state directory with a plain file, so the next write
// fails whatever the test's privileges (root ignores permission bits).
func breakDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryOnlyWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s := memStore(t, 10)
	if err := s.Add(manual("192.0.2.0/24", t0, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("memory-only store wrote %v", entries)
	}
}

func TestConcurrentUse(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "bans.json"), 50)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTracker(s, 3, time.Minute, time.Hour, 100)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				a := netip.AddrFrom4([4]byte{10, byte(g), 0, byte(i % 40)})
				now := t0.Add(time.Duration(i) * time.Second)
				s.Banned(a, now)
				if _, err := tr.Strike(a, "status 404", now); err != nil {
					t.Error(err)
				}
				if i%50 == 0 {
					s.Remove(netip.PrefixFrom(a, 32))
					s.List(now)
				}
			}
		})
	}
	wg.Wait()
	if s.Len() > 50 {
		t.Errorf("store exceeded its bound: %d", s.Len())
	}
	s.Close()
	reopened, err := Open(s.path, 50)
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Len() != s.Len() {
		t.Errorf("file has %d bans, memory %d: a newer state was overwritten by an older one", reopened.Len(), s.Len())
	}
}

func TestBannedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s := benchStore(t, 1000)
	hit, miss := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("2001:db8::1")
	allocs := testing.AllocsPerRun(1000, func() {
		s.Banned(hit, t0)
		s.Banned(miss, t0)
	})
	if allocs != 0 {
		t.Errorf("Banned allocates %v times per call", allocs)
	}
}

// benchStore holds n /32 bans in 10.0.0.0/8, a /24 and an IPv6 /64.
func benchStore(t testing.TB, n int) *Store {
	s := memStore(t, n+2)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if err := s.Add(auto(netip.PrefixFrom(a, 32).String(), t0, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"198.51.100.0/24", "2001:db8:1:2::/64"} {
		if err := s.Add(manual(p, t0, time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func BenchmarkBanned(b *testing.B) {
	s := benchStore(b, 10_000)
	for _, bc := range []struct{ name, addr string }{
		{"hitIPv4", "10.0.10.10"},
		{"missIPv4", "192.0.2.1"},
		{"hitIPv6", "2001:db8:1:2::1"},
		{"missIPv6", "2001:db8:9::1"},
	} {
		a := netip.MustParseAddr(bc.addr)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Banned(a, t0)
			}
		})
	}
	b.Run("parallelIPv4", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s.Banned(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), t0)
				i++
			}
		})
	})
}

func ExampleStore_Banned() {
	s, _ := Open("", 100)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Add(Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Reason: "scanner", Source: SourceManual, Created: created, Until: created.Add(time.Hour)})
	b, ok := s.Banned(netip.MustParseAddr("203.0.113.9"), created.Add(time.Minute))
	fmt.Println(ok, b.Prefix, b.Reason)
	// Output: true 203.0.113.0/24 scanner
}

func TestStateFileHasOneOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.json")
	first, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, 10); err == nil || !strings.Contains(err.Error(), "in use by another Portcullis instance") {
		t.Fatalf("second owner: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, 10)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	second.Close()
}
