package reputation

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

// TestStages: the allow, deny and GeoIP stages of one site, in the chain's
// order, on records that Locate would have filled.
func TestStages(t *testing.T) {
	cfg := &config.Config{Source: "test.yaml", Lists: []config.ListConfig{
		{Name: "office", Action: config.ListAllow, Inline: []string{"203.0.113.0/24"}, MaxShrink: 0.5},
		{Name: "drop", Action: config.ListDeny, Inline: []string{"198.51.100.0/24", "203.0.113.66"}, MaxShrink: 0.5},
	}}
	src, err := NewSources(cfg, SourcesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fc := config.FiltersConfig{AllowLists: []string{"office"}, DenyLists: []string{"drop"},
		CountryAllow: []string{"DE", "FR"}, CountryDeny: []string{"FR"}, DenyASNs: []uint{64496}}
	reached := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Reached", name) })
	}
	h := src.NewAllow(fc, src.NewDeny(fc, src.NewGeoIP(fc, reached("next"))), reached("listed"))
	for _, tc := range []struct {
		name, client, country string
		asn                   uint
		status                int
		reached, stage        string
	}{
		{"allow-listed skips the rest, even a deny list", "203.0.113.66", "", 0, 200, "listed", ""},
		{"deny-listed", "198.51.100.7", "DE", 0, 403, "", audit.StageReputation},
		{"allowed country", "192.0.2.1", "DE", 0, 200, "next", ""},
		{"country not allowed", "192.0.2.1", "US", 0, 403, "", audit.StageGeoIP},
		{"unknown country with an allow list", "192.0.2.1", "", 0, 403, "", audit.StageGeoIP},
		{"denied country", "192.0.2.1", "FR", 0, 403, "", audit.StageGeoIP},
		{"denied AS", "192.0.2.1", "DE", 64496, 403, "", audit.StageGeoIP},
		{"not an IP client", "", "", 0, 200, "next", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &audit.Entry{ID: "id", Country: tc.country, ASN: tc.asn}
			if tc.client != "" {
				e.Addr = netip.MustParseAddr(tc.client)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r = r.WithContext(audit.WithEntry(r.Context(), e))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || w.Header().Get("Reached") != tc.reached || e.Stage != tc.stage {
				t.Errorf("status %d, reached %q, stage %q; want %d %q %q", w.Code, w.Header().Get("Reached"), e.Stage, tc.status, tc.reached, tc.stage)
			}
			if (tc.reached == "listed") != (e.AllowListed != "") {
				t.Errorf("allow_listed %q", e.AllowListed)
			}
		})
	}
	// A site without lists or GeoIP rules has no such stages.
	next := http.NewServeMux()
	none := config.FiltersConfig{}
	if src.NewAllow(none, next, next) != http.Handler(next) || src.NewDeny(none, next) != http.Handler(next) || src.NewGeoIP(none, next) != http.Handler(next) {
		t.Error("a stage with nothing to do must be next itself")
	}
}

// TestSourcesTakeOver: a reload takes over a list whose settings did not
// change and builds a changed one afresh; every problem is reported.
func TestSourcesTakeOver(t *testing.T) {
	lists := []config.ListConfig{
		{Name: "a", Action: config.ListDeny, Inline: []string{"192.0.2.0/24"}, MaxShrink: 0.5},
		{Name: "b", Action: config.ListDeny, Inline: []string{"198.51.100.0/24"}, MaxShrink: 0.5},
	}
	first, err := NewSources(&config.Config{Lists: lists}, SourcesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed := append([]config.ListConfig(nil), lists...)
	changed[1].Inline = []string{"198.51.100.0/25"}
	next, err := NewSources(&config.Config{Lists: changed}, SourcesOptions{From: first})
	if err != nil {
		t.Fatal(err)
	}
	if next.lists["a"] != first.lists["a"] || next.lists["b"] == first.lists["b"] {
		t.Error("unchanged list a must be taken over, changed list b built again")
	}
	next.TakeOver(first)
	if first.owns(first.lists["a"]) || !next.owns(next.lists["a"]) || !first.owns(first.lists["b"]) {
		t.Error("after the takeover the successor owns a, the predecessor still owns its own b")
	}
	first.Close()
	next.Close()

	bad := []config.ListConfig{
		{Name: "x", Action: config.ListDeny, File: "testdata/does-not-exist.txt", MaxShrink: 0.5},
		{Name: "y", Action: config.ListDeny, File: "testdata/also-missing.txt", MaxShrink: 0.5},
	}
	_, err = NewSources(&config.Config{Source: "p.yaml", Lists: bad, GeoIP: config.GeoIPConfig{CountryDB: "testdata/none.mmdb"}}, SourcesOptions{Check: true})
	got := config.ErrorList(err)
	if len(got) != 3 || got[0].Path != "reputation.lists[0]" || got[1].Path != "reputation.lists[1]" || got[2].Path != "reputation.geoip" {
		t.Errorf("want the two lists and the database reported, got:\n%v", err)
	}
}
