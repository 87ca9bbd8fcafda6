package reputation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/portcullis-waf/portcullis/internal/every"
)

// MaxGeoIPFileSize bounds a database file. GeoLite2-City is about 60 MiB,
// commercial City/Enterprise databases a few hundred.
const MaxGeoIPFileSize = 1 << 30

// DefaultGeoIPCheck is how often Start checks the files when given 0.
const DefaultGeoIPCheck = time.Minute

// Location is what the GeoIP databases say about an address. Zero fields
// are unknown.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code of the country where the
	// database places the address ("DE"), "" if unknown. It is the
	// "country" record, not "registered_country": where the address is
	// used, not where its block was registered.
	Country string
	// ASN is the autonomous system number, 0 if unknown.
	ASN uint
	// ASOrg is the organisation of the autonomous system.
	ASOrg string
}

// GeoIP looks addresses up in a Country (or City) database and an ASN
// database, in MaxMind (GeoLite2/GeoIP2) or DB-IP format. Lookup is safe
// for concurrent use and never blocks.
//
// The files are read into memory rather than memory-mapped: a database
// replaced in place (cp over it) would otherwise change under a running
// lookup, and an old reader can be dropped while lookups still use it; the
// garbage collector frees it after the last one.
//
// geoip2 opens each file and vouches for it: it knows which database types
// (GeoLite2/GeoIP2 Country, City, ASN, ISP; DB-IP Country, City, ASN)
// answer which question. Lookups then go to its underlying maxminddb
// reader over the same bytes, decoding only the three fields we need:
// geoip2's Country and ASN methods return whole records on the heap (848
// bytes a lookup, every name in eight languages) where this costs two
// small allocations (40 bytes) and a third of the time. See
// BenchmarkGeoIPLookup.
type GeoIP struct {
	countryPath, asnPath string
	log                  *slog.Logger

	country, asn atomic.Pointer[geoDB]

	mu           sync.Mutex // guards the stamps
	countryStamp string
	asnStamp     string
	loop         every.Loop // periodic file checks
}

// OpenGeoIP opens the databases; either path may be empty, not both. An
// error (missing file, not a database, a Country path holding an ASN
// database) is a configuration error.
func OpenGeoIP(countryPath, asnPath string, log *slog.Logger) (*GeoIP, error) {
	if countryPath == "" && asnPath == "" {
		return nil, errors.New("geoip: no database given")
	}
	if log == nil {
		log = slog.Default()
	}
	g := &GeoIP{countryPath: countryPath, asnPath: asnPath, log: log}
	g.mu.Lock()
	defer g.mu.Unlock()
	if countryPath != "" {
		if _, err := g.reloadLocked(&g.country, &g.countryStamp, countryPath, kindCountry); err != nil {
			return nil, err
		}
	}
	if asnPath != "" {
		if _, err := g.reloadLocked(&g.asn, &g.asnStamp, asnPath, kindASN); err != nil {
			return nil, err
		}
	}
	return g, nil
}

type dbKind int

const (
	kindCountry dbKind = iota
	kindASN
)

func (k dbKind) String() string {
	if k == kindASN {
		return "ASN"
	}
	return "country"
}

// geoDB is one opened database.
type geoDB struct {
	mm   *maxminddb.Reader
	meta maxminddb.Metadata
}

// openDB reads and checks one database file.
func openDB(path string, kind dbKind) (*geoDB, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("geoip %s database: %w", kind, err)
	}
	if st.Size() > MaxGeoIPFileSize {
		return nil, fmt.Errorf("geoip %s database %s: %d bytes, larger than %d MiB", kind, path, st.Size(), MaxGeoIPFileSize>>20)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geoip %s database: %w", kind, err)
	}
	r, err := geoip2.OpenBytes(data)
	if err != nil {
		// OpenBytes returns a reader with an unknown-type error; it holds
		// nothing but memory, so dropping it is enough.
		return nil, fmt.Errorf("geoip %s database %s: %w", kind, path, err)
	}
	// Ask the reader whether it can answer the question we will ask: a
	// swapped country_db/asn_db is caught here, not as silent blanks.
	probe := netip.IPv4Unspecified()
	if kind == kindCountry {
		_, err = r.Country(probe)
	} else {
		_, err = r.ASN(probe)
	}
	if err != nil {
		return nil, fmt.Errorf("geoip %s database %s (type %q): %w", kind, path, r.Metadata().DatabaseType, err)
	}
	mm, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geoip %s database %s: %w", kind, path, err)
	}
	return &geoDB{mm: mm, meta: mm.Metadata}, nil
}

// countryFields and asnFields are the only fields Lookup decodes.
type countryFields struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
}

type asnFields struct {
	Number uint   `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// reloadLocked opens path if its stamp changed and swaps it in. It reports
// whether it swapped. A broken file is reported once per change.
func (g *GeoIP) reloadLocked(dst *atomic.Pointer[geoDB], stamp *string, path string, kind dbKind) (bool, error) {
	s, err := fileStamp(path)
	if err != nil {
		s = "error: " + err.Error()
	}
	if s == *stamp {
		return false, nil
	}
	*stamp = s
	r, err := openDB(path, kind)
	if err != nil {
		return false, err
	}
	dst.Store(r)
	return true, nil
}

// Lookup returns what the databases know about addr. IPv4-mapped IPv6
// addresses are looked up as IPv4. A database error for one address (a
// corrupt record) leaves the fields it would have filled empty.
func (g *GeoIP) Lookup(addr netip.Addr) Location {
	var loc Location
	if !addr.IsValid() {
		return loc
	}
	addr = addr.Unmap().WithZone("")
	if db := g.country.Load(); db != nil {
		var c countryFields
		if err := db.mm.Lookup(addr).Decode(&c); err == nil {
			loc.Country = c.Country.ISOCode
		}
	}
	if db := g.asn.Load(); db != nil {
		var a asnFields
		if err := db.mm.Lookup(addr).Decode(&a); err == nil {
			loc.ASN, loc.ASOrg = a.Number, a.Org
		}
	}
	return loc
}

// Reload re-reads the files that changed since the last load. A broken
// replacement is returned (both, if both are broken) and the old database
// stays in use.
func (g *GeoIP) Reload() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, db := range []struct {
		dst   *atomic.Pointer[geoDB]
		stamp *string
		path  string
		kind  dbKind
	}{
		{&g.country, &g.countryStamp, g.countryPath, kindCountry},
		{&g.asn, &g.asnStamp, g.asnPath, kindASN},
	} {
		if db.path == "" {
			continue
		}
		swapped, err := g.reloadLocked(db.dst, db.stamp, db.path, db.kind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if swapped {
			md := db.dst.Load().meta
			g.log.Info("geoip database reloaded", "kind", db.kind.String(), "path", db.path,
				"type", md.DatabaseType, "built", md.BuildTime().UTC())
		}
	}
	return errors.Join(errs...)
}

// Start checks the files for changes every interval (0 means
// DefaultGeoIPCheck) until Stop. Replacing a database file (GeoIP Update,
// a cron job) therefore takes effect without a restart.
func (g *GeoIP) Start(interval time.Duration) {
	if interval <= 0 {
		interval = DefaultGeoIPCheck
	}
	g.loop.Start(interval, func(context.Context) {
		if err := g.Reload(); err != nil {
			g.log.Error("geoip reload failed; keeping the previous database", "err", err)
		}
	})
}

// Stop ends the file checks.
func (g *GeoIP) Stop() { g.loop.Stop() }
