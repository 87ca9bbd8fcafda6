package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/internal/waitfor"
)

func TestTrustedProxyDecidesTheClientAddress(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	tp := startProxy(t, "client_ip:\n  trusted_proxies: [127.0.0.1]\naudit:\n  log_all: true\n"+basicConfig, up.URL)
	// 127.0.0.1 is trusted; 10.1.1.1 is claimed by the client and untrusted
	// addresses are never skipped, so the right-most untrusted one wins.
	_, got, id := do(t, "GET", tp.URL+"/", "", http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.9"}})
	if !strings.Contains(got, "X-Forwarded-For: 203.0.113.9\r\n") {
		t.Errorf("upstream did not get the resolved client:\n%s", got)
	}
	e := tp.entryFor(t, id)
	if e.ClientIP != "203.0.113.9" || e.Peer != "127.0.0.1" {
		t.Errorf("record client %s peer %s", e.ClientIP, e.Peer)
	}
}

// fromClient sends a request as client (via the trusted loopback proxy).
func fromClient(t *testing.T, url, client string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = "portcullis.test"
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("User-Agent", "Mozilla/5.0")
	req.Header.Set("Accept", "text/html")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, resp.Header.Get("X-Request-Id")
}

const filtersConfig = `
client_ip:
  trusted_proxies: [127.0.0.1]
upstreams:
  - name: app
    targets: ["UPSTREAM"]
reputation:
  lists:
    - name: office
      action: allow
      inline: ["203.0.113.50"]
    - name: drop
      action: deny
      file: LISTFILE
    - name: office-too
      action: deny
      inline: ["203.0.113.50"]
sites:
  - hosts: ["*"]
    filters:
      allow_lists: [office]
      deny_lists: [drop, office-too]
      rate_limits:
        - name: per-client
          rate: 0.001
          burst: 3
    routes:
      - path: /
        upstream: app
`

func TestDenyListAllowListAndRateLimit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	list := filepath.Join(t.TempDir(), "drop.txt")
	if err := os.WriteFile(list, []byte("; Spamhaus-DROP-like\n198.51.100.0/24 ; SBL1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tp := startProxy(t, strings.ReplaceAll(filtersConfig, "LISTFILE", list), up.URL)

	status, _, id := fromClient(t, tp.URL+"/", "198.51.100.7")
	if status != 403 {
		t.Fatalf("deny-listed client: %d", status)
	}
	if e := tp.entryFor(t, id); e.Stage != audit.StageReputation || !strings.Contains(e.Reason, "drop (entry 198.51.100.0/24)") {
		t.Errorf("record: stage %s reason %q", e.Stage, e.Reason)
	}

	// Rate limit: burst 3, then 429 with Retry-After and RateLimit fields;
	// another client has its own budget.
	for i := 0; i < 3; i++ {
		if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.10"); status != 200 {
			t.Fatalf("request %d within the burst: %d", i, status)
		}
	}
	status, h, id := fromClient(t, tp.URL+"/", "192.0.2.10")
	if status != 429 || h.Get("Retry-After") == "" || h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != "0" {
		t.Errorf("over the limit: %d %v", status, h)
	}
	if e := tp.entryFor(t, id); e.Stage != audit.StageRateLimit {
		t.Errorf("stage %s", e.Stage)
	}
	if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.11"); status != 200 {
		t.Errorf("another client: %d", status)
	}

	// The allow list beats deny lists and rate limits, but not the WAF.
	for i := 0; i < 5; i++ {
		if status, _, _ := fromClient(t, tp.URL+"/", "203.0.113.50"); status != 200 {
			t.Fatalf("allow-listed client, request %d: %d", i, status)
		}
	}
	if status, _, _ := fromClient(t, tp.URL+"/?q=1%27%20OR%20%271%27%3D%271", "203.0.113.50"); status != 403 {
		t.Errorf("allow-listed attack must still meet the WAF: %d", status)
	}
}

func TestAllowListCanSkipTheWAF(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := strings.Replace(strings.ReplaceAll(filtersConfig, "      file: LISTFILE\n", "      inline: [\"198.51.100.0/24\"]\n"), "      allow_lists: [office]\n", "      allow_lists: [office]\n      allow_skips_waf: true\n", 1)
	tp := startProxy(t, cfg, up.URL)
	if status, _, _ := fromClient(t, tp.URL+"/?q=1%27%20OR%20%271%27%3D%271", "203.0.113.50"); status != 200 {
		t.Errorf("allow_skips_waf: %d", status)
	}
	if status, _, _ := fromClient(t, tp.URL+"/?q=1%27%20OR%20%271%27%3D%271", "192.0.2.99"); status != 403 {
		t.Errorf("other clients still meet the WAF: %d", status)
	}
}

func TestAttackerIsBannedAndTheBanExpires(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	state := filepath.Join(t.TempDir(), "bans.json")
	cfg := "client_ip:\n  trusted_proxies: [127.0.0.1]\nbans:\n  enabled: true\n  threshold: 3\n  window: 1m\n  duration: 1s\n  state_file: " + state + "\n" + basicConfig
	tp := startProxy(t, cfg, up.URL)
	attack := tp.URL + "/?q=1%27%20OR%20%271%27%3D%271"
	for i := 0; i < 3; i++ {
		if status, _, _ := fromClient(t, attack, "192.0.2.66"); status != 403 {
			t.Fatalf("attack %d: %d", i, status)
		}
	}
	// Strikes are counted off the request path; the ban follows within moments.
	var status int
	var id string
	eventually(func() bool { status, _, id = fromClient(t, tp.URL+"/benign", "192.0.2.66"); return status == 403 })
	if status != 403 {
		t.Fatalf("banned client's benign request: %d", status)
	}
	if e := tp.entryFor(t, id); e.Stage != audit.StageBan || len(e.Rules) != 0 {
		t.Errorf("ban record: stage %s rules %v (a ban must cost no rule evaluation)", e.Stage, ruleIDs(e))
	}
	if !eventually(func() bool {
		data, err := os.ReadFile(state)
		return err == nil && strings.Contains(string(data), "192.0.2.66")
	}) {
		t.Error("ban not persisted to the state file")
	}
	if status, _, _ := fromClient(t, tp.URL+"/benign", "192.0.2.67"); status != 200 {
		t.Errorf("another client: %d", status)
	}
	// The ban lasts a second: the client is let in again once it expired.
	if !waitfor.True(10*time.Second, func() bool { status, _, _ = fromClient(t, tp.URL+"/benign", "192.0.2.66"); return status == 200 }) {
		t.Errorf("after the ban expired: %d", status)
	}
}

func TestGeoIPCountryRules(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	dir := t.TempDir()
	countryDB, asnDB := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
	writeMMDB(t, countryDB, "GeoLite2-Country", map[string]mmdbtype.Map{
		"198.51.100.0/24": country("DE"), "203.0.113.0/24": country("US"), "2001:db8::/32": country("FR"),
	})
	writeMMDB(t, asnDB, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"203.0.113.0/25": {"autonomous_system_number": mmdbtype.Uint32(64496), "autonomous_system_organization": mmdbtype.String("Example Hosting")},
	})
	cfg := fmt.Sprintf(`client_ip:
  trusted_proxies: [127.0.0.1]
reputation:
  geoip:
    country_db: %s
    asn_db: %s
audit:
  log_all: true
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    filters:
      countries:
        deny: [DE]
      deny_asns: [64496]
    routes:
      - path: /
        upstream: app
`, countryDB, asnDB)
	tp := startProxy(t, cfg, up.URL)
	tests := []struct {
		client, country string
		status          int
	}{
		{"198.51.100.7", "DE", 403}, {"203.0.113.200", "US", 200}, {"203.0.113.5", "US", 403}, {"2001:db8::1", "FR", 200}, {"192.0.2.1", "", 200},
	}
	for _, tt := range tests {
		status, _, id := fromClient(t, tp.URL+"/", tt.client)
		e := tp.entryFor(t, id)
		if status != tt.status || e.Country != tt.country {
			t.Errorf("%s: status %d country %q (%s), want %d %q", tt.client, status, e.Country, e.Reason, tt.status, tt.country)
		}
	}
}

func country(iso string) mmdbtype.Map {
	c := mmdbtype.Map{"iso_code": mmdbtype.String(iso), "names": mmdbtype.Map{"en": mmdbtype.String(iso)}}
	return mmdbtype.Map{"country": c, "registered_country": c}
}

func writeMMDB(t *testing.T, path, dbType string, records map[string]mmdbtype.Map) {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
}

// TestRateLimitHoldsItsRateAndRecovers: requests every 10 ms for 1.5 s at a
// limit of 20/s with burst 1 get through at exactly 20/s (the first of
// every 50 ms, 30 in all), a refused client is refused until its interval
// has passed and served again once it has. The pipeline's clock is stepped
// by the test, so the count does not depend on how fast the machine is.
func TestRateLimitHoldsItsRateAndRecovers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := strings.Replace(basicConfig, "    routes:\n", "    filters:\n      rate_limits:\n        - {name: steady, rate: 20, burst: 1}\n    routes:\n", 1)
	var mu sync.Mutex
	clock := time.Now()
	tp := startProxy(t, "client_ip:\n  trusted_proxies: [127.0.0.1]\n"+cfg, up.URL, func(s *Server) {
		s.Pipeline().now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	})
	step := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	const interval = 50 * time.Millisecond // 1/20 s
	var allowed []time.Duration
	for at := time.Duration(0); at < 1500*time.Millisecond; at += 10 * time.Millisecond {
		status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.20")
		switch status {
		case 200:
			allowed = append(allowed, at)
		case 429:
		default:
			t.Fatalf("status %d at %s", status, at)
		}
		step(10 * time.Millisecond)
	}
	if len(allowed) != 30 {
		t.Errorf("%d requests allowed in 1.5 s at 20/s, want 30: at %v", len(allowed), allowed)
	}
	for i, at := range allowed {
		if want := time.Duration(i) * interval; at != want {
			t.Errorf("request %d allowed at %s, want %s", i, at, want)
			break
		}
	}

	// Now at 1.5 s: the budget is back (the last allowed was at 1.45 s).
	if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.20"); status != 200 {
		t.Fatalf("after an interval: %d", status)
	}
	// Refused for the whole interval, however often it asks (refused
	// requests do not spend the budget, so asking does not delay it)...
	for i := 0; i < 5; i++ {
		step(interval/5 - time.Millisecond)
		if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.20"); status != 429 {
			t.Fatalf("%s into the interval: %d, want 429", time.Duration(i+1)*(interval/5-time.Millisecond), status)
		}
	}
	// ...and served again once it has passed.
	step(5 * time.Millisecond)
	if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.20"); status != 200 {
		t.Errorf("no recovery after an interval: %d", status)
	}
}

// TestAllowListBeatsABan: an allow-listed client is served even while banned.
func TestAllowListBeatsABan(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	state := filepath.Join(t.TempDir(), "bans.json")
	for _, addr := range []string{"203.0.113.50/32", "192.0.2.77/32"} {
		if err := bans.Submit(state, bans.Command{Op: bans.OpAdd, Prefix: netip.MustParsePrefix(addr), Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := strings.ReplaceAll(filtersConfig, "      file: LISTFILE\n", "      inline: [\"198.51.100.0/24\"]\n") +
		"bans:\n  enabled: true\n  state_file: " + state + "\n"
	tp := startProxy(t, cfg, up.URL)
	if status, _, _ := fromClient(t, tp.URL+"/", "203.0.113.50"); status != 200 {
		t.Errorf("banned but allow-listed client: %d", status)
	}
	if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.77"); status != 403 {
		t.Errorf("banned client: %d", status)
	}
}

// TestSiteLimitIsOneBudgetAndHeaderKeysCannotBeDropped: a site-wide limit is
// shared by the site's routes, and a header-keyed limit falls back to the
// client address when the header is left out.
func TestSiteLimitIsOneBudgetAndHeaderKeysCannotBeDropped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := `client_ip:
  trusted_proxies: [127.0.0.1]
upstreams:
  - name: app
    targets: ["UPSTREAM"]
sites:
  - hosts: ["*"]
    filters:
      rate_limits:
        - {name: site, rate: 0.001, burst: 2}
    routes:
      - path: /a/
        upstream: app
      - path: /b/
        upstream: app
      - path: /api/
        upstream: app
        rate_limits:
          - {name: api-key, rate: 0.001, burst: 1, key: header, header: X-Api-Key}
`
	tp := startProxy(t, cfg, up.URL)
	statuses := []int{}
	for _, path := range []string{"/a/1", "/b/1", "/b/2"} {
		s, _, _ := fromClient(t, tp.URL+path, "192.0.2.30")
		statuses = append(statuses, s)
	}
	if fmt.Sprint(statuses) != "[200 200 429]" {
		t.Errorf("site budget across routes: %v, want [200 200 429]", statuses)
	}
	// Without the header, the api-key limit counts the client itself.
	first, _, _ := fromClient(t, tp.URL+"/api/x", "192.0.2.31")
	second, _, _ := fromClient(t, tp.URL+"/api/x", "192.0.2.31")
	if first != 200 || second != 429 {
		t.Errorf("header-keyed limit without the header: %d then %d, want 200 then 429", first, second)
	}
}

// A deny feed that is down when Portcullis starts still denies: the last
// good copy from the previous run is in the state directory.
func TestDenyFeedSurvivesARestartWhileTheFeedIsDown(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	var down atomic.Bool
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "# drop\n198.51.100.0/24\n")
	}))
	defer feed.Close()
	state := t.TempDir()
	cfg := `
client_ip:
  trusted_proxies: [127.0.0.1]
tls:
  state_dir: ` + state + `
upstreams:
  - name: app
    targets: ["UPSTREAM"]
reputation:
  lists:
    - name: drop feed
      action: deny
      url: ` + feed.URL + `
sites:
  - hosts: ["*"]
    filters:
      deny_lists: ["drop feed"]
    routes:
      - path: /
        upstream: app
`
	for run, feedDown := range []bool{false, true} {
		down.Store(feedDown)
		tp := startProxy(t, cfg, up.URL)
		if status, _, _ := fromClient(t, tp.URL+"/", "198.51.100.7"); status != 403 {
			t.Errorf("run %d (feed down: %v): listed client got %d", run, feedDown, status)
		}
		if status, _, _ := fromClient(t, tp.URL+"/", "192.0.2.7"); status != 200 {
			t.Errorf("run %d: other client got %d", run, status)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "feeds", "drop%20feed.netset")); err != nil {
		t.Errorf("cached copy: %v", err)
	}
}

// A malformed request is refused by the protocol checks first; if the
// rules found an attack in it too, it counts as a strike. Malformed alone
// does not: honest but broken clients send such requests.
func TestMalformedAttacksAreStrikesMalformedAloneIsNot(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(echoUpstream))
	defer up.Close()
	cfg := "client_ip:\n  trusted_proxies: [127.0.0.1]\nbans:\n  enabled: true\n  threshold: 2\n  window: 1m\n  duration: 1m\n  state_file: " + filepath.Join(t.TempDir(), "bans.json") + "\n" + basicConfig
	tp := startProxy(t, cfg, up.URL)
	addr := strings.TrimPrefix(tp.URL, "http://")
	send := func(target, client string) string {
		return firstLine(rawExchange(t, addr, "GET "+target+" HTTP/1.1\r\nHost: portcullis.test\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nX-Forwarded-For: "+client+"\r\nConnection: close\r\n\r\n"))
	}
	for i := 0; i < 4; i++ {
		if got := send("/static%2Fapp.js", "192.0.2.80"); !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("malformed %d: %q", i, got)
		}
	}
	for i := 0; i < 2; i++ {
		if got := send("/static%2Fx?q=1%27%20OR%20%271%27%3D%271", "192.0.2.81"); !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("malformed attack %d: %q", i, got)
		}
	}
	var status int
	eventually(func() bool { status, _, _ = fromClient(t, tp.URL+"/benign", "192.0.2.81"); return status == 403 })
	if status != 403 {
		t.Errorf("client with two malformed attacks is not banned: %d", status)
	}
	if status, _, _ := fromClient(t, tp.URL+"/benign", "192.0.2.80"); status != 200 {
		t.Errorf("client with malformed requests only is banned: %d", status)
	}
}
