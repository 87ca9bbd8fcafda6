package bans

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/config"
)

func newTestGuard(t *testing.T, threshold int) *Guard {
	t.Helper()
	g, err := NewGuard(config.BansConfig{Enabled: true, Threshold: threshold, Window: time.Minute, Duration: time.Hour,
		StatusCodes: []int{404}, StateFile: filepath.Join(t.TempDir(), "bans.json"), MaxEntries: 100},
		GuardOptions{Trusted: func(a netip.Addr) bool { return a == netip.MustParseAddr("10.0.0.1") }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// serve runs one request from client through h and returns its record and
// status.
func serve(h http.Handler, client string) (*audit.Entry, int) {
	e := &audit.Entry{ID: "id", Addr: netip.MustParseAddr(client)}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(audit.WithEntry(r.Context(), e))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return e, w.Code
}

// TestStageRefusesBannedClients: a banned address and the addresses of a
// banned network get 403 and a ban record; others reach next.
func TestStageRefusesBannedClients(t *testing.T) {
	g := newTestGuard(t, 5)
	now := time.Now()
	if err := g.Store().Add(Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Reason: "test", Source: SourceManual, Created: now, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h := g.NewStage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for _, tc := range []struct {
		client string
		status int
		stage  string
	}{
		{"198.51.100.7", 403, audit.StageBan},
		{"198.51.100.255", 403, audit.StageBan},
		{"198.51.101.1", 204, ""},
		{"2001:db8::1", 204, ""},
	} {
		e, status := serve(h, tc.client)
		if status != tc.status || e.Stage != tc.stage {
			t.Errorf("%s: status %d stage %q, want %d %q", tc.client, status, e.Stage, tc.status, tc.stage)
		}
	}
	var off *Guard // bans off: the stage is next itself
	next := http.NewServeMux()
	if h := off.NewStage(next); h != http.Handler(next) {
		t.Error("a nil Guard's stage must be next itself")
	}
	off.Strike(&audit.Entry{}) // and counts nothing, without panicking
}

// TestStrikeReasons: which finished records are strikes.
func TestStrikeReasons(t *testing.T) {
	g := newTestGuard(t, 5)
	blocked := func(stage string, score int) *audit.Entry {
		return &audit.Entry{Action: audit.ActionBlocked, Stage: stage, InboundScore: score, Status: 403}
	}
	for _, tc := range []struct {
		name   string
		client string
		e      *audit.Entry
		want   string
	}{
		{"waf block", "192.0.2.1", blocked(audit.StageWAF, 5), "waf block"},
		{"malformed with an attack", "192.0.2.1", blocked(audit.StageProtocol, 5), "waf findings in a malformed request"},
		{"malformed alone", "192.0.2.1", blocked(audit.StageProtocol, 3), ""},
		{"listed status from the upstream", "192.0.2.1", &audit.Entry{Action: audit.ActionAllowed, Status: 404, Upstream: "http://app"}, "status 404"},
		{"listed status not from the upstream", "192.0.2.1", &audit.Entry{Action: audit.ActionAllowed, Status: 404}, ""},
		{"other status", "192.0.2.1", &audit.Entry{Action: audit.ActionAllowed, Status: 500, Upstream: "http://app"}, ""},
		{"our own refusal", "192.0.2.1", blocked(audit.StageRateLimit, 0), ""},
		{"a ban does not renew itself", "192.0.2.1", blocked(audit.StageBan, 0), ""},
		{"allow-listed", "192.0.2.1", func() *audit.Entry { e := blocked(audit.StageWAF, 5); e.AllowListed = "office: 192.0.2.0/24"; return e }(), ""},
		{"trusted proxy", "10.0.0.1", blocked(audit.StageWAF, 5), ""},
		{"no IP client", "", blocked(audit.StageWAF, 5), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.client != "" {
				tc.e.Addr = netip.MustParseAddr(tc.client)
			}
			if got := g.strikeReason(tc.e); got != tc.want {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
		})
	}
}

// TestStrikesBanOnTheWorker: strikes reported after responses ban the
// client once the threshold is reached, and OnBan hears of it.
func TestStrikesBanOnTheWorker(t *testing.T) {
	g := newTestGuard(t, 2)
	heard := make(chan Ban, 1)
	g.OnBan(func(b Ban) { heard <- b })
	g.Start()
	client := netip.MustParseAddr("203.0.113.9")
	for range 2 {
		g.Strike(&audit.Entry{Addr: client, Action: audit.ActionBlocked, Stage: audit.StageWAF})
	}
	select {
	case b := <-heard:
		if !b.Prefix.Contains(client) || b.Source != SourceAuto {
			t.Errorf("ban %+v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ban after two strikes")
	}
	if _, banned := g.Store().Banned(client, time.Now()); !banned {
		t.Error("the client is not in the table")
	}
}
