package reputation

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/geoip2-golang/v2"

	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

// countryRecord is the shape of a GeoLite2-Country record, trimmed.
func countryRecord(iso, name string) mmdbtype.Map {
	c := mmdbtype.Map{
		"iso_code":   mmdbtype.String(iso),
		"geoname_id": mmdbtype.Uint32(len(iso)),
		"names":      mmdbtype.Map{"en": mmdbtype.String(name), "de": mmdbtype.String(name)},
	}
	return mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "names": mmdbtype.Map{"en": mmdbtype.String("Europe")}},
		"country":            c,
		"registered_country": c,
	}
}

func asnRecord(asn uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(asn),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

// writeMMDB writes a database of dbType with records to path, atomically
// (write then rename), as GeoIP Update does.
func writeMMDB(t testing.TB, path, dbType string, records map[string]mmdbtype.Map) {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		RecordSize:              24,
		IncludeReservedNetworks: true, // the test networks are documentation ranges
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(t, path, buf.Bytes())
}

// writeFileAtomic replaces path and moves its modification time forward,
// so a change is visible even on file systems with coarse timestamps.
func writeFileAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	bump(t, tmp)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var bumpMu sync.Mutex
var bumpAt = time.Now()

func bump(t testing.TB, path string) {
	t.Helper()
	bumpMu.Lock()
	bumpAt = bumpAt.Add(time.Second)
	at := bumpAt
	bumpMu.Unlock()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

var (
	countryV1 = map[string]mmdbtype.Map{
		"81.2.69.0/24":   countryRecord("GB", "United Kingdom"),
		"192.0.2.0/24":   countryRecord("DE", "Germany"),
		"2001:db8::/32":  countryRecord("FR", "France"),
		"2a02:ff00::/24": countryRecord("NL", "Netherlands"),
	}
	asnV1 = map[string]mmdbtype.Map{
		"81.2.69.0/24":  asnRecord(64496, "Example Transit"),
		"2001:db8::/32": asnRecord(64500, "Example IPv6 Org"),
	}
)

// syncBuffer collects log output from background goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	var b syncBuffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

func geoFixtures(t testing.TB) (countryPath, asnPath string) {
	dir := t.TempDir()
	countryPath, asnPath = filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeMMDB(t, countryPath, "GeoLite2-Country", countryV1)
	writeMMDB(t, asnPath, "GeoLite2-ASN", asnV1)
	return countryPath, asnPath
}

func TestGeoIPLookup(t *testing.T) {
	countryPath, asnPath := geoFixtures(t)
	log, _ := testLogger()
	g, err := OpenGeoIP(countryPath, asnPath, log)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want Location
	}{
		{"81.2.69.142", Location{"GB", 64496, "Example Transit"}},
		{"::ffff:81.2.69.142", Location{"GB", 64496, "Example Transit"}},
		{"192.0.2.1", Location{Country: "DE"}},
		{"2001:db8::1", Location{"FR", 64500, "Example IPv6 Org"}},
		{"2001:db8:ffff::1%eth0", Location{"FR", 64500, "Example IPv6 Org"}},
		{"2a02:ff00::1", Location{Country: "NL"}},
		{"198.51.100.1", Location{}},
		{"2001:db9::1", Location{}},
	}
	for _, tt := range tests {
		if got := g.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.addr, got, tt.want)
		}
	}
	if got := g.Lookup(netip.Addr{}); got != (Location{}) {
		t.Errorf("Lookup(zero) = %+v", got)
	}
}

func TestGeoIPOpenOnlyOne(t *testing.T) {
	countryPath, asnPath := geoFixtures(t)
	log, _ := testLogger()
	g, err := OpenGeoIP(countryPath, "", log)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Lookup(netip.MustParseAddr("81.2.69.1")); got != (Location{Country: "GB"}) {
		t.Errorf("country only: %+v", got)
	}
	g, err = OpenGeoIP("", asnPath, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Lookup(netip.MustParseAddr("81.2.69.1")); got != (Location{ASN: 64496, ASOrg: "Example Transit"}) {
		t.Errorf("asn only: %+v", got)
	}
}

func TestOpenGeoIPErrors(t *testing.T) {
	countryPath, asnPath := geoFixtures(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(dir, "custom.mmdb")
	writeMMDB(t, custom, "My-Custom-DB", asnV1)
	tests := []struct {
		name, country, asn, want string
	}{
		{"nothing", "", "", "no database given"},
		{"missing", filepath.Join(dir, "nope.mmdb"), "", "no such file"},
		{"garbage", garbage, "", "geoip country database " + garbage},
		{"swapped", asnPath, countryPath, "does not support"},
		{"asn given a country db", "", countryPath, "geoip ASN database"},
		{"unknown type", custom, "", "My-Custom-DB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenGeoIP(tt.country, tt.asn, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenGeoIP = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestGeoIPReload(t *testing.T) {
	countryPath, asnPath := geoFixtures(t)
	log, logs := testLogger()
	g, err := OpenGeoIP(countryPath, asnPath, log)
	if err != nil {
		t.Fatal(err)
	}
	g.Start(5 * time.Millisecond)
	defer g.Stop()
	addr := netip.MustParseAddr("81.2.69.142")
	v6 := netip.MustParseAddr("2001:db8::1")

	// A new country database moves the address; the ASN one is untouched.
	writeMMDB(t, countryPath, "GeoLite2-Country", map[string]mmdbtype.Map{
		"81.2.69.0/24":  countryRecord("IE", "Ireland"),
		"2001:db8::/32": countryRecord("SE", "Sweden"),
	})
	waitFor(t, "country reload", func() bool { return g.Lookup(addr).Country == "IE" })
	if got := g.Lookup(v6); got != (Location{"SE", 64500, "Example IPv6 Org"}) {
		t.Errorf("after reload Lookup(%s) = %+v", v6, got)
	}

	// A broken replacement is logged and the old database stays.
	writeFileAtomic(t, asnPath, []byte("truncated download"))
	waitFor(t, "broken file logged", func() bool { return strings.Contains(logs.String(), "geoip reload failed") })
	if got := g.Lookup(addr); got != (Location{"IE", 64496, "Example Transit"}) {
		t.Errorf("after broken reload Lookup = %+v", got)
	}
	// Reported once, not on every check. Not a synchronisation: a grace
	// period for the negative assertion, in which the check runs again.
	time.Sleep(30 * time.Millisecond)
	if n := strings.Count(logs.String(), "geoip reload failed"); n != 1 {
		t.Errorf("broken file reported %d times, want 1", n)
	}

	// A repaired file is picked up.
	writeMMDB(t, asnPath, "GeoLite2-ASN", map[string]mmdbtype.Map{"81.2.69.0/24": asnRecord(65000, "New Org")})
	waitFor(t, "asn reload", func() bool { return g.Lookup(addr).ASN == 65000 })
	if !strings.Contains(logs.String(), "geoip database reloaded") {
		t.Error("reload not logged")
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !waitfor.True(5*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestGeoIPLookupAllocations(t *testing.T) {
	countryPath, asnPath := geoFixtures(t)
	g, err := OpenGeoIP(countryPath, asnPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"81.2.69.142", "2001:db8::1", "198.51.100.1"} {
		a := netip.MustParseAddr(s)
		// The maxminddb decoder's destination escapes: two 16-24 byte
		// structs. Anything more is a regression (geoip2's records: 848 B).
		if n := testing.AllocsPerRun(200, func() { g.Lookup(a) }); n > 2 {
			t.Errorf("GeoIP.Lookup(%s): %v allocations, want at most 2", s, n)
		}
	}
}

// BenchmarkGeoIPLookup measures Lookup against geoip2's own Country and
// ASN methods on the same files, the reason Lookup decodes through the
// underlying maxminddb reader.
func BenchmarkGeoIPLookup(b *testing.B) {
	countryPath, asnPath := geoFixtures(b)
	g, err := OpenGeoIP(countryPath, asnPath, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	gc, err := geoip2.Open(countryPath)
	if err != nil {
		b.Fatal(err)
	}
	defer gc.Close()
	ga, err := geoip2.Open(asnPath)
	if err != nil {
		b.Fatal(err)
	}
	defer ga.Close()
	for _, s := range []string{"81.2.69.142", "2001:db8::1", "198.51.100.1"} {
		a := netip.MustParseAddr(s)
		b.Run("Lookup/"+s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g.Lookup(a)
			}
		})
		b.Run("geoip2/"+s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, _ := gc.Country(a)
				r, _ := ga.ASN(a)
				_ = Location{c.Country.ISOCode, r.AutonomousSystemNumber, r.AutonomousSystemOrganization}
			}
		})
	}
}
