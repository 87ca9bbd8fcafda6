package reputation

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/challenge"
	"github.com/portcullis-waf/portcullis/config"
)

// TestStagesChallengeAction (issue 17, item 3): deny lists and GeoIP rules
// with action: challenge answer a hit with the challenge page (403, the
// record names the filter and the answer); a client with a valid pass of
// its own goes on; with action block, or without a challenger, a hit is
// refused as ever.
func TestStagesChallengeAction(t *testing.T) {
	ch, err := challenge.New(challenge.Options{Key: []byte(strings.Repeat("k", 32)), Difficulty: 4, PassTTL: time.Hour, NonceTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Source: "test.yaml", Lists: []config.ListConfig{
		{Name: "drop", Action: config.ListDeny, Inline: []string{"198.51.100.0/24"}, MaxShrink: 0.5},
	}}
	passFor := func(addr string) string {
		return ch.Pass(challenge.ClientOf(httptest.NewRequest("GET", "/", nil), addr), time.Now())
	}
	for _, tc := range []struct {
		name              string
		denyAct, geoAct   string
		challenger        bool
		client, country   string
		passOf            string
		status            int
		page              bool
		stage, reason     string
		counted, counted2 string // results counted (stage:result)
	}{
		{"deny list, block", config.ActionBlock, config.ActionBlock, true, "198.51.100.7", "DE", "", 403, false, audit.StageReputation, "on deny list drop (entry 198.51.100.0/24)", "", ""},
		{"deny list, challenge", config.ActionChallenge, config.ActionBlock, true, "198.51.100.7", "DE", "", 403, true, audit.StageReputation, "on deny list drop (entry 198.51.100.0/24); answered with the challenge", "reputation:served", ""},
		{"deny list, challenge, with a pass", config.ActionChallenge, config.ActionBlock, true, "198.51.100.7", "DE", "198.51.100.7", 200, false, "", "", "reputation:passed", ""},
		{"deny list, challenge, another client's pass", config.ActionChallenge, config.ActionBlock, true, "198.51.100.7", "DE", "198.51.100.8", 403, true, audit.StageReputation, "answered with the challenge", "reputation:served", ""},
		{"deny list, block, with a pass", config.ActionBlock, config.ActionBlock, true, "198.51.100.7", "DE", "198.51.100.7", 403, false, audit.StageReputation, "on deny list drop", "", ""},
		{"deny list, challenge without a challenger", config.ActionChallenge, config.ActionBlock, false, "198.51.100.7", "DE", "", 403, false, audit.StageReputation, "on deny list drop", "", ""},
		{"country, challenge", config.ActionBlock, config.ActionChallenge, true, "192.0.2.1", "US", "", 403, true, audit.StageGeoIP, `country "US" is not allowed; answered with the challenge`, "geoip:served", ""},
		{"country, challenge, with a pass", config.ActionBlock, config.ActionChallenge, true, "192.0.2.1", "US", "192.0.2.1", 200, false, "", "", "geoip:passed", ""},
		{"AS, challenge", config.ActionBlock, config.ActionChallenge, true, "192.0.2.1", "DE", "", 403, true, audit.StageGeoIP, "AS64496 (Example) is denied; answered with the challenge", "geoip:served", ""},
		{"both, two passes", config.ActionChallenge, config.ActionChallenge, true, "198.51.100.7", "US", "198.51.100.7", 200, false, "", "", "reputation:passed", "geoip:passed"},
		{"clean client", config.ActionChallenge, config.ActionChallenge, true, "192.0.2.1", "DE", "", 200, false, "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewSources(cfg, SourcesOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var counted []string
			if tc.challenger {
				src.ChallengeWith(ch, func(stage, result string) { counted = append(counted, stage+":"+result) })
			}
			fc := config.FiltersConfig{DenyLists: []string{"drop"}, DenyListsAction: tc.denyAct,
				CountryAllow: []string{"DE"}, DenyASNs: []uint{64496}, GeoIPAction: tc.geoAct}
			var reached bool
			h := src.NewDeny(fc, src.NewGeoIP(fc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true })))
			e := &audit.Entry{ID: "id", Addr: netip.MustParseAddr(tc.client), Country: tc.country}
			if strings.HasPrefix(tc.name, "AS") {
				e.ASN, e.ASOrg = 64496, "Example"
			}
			r := httptest.NewRequest("GET", "/", nil)
			if tc.passOf != "" {
				r.AddCookie(&http.Cookie{Name: challenge.PassCookie, Value: passFor(tc.passOf)})
			}
			r = r.WithContext(audit.WithEntry(r.Context(), e))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			page := strings.Contains(w.Body.String(), "data-nonce=")
			if w.Code != tc.status || page != tc.page || reached != (tc.status == 200) {
				t.Fatalf("status %d page %v reached %v; want %d %v", w.Code, page, reached, tc.status, tc.page)
			}
			if e.Stage != tc.stage || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("record: stage %q reason %q; want %q %q", e.Stage, e.Reason, tc.stage, tc.reason)
			}
			var want []string
			for _, c := range []string{tc.counted, tc.counted2} {
				if c != "" {
					want = append(want, c)
				}
			}
			if strings.Join(counted, ",") != strings.Join(want, ",") {
				t.Errorf("counted %v, want %v", counted, want)
			}
		})
	}
}
