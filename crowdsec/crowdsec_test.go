package crowdsec

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-waf/portcullis/audit"
	"github.com/portcullis-waf/portcullis/bans"
	"github.com/portcullis-waf/portcullis/internal/lapitest"
)

func TestDecisionTarget(t *testing.T) {
	tests := []struct {
		d       Decision
		want    string
		wantErr string
	}{
		{Decision{Type: "ban", Scope: "Ip", Value: "192.0.2.7"}, "192.0.2.7/32", ""},
		{Decision{Type: "BAN", Scope: "ip", Value: "2001:db8::1"}, "2001:db8::1/128", ""},
		{Decision{Type: "ban", Scope: "Ip", Value: "::ffff:192.0.2.7"}, "192.0.2.7/32", ""},
		{Decision{Type: "ban", Scope: "Range", Value: "198.51.100.77/24"}, "198.51.100.0/24", ""},
		{Decision{Type: "captcha", Scope: "Ip", Value: "192.0.2.7"}, "", `type "captcha" is not applied`},
		{Decision{Type: "ban", Scope: "Country", Value: "FR"}, "", `scope "Country" is not applied`},
		{Decision{Type: "ban", Scope: "Ip", Value: "not-an-ip"}, "", "is not an IP address"},
		{Decision{Type: "ban", Scope: "Range", Value: "0.0.0.0/0"}, "", "broader than /8"},
		{Decision{Type: "ban", Scope: "Range", Value: "2001::/16"}, "", "broader than /32"},
	}
	for _, tt := range tests {
		p, err := tt.d.Target()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v: error %v, want %q", tt.d, err, tt.wantErr)
			}
			continue
		}
		if err != nil || p.String() != tt.want {
			t.Errorf("%+v: %v %v, want %s", tt.d, p, err, tt.want)
		}
	}
}

// FuzzParseStream: the decision stream is read from the network; whatever
// it holds, parsing and judging it never panics and never yields a ban
// broader than an operator may set.
func FuzzParseStream(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/stream-*.json")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStream(data)
		if err != nil {
			return
		}
		for _, d := range append(s.New, s.Deleted...) {
			if p, err := d.Target(); err == nil {
				if bans.CheckBreadth(p) != nil {
					t.Fatalf("decision %+v gave %s", d, p)
				}
				if p != p.Masked() {
					t.Fatalf("unmasked %s", p)
				}
			}
			_, _ = time.ParseDuration(d.Duration)
		}
	})
}

func TestParseStreamFixtures(t *testing.T) {
	data, err := os.ReadFile("testdata/stream-lapi-1.4.6.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseStream(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.New) != 2 || len(s.Deleted) != 1 || s.New[0].Scope != "Range" || s.Deleted[0].Duration != "-10.720561ms" {
		t.Errorf("parsed %+v", s)
	}
}

// waitFor polls cond until it holds or 45 s pass (the LAPI and cscli are
// separate processes on a loaded machine).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(45 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestBouncerAgainstLAPI (issue 17, item 8): decisions added with cscli
// become bans with their durations, deleted ones are lifted, and an
// operator's manual ban of the same address outlives the CrowdSec one.
func TestBouncerAgainstLAPI(t *testing.T) {
	lapi := lapitest.Start(t)
	// A decision made before the bouncer starts arrives with startup=true.
	lapi.Cscli(t, "decisions", "add", "--ip", "192.0.2.7", "--duration", "2h", "--reason", "test early")
	store, err := bans.Open("", 1000)
	if err != nil {
		t.Fatal(err)
	}
	// A CrowdSec ban left from an earlier run, whose decision is gone.
	stale := netip.MustParsePrefix("203.0.113.50/32")
	now := time.Now()
	if err := store.Add(bans.Ban{Prefix: stale, Reason: "old", Source: bans.SourceCrowdSec, Created: now, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	b, err := NewBouncer(BouncerOptions{URL: lapi.URL, APIKey: lapi.BouncerKey, Interval: 200 * time.Millisecond, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	b.Start()
	defer b.Close()
	banned := func(ip string) (bans.Ban, bool) { return store.Banned(netip.MustParseAddr(ip), time.Now()) }

	waitFor(t, "the startup decision", func() bool { _, ok := banned("192.0.2.7"); return ok })
	ban, _ := banned("192.0.2.7")
	if ban.Source != bans.SourceCrowdSec || !strings.Contains(ban.Reason, "test early") {
		t.Errorf("ban %+v", ban)
	}
	if left := time.Until(ban.Until); left < 110*time.Minute || left > 2*time.Hour {
		t.Errorf("ban lasts %s more, want about 2h", left)
	}
	if _, ok := banned("203.0.113.50"); ok {
		t.Error("a CrowdSec ban whose decision is gone survived the startup pull")
	}

	// Deltas: a range and a short decision.
	lapi.Cscli(t, "decisions", "add", "--range", "198.51.100.0/24", "--duration", "30m")
	waitFor(t, "the range decision", func() bool { _, ok := banned("198.51.100.99"); return ok })
	if ban, _ := banned("198.51.100.99"); time.Until(ban.Until) > 30*time.Minute {
		t.Errorf("range ban until %s, want within 30m", ban.Until)
	}

	// Deleted decisions are lifted.
	lapi.Cscli(t, "decisions", "delete", "--ip", "192.0.2.7")
	waitFor(t, "the deletion", func() bool { _, ok := banned("192.0.2.7"); return !ok })
	lapi.Cscli(t, "decisions", "delete", "--range", "198.51.100.0/24")
	waitFor(t, "the range deletion", func() bool { _, ok := banned("198.51.100.99"); return !ok })

	// An operator's ban is not lifted by a CrowdSec deletion.
	manual := bans.Ban{Prefix: netip.MustParsePrefix("192.0.2.8/32"), Reason: "operator", Source: bans.SourceManual, Created: time.Now(), Until: time.Now().Add(time.Hour)}
	if err := store.Add(manual); err != nil {
		t.Fatal(err)
	}
	lapi.Cscli(t, "decisions", "add", "--ip", "192.0.2.8", "--duration", "5m")
	lapi.Cscli(t, "decisions", "add", "--ip", "192.0.2.9", "--duration", "5m") // a marker: pulled after .8
	waitFor(t, "the marker decision", func() bool { _, ok := banned("192.0.2.9"); return ok })
	lapi.Cscli(t, "decisions", "delete", "--ip", "192.0.2.8")
	lapi.Cscli(t, "decisions", "delete", "--ip", "192.0.2.9")
	waitFor(t, "the marker deletion", func() bool { _, ok := banned("192.0.2.9"); return !ok })
	if ban, ok := banned("192.0.2.8"); !ok || ban.Source != bans.SourceManual {
		t.Errorf("manual ban after the CrowdSec deletion: %+v %v", ban, ok)
	}
	if st := b.Stats(); st.LastError != "" || st.Added < 4 || st.Lifted < 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestBouncerRefusedKey: a wrong key is an error that says what to check.
func TestBouncerRefusedKey(t *testing.T) {
	lapi := lapitest.Start(t)
	store, _ := bans.Open("", 10)
	b, _ := NewBouncer(BouncerOptions{URL: lapi.URL, APIKey: "wrong", Store: store})
	err := b.Pull(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refused the bouncer key") {
		t.Errorf("error %v", err)
	}
	if st := b.Stats(); st.Failures != 1 || st.LastError == "" {
		t.Errorf("stats %+v", st)
	}
}

// TestSignalsAgainstLAPI: blocked requests reach the LAPI as alerts, one
// per address and stage with the number of blocks; allowed requests and
// ban-stage blocks are not signalled.
func TestSignalsAgainstLAPI(t *testing.T) {
	lapi := lapitest.Start(t)
	var logs syncBuffer
	s, err := NewSignals(SignalsOptions{URL: lapi.URL, MachineID: lapi.MachineID, Password: lapi.MachinePassword, FlushInterval: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for i := range 3 {
		_ = s.Write(&audit.Entry{ID: "r" + string(rune('0'+i)), Time: at, ClientIP: "203.0.113.9", Host: "shop.test", Method: "GET",
			URI: "/search?token=secret", Status: 403, Action: audit.ActionBlocked, Stage: audit.StageWAF, Reason: "SQL injection"})
	}
	_ = s.Write(&audit.Entry{ClientIP: "203.0.113.10", Action: audit.ActionAllowed, Status: 200})
	_ = s.Write(&audit.Entry{ClientIP: "203.0.113.11", Action: audit.ActionBlocked, Stage: audit.StageBan, Status: 403})
	var mine []lapitest.Alert
	defer func() {
		if t.Failed() {
			t.Logf("signals log:\n%s\nstats %+v", logs.String(), s.Stats())
		}
	}()
	waitFor(t, "the alert in cscli alerts list", func() bool {
		mine = nil
		for _, a := range lapi.Alerts(t) {
			if strings.HasPrefix(a.Scenario, "portcullis/") {
				mine = append(mine, a)
			}
		}
		return len(mine) > 0
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 {
		t.Fatalf("alerts %+v, want one", mine)
	}
	a := mine[0]
	if a.Scenario != "portcullis/waf" || a.Source.Scope != "Ip" || a.Source.Value != "203.0.113.9" || a.EventsCount != 3 || a.MachineID != lapi.MachineID {
		t.Errorf("alert %+v", a)
	}
	if st := s.Stats(); st.Queued != 3 || st.AlertsSent != 1 || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSignalsQueueIsBounded: with the LAPI unreachable, Write never waits;
// blocks beyond the queue are dropped and counted, failed sends counted.
func TestSignalsQueueIsBounded(t *testing.T) {
	s, err := NewSignals(SignalsOptions{URL: "http://127.0.0.1:1", MachineID: "m", Password: "p", QueueSize: 4, FlushInterval: time.Hour, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		_ = s.Write(&audit.Entry{ClientIP: "203.0.113.9", Action: audit.ActionBlocked, Stage: audit.StageWAF})
	}
	_ = s.Close() // tries the queued four, fails
	if st := s.Stats(); st.Queued != 4 || st.Dropped != 6 || st.Failed != 1 || st.AlertsSent != 0 {
		t.Errorf("stats %+v", st)
	}
}

// syncBuffer is a log destination safe for the sender's goroutine.
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
